"""Values inside the sandbox: the outputs of a call by path, and their plain encoding.

A call's outputs are its result, the object it called and its arguments after the call
(a test checks a parameter that ``train`` changed in place, or a gradient it left). A
:class:`~classgrade.protocol.Link` names one of them by its path; :func:`leaves` lists them
all with their paths (the recorder links a check to one), :func:`resolve` follows a path
(the replay sends that value back), and :func:`encode` turns it into plain data.
"""
import base64
import operator

import torch
from torch import nn

from classgrade.protocol import Encoded

MAX_DEPTH = 4
MAX_LEAVES = 10_000


def roots(result, callee, args, kwargs):
    """``(path, value)`` of the outputs of one call, the result first."""
    yield ["result"], result
    yield ["callee"], callee
    for index, value in enumerate(args):
        yield ["arg", index], value
    for key, value in kwargs.items():
        yield ["kwarg", key], value


def leaves(result, callee, args, kwargs):
    """Every value reachable from a call's outputs, with its path (depth-first, result first)."""
    count = 0
    for path, value in roots(result, callee, args, kwargs):
        for item in _walk(path, value, 0):
            count += 1
            if count > MAX_LEAVES:
                return
            yield item


def _walk(path, value, depth):
    yield path, value
    if depth >= MAX_DEPTH:
        return
    if isinstance(value, torch.Tensor):
        if value.grad is not None:
            yield path + ["grad"], value.grad
    elif isinstance(value, nn.Module):
        for kind, named in (("param", value.named_parameters()), ("buffer", value.named_buffers())):
            for name, tensor in named:
                yield from _walk(path + [f"{kind}:{name}"], tensor, depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(path + [index], item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, (str, int)):
                yield from _walk(path + [key], item, depth + 1)


def resolve(path, result, callee, args, kwargs):
    """The value at ``path`` among a call's outputs (``KeyError`` if there is none)."""
    root = dict(result=result, callee=callee)
    if path[0] in root:
        value, steps = root[path[0]], path[1:]
    elif path[0] == "arg":
        value, steps = args[path[1]], path[2:]
    elif path[0] == "kwarg":
        value, steps = kwargs[path[1]], path[2:]
    else:
        raise KeyError(path[0])
    for step in steps:
        value = _step(value, step)
    return value


def _step(value, step):
    if step == "grad" and isinstance(value, torch.Tensor):
        if value.grad is None:
            raise KeyError("no gradient")
        return value.grad
    if isinstance(step, str) and step.startswith(("param:", "buffer:")) and isinstance(value, nn.Module):
        kind, name = step.split(":", 1)
        named = dict(value.named_parameters() if kind == "param" else value.named_buffers())
        return named[name]
    if isinstance(value, (list, tuple)) and isinstance(step, int):
        return value[step]
    if isinstance(value, dict):
        return value[step]
    raise KeyError(step)


def with_grad(tensor, grad):
    """``tensor`` with its gradient (the pickle of a tensor leaves the gradient out)."""
    tensor.grad = grad
    return tensor


def same_value(leaf, got, convert):
    """Whether ``leaf`` is, element for element, the value ``got`` that a check compared."""
    try:
        if convert == "ints":
            return isinstance(leaf, (tuple, list, torch.Size)) and tuple(operator.index(v) for v in leaf) == got
        if not isinstance(got, torch.Tensor):
            return False
        if isinstance(leaf, torch.Tensor):
            return (leaf.dtype == got.dtype and leaf.shape == got.shape
                    and torch.equal(torch.Tensor.detach(leaf), torch.Tensor.detach(got)))
        if isinstance(leaf, (list, tuple)) and leaf and all(type(v) in (int, float, bool) for v in leaf):
            return torch.equal(torch.tensor(leaf, dtype=got.dtype), torch.Tensor.detach(got))
    except Exception:  # noqa: BLE001 - a value that cannot be compared is not this one
        return False
    return False


def encode(value, convert=None):
    """``value`` as an :class:`Encoded`: converted first as the link says."""
    try:
        if convert == "ints":
            return Encoded(kind="ints", ints=[operator.index(v) for v in value])
        if convert:
            dtype = getattr(torch, convert)
            value = torch.Tensor.to(value, dtype) if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=dtype)
        if not isinstance(value, torch.Tensor):
            return Encoded(kind="other", text=type(value).__name__)
        return _tensor(value)
    except Exception as error:  # noqa: BLE001 - what cannot be read does not match
        return Encoded(kind="error", text=f"{type(error).__name__}: {error}"[:200])


def _tensor(value):
    with torch._C.DisableTorchFunctionSubclass():   # a subclass's own code stays out of it
        tensor = torch.Tensor.detach(value)
        if tensor.is_complex() or not (tensor.is_floating_point() or tensor.dtype in _INTEGERS):
            return Encoded(kind="other", text=f"tensor of dtype {str(tensor.dtype).removeprefix('torch.')}")
        data = tensor.to("cpu", torch.float64).contiguous().numpy().tobytes()
    return Encoded(kind="tensor", shape=list(tensor.shape), dtype=str(tensor.dtype).removeprefix("torch."),
                   data=base64.b64encode(data).decode("ascii"))


_INTEGERS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
