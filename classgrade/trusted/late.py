"""The late policy: due dates from the course config, penalties by nbgrader's late-submission plugin.

Runs as the grader (in the grading processes, and in the parent when it generates the
assignment). nbgrader 0.9.6 keeps an assignment's due date in the gradebook only (set by
``nbgrader db assignment add NAME --duedate=...`` or in formgrader) and computes the penalty in
its ``AssignLatePenalties`` preprocessor, with the plugin named by
``c.AssignLatePenalties.plugin_class`` (a :class:`~nbgrader.plugins.latesubmission.LateSubmissionPlugin`),
from the submission's ``timestamp.txt``. This module adds:

- :class:`ClassGrade`: ``c.ClassGrade.duedates = {"cross_correlation": "2026-12-01 23:59:00 UTC"}``
  in ``nbgrader_config.py``; the grader writes it into the gradebook's assignment (a due date set
  in formgrader stays when the config names none);
- :class:`PercentPerDay`: ``c.AssignLatePenalties.plugin_class = "classgrade.trusted.late.PercentPerDay"``,
  ``c.PercentPerDay.percent = 10``, ``c.PercentPerDay.cap = 50``: so many percent of the score per
  started day late, at most ``cap`` percent;
- :func:`assign_penalties`: nbgrader's own computation again, after the grader's verdicts have
  changed the scores (nbgrader's ran before them), so that the penalty, the feedback and the
  gradebook agree.
"""
import math

from nbgrader.plugins.latesubmission import LateSubmissionPlugin
from nbgrader.preprocessors import AssignLatePenalties
from nbgrader.utils import parse_utc
from traitlets import Dict, Float, TraitError, Unicode, validate
from traitlets.config import Config, Configurable

from .errors import InstructorError

DAY = 24 * 3600


class ClassGrade(Configurable):
    """The class grader's own settings in the course's ``nbgrader_config.py``."""

    duedates = Dict(value_trait=Unicode(), help=(
        "assignment -> its due date, as nbgrader reads one ('2026-12-01 23:59:00 UTC', "
        "'2026-12-01 23:59:00 Europe/Paris', ISO 8601): written into the gradebook's assignment "
        "when the grader generates it")).tag(config=True)


class PercentPerDay(LateSubmissionPlugin):
    """``percent`` of the notebook's score per started day late, at most ``cap`` percent."""

    percent = Float(10.0, help="percent of the score taken off per started day late").tag(config=True)
    cap = Float(50.0, help="at most this percent of the score is taken off").tag(config=True)

    @validate("percent", "cap")
    def _percentage(self, proposal):
        if not 0 <= proposal["value"] <= 100:
            raise TraitError(f"PercentPerDay.{proposal['trait'].name} must be between 0 and 100, "
                             f"not {proposal['value']}")
        return proposal["value"]

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        if total_seconds_late <= 0 or not score:
            return None
        days = math.ceil(total_seconds_late / DAY)
        return score * min(self.cap, self.percent * days) / 100


def configured_duedate(config, assignment):
    """``assignment``'s due date from ``c.ClassGrade.duedates`` (naive UTC, as nbgrader stores it), or None."""
    text = ClassGrade(config=Config(config)).duedates.get(assignment)
    if not text:
        return None
    try:
        return parse_utc(text)
    except (ValueError, OverflowError) as error:
        raise InstructorError(f"c.ClassGrade.duedates[{assignment!r}] = {text!r} in nbgrader_config.py is "
                              f"not a date ({error}): write it as '2026-12-01 23:59:00 UTC'") from None


def penalty_plugin(config):
    """nbgrader's ``AssignLatePenalties`` configured by ``config``, its plugin made."""
    try:
        preprocessor = AssignLatePenalties(config=Config(config))
        preprocessor.init_plugin()
    except TraitError as error:
        raise InstructorError(f"the late policy in nbgrader_config.py is invalid: {error}") from None
    return preprocessor


def assign_penalties(gb, assignment, student, preprocessor):
    """Set each notebook's ``late_submission_penalty`` of ``student``'s submission in ``gb`` as
    nbgrader's ``AssignLatePenalties`` does (None when on time; never below 0 or above the
    notebook's score), from the scores the gradebook holds now. Returns the total penalty."""
    submission = gb.find_submission(assignment, student)
    late = submission.total_seconds_late
    total = 0.0
    for notebook in submission.notebooks:
        notebook.late_submission_penalty = None
        if late > 0:
            penalty = preprocessor.plugin_inst.late_submission_penalty(student, notebook.score, late)
            if penalty is not None:
                notebook.late_submission_penalty = preprocessor._check_late_penalty(notebook, penalty)
                total += notebook.late_submission_penalty
    gb.db.commit()
    return total


def describe(seconds):
    """``seconds`` late, for people: '2 d 3 h', '40 min'."""
    seconds = int(round(seconds))
    days, rest = divmod(seconds, DAY)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"
