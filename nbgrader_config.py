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

# The late policy (classgrade/trusted/late.py), applied by nbgrader's AssignLatePenalties in
# `nbgrader autograde` and by `make grade` alike: 10 % of a notebook's score per started day
# after the due date, at most 50 %. The hand-in's time is timestamp.txt in its submitted/ folder.
c.AssignLatePenalties.plugin_class = "classgrade.trusted.late.PercentPerDay"
c.PercentPerDay.percent = 10
c.PercentPerDay.cap = 50
# Due dates, in UTC or with a time zone; `make grade` writes them into the gradebook (an
# assignment not named here keeps the due date set in formgrader or by `nbgrader db assignment add`).
c.ClassGrade.duedates = {
    # "cross_correlation": "2026-12-01 23:59:00 UTC",
}
