"""nbgrader configuration of the ConvLab course.

The course directory is the folder holding this file: instructors write
assignments in ``solutions/`` (nbgrader's source) and ``nbgrader generate_assignment``
releases them into ``exercises/``. Submissions, autograded notebooks, feedback and
the gradebook use nbgrader's defaults (``submitted/``, ``autograded/``,
``feedback/``, ``gradebook.db``); the tests run on a temporary copy of the course.
"""

import os

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "convlab"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# Notebooks run in the "python3" kernel of the environment nbgrader runs in (put the
# project's .venv/bin first on PATH) so that the hidden tests can import convlab.
# Each test cell of a correct solution takes a few seconds at most.
c.ExecutePreprocessor.timeout = 30

# A student who deletes a test cell still gets it graded: autograde puts deleted
# grade cells back from the gradebook (edited ones are always overwritten).
c.OverwriteCells.add_missing_cells = True
