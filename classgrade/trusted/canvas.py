"""Canvas's names of handed-in files, for :mod:`.collect` (runs as the grader).

Standard library only: the command line (:mod:`.cli`) shows :data:`DEFAULT_REGEX` in its help
before the grader imports nbgrader.
"""
import re

# <name>_[LATE_]<user id>_<submission id>_<file name>[-<resubmission>].ipynb (the submission id may be
# missing); nbgrader's named_regexp, with the optional groups name, late and resubmission classgrade keeps
DEFAULT_REGEX = (r"^(?:.*/)?(?P<name>[^/]+?)_(?P<late>LATE_)?(?P<student_id>[0-9]+)_(?:(?P<submission_id>[0-9]+)_)?"
                 r"(?P<file_id>[^/]+?)(?:-(?P<resubmission>[0-9]+))?\.ipynb$")
# a notebook's extra copy, as browsers and file managers name them: "x (1)", "x - Copy", "x copy 2"
COPY = re.compile(r"^(?P<base>.+?)(?:\s*\(\d+\)|\s*-\s*copy(?:\s*\(\d+\))?|[ _-]copy(?:\s*\d+)?)$", re.I)
