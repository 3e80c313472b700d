"""Why the grader refuses to start grading: one line for the instructor, with the fix."""


class Unavailable(RuntimeError):
    """Grading cannot start here (the message says why and what to do)."""


class SandboxUnavailable(Unavailable):
    """The grading sandbox cannot start on this machine (the message says why and what to do)."""


class ClusterUnavailable(Unavailable):
    """The cluster's workers cannot grade (see the message)."""
