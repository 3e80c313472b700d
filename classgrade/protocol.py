"""The records that cross a process boundary or the sandbox's: one typed record per message.

Visible inside the sandbox too (with ``classgrade/__init__.py`` and ``classgrade/sandboxed/``),
so this module imports the standard library only. Every record is a dataclass with
``to_dict``/``from_dict`` and ``to_json``/``from_json``: jobs and results cross
multiprocessing pipes as JSON and Dask as pickles; the kernel's options, the jail's
options and the zygote's requests are JSON files or lines. The kinds of the kernel log's
lines and the grading statuses are enums; nothing else compares them as strings.

Who writes what:

- the grader (:mod:`classgrade.trusted.run`) builds a :class:`Job` per submission; a
  grading process (:mod:`classgrade.trusted.worker`) returns a :class:`Result`;
- the worker writes the kernel's :class:`KernelOptions` into its private folder, the
  kernel (:mod:`classgrade.sandboxed.kernel`) reads them and writes the kernel log
  (:func:`log_line`), which the worker reads back (:func:`read_kernel_log`);
- the worker writes the sandbox's :class:`JailOptions`; the launcher
  (:mod:`classgrade.trusted.jail`) sends the zygote a :class:`KernelRequest` and reads
  back :class:`ZygoteReport` lines.
"""
import dataclasses
import enum
import hashlib
import json
from pathlib import Path
from typing import ClassVar

# The files of a kernel's private folder (bound into the sandbox; see classgrade.trusted.jail)
KERNEL_OPTIONS = "options.json"     # KernelOptions, written by the worker, read-only inside
KERNEL_LOG = "kernel.log"           # log_line records, written by the kernel
BASELINE = "baseline.json"          # the kernel's fingerprints before any student code
RECORDS = "records.jsonl"           # the reference run's calls and checks (classgrade.sandboxed.record)
# The only files of the grader's that a kernel writes (in its private folder, which it cannot add to).
KERNEL_WRITES = (KERNEL_LOG, BASELINE, RECORDS)
KERNEL_OUTPUT = "kernel-output.txt"  # the launcher's, bwrap's and the kernel's stdout and stderr
# What the grader keeps of a kernel's output (trusted side; see classgrade.trusted.bounded)
KERNEL_OUTPUT_KEPT = 64 * 2**10      # the last bytes of KERNEL_OUTPUT, in Result.kernel_output
CELL_OUTPUT_BYTES = 2**20            # a cell's outputs kept in the graded notebook
NOTEBOOK_OUTPUT_BYTES = 10 * 2**20   # a notebook's outputs kept
MESSAGE_BYTES = 4 * 2**20            # one message from a kernel (its frames): larger ones are dropped
MESSAGES_QUEUED = 64                 # a kernel's messages queued in the grader, per channel: more are dropped
OUTPUT_CUT = "classgrade left out"   # starts the line that replaces the outputs past the bounds
NOT_RUN = "classgrade did not run this cell"   # starts the error of a skipped cell
# What every grading kernel imports before the first cell (and before its fingerprints)
KERNEL_PREIMPORT = ["torch", "numpy", "convlab", "convlab.grading"]


class Status(str, enum.Enum):
    """How a grading attempt of one submission ended."""
    OK = "ok"
    DEAD_KERNEL = "dead_kernel"      # the kernel died (exit, crash or memory)
    WALL_TIMEOUT = "wall_timeout"    # the attempt exceeded the wall-clock limit
    ERROR = "error"                  # grading failed otherwise


class LogKind(str, enum.Enum):
    """The kinds of the kernel log's lines (``KIND TEXT``)."""
    START = "start"                  # a cell starts: its hash (cell_hash)
    REFUSED = "refused"              # the audit hook refused something: what


class CheckKind(str, enum.Enum):
    """The checks of convlab.grading that the replay makes again outside (CheckRecord.kind)."""
    RESULT = "result"   # check_result: a tensor's shape, dtype and values
    EQUAL = "equal"     # check_equal: a tuple of ints
    RAISES = "raises"   # check_raises: the error that the call raised


def cell_hash(source):
    """Short stable hash of a cell's source: how the kernel log and the recorder name a cell."""
    return hashlib.sha1(source.strip().encode()).hexdigest()[:16]


def log_line(kind, text):
    """One line of the kernel log, as bytes."""
    return (f"{LogKind(kind).value} " + str(text).replace("\n", " ") + "\n").encode()


def _plain(value):
    """``value`` with records, enums, paths, tuples made JSON-able (recursively)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Record:
    """Mixin of the records: JSON in and out. ``_nested``: field -> how to decode it."""
    _nested: ClassVar[dict] = {}

    def to_dict(self):
        return _plain(self)

    def to_json(self):
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name, decode in cls._nested.items():
            if values.get(name) is not None:
                values[name] = decode(values[name])
        return cls(**values)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))


@dataclasses.dataclass
class CellGrade(Record):
    """One graded cell as the gradebook holds it."""
    max_score: float
    auto_score: float | None
    manual_score: float | None
    score: float | None
    needs_manual_grade: bool
    cell_type: str


@dataclasses.dataclass
class NotebookGrades(Record):
    """One notebook's grades: grade id -> cell, comment id -> automatic comment."""
    cells: dict = dataclasses.field(default_factory=dict)
    comments: dict = dataclasses.field(default_factory=dict)
    late_penalty: float | None = None   # nbgrader's late_submission_penalty (None: on time)
    _nested: ClassVar[dict] = dict(cells=lambda d: {k: CellGrade.from_dict(v) for k, v in d.items()})


@dataclasses.dataclass
class Job(Record):
    """Grade one submission: what a grading process receives (from the grader, or a Dask task)."""
    student: str
    assignment: str
    work: str                           # the submission's private work folder
    template_db: str                    # the assignment's template gradebook (sqlite)
    source_dir: str                     # the assignment's source
    release: dict                       # notebook name -> released notebook (plain JSON)
    config: dict = dataclasses.field(default_factory=dict)   # nbgrader config, plain
    submission_dir: str | None = None   # the handed-in folder (None: nothing handed in)
    timeout: int = 30                   # per cell, s
    memory_bytes: int | None = None
    feedback: bool = True
    sandbox: bool = True
    zygote: str | None = None           # the warm kernels' socket (None: cold)
    warm: bool = True                   # a Dask task: start this worker's zygote
    wall: float = 600.0                 # per attempt, s
    limits: dict | None = None          # overrides of the sandbox's Limits
    flags: list = dataclasses.field(default_factory=list)
    skip: dict = dataclasses.field(default_factory=dict)     # cell hash -> why it is not run
    attempt: int = 1
    blank: bool = False                 # grade the blank release instead
    reference: dict | None = None       # the replay's reference: notebook -> grade id -> ReferenceCell as a dict
    record_reference: bool = False      # this job grades the source: record its checks
    notices: list = dataclasses.field(default_factory=list)  # to the student: how the hand-in was collected

    def again(self, **changes):
        """This job with ``changes`` (a retry, a reference run, a Dask task's own paths)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class Result(Record):
    """What grading one submission gave."""
    student: str
    status: Status
    flags: list = dataclasses.field(default_factory=list)
    error: str | None = None
    starts: list = dataclasses.field(default_factory=list)   # hashes of the cells started, in order
    timings: dict = dataclasses.field(default_factory=dict)
    notebooks: dict = dataclasses.field(default_factory=dict)   # name -> NotebookGrades
    autograded: str | None = None       # folder of the autograded notebooks
    feedback: str | None = None         # folder of the feedback
    reference: dict | None = None       # the source's checks (Job.record_reference)
    worker: str | None = None           # the Dask worker that graded it
    kernel_output: str = ""             # the last KERNEL_OUTPUT_KEPT bytes the sandbox wrote to stdout/stderr
    timestamp: str | None = None        # when it was handed in (timestamp.txt), ISO 8601 UTC
    seconds_late: float = 0.0           # past the assignment's due date (nbgrader's total_seconds_late)
    explained: list = dataclasses.field(default_factory=list)  # to the student, atop the feedback: why a
    #                                     notebook was not graded as handed in, and what was graded instead
    _nested: ClassVar[dict] = dict(
        status=Status, notebooks=lambda d: {k: NotebookGrades.from_dict(v) for k, v in d.items()})

    @classmethod
    def failed(cls, job, status, error=None, **more):
        """The result of an attempt that did not grade ``job``."""
        return cls(student=job.student, status=Status(status), flags=list(job.flags), error=error, **more)


@dataclasses.dataclass
class KernelOptions(Record):
    """The grading kernel's options (``KERNEL_OPTIONS`` in its private folder)."""
    scratch: str                        # the kernel's HOME and TMPDIR, writable
    memory_bytes: int | None = None     # RLIMIT_AS
    preimport: list = dataclasses.field(default_factory=list)   # imported before the fingerprints
    skip: dict = dataclasses.field(default_factory=dict)        # cell hash -> why it is not run
    record: bool = False                # the instructor's source: record the calls and checks (RECORDS)


@dataclasses.dataclass
class KernelLog(Record):
    """The kernel log, read back: cells started, things refused."""
    starts: list = dataclasses.field(default_factory=list)
    refused: list = dataclasses.field(default_factory=list)


def read_kernel_log(path, max_bytes=64 * 2**20):
    """:class:`KernelLog` of the kernel log at ``path`` (missing: empty; read up to ``max_bytes``)."""
    log = KernelLog()
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes)
    except OSError:
        return log
    for line in data.decode(errors="replace").splitlines():
        kind, _, text = line.partition(" ")
        if kind == LogKind.START.value and text:
            log.starts.append(text.split()[0])
        elif kind == LogKind.REFUSED.value:
            log.refused.append(text)
    return log


@dataclasses.dataclass
class Limits(Record):
    """The sandbox's resource limits."""
    pids: int = 256
    file_bytes: int = 64 * 2**20
    tmp_bytes: int = 256 * 2**20
    folder_bytes: int = 256 * 2**20
    open_files: int = 1024


@dataclasses.dataclass
class JailOptions(Record):
    """The launcher's options (``jail.json`` in the grader-side folder of one sandbox)."""
    limits: Limits = dataclasses.field(default_factory=Limits)
    zygote: str | None = None           # the warm kernels' socket (None: a new interpreter)
    _nested: ClassVar[dict] = dict(limits=lambda d: Limits.from_dict(d))


# What the launcher can start in a sandbox (KernelRequest.entry): the grading kernel, or the replay
ENTRIES = {"kernel": "classgrade.sandboxed.kernel", "replay": "classgrade.sandboxed.replay"}


@dataclasses.dataclass
class KernelRequest(Record):
    """The launcher asks the zygote (or its own fork, cold) to start a kernel, or the replay
    (``entry``, a key of :data:`ENTRIES`), in a sandbox."""
    sandbox_pid: int
    cwd: str
    env: dict
    argv: list
    entry: str = "kernel"
    rlimits: dict = dataclasses.field(default_factory=dict)   # resource name -> limit
    cgroup: str | None = None


@dataclasses.dataclass
class ZygoteReport(Record):
    """A line from the zygote's fork to the launcher: the kernel started, or its exit status."""
    started: bool = False
    status: int | None = None


# --- the replay -------------------------------------------------------------------------
# classgrade.sandboxed.record (in the kernel that grades the instructor's solution, only)
# records every call of student code that a test makes through convlab.grading and every
# check, linked to the call output it compared; classgrade.trusted.replay builds a plan from
# them; classgrade.sandboxed.replay runs the plan on a submission in a fresh sandboxed process
# that holds no test code and no expected value, and replies with the outputs; the grader
# compares them with the expected values, outside.


@dataclasses.dataclass
class Link(Record):
    """Which output of which call a check compared.

    ``path`` starts at ``"result"``, ``"callee"`` (the object called), ``"arg"`` with an index or
    ``"kwarg"`` with a name, then follows sequence indices, dict keys, ``"param:NAME"`` /
    ``"buffer:NAME"`` of a module, and ``"grad"``. ``convert``: ``None`` for the value itself,
    ``"ints"`` for a tuple of ints, a dtype name (``"float64"``) for ``torch.tensor(value, dtype)``.
    """
    call: int
    path: list
    convert: str | None = None


@dataclasses.dataclass
class Encoded(Record):
    """A value as plain data: a real tensor (shape, dtype, float64 bytes in base64), ints, or what it was."""
    kind: str                       # "tensor", "ints", "other", "error"
    shape: list = dataclasses.field(default_factory=list)
    dtype: str = ""
    data: str = ""
    ints: list = dataclasses.field(default_factory=list)
    text: str = ""                  # "other": the type's name; "error": why it could not be read


@dataclasses.dataclass
class CallRecord(Record):
    """One call of student code in the reference run (``blob``: opaque outside a sandbox)."""
    cell: str                       # hash of the test cell that made it
    number: int                     # its position among the notebook's calls
    name: str                       # what was called, for messages
    blob: str = ""                  # base64 of the pickled call: callee, arguments, substitutes, RNG
    error: str = ""                 # why it could not be recorded (then it cannot be replayed)
    record: str = "call"


@dataclasses.dataclass
class CheckRecord(Record):
    """One check in the reference run: its kind, what it compared and the expected value."""
    cell: str
    kind: CheckKind
    link: Link | None               # None: the value was no output of a call (cannot be replayed)
    expected: Encoded | None = None  # RESULT and EQUAL
    error: str = ""                 # RAISES: the exception's class name
    atol: float = 0.0
    rtol: float = 0.0
    dtype: bool = True
    record: str = "check"
    _nested: ClassVar[dict] = dict(kind=CheckKind, link=Link.from_dict, expected=Encoded.from_dict)


@dataclasses.dataclass
class WatchRecord(Record):
    """A call made under a watch of *how* it computes (no delegation): read in the source instead."""
    cell: str
    function: str                   # the notebook's name of what was called ("corr2d", "Conv2D.forward")
    forbidden: list = dataclasses.field(default_factory=list)
    substitute: list = dataclasses.field(default_factory=list)   # names replaced by trusted functions
    record: str = "watch"


_RECORDS = {"call": CallRecord, "check": CheckRecord, "watch": WatchRecord}


def read_records(lines):
    """``[CallRecord | CheckRecord | WatchRecord]`` from the recorder's JSON lines (bad lines skipped)."""
    out = []
    for line in lines:
        try:
            data = json.loads(line)
            out.append(_RECORDS[data["record"]].from_dict(data))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return out


@dataclasses.dataclass
class ReferenceCell(Record):
    """The instructor's run of one test cell: its calls, checks and watched calls, and whether a
    replay of the instructor's own notebook confirmed it (``why`` not, if it did not)."""
    grade_id: str
    calls: list = dataclasses.field(default_factory=list)    # [CallRecord]
    checks: list = dataclasses.field(default_factory=list)   # [CheckRecord]
    watched: list = dataclasses.field(default_factory=list)  # [WatchRecord]
    why: str = ""                   # why its scores are nbgrader's alone ("": the replay confirms them)
    _nested: ClassVar[dict] = dict(calls=lambda v: [CallRecord.from_dict(c) for c in v],
                                   checks=lambda v: [CheckRecord.from_dict(c) for c in v],
                                   watched=lambda v: [WatchRecord.from_dict(c) for c in v])

    def paths(self, number):
        """The distinct links to call ``number``'s outputs that this cell's checks compare."""
        found = []
        for check in self.checks:
            if check.link is not None and check.link.call == number and check.link not in found:
                found.append(check.link)
        return found


@dataclasses.dataclass
class ReplayCall(Record):
    number: int
    blob: str
    paths: list                     # [Link] whose values to send back
    _nested: ClassVar[dict] = dict(paths=lambda v: [Link.from_dict(p) for p in v])


@dataclasses.dataclass
class ReplayStep(Record):
    """A code cell to run (``source``), one to skip (``skip`` says why), or a test cell's calls."""
    source: str = ""
    skip: str = ""
    grade_id: str = ""              # a test cell: its calls are replayed instead of its code
    calls: list = dataclasses.field(default_factory=list)   # [ReplayCall]
    _nested: ClassVar[dict] = dict(calls=lambda v: [ReplayCall.from_dict(c) for c in v])


@dataclasses.dataclass
class ReplayPlan(Record):
    steps: list                     # [ReplayStep], in notebook order
    cell_timeout: float = 30.0
    memory_bytes: int | None = None
    _nested: ClassVar[dict] = dict(steps=lambda v: [ReplayStep.from_dict(s) for s in v])


@dataclasses.dataclass
class CallReply(Record):
    """What a replayed call gave: the exception it raised, or the values at the plan's paths.

    Written inside the sandbox, so read by :meth:`parse`, which trusts none of it."""
    number: int
    raised: list = dataclasses.field(default_factory=list)   # class names of the exception, most derived first
    message: str = ""                                        # its first line
    values: list = dataclasses.field(default_factory=list)   # [Encoded], in the order of the plan's paths

    @classmethod
    def parse(cls, line):
        data = json.loads(line)
        if not isinstance(data, dict) or type(data.get("number")) is not int:
            raise ValueError("not a reply")
        values = []
        for value in data.get("values") or []:
            if not isinstance(value, dict):
                raise ValueError("not a value")
            values.append(Encoded(kind=str(value.get("kind", "")), shape=_ints(value.get("shape")),
                                  dtype=str(value.get("dtype", "")), data=str(value.get("data", "")),
                                  ints=_ints(value.get("ints")), text=str(value.get("text", ""))[:200]))
        return cls(number=data["number"], raised=[str(n) for n in data.get("raised") or []][:64],
                   message=str(data.get("message", ""))[:300], values=values)


def _ints(value):
    if value is None:
        return []
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        raise ValueError("not a list of ints")
    return value
