"""The reference run's recorder: every graded call and every check, for the replay.

Installed (:meth:`Recorder.install`) only in the kernel that grades the instructor's own
solution, never in a student's. A test calls student code only through
:mod:`convlab.grading` (``call``, ``check_against``, ``check_no_delegation``,
``check_few_calls`` and ``check_raises`` all go through ``_run_watched``), and compares
values only through its checks (``check_result``, ``check_equal``, ``check_raises``). The
recorder wraps those functions and writes one JSON line per event to the grader's file:

- a call (:class:`~classgrade.protocol.CallRecord`): what was called and with what, pickled
  *before* the call, for the replay to make the same call on a submission. A function the
  notebook defines is pickled by its name (the replay takes the submission's function of
  that name), an object an earlier call returned by that call's number (with its tensors as
  they are now, since a test may have set a layer's weight in between), everything else by
  value: tensors (with their gradients), ``convlab`` objects, and the substitutes of a test
  (``convlab`` functions, or functions of the test's own, sent as code). The random number
  generators' states are recorded too, so a call that trains from a seed draws the same numbers.
- a check (:class:`~classgrade.protocol.CheckRecord`): its kind, its expected value and
  tolerances, and the output of a call of the same test cell that it compared (a
  :class:`~classgrade.protocol.Link`): the very object (a result, a parameter that ``train``
  changed, a gradient), else one equal to it element for element (the losses a test turned
  into a tensor). A value that is no call's output cannot be replayed: its link is ``None``.
"""
import base64
import functools
import io
import operator
import os
import random
import types

import cloudpickle
import numpy
import torch
from torch import nn

from classgrade.protocol import CallRecord, CheckKind, CheckRecord, Link, WatchRecord
from classgrade.sandboxed import values
from convlab import grading

_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.Tensor)


class _Call:
    """A call of the current test cell, kept alive so that its outputs can be linked to checks."""

    def __init__(self, number, callee, args, kwargs):
        self.number, self.callee, self.args, self.kwargs = number, callee, list(args), dict(kwargs)
        self.result = None


class Recorder:
    """Records the calls and checks of one kernel to the file descriptor ``fd``."""

    def __init__(self, fd, namespace):
        self.fd = fd
        self.namespace = namespace      # the notebook's globals (IPython's user_ns)
        self.cell = ""
        self.calls = []                 # this test cell's calls, oldest first
        self.count = 0
        self.handles = {}               # id(object) -> (call number, path, object) of returned objects
        self.rng = None                 # the random states pickled last (a call repeats None while unchanged)
        self.watches = set()            # the watch records written (once each)

    def start_cell(self, cell):
        self.cell, self.calls = cell, []
        self.rng = None     # each test cell's first call carries the random states (cells may be moved)

    def install(self):
        """Wrap ``convlab.grading``'s call path and checks (module attributes, used by name)."""
        grading._run_watched = self._wrap_run(grading._run_watched)
        grading.check_result = self._wrap_result(grading.check_result)
        grading.check_equal = self._wrap_equal(grading.check_equal)
        grading.check_raises = self._wrap_raises(grading.check_raises)

    # --- calls ------------------------------------------------------------------------

    def _wrap_run(self, original):
        @functools.wraps(original)
        def _run_watched(fn, args, kwargs, **options):
            __tracebackhide__ = True
            call = _Call(self._record_call(fn, args, kwargs, options), fn, args, kwargs)
            if options.get("forbidden"):   # how it computes is read in its source, by this name
                self._watched(WatchRecord(cell=self.cell, function=self.calls_name(fn, options),
                                          forbidden=sorted(options["forbidden"]),
                                          substitute=sorted(options.get("substitute") or ())))
            self.calls.append(call)
            result, watch = original(fn, args, kwargs, **options)
            call.result = result
            self._keep(call.number, result)
            return result, watch
        return _run_watched

    def _record_call(self, fn, args, kwargs, options):
        number, self.count = self.count, self.count + 1
        record = CallRecord(cell=self.cell, number=number, name=self.calls_name(fn, options))
        try:
            what = dict(callee=fn, args=tuple(args), kwargs=dict(kwargs),
                        substitute=dict(options.get("substitute") or {}), rng=self._rng_if_changed())
            record.blob = base64.b64encode(self._pickle(what)).decode("ascii")
        except Exception as error:  # noqa: BLE001 - the reference's replay will say it cannot be replayed
            record.error = f"{type(error).__name__}: {error}"[:300]
        self._write(record)
        return number

    def _rng_if_changed(self):
        """The random states if they changed since the last call (about 10 kB), else ``None``."""
        state = _rng_state()
        key = (state["torch"].numpy().tobytes(), state["numpy"][1].tobytes(), state["numpy"][2:], state["random"])
        if key == self.rng:
            return None
        self.rng = key
        return state

    def _pickle(self, what):
        buffer = io.BytesIO()
        _Pickler(buffer, self, exempt={id(v) for v in what["substitute"].values()}).dump(what)
        return buffer.getvalue()

    def _keep(self, number, result):
        """Remember returned objects (not plain values), so that a later call on them names this one."""
        items = [([], result)]
        if isinstance(result, (tuple, list)):
            items += [([index], item) for index, item in enumerate(result)]
        for path, item in items:
            if not isinstance(item, _PLAIN + (tuple, list, dict)):
                self.handles[id(item)] = (number, path, item)

    @staticmethod
    def calls_name(fn, options):
        """What a call is named in messages and in the source reading: the test's ``name``, else the function's."""
        return str(options.get("name") or getattr(fn, "__name__", type(fn).__name__))

    def notebook_name(self, obj):
        """The name under which the notebook defines the function or class ``obj``, or ``None``."""
        if not isinstance(obj, (type, types.FunctionType)) or getattr(obj, "__module__", None) != "__main__":
            return None
        name = getattr(obj, "__name__", "")
        return name if self.namespace.get(name) is obj else None

    # --- checks -----------------------------------------------------------------------

    def _wrap_result(self, original):
        @functools.wraps(original)
        def check_result(got, expected, *, case, atol=1e-5, rtol=1e-4, dtype=True, **more):
            __tracebackhide__ = True
            self._write(CheckRecord(cell=self.cell, kind=CheckKind.RESULT, link=self._link(got, None),
                                    expected=values.encode(expected), atol=float(atol), rtol=float(rtol),
                                    dtype=bool(dtype)))
            return original(got, expected, case=case, atol=atol, rtol=rtol, dtype=dtype, **more)
        return check_result

    def _wrap_equal(self, original):
        @functools.wraps(original)
        def check_equal(got, expected, *, case, **more):
            __tracebackhide__ = True
            self._write(CheckRecord(cell=self.cell, kind=CheckKind.EQUAL, link=self._link(got, "ints"),
                                    expected=values.encode(tuple(expected), "ints")))
            return original(got, expected, case=case, **more)
        return check_equal

    def _wrap_raises(self, original):
        @functools.wraps(original)
        def check_raises(fn, *args, error=ValueError, name=None, case=None, **kwargs):
            __tracebackhide__ = True
            before = self.count
            try:
                return original(fn, *args, error=error, name=name, case=case, **kwargs)
            finally:
                link = Link(call=self.count - 1, path=["result"]) if self.count > before else None
                self._write(CheckRecord(cell=self.cell, kind=CheckKind.RAISES, link=link, error=error.__name__))
        return check_raises

    def _link(self, got, convert):
        """The output of this cell's calls that ``got`` is: the same object, else an equal value."""
        target = got
        if convert == "ints":
            try:
                target = tuple(operator.index(v) for v in got)
            except TypeError:
                return None
        for call in reversed(self.calls):
            for path, leaf in values.leaves(call.result, call.callee, call.args, call.kwargs):
                if leaf is got and (convert is None or values.same_value(leaf, target, convert)):
                    return Link(call=call.number, path=path, convert=convert)
        for call in reversed(self.calls):
            for path, leaf in values.leaves(call.result, call.callee, call.args, call.kwargs):
                if values.same_value(leaf, target, convert):
                    if convert is None and not isinstance(leaf, torch.Tensor):
                        return Link(call=call.number, path=path, convert=str(got.dtype).removeprefix("torch."))
                    return Link(call=call.number, path=path, convert=convert)
        return None

    def _watched(self, record):
        key = record.to_json()
        if key not in self.watches:
            self.watches.add(key)
            self._write(record)

    def _write(self, record):
        os.write(self.fd, (record.to_json() + "\n").encode())


class _Pickler(cloudpickle.Pickler):
    """Pickles a call: notebook definitions by name, objects returned by calls by number."""

    def __init__(self, file, recorder, exempt):
        super().__init__(file)
        self.recorder, self.exempt = recorder, exempt

    def persistent_id(self, obj):
        if id(obj) in self.exempt or isinstance(obj, _PLAIN):
            return None
        kept = self.recorder.handles.get(id(obj))
        if kept is not None and kept[2] is obj:
            return ("handle", kept[0], kept[1], _tensors(obj))
        name = self.recorder.notebook_name(obj)
        return ("name", name) if name else None

    def reducer_override(self, obj):
        # a tensor's gradient is no part of its pickle: a parameter handed to sgd needs it
        if isinstance(obj, torch.Tensor) and type(obj) in (torch.Tensor, nn.Parameter) and obj.grad is not None:
            plain = obj.detach().clone().requires_grad_(obj.requires_grad)
            if isinstance(obj, nn.Parameter):
                plain = nn.Parameter(plain, requires_grad=obj.requires_grad)
            return values.with_grad, (plain, obj.grad.detach().clone())
        return super().reducer_override(obj)


def _tensors(obj):
    """A module's parameters and buffers as they are now (a test may have set them since)."""
    if not isinstance(obj, nn.Module):
        return {}
    state = {f"param:{n}": p.detach().clone() for n, p in obj.named_parameters()}
    state.update({f"buffer:{n}": b.detach().clone() for n, b in obj.named_buffers()})
    return state


def _rng_state():
    return dict(torch=torch.get_rng_state(), numpy=numpy.random.get_state(), random=random.getstate())
