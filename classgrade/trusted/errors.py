"""Why the grader stops: one line for the instructor, with the fix, and a non-zero exit.

Every error an instructor can cause (a path, an assignment's name, a database URL or its driver,
a scheduler, a gradebook in use, a download that holds no submission) is raised as an
:class:`InstructorError`; the command line prints its message as one line and exits with
:data:`EXIT_CODE`. Anything else is a bug of the grader and keeps its traceback.
"""

EXIT_CODE = 2


class InstructorError(RuntimeError):
    """Something the instructor can fix: the message says what went wrong and what to do."""


class BadValue(InstructorError, ValueError):
    """An option's value that is not allowed (the message names it and what is)."""


class GradebookInUse(InstructorError):
    """Another run holds the output folder or the gradebook: this one refuses, it does not wait."""


class Unavailable(InstructorError):
    """Grading cannot start here (the message says why and what to do)."""


class SandboxUnavailable(Unavailable):
    """The grading sandbox cannot start on this machine (the message says why and what to do)."""


class ClusterUnavailable(Unavailable):
    """The cluster's workers cannot grade (see the message)."""
