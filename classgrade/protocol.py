"""The records exchanged between the grader and what runs in its sandboxes.

Stdlib only: this module is visible inside the sandbox too.
"""
import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import Enum


def _dump(record):
    return json.dumps(asdict(record), separators=(",", ":"))


def cell_hash(source):
    """Short stable hash of a cell's source: how the kernel's records name the cell that ran."""
    return hashlib.sha1(source.strip().encode()).hexdigest()[:16]


# --- the replay -------------------------------------------------------------------------
# classgrade.sandboxed.record (in the kernel that grades the instructor's solution) records
# every call of student code that a test makes through convlab.grading, and every check,
# linked to the call output it compared; classgrade.trusted.replay builds a plan from them;
# classgrade.sandboxed.replay runs the plan on a submission in a fresh sandboxed process that
# holds no test code and no expected value, and replies with the outputs; the grader compares
# them with the expected values, outside.


class CheckKind(str, Enum):
    RESULT = "result"   # grading.check_result: a tensor's shape, dtype and values
    EQUAL = "equal"     # grading.check_equal: a tuple of ints
    RAISES = "raises"   # grading.check_raises: the error that the call raised


@dataclass
class Link:
    """Which output of which call a check compared.

    ``path`` starts at ``"result"``, ``"callee"`` (the object called), ``"arg"`` with an index or
    ``"kwarg"`` with a name, then follows sequence indices, dict keys, ``"param:NAME"`` /
    ``"buffer:NAME"`` of a module, and ``"grad"``. ``convert``: ``None`` for the value itself,
    ``"ints"`` for a tuple of ints, a dtype name (``"float64"``) for ``torch.tensor(value, dtype)``.
    """
    call: int
    path: list
    convert: str | None = None


@dataclass
class Encoded:
    """A value as plain data: a real tensor (shape, dtype, float64 bytes in base64), ints, or what it was."""
    kind: str                       # "tensor", "ints", "other", "error"
    shape: list = field(default_factory=list)
    dtype: str = ""
    data: str = ""
    ints: list = field(default_factory=list)
    text: str = ""                  # "other": the type's name; "error": why it could not be read

    @classmethod
    def from_dict(cls, data):
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class CallRecord:
    """One call of student code in the reference run (``blob``: opaque outside a sandbox)."""
    cell: str                       # hash of the test cell that made it
    number: int                     # its position among the notebook's calls
    name: str                       # what was called, for messages
    blob: str = ""                  # base64 of the pickled call: callee, arguments, substitutes, RNG
    error: str = ""                 # why it could not be recorded (then it cannot be replayed)
    record: str = "call"

    def to_json(self):
        return _dump(self)


@dataclass
class CheckRecord:
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

    def to_json(self):
        return _dump(self)


@dataclass
class WatchRecord:
    """A call made under a watch of *how* it computes (no delegation): read in the source instead."""
    cell: str
    function: str                   # the notebook's name of what was called ("corr2d", "Conv2D.forward")
    forbidden: list = field(default_factory=list)
    substitute: list = field(default_factory=list)   # names replaced by trusted functions during the call
    record: str = "watch"

    def to_json(self):
        return _dump(self)


def read_records(lines):
    """``[CallRecord | CheckRecord]`` from the recorder's JSON lines (bad lines skipped)."""
    out = []
    for line in lines:
        try:
            data = json.loads(line)
            if data.get("record") == "call":
                out.append(CallRecord(**{k: data[k] for k in CallRecord.__dataclass_fields__ if k in data}))
            elif data.get("record") == "check":
                link = Link(**data["link"]) if data.get("link") else None
                expected = Encoded.from_dict(data["expected"]) if data.get("expected") else None
                fields = {k: data[k] for k in CheckRecord.__dataclass_fields__ if k in data}
                out.append(CheckRecord(**dict(fields, kind=CheckKind(data["kind"]), link=link,
                                              expected=expected)))
            elif data.get("record") == "watch":
                out.append(WatchRecord(**{k: data[k] for k in WatchRecord.__dataclass_fields__ if k in data}))
        except (ValueError, TypeError, KeyError):
            continue
    return out


@dataclass
class ReplayCall:
    number: int
    blob: str
    paths: list                     # [Link] whose values to send back (all with this call's number)


@dataclass
class ReplayStep:
    """A code cell to run (``source``), one to skip (``skip`` says why), or a test cell's calls."""
    source: str = ""
    skip: str = ""
    grade_id: str = ""              # a test cell: its calls are replayed instead of its code
    calls: list = field(default_factory=list)   # [ReplayCall]


@dataclass
class ReplayPlan:
    steps: list                     # [ReplayStep], in notebook order
    cell_timeout: float = 30.0
    memory_bytes: int | None = None

    def to_json(self):
        return _dump(self)

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        steps = []
        for step in data["steps"]:
            calls = [ReplayCall(number=c["number"], blob=c["blob"], paths=[Link(**p) for p in c["paths"]])
                     for c in step.get("calls", [])]
            steps.append(ReplayStep(source=step.get("source", ""), skip=step.get("skip", ""),
                                    grade_id=step.get("grade_id", ""), calls=calls))
        return cls(steps=steps, cell_timeout=data.get("cell_timeout", 30.0),
                   memory_bytes=data.get("memory_bytes"))


@dataclass
class CallReply:
    """What a replayed call gave: the exception it raised, or the values at the plan's paths."""
    number: int
    raised: list = field(default_factory=list)   # class names of the exception, most derived first
    message: str = ""                            # its first line
    values: list = field(default_factory=list)   # [Encoded], in the order of the plan's paths

    def to_json(self):
        return _dump(self)

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("number"), int):
            raise ValueError("not a reply")
        raised = [str(n) for n in data.get("raised") or []][:64]
        values = [Encoded.from_dict(v) for v in data.get("values") or [] if isinstance(v, dict)]
        return cls(number=data["number"], raised=raised, message=str(data.get("message", ""))[:300],
                   values=values)
