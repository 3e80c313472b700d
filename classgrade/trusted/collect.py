"""Collect the submissions: nbgrader's ``submitted/`` layout, or an LMS download (Canvas's names).

Runs as the grader. :func:`collect` returns a :class:`Collection`: the folder of each student's
hand-in in nbgrader's layout (``submitted/<student>/<assignment>/``) and the record of how it was
made (every file found, the file graded, the late flag and the timestamp, the files not graded and
why, what the student is told in the feedback, warnings), which the report shows and
``results.json`` keeps.

An LMS download (a .zip, or a folder of files) goes through nbgrader's own ``ZipCollectApp``, in
this process, with two plugins of nbgrader's kinds, which also work with plain
``nbgrader zip_collect --extractor=classgrade.trusted.collect.CanvasExtractorPlugin
--collector=classgrade.trusted.collect.CanvasCollectorPlugin ASSIGNMENT``:

- :class:`CanvasExtractorPlugin` (an ``ExtractorPlugin``) unpacks zips with their names decoded as
  UTF-8, in NFC (Canvas's zips lack the UTF-8 flag: the names zipfile decodes as cp437 are decoded
  again as UTF-8, or kept with a warning) and each file's time kept as its modification time (the zip
  entry's ``date_time``, read as UTC; a folder's files are copied with their own);
- :class:`CanvasCollectorPlugin` (a ``FileNameCollectorPlugin``) reads Canvas's names,
  ``<name>_[LATE_]<userid>[_<submissionid>]_<file>[-<n>].ipynb`` (:data:`DEFAULT_REGEX`, or the
  instructor's ``--regex``, nbgrader's ``named_regexp``): the student id is Canvas's user id,
  the timestamp the file's time, and the name, the late flag and the resubmission number are kept.

Between nbgrader's two steps (extract, then collect and transfer) :func:`choose` decides, from
every file at once, which file is graded as which notebook: ``ZipCollectApp`` alone looks at one
file at a time, stops the whole class on two files of one student without timestamps ("Duplicate
submission file"), picks among duplicates by timestamp only (not Canvas's resubmission number),
copies every other notebook of a student (``x (1).ipynb``) beside the graded one, skips other
files with a log line only, and dates a student by the newest of all their files, graded or not.
So the collector is given the plan (:attr:`CanvasCollectorPlugin.plan`): it answers for the
chosen files only, under the notebook name they are graded as, and ``ZipCollectApp`` then writes
the ``submitted/`` layout and nbgrader's ``timestamp.txt`` itself (what nbgrader's late penalty
reads). A download holding no file of the assignment's notebooks raises
:class:`~.errors.InstructorError`, saying what was expected and what was found.
"""
import calendar
import collections.abc
import dataclasses
import datetime
import logging
import os
import re
import shutil
import stat
import unicodedata
import zipfile
from pathlib import Path

from nbgrader.apps.zipcollectapp import ZipCollectApp
from nbgrader.coursedir import CourseDirectory
from nbgrader.plugins.zipcollect import ExtractorPlugin, FileNameCollectorPlugin
from nbgrader.utils import find_all_notebooks, parse_utc, unzip
from traitlets import Unicode
from traitlets.config import Config

from . import jail
from .canvas import COPY, DEFAULT_REGEX
from .errors import InstructorError

UTF8_FLAG = 0x800                        # zip's general purpose flag bit 11: the name is UTF-8
TIMESTAMP = "timestamp.txt"              # nbgrader's record of when a submission was handed in
SHOWN = 3                                # names shown in a one-line error before "..."


def _utc(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).replace(tzinfo=None)


def _sorted_files(folder):
    return sorted(Path(root) / name for root, _, names in os.walk(folder) for name in names)


class CanvasExtractorPlugin(ExtractorPlugin):
    """nbgrader's extractor, keeping the names and the times of an LMS download (module docstring).

    ``shown``: extracted path -> the file as named in the download (``canvas.zip:<entry>``);
    ``warnings``: names that could not be decoded, entries that could not be extracted.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.shown, self.warnings = {}, []

    def extract(self, archive_path, extracted_path):
        archive_path, extracted_path = Path(archive_path), Path(extracted_path)
        for src in _sorted_files(archive_path):
            rel = src.relative_to(archive_path)
            dest_dir = extracted_path / rel.parent
            dest_dir.mkdir(parents=True, exist_ok=True)
            if not stat.S_ISREG(os.lstat(src).st_mode):
                self.warnings.append(f"{rel}: a symbolic link or special file: not collected")
            elif src.suffix.lower() == ".zip":
                self.extract_zip(src, dest_dir / src.stem, str(rel))
            elif src.suffix in self.zip_ext:   # a tarball: nbgrader's own unzip
                try:
                    unzip(str(src), str(dest_dir), zip_ext=self.zip_ext, create_own_folder=True, tree=True)
                except Exception as exc:  # noqa: BLE001 - setuptools' unpackers raise their own kinds
                    self.warnings.append(f"{rel}: could not be unpacked ({exc}): nothing in it was collected")
                    continue
                for path in _sorted_files(dest_dir / Path(src.stem).stem):
                    self.shown.setdefault(str(path), f"{rel}:{path.relative_to(dest_dir)}")
            else:
                shutil.copy2(src, dest_dir / src.name)     # with its modification time
                self.shown[str(dest_dir / src.name)] = str(rel)

    def extract_zip(self, archive, dest, shown):
        """Unpack ``archive`` into ``dest``: UTF-8 names, entry times as modification times, only
        regular files, no path out of ``dest``; a zip inside is unpacked into a folder of its own."""
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as exc:
            self.warnings.append(f"{shown}: not a readable zip ({exc}): nothing in it was collected")
            return
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                name = self.entry_name(info, shown)
                parts = [p for p in re.split(r"[/\\]", name) if p not in ("", ".", "..")]
                if not parts:
                    continue
                target = dest.joinpath(*parts)
                if target.exists() or str(target) in self.shown:
                    self.warnings.append(f"{shown}: two entries named {name!r}: the second kept as "
                                         f"{target.name} (entry {zf.infolist().index(info)})")
                    target = target.with_name(f"{target.stem}.entry{zf.infolist().index(info)}{target.suffix}")
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
                except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                    self.warnings.append(f"{shown}:{name}: could not be extracted ({exc}); not collected")
                    target.unlink(missing_ok=True)
                    continue
                try:   # the entry's date_time, read as UTC (Canvas's servers keep UTC)
                    when = calendar.timegm(tuple(info.date_time) + (0, 0, 0))
                    os.utime(target, (when, when))
                except (ValueError, OverflowError, OSError):
                    pass
                if target.suffix.lower() == ".zip":
                    self.extract_zip(target, target.with_suffix(""), f"{shown}:{name}")
                    target.unlink()
                else:
                    self.shown[str(target)] = f"{shown}:{name}"

    def entry_name(self, info, shown):
        """The entry's name: UTF-8 when flagged; otherwise zipfile's cp437 decoding decoded again
        as UTF-8 (what Canvas writes), or, if those bytes are not UTF-8, zipfile's with a warning."""
        if info.flag_bits & UTF8_FLAG:
            return unicodedata.normalize("NFC", info.orig_filename)
        raw = info.orig_filename.encode("cp437")
        try:   # NFC: macOS writes é as e and an accent
            return unicodedata.normalize("NFC", raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.warnings.append(f"{shown}: the name {info.orig_filename!r} is not UTF-8 and the zip does not say "
                                 "its encoding: kept as zipfile decodes it (cp437); check that student's name")
            return info.orig_filename


class CanvasCollectorPlugin(FileNameCollectorPlugin):
    """nbgrader's file-name collector for Canvas's names (module docstring).

    :meth:`collect` adds, to what ``named_regexp`` matched, the ``timestamp`` (the file's
    modification time, when the name has none), and keeps ``name``, ``late`` and
    ``resubmission``. With a :attr:`plan` (set by :func:`collect`), it answers for the planned
    files only, each under the notebook name it is graded as.
    """

    named_regexp = Unicode(DEFAULT_REGEX, help="nbgrader's named_regexp; the default reads Canvas's "
                           "names, with the optional groups name, late and resubmission").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.plan = None      # extracted path -> notebook name it is graded as

    def parse(self, path):
        """What the name of ``path`` says (``None``: not a submission's name); a file that is not
        a notebook is read as if it were one, to find whose it is."""
        path = str(path)
        if os.path.basename(path).startswith(".") or "__MACOSX" in Path(path).parts:
            return None
        stem, ext = os.path.splitext(path)
        name = path if ext in self.valid_ext else stem + self.valid_ext[0]
        match = re.match(self.named_regexp, name)
        if not match or not match.groupdict().get("student_id") or not match.groupdict().get("file_id"):
            return None
        info = {k: unicodedata.normalize("NFC", v) for k, v in match.groupdict().items() if v is not None}
        info["late"] = bool(info.get("late"))
        info["resubmission"] = int(info["resubmission"]) if str(info.get("resubmission", "")).isdigit() else 0
        info["name"] = info.get("name") or " ".join(
            info[k] for k in ("first_name", "last_name") if info.get(k)) or info["student_id"]
        when = None
        if info.get("timestamp"):
            try:
                when = parse_utc(info["timestamp"])
            except (ValueError, OverflowError):
                when = None
        info["timestamp"] = when or _utc(os.stat(path).st_mtime)
        return info

    def collect(self, submitted_file):
        if super().collect(submitted_file) is None:
            return None
        info = self.parse(submitted_file)
        if info is None:
            return None
        if self.plan is not None:
            if submitted_file not in self.plan:
                return None
            info["file_id"] = self.plan[submitted_file]
        return info


@dataclasses.dataclass
class Found:
    """One file found in the download (or a student's folder), and what became of it."""
    file: str                     # as named in the download
    student: str | None = None    # whose it is (None: its name says no student)
    graded_as: str | None = None  # the notebook it was graded as (None: not graded)
    why: str = ""                 # why it was not graded, or how it was graded
    notice: str = ""              # what the student is told of it (Job.notices)
    path: str = ""                # where it was found on this machine (not in the record)
    info: dict = dataclasses.field(default_factory=dict, repr=False)

    def to_dict(self):
        return {"file": self.file, "student": self.student, "graded_as": self.graded_as, "why": self.why}


@dataclasses.dataclass
class StudentRecord:
    """One student's hand-in: the files found, the file(s) graded, late flag and timestamp."""
    student: str
    name: str
    files: list = dataclasses.field(default_factory=list)      # every file of theirs, as named
    graded: dict = dataclasses.field(default_factory=dict)     # notebook -> the file graded as it
    late: bool = False
    timestamp: str | None = None                               # as written to timestamp.txt
    notices: list = dataclasses.field(default_factory=list)    # to the student (Job.notices)
    flags: list = dataclasses.field(default_factory=list)      # to the instructor (needs attention)

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(eq=False)
class Collection(collections.abc.Mapping):
    """What :func:`collect` found: the folder of each student's hand-in, and the record.

    As a mapping, student -> folder to grade (what :func:`collect` returned before it kept a record).
    """
    source: str
    assignment: str
    notebooks: list                                            # the assignment's notebooks
    students: dict = dataclasses.field(default_factory=dict)   # student -> folder to grade
    records: dict = dataclasses.field(default_factory=dict)    # student -> StudentRecord
    files: list = dataclasses.field(default_factory=list)      # every Found
    warnings: list = dataclasses.field(default_factory=list)

    def __getitem__(self, student):
        return self.students[student]

    def __iter__(self):
        return iter(self.students)

    def __len__(self):
        return len(self.students)

    @property
    def not_graded(self):
        return [f for f in self.files if f.graded_as is None]

    @property
    def renamed(self):
        """The files graded under another name than their own."""
        return [f for f in self.files if f.graded_as and f.why]

    def notices(self, student):
        return list(self.records[student].notices) if student in self.records else []

    def flags(self, student):
        return list(self.records[student].flags) if student in self.records else []

    def to_dict(self):
        """The record (``collection.json``; each student's in ``results.json`` too)."""
        students = {s: dict(r.to_dict(), not_graded={f.file: f.why for f in self.not_graded if f.student == s})
                    for s, r in self.records.items()}
        return {"source": self.source, "assignment": self.assignment, "notebooks": self.notebooks,
                "students": students,
                "files": [f.to_dict() for f in self.files], "warnings": list(self.warnings)}

    def report_lines(self):
        """The report's "Collection" section, as lines of plain text (each one item)."""
        late = [r for r in self.records.values() if r.late]
        lines = [f"{self.source}: {len(self.files)} files from {len(self.records)} students; "
                 f"{len(self.files) - len(self.not_graded)} graded, {len(self.not_graded)} not graded; "
                 f"{len(late)} late."]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"not graded: {f.file} ({self._who(f.student)}): {f.why}" for f in self.not_graded]
        lines += [f"graded as {f.graded_as}: {f.file} ({self._who(f.student)}): {f.why}" for f in self.renamed]
        lines += [f"late: {self._who(r.student)}, handed in {r.timestamp} UTC" for r in late]
        return lines

    def _who(self, student):
        if student is None:
            return "no student"
        record = self.records.get(student)
        return f"{record.name}, {student}" if record and record.name != student else student


def _slot(file_id, resubmission, release):
    """``(notebook, exact, resubmission)``: the release notebook a file id names (exactly, or as
    an extra copy), or ``(None, False, resubmission)``."""
    name = file_id if file_id.endswith(".ipynb") else file_id + ".ipynb"
    if resubmission and f"{name[:-6]}-{resubmission}.ipynb" in release:   # hw-2.ipynb, not a resubmission
        return f"{name[:-6]}-{resubmission}.ipynb", True, 0
    if name in release:
        return name, True, resubmission
    copy = COPY.match(name[:-6])
    if copy and copy["base"] + ".ipynb" in release:
        return copy["base"] + ".ipynb", False, resubmission
    return None, False, resubmission


def _names(items):
    items = list(items)
    return ", ".join(items[:SHOWN]) + (f", ... ({len(items)} in all)" if len(items) > SHOWN else "")


def choose(found, release, others, parse, *, newest=True):
    """Decide which file is graded as which notebook; a :class:`Collection` without its folders,
    or ``None`` when no file is one of the assignment's notebooks.

    ``found``: :class:`Found` files (``path`` set); ``release``: the assignment's notebooks;
    ``others``: notebook name -> the other assignment it belongs to; ``parse(path)``: what a file's
    name says (:meth:`CanvasCollectorPlugin.parse`), or ``None``. Per student and notebook the
    newest file counts: the highest resubmission number, then the latest time (``newest=False``,
    for nbgrader's own ``submitted/`` folders: the file of the notebook's exact name first); the
    others are listed, not graded. A student with no file of the one notebook they miss is graded
    on their newest notebook named otherwise (not another assignment's).
    """
    release = list(release)
    candidates, renamable = _classify(found, release, others, parse)
    if not candidates:
        return None
    col = Collection(source="", assignment="", notebooks=release, files=list(found))
    for f in sorted((f for f in found if f.student is not None), key=lambda f: f.info["timestamp"]):
        record = col.records.setdefault(f.student, StudentRecord(f.student, f.info["name"]))
        record.name = f.info["name"] or record.name     # the newest file's
        record.files.append(f.file)
    order = (lambda f: (f.info["resubmission"], f.info["timestamp"], f.info["exact"], f.file)) if newest else \
        (lambda f: (f.info["exact"], f.info["resubmission"], f.info["timestamp"], f.file))
    for student, record in col.records.items():
        slots = candidates.get(student, {})
        for slot, group in slots.items():
            _newest_of(sorted(group, key=order), slot, record)
        _named_otherwise(renamable.get(student, []), [nb for nb in release if nb not in slots], release, record)
        record.notices += [f.notice for f in col.files if f.student == student and f.notice]
        graded = [f for f in col.files if f.student == student and f.graded_as]
        record.timestamp = max(f.info["timestamp"] for f in graded).isoformat(" ") if graded else None
        record.late = any(f.info.get("late") for f in graded)
    names = {}
    for record in col.records.values():
        names.setdefault(record.name, []).append(record.student)
    col.warnings += [f"{len(ids)} students named {name!r}: ids {', '.join(ids)} (each graded as their own)"
                     for name, ids in names.items() if len(ids) > 1 and name not in ids]
    return col


def _classify(found, release, others, parse):
    """``(candidates, renamable)``: student -> notebook -> the files that may be graded as it;
    student -> their notebooks named otherwise. The other files get their ``why``."""
    candidates, renamable = {}, {}
    for f in found:
        if _hidden(f.file):
            f.why = "a hidden file (or macOS's __MACOSX metadata): not a hand-in"
            continue
        info = parse(f.path)
        if info is None:
            f.why = ("not a submission's name" if f.path.endswith(".ipynb") else "a stray file") + \
                ": its name names no student"
            continue
        f.student, f.info = info["student_id"], info
        ext = os.path.splitext(f.path)[1]
        own = os.path.basename(info["file_id"]).removesuffix(".ipynb") + (ext or "")
        if ext != ".ipynb":
            f.why = f"a {ext or 'extension-less'} file: only notebooks (.ipynb) are graded"
            f.notice = f"Your file {own} was not graded: only notebooks (.ipynb) are graded."
            continue
        slot, info["exact"], info["resubmission"] = _slot(info["file_id"], info["resubmission"], release)
        if slot:
            candidates.setdefault(f.student, {}).setdefault(slot, []).append(f)
        elif own in others:
            f.why = f"a notebook of another assignment ({others[own]})"
            f.notice = f"Your notebook {own} was not graded: it is a notebook of another assignment ({others[own]})."
        else:
            renamable.setdefault(f.student, []).append(f)
    return candidates, renamable


def _newest_of(group, slot, record):
    """The last of ``group`` (oldest first) is graded as ``slot``; the others are said not to be."""
    chosen, earlier = group[-1], group[:-1]
    _grade(chosen, slot, record)
    if not chosen.info["exact"]:
        chosen.why = f"a copy's name: graded as {slot}"
    for f in earlier:
        kind = "an extra copy" if not (f.info["exact"] and chosen.info["exact"]) else "an earlier hand-in"
        f.why = f"{kind} of {slot}: {chosen.file} was graded"
    if earlier:
        record.notices.append(f"Your newest file {_own(chosen)} was graded as {slot}; earlier files "
                              f"{_names(_own(f) for f in earlier)} were not.")
    elif not chosen.info["exact"]:
        record.notices.append(f"Your file {_own(chosen)} was graded as {slot}.")


def _named_otherwise(files, missing, release, record):
    """A student's notebooks named otherwise: the newest is graded as the one notebook missing, if
    one is; the others are said not to be."""
    files = sorted(files, key=lambda f: (f.info["resubmission"], f.info["timestamp"], f.file))
    if files and len(missing) == 1:
        chosen = files.pop()
        _grade(chosen, missing[0], record)
        chosen.why = f"handed in under another name: graded as {missing[0]}"
        record.notices.append(f"Your notebook {_own(chosen)} was graded as {missing[0]}, the assignment's "
                              "notebook, since no file of that name was handed in.")
        record.flags.append(f"collection: {chosen.file} was handed in under another name: graded as {missing[0]}")
    for f in files:
        if not missing:
            f.why = f"a notebook named otherwise ({_names(release)} expected)"
        elif len(missing) == 1:
            f.why = f"a notebook named otherwise: {record.graded[missing[0]]} was graded as {missing[0]}"
        else:
            f.why = f"a notebook named otherwise: which of {_names(missing)} it is cannot be told"
        f.notice = (f"Your notebook {_own(f)} was not graded: the assignment's notebook"
                    f"{' is' if len(release) == 1 else 's are'} {_names(release)}.")


def _hidden(shown):
    """A hidden file or folder (``.DS_Store``, ``._x.ipynb``, ``.ipynb_checkpoints/``) or macOS's
    ``__MACOSX/``, by the name a file has in the download (``canvas.zip:<entry>``)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in re.split(r"[/:]", shown))


def _own(f):
    """The file's own name, as the student named it (Canvas's prefix left out)."""
    name = os.path.basename(f.info["file_id"]).removesuffix(".ipynb")
    return name + (f"-{f.info['resubmission']}" if f.info.get("resubmission") else "") + os.path.splitext(f.path)[1]


def _grade(f, slot, record):
    f.graded_as = slot
    record.graded[slot] = f.file


def _nothing_found(source, assignment, release, files, regex):
    """The one-line error for a download that holds no file of the assignment's notebooks."""
    nb = release[0] if release else f"{assignment}.ipynb"
    pattern = (f"files named like <name>_<userid>_<subid>_{nb} (Canvas) or nbgrader's "
               f"<student>/{assignment}/{nb}" if regex in (None, DEFAULT_REGEX) else
               f"files whose names match --regex {regex!r} with file_id {nb[:-6]!r}")
    if len(release) > 1:
        pattern += f" (for each of its notebooks: {_names(release)})"
    if not files:
        found = "found no file at all"
    else:
        kinds = {}
        for f in files:
            key = ("of other assignments" if "another assignment" in f.why else
                   "named otherwise" if "named otherwise" in f.why or (f.student and f.path.endswith(".ipynb")) else
                   "that are not notebooks" if f.student else "whose names name no student")
            kinds.setdefault(key, []).append(f.file)
        found = "found " + "; ".join(f"{len(v)} file{'s' * (len(v) != 1)} {k}: {_names(v)}"
                                     for k, v in kinds.items())
    return f"{source} holds no submission of {assignment}: expected {pattern}; {found}"


def _release_notebooks(release_dir):
    return sorted(find_all_notebooks(str(release_dir)))


def _other_notebooks(source_dir, assignment):
    """notebook name -> assignment, for the course's other assignments (from the source folder)."""
    others = {}
    if source_dir is not None and Path(source_dir).parent.is_dir():
        for folder in sorted(Path(source_dir).parent.iterdir()):
            if folder.is_dir() and folder.name != assignment:
                for nb in folder.glob("*.ipynb"):
                    others.setdefault(nb.name, folder.name)
    return others


def collect(submissions, assignment, release_dir, tmp, regex=None, source_dir=None):
    """A :class:`Collection` of ``submissions`` for ``assignment`` (see the module's docstring).

    ``submissions`` is nbgrader's ``submitted/`` folder (``<student>/<assignment>/``), or an LMS
    download (a .zip, or a folder of files) read with ``regex`` (nbgrader's ``named_regexp``;
    default :data:`DEFAULT_REGEX`). ``release_dir``: the assignment's release, or its source (only
    the names of its files are read); ``source_dir``: its source, whose sibling folders name the
    course's other assignments. Raises
    :class:`~.errors.InstructorError` when no file of the assignment's notebooks is found.
    """
    submissions = Path(submissions)
    release = _release_notebooks(release_dir)
    others = _other_notebooks(source_dir, assignment)
    if submissions.is_dir() and not regex and any(
            (d / assignment).is_dir() for d in submissions.iterdir() if d.is_dir()):
        col = _collect_submitted(submissions, assignment, release_dir, release, others, Path(tmp))
    else:
        col = _collect_download(submissions, assignment, release_dir, release, others, Path(tmp), regex)
    col.source, col.assignment = submissions.name, assignment
    return col


def _collect_submitted(submitted, assignment, release_dir, release, others, tmp):
    """nbgrader's ``submitted/<student>/<assignment>/``: each folder is graded as it is, unless a
    notebook must be graded under the assignment's name (then a copy of the folder is)."""
    found = []
    for student in sorted(d for d in submitted.iterdir() if (d / assignment).is_dir()):
        for path in _sorted_files(student / assignment):
            rel = path.relative_to(student / assignment).as_posix()
            if rel == TIMESTAMP or (path.suffix != ".ipynb" and (Path(release_dir) / rel).is_file()) or \
                    not stat.S_ISREG(os.lstat(path).st_mode):
                continue     # nbgrader's timestamp, the release's own files (data); links: jail.copy_checked
            found.append(Found(file=f"{student.name}/{assignment}/{rel}", path=str(path)))

    def parse(path):
        rel = Path(path).relative_to(submitted)
        stem = rel.relative_to(rel.parts[0], assignment).with_suffix("").as_posix()
        return {"student_id": rel.parts[0], "file_id": stem, "name": rel.parts[0], "late": False,
                "resubmission": 0, "timestamp": _utc(os.lstat(path).st_mtime)}

    col = choose(found, release, others, parse, newest=False)
    if col is None:
        raise InstructorError(_nothing_found(submitted.name, assignment, release, found, None))
    for student in sorted(d for d in submitted.iterdir() if (d / assignment).is_dir()):
        folder = student / assignment
        record = col.records.setdefault(student.name, StudentRecord(student.name, student.name))
        stamp, record.timestamp = folder / TIMESTAMP, None     # nbgrader's, if there is one
        if stamp.exists():
            try:
                record.timestamp = parse_utc(stamp.read_text().strip()).isoformat(" ")
            except (ValueError, OverflowError):
                col.warnings.append(f"{student.name}/{assignment}/{TIMESTAMP}: not a timestamp; nbgrader will refuse it")
        renamed = {f.graded_as: f for f in col.files if f.student == student.name and f.graded_as and
                   Path(f.path).relative_to(folder).as_posix() != f.graded_as}
        if renamed:   # a copy, as the worker copies a hand-in: regular files only (no link followed)
            copy = tmp / "collected" / student.name / assignment
            record.flags += [f"left out of the submission: {line}" for line in jail.copy_checked(folder, copy)]
            for slot, f in renamed.items():
                shutil.copy2(f.path, copy / slot)
            folder = copy
        col.students[student.name] = folder
    return col


def _collect_download(download, assignment, release_dir, release, others, tmp, regex):
    """An LMS download through nbgrader's ZipCollectApp with the Canvas plugins (module docstring)."""
    if not download.exists():
        raise InstructorError(f"{download} does not exist: give nbgrader's submitted/ folder, or an LMS "
                              "download (.zip or folder)")
    root = tmp / "zip_collect"
    archive = root / "downloaded" / assignment / "archive"
    archive.mkdir(parents=True)
    if download.is_file():
        shutil.copy2(download, archive / download.name)
    else:
        shutil.copytree(download, archive, symlinks=True, dirs_exist_ok=True)   # links: not followed
    shutil.copytree(release_dir, root / "release" / assignment)
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.release_directory = "release"
    config.CourseDirectory.submitted_directory = "submitted"
    config.ZipCollectApp.force = True
    config.ExtractorPlugin.force = True
    config.ZipCollectApp.extractor_plugin = CanvasExtractorPlugin
    config.ZipCollectApp.collector_plugin = CanvasCollectorPlugin
    if regex:
        config.FileNameCollectorPlugin.named_regexp = regex
        config.CanvasCollectorPlugin.named_regexp = regex
    app, errors = _zip_collect_app(config, assignment)
    try:
        app.extract_archive_files()
        extractor, collector = app.extractor_plugin_inst, app.collector_plugin_inst
        extracted = Path(app._format_collect_path(app.extracted_directory))
        found = [Found(file=extractor.shown.get(str(p), str(p.relative_to(extracted))), path=str(p))
                 for p in _sorted_files(extracted)]
        col = choose(found, release, others, collector.parse)
        if col is None:
            raise InstructorError(_nothing_found(download.name, assignment, release, found, regex))
        col.warnings[:0] = extractor.warnings
        collector.plan = {f.path: f.graded_as for f in col.files if f.graded_as}
        app.process_extracted_files()
    except SystemExit:   # nbgrader's fail(): its message was logged
        raise RuntimeError("nbgrader zip_collect failed: " + " | ".join(errors)) from None
    submitted = root / "submitted"
    for student in col.records:
        folder = submitted / student / assignment
        folder.mkdir(parents=True, exist_ok=True)   # nothing gradable: graded blank, and told why
        col.students[student] = folder
    return col


class _Errors(logging.Handler):
    def __init__(self, errors):
        super().__init__(logging.ERROR)
        self.errors = errors

    def emit(self, record):
        self.errors.append(record.getMessage())


def _zip_collect_app(config, assignment):
    """nbgrader's ZipCollectApp, in this process, quiet (its warnings are in the Collection);
    ``(app, the errors it logs)``."""
    log = logging.getLogger("classgrade.collect.zip_collect")
    log.propagate, errors = False, []
    log.handlers[:] = [_Errors(errors)]
    app = ZipCollectApp(config=config, log=log)
    app.coursedir = CourseDirectory(config=config, parent=app)
    app.coursedir.assignment_id = assignment
    app.init_plugins()
    return app, errors
