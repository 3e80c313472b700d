"""The steps of grading a class, once the kernels are starting (:func:`classgrade.trusted.run.grade_class`).

Runs as the grader:

0. check the gradebook's database and lock it for the run (:mod:`.database`);
1. generate the assignment once into a template sqlite gradebook, and compare its cells with
   the real gradebook's (sqlite or PostgreSQL): a source changed since the gradebook's
   submissions were graded is refused, unless ``--regrade-all`` (:meth:`ClassRun.check_source`);
2. collect the submissions (nbgrader's ``submitted/`` layout, or an LMS download run through
   nbgrader's ZipCollectApp; :mod:`.collect`): each student's folder, and the record of which
   file was graded and which were not (in the report); a download with nothing of the
   assignment stops the run here. With ``--regrade-all``, every student of the gradebook too,
   from ``DIR/submitted/`` if SUBMISSIONS lacks them (:mod:`.history`); then generate into the
   real gradebook, with the assignment's due date (``c.ClassGrade.duedates``, or the real
   gradebook's; :mod:`.late`) there and in the template; keep a copy of each hand-in;
3. grade the assignment's source first, for the replay's reference, then each
   submission in a grading process with its own course folder and gradebook
   (:mod:`.worker`), on this machine (:mod:`.runner`) or on Dask (:mod:`.cluster`);
4. merge each result into the real gradebook from this process only, so one
   writer ever touches it (with the hand-in's time and its late penalty); copy
   autograded notebooks and feedback out, checked;
5. export ``grades.csv`` with nbgrader's CSV exporter, write the run's report into
   ``DIR/runs/<UTC timestamp>/`` and rebuild the class report in ``DIR`` from the gradebook
   (:mod:`.history`).
"""
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from tqdm import tqdm   # the console bar: tqdm.auto picks a widget once ipykernel is imported

from classgrade.protocol import Job, ReferenceCell, Status

from . import database, gradebook, history, jail, late, report, warmup
from . import worker   # imported once, before the grading processes are forked; its warm-up
from .collect import collect
from .errors import InstructorError
from .runner import Runner

REFERENCE_STUDENT = "classgrade-reference-solution"


class ClassRun:
    """One run of :func:`grade`: its settings, folders and results, step by step."""

    def __init__(self, settings, kernels):
        self.settings, self.kernels = settings, kernels
        self.course, self.out = Path(settings.course).resolve(), Path(settings.out).resolve()
        self.config = gradebook.load_course_config(self.course)
        source_name = self.config.CourseDirectory.get("source_directory", "source")
        self.source_dir = self.course / source_name / settings.assignment
        self.db_url = settings.db_url or f"sqlite:///{self.out / 'gradebook.db'}"
        # nbgrader leaves course_id empty and creates no course row for it; PostgreSQL enforces
        # the assignment -> course foreign key that sqlite ignores, so name a course there
        self.course_id = self.config.CourseDirectory.get("course_id", "") or (
            "" if self.db_url.startswith("sqlite") else "default_course")
        self.duedate = late.configured_duedate(self.config, settings.assignment)   # refused early if invalid
        late.penalty_plugin(self.config)
        self.result = report.ClassResult(out=self.out, db_url=self.db_url,
                                         sandbox="bwrap" if settings.sandbox else "none (--no-sandbox)")
        self.tmp = self.db_lock = None
        self.regrade = []          # --regrade-all: the gradebook's students of the assignment
        self.restructured = False  # --regrade-all: cells were added or removed (submissions removed first)
        self.kept = {}             # student graded from DIR/submitted/ -> what its copy left out (as flags)

    def check(self):
        """Refuse early: a sandbox that cannot start; the gradebook's database, which it then
        holds locked for the run (:mod:`.database`); nbgrader's alembic head. The rest was
        checked before the kernels started (:mod:`.preflight`)."""
        if self.settings.sandbox and not self.settings.scheduler:   # a cluster's workers check their own
            jail.check()
        self.db_lock = database.check(self.settings.db_url, self.settings.assignment)
        gradebook.alembic_head_in_process()

    def close(self):
        """Release the gradebook's lock; remove the scratch folder (unless kept)."""
        if self.db_lock is not None:
            self.db_lock.close()
        if self.tmp is not None and not self.settings.keep_work:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def generate(self):
        """The template gradebook and the release; the release's folder."""
        self.template_db = self.tmp / "template.db"
        release_dir = gradebook.generate(self.config, self.source_dir, self.settings.assignment,
                                         self.tmp / "template", f"sqlite:///{self.template_db}")
        # plain dicts, not nbformat's nodes: a Dask worker would import nbformat (~1.5 s) to unpickle them
        self.release = {p.name: json.loads(json.dumps(nbformat.read(str(p), as_version=4)))
                        for p in sorted(release_dir.glob("*.ipynb"))}
        return release_dir

    def check_source(self):
        """Refuse a source changed since the gradebook's submissions of the assignment were graded
        (points, checksums, cells added or removed): grading some students again would leave the
        others scored against the old cells. ``--regrade-all`` grades them all instead."""
        s = self.settings
        sqlite = self.db_url.removeprefix("sqlite:///") if self.db_url.startswith("sqlite:///") else None
        if sqlite is not None and not Path(sqlite).exists():
            return
        students = gradebook.submitted_students(self.db_url, s.assignment, self.course_id)
        if s.regrade_all:
            self.regrade = students
        stored = gradebook.snapshot(self.db_url, s.assignment, self.course_id)
        if stored is None or not students:
            return
        changes = gradebook.changes(stored, gradebook.snapshot(f"sqlite:///{self.template_db}", s.assignment))
        if changes and s.regrade_all:
            self.restructured = gradebook.structural(changes)
            print(f"classgrade: {s.assignment} changed ({'; '.join(changes)}): regrading all "
                  f"{len(students)} students of the gradebook", file=sys.stderr)
        elif changes:
            more = f" (and {len(changes) - 1} more change(s))" if len(changes) > 1 else ""
            command = " ".join(["python -m classgrade grade", s.assignment, str(s.submissions), "--out", str(s.out)]
                               + (["--course", str(s.course)] if str(s.course) != "." else [])
                               + (["--db-url", "URL"] if s.db_url else []) + ["--regrade-all"])
            raise InstructorError(
                f"{s.assignment}: the source changed since its {len(students)} submission(s) in the gradebook "
                f"were graded: {changes[0]}{more}; regrade the whole class: {command} (hand-ins missing from "
                f"{s.submissions} are taken from {self.out / history.KEPT})")

    def plan(self, collected):
        """student -> folder to grade: ``collected``, and with ``--regrade-all`` every student of
        the gradebook (from ``DIR/submitted/`` when not collected); then the real gradebook
        generated (its old submissions removed first if cells were added or removed)."""
        students = history.hand_ins(self.out, self.settings.assignment, self.regrade, collected) \
            if self.settings.regrade_all else collected
        self.kept = {s: history.kept_flags(self.out, self.settings.assignment, s) for s, folder in students.items()
                     if s not in collected}
        if self.restructured:
            gradebook.remove_submissions(self.db_url, self.settings.assignment, self.regrade, self.course_id)
        # always, as nbgrader does: an unchanged or newly made gradebook is updated; a changed source
        # with graded submissions was refused above (or its submissions removed)
        gradebook.generate(self.config, self.source_dir, self.settings.assignment, self.tmp / "main",
                           self.db_url, self.course_id)
        # the config's due date, or the one set in formgrader: the grading processes' too
        due = gradebook.set_duedate(self.db_url, self.settings.assignment, self.duedate, self.course_id)
        gradebook.set_duedate(f"sqlite:///{self.template_db}", self.settings.assignment, due)
        for student, folder in students.items():
            if student in collected:
                history.keep(self.out, self.settings.assignment, student, folder)
        return students

    def jobs(self, students):
        """A :class:`~classgrade.protocol.Job` per student, and the template of them all."""
        s = self.settings
        plain = {k: v for k, v in self.config.items() if k not in ("CourseDirectory",)}
        zygote = self.kernels.zygote
        self.common = Job(student="", assignment=s.assignment, work="", template_db=str(self.template_db),
                          source_dir=str(self.source_dir), release=self.release, sandbox=s.sandbox,
                          zygote=zygote and zygote.path, timeout=s.timeout, memory_bytes=s.memory_bytes,
                          feedback=s.feedback, wall=s.wall, config=json.loads(json.dumps(plain, default=_plain_value)))
        return [self.common.again(student=student, submission_dir=str(folder), work=str(self.tmp / "work" / str(i)),
                                  flags=list(self.kept.get(student, [])))
                for i, (student, folder) in enumerate(students.items())]

    def dispatcher(self):
        """``dispatch(jobs, on_result)``: the cluster's, or this machine's grading processes."""
        cluster = self.kernels.cluster
        if cluster is not None:
            cluster.stage(self.template_db, self.source_dir)
            return cluster.run
        return Runner(self.settings.workers, self.settings.wall).run

    def reference(self, dispatch, jobs):
        """The replay's reference, from grading the instructor's source first in the same way:
        each job gets it; the tests it cannot confirm are listed in the result and said."""
        job = self.common.again(student=REFERENCE_STUDENT, submission_dir=str(self.source_dir),
                                work=str(self.tmp / "work" / "reference"), record_reference=True, feedback=False)
        done = []
        dispatch([job], lambda j, r: done.append(r))
        reference, self.result.unconfirmed = _reference_of(done[0] if done else None)
        for line in self.result.unconfirmed:
            print(f"classgrade: {line}", file=sys.stderr)
        for job in jobs:
            job.reference = reference

    def grade(self, dispatch, jobs):
        """Grade ``jobs``, merging each result as it comes."""
        bar = tqdm(total=len(jobs), desc=f"grading {self.settings.assignment}", unit="submission",
                   disable=self.settings.progress is False)
        with Gradebook(self.db_url, self.course_id) as gb:
            dispatch(jobs, lambda job, res: self.merge(gb, bar, job, res))
        bar.close()

    def merge(self, gb, bar, job, res):
        """One result: into the gradebook, its folders copied out (checked), shown on the bar."""
        student = job.student
        if res.status == Status.OK:
            gradebook.merge(gb, self.settings.assignment, student, res)
            for kind in ("autograded", "feedback"):
                src = Path(getattr(res, kind)) if getattr(res, kind) else None   # none with --no-feedback
                if src and src.is_dir():
                    dest = self.out / kind / student / self.settings.assignment
                    shutil.rmtree(dest, ignore_errors=True)
                    # written by the submission: no links or special files out, sizes bounded
                    res.flags += [f"not copied to {kind}/: {line}" for line in jail.copy_checked(src, dest)]
        else:
            res.flags.append("could not be graded: " + (res.error or res.status.value).strip().splitlines()[-1][:200])
        if not self.settings.keep_work:
            shutil.rmtree(job.work, ignore_errors=True)
        self.result.results[student] = res
        failed = sum(r.status != Status.OK for r in self.result.results.values())
        bar.set_postfix_str(f"{failed} failed, {len(self.result.needs_attention)} need attention", refresh=False)
        bar.update(1)
        if res.flags:
            bar.write(f"{student}: needs attention ({len(res.flags)} reason(s))")

    def finish(self, started):
        """``grades.csv`` (the whole gradebook), the run's report in its own folder, and the
        class report rebuilt from the gradebook (:mod:`.history`)."""
        gradebook.export_csv(self.db_url, self.out / "grades.csv", self.course_id)
        self.result.wall_seconds = time.monotonic() - started
        folder = history.new_run_folder(self.out)
        self.result.run = str(folder.relative_to(self.out))
        history.write_run(self.result, self.settings.assignment, folder, regrade_all=self.settings.regrade_all)
        self.result.whole_class = history.write_class(self.out, self.settings.assignment, self.db_url, self.course_id)
        return self.result


def _plain_value(value):
    """A config value as JSON: a class (``c.AssignLatePenalties.plugin_class = PercentPerDay``) by its import name."""
    return f"{value.__module__}.{value.__qualname__}" if isinstance(value, type) else str(value)


def _reference_of(res):
    """``(reference, unconfirmed)``: notebook -> grade id -> the instructor's run of that test cell
    (:class:`~classgrade.protocol.ReferenceCell`, as a dict), for the replay; one line for each
    test it cannot confirm (those keep nbgrader's scores)."""
    if res is None or res.status != Status.OK:
        why = "no result" if res is None else (res.error or res.status.value)
        why = why.strip().splitlines()[-1][:200]
        return {}, [f"grading the assignment's source failed ({why}): every score is nbgrader's alone, "
                    "unconfirmed by a replay"]
    reference, unconfirmed = {}, []
    for name, nb in res.notebooks.items():
        cells = {gid: ReferenceCell.from_dict(data) for gid, data in (res.reference or {}).get(name, {}).items()}
        for gid, grade in nb.cells.items():
            if grade.cell_type != "code" or not grade.max_score or grade.needs_manual_grade:
                continue
            ref = cells.setdefault(gid, ReferenceCell(gid, why="the instructor's run recorded nothing of it"))
            if grade.auto_score != grade.max_score:
                ref.why = "the source fails its own test"
            if ref.why:
                unconfirmed.append(f"{name}: test '{gid}': {ref.why}: its scores are nbgrader's alone, "
                                   "unconfirmed by a replay")
        reference[name] = {gid: ref.to_dict() for gid, ref in cells.items()}
    return reference, unconfirmed


def grade(settings, kernels, started):
    """Grade the class of ``settings`` (see the module's docstring); a :class:`.report.ClassResult`.

    ``kernels``: the zygote or the cluster, already starting (:func:`.run.start_kernels`).
    """
    run = ClassRun(settings, kernels)
    try:
        run.check()
        run.tmp = Path(tempfile.mkdtemp(prefix="classgrade-"))
        release_dir = run.generate()
        run.check_source()
        # from the source's notebook names: a download with nothing to grade stops before the gradebook changes
        collection = collect(settings.submissions, settings.assignment, release_dir, run.tmp, settings.regex,
                             run.source_dir)
        run.result.collection = collection
        jobs = run.jobs(run.plan(collection.students))
        for job in jobs:   # what the collection tells the student (feedback) and the instructor (flags)
            job.notices, job.flags = job.notices + collection.notices(job.student), job.flags + collection.flags(job.student)
        # imports (and feedback templates) every grading child needs, once before the forks
        warmup.warm_up(run.release.values(), feedback=settings.feedback and not settings.scheduler)
        if not settings.scheduler:   # the gradebook's statements, compiled once (a cluster's workers compile theirs)
            worker.warm_gradebook(run.template_db, settings.assignment, run.release)
        if kernels.zygote is not None:
            kernels.zygote.ready()
        dispatch = run.dispatcher()
        if jobs:
            run.reference(dispatch, jobs)
        run.grade(dispatch, jobs)
        return run.finish(started)
    finally:
        run.close()
