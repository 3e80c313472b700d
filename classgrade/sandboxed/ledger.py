"""The ledger's writer: each check's values, handed by the grading kernel to the grader.

Runs in the grading kernel, inside the sandbox: the checks of :mod:`convlab.grading` call
:class:`Writer` (installed by :mod:`.kernel` as ``convlab.grading._ledger``), which writes
one JSON line per check to the ledger file of the kernel's private folder
(:data:`classgrade.protocol.LEDGER`): the values as plain numbers with their shape and
dtype, and the cell they came from. The grader reads and compares them outside
(:mod:`classgrade.trusted.ledger`).
"""
import base64
import json
import os

import torch

from classgrade.protocol import LEDGER as FILE  # noqa: F401 - the file's name, in the private folder


def encode(value):
    """A JSON-able description of a check's value: a tensor's shape, dtype and float64 numbers."""
    if isinstance(value, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():   # a subclass's own code stays out of it
            tensor = torch.Tensor.detach(value)
            if tensor.is_complex():
                return dict(type="complex tensor")
            data = tensor.to("cpu", torch.float64).contiguous().numpy().tobytes()
        return dict(type="tensor", shape=list(tensor.shape), dtype=str(tensor.dtype).removeprefix("torch."),
                    data=base64.b64encode(data).decode("ascii"))
    if value is None or isinstance(value, (bool, int, float, str)):
        return dict(type="plain", value=value)
    if isinstance(value, (tuple, list)) and all(type(v) is int for v in value):
        return dict(type="ints", value=list(value))
    return dict(type=type(value).__name__)


class Writer:
    """Writes the checks of one kernel to ``fd``; ``cell`` is the hash of the running cell."""

    def __init__(self, fd):
        self.fd = fd
        self.cell = None

    def __call__(self, kind, got, expected, options):
        try:
            line = json.dumps(dict(cell=self.cell, kind=kind, got=encode(got), expected=encode(expected),
                                   options=options))
        except Exception as error:  # noqa: BLE001 - a value that cannot be described does not match
            line = json.dumps(dict(cell=self.cell, kind=kind, got=dict(type="error", value=str(error)[:200]),
                                   expected=None, options=options))
        os.write(self.fd, (line + "\n").encode())
