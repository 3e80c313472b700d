"""The replay: a submission's own functions, called on the reference's inputs, in a process
that holds nothing to copy.

``python -m classgrade.sandboxed.replay`` runs in a fresh sandbox after nbgrader has graded
the submission. It reads the grader's plan (a :class:`~classgrade.protocol.ReplayPlan`) from
its standard input, all of it, before any student code runs, and closes it. Then it runs the
notebook's cells in order (the provided cells and the student's; never a test cell), and where
a test cell stood it makes the calls that the instructor's run made there
(:mod:`classgrade.sandboxed.record`): the same function of the notebook, on the same inputs,
with the same substitutes and random state. For each call it writes a
:class:`~classgrade.protocol.CallReply` to its standard output, which the notebook's own
prints no longer reach (they go to ``/dev/null``): the exception raised, or the outputs at the
paths the plan asks for, as plain data.

What this process holds: the submission's code, the tests' inputs and substitutes
(``convlab`` functions, or the test's own stand-ins for the student's other parts). Never a
check, a test cell's code or an expected value: those stay with the grader, which compares
the replies with them outside (:mod:`classgrade.trusted.replay`). So a reply can only pass if
the student's code computed the right values; what it prints or writes here changes nothing.
"""
import base64
import contextlib
import io
import os
import pickle
import random
import resource
import signal

import numpy
import torch
from IPython.core.interactiveshell import InteractiveShell
from torch import nn
from traitlets.config import Config

from classgrade.protocol import CallReply, Encoded, ReplayPlan
from classgrade.sandboxed import values

class CallTimeout(BaseException):
    """Raised in the replay when a cell or call runs past the time limit (a student's
    ``except Exception`` does not swallow it)."""


class Replayer:
    """Runs a plan's steps in one notebook namespace and writes a reply per call."""

    def __init__(self, shell, out, timeout):
        self.shell, self.out, self.timeout = shell, out, timeout
        self.results = {}       # call number -> what it returned (a later call may be on it)
        self.rng = None         # the random states of the last call that recorded them

    def run(self, plan):
        for step in plan.steps:
            if step.grade_id:
                for call in step.calls:
                    if self.call(call) == "timeout":
                        break   # this test fails anyway: its other calls would take as long
            elif not step.skip:
                self.cell(step.source)

    def cell(self, source):
        with _time_limit(self.timeout):
            try:
                self.shell.run_cell(source, store_history=False)
            except CallTimeout:
                pass

    def call(self, call):
        reply = CallReply(number=call.number)
        try:
            what = _Unpickler(io.BytesIO(base64.b64decode(call.blob)), self).load()
            self.rng = what["rng"] or self.rng   # None: as at the call before (the student's code may have drawn since)
            _set_rng(self.rng)
            with _time_limit(self.timeout), _bound(self.shell.user_ns, what["substitute"]):
                result = what["callee"](*what["args"], **what["kwargs"])
        except BaseException as error:  # noqa: BLE001 - the student's error is the reply
            reply.raised = [kind.__name__ for kind in type(error).__mro__]
            reply.message = (f"{type(error).__name__}: {error}".splitlines() or [""])[0][:300]
            self._send(reply)
            return "timeout" if isinstance(error, CallTimeout) else "raised"
        self.results[call.number] = result
        reply.values = [self._output(link, result, what) for link in call.paths]
        self._send(reply)
        return "returned"

    @staticmethod
    def _output(link, result, what):
        try:
            value = values.resolve(link.path, result, what["callee"], what["args"], what["kwargs"])
        except (KeyError, IndexError, TypeError, AttributeError) as missing:
            return Encoded(kind="error", text=f"no such output ({missing})"[:200])
        return values.encode(value, link.convert)

    def _send(self, reply):
        data = (reply.to_json() + "\n").encode()
        while data:
            data = data[os.write(self.out, data):]


class _Unpickler(pickle.Unpickler):
    """Resolves what the recorder pickled by reference: the notebook's definitions by name,
    objects returned by earlier calls by number (their tensors set as the test set them)."""

    def __init__(self, file, replayer):
        super().__init__(file)
        self.replayer = replayer

    def persistent_load(self, pid):
        if pid[0] == "name":
            namespace = self.replayer.shell.user_ns
            if pid[1] not in namespace:
                raise NameError(f"name {pid[1]!r} is not defined")
            return namespace[pid[1]]
        if pid[0] == "handle":
            _, number, path, tensors = pid
            if number not in self.replayer.results:
                raise LookupError(f"the call that made this object (call {number}) did not return")
            obj = self.replayer.results[number]
            for step in path:
                obj = obj[step]
            _set_tensors(obj, tensors)
            return obj
        raise pickle.UnpicklingError(f"unknown reference {pid[0]!r}")


def _set_tensors(obj, tensors):
    """Give the module ``obj`` the parameters and buffers that the test gave it."""
    if not isinstance(obj, nn.Module):
        return
    named = {f"param:{n}": p for n, p in obj.named_parameters()}
    named.update({f"buffer:{n}": b for n, b in obj.named_buffers()})
    for key, value in tensors.items():
        if key in named:
            named[key].data = value


def _set_rng(state):
    torch.set_rng_state(state["torch"])
    numpy.random.set_state(state["numpy"])
    random.setstate(state["random"])


@contextlib.contextmanager
def _bound(namespace, substitute):
    """The test's substitutes bound in the notebook's namespace while the call runs."""
    missing = object()
    saved = {name: namespace.get(name, missing) for name in substitute}
    namespace.update(substitute)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


@contextlib.contextmanager
def _time_limit(seconds):
    def expire(signum, frame):
        signal.setitimer(signal.ITIMER_REAL, 1.0)   # again, if the student catches it
        raise CallTimeout(f"it ran past the time limit ({seconds:g} s)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _shell():
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    return InteractiveShell.instance(config=config)


def main():
    with os.fdopen(os.dup(0), "rb") as stdin:   # all of the plan before any student code runs
        plan = ReplayPlan.from_json(stdin.read().decode("utf-8"))
    if plan.memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (plan.memory_bytes, plan.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    replies = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):       # what the notebook prints is of no use here, and it reads nothing
        os.dup2(devnull, fd)
    Replayer(_shell(), replies, plan.cell_timeout).run(plan)
    os._exit(0)             # no teardown: nothing to save, and no student atexit hook runs


if __name__ == "__main__":
    main()
