"""Checks used by the test cells of the graded notebooks (nbgrader).

Every check raises ``AssertionError`` with a message a student can act on: which
input, what was expected, what came back, and whether the type, the shape or
the values are wrong. Generated cases are seeded, so grading the same
submission twice gives the same grade and the same feedback.

Examples
--------
>>> import convlab
>>> X, K = torch.ones(4, 5), torch.ones(2, 2)
>>> describe(X=X, K=K, padding=(0, 1), stride=3)
'X 4x5, K 2x2, padding (0, 1), stride 3'
>>> check_against(convlab.corr2d_loop, convlab.corr2d, [dict(X=X, K=K)], forbidden=())
>>> check_result(torch.zeros(3, 3), torch.zeros(2, 2), case="X 3x3, K 2x2")
Traceback (most recent call last):
...
AssertionError: expected shape (2, 2), got (3, 3) for X 3x3, K 2x2
"""

import contextlib
import functools
import operator
import os
import sys

import torch
from torch.overrides import TorchFunctionMode

__all__ = [
    "DELEGATION",
    "check_against",
    "check_equal",
    "check_few_calls",
    "check_no_delegation",
    "check_result",
    "count_torch_calls",
    "describe",
    "random_cases",
    "random_tensor",
]

# Torch functions that compute a correlation for the student, by the name torch reports.
DELEGATION = (
    "conv1d", "conv2d", "conv3d", "convolution", "_convolution",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "unfold", "im2col", "fold", "col2im",
)
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_HERE = os.path.abspath(__file__)


def describe(**inputs):
    """One line naming each input: tensors by shape (and dtype unless float32), others by repr.

    >>> describe(X=torch.zeros(2, 3, 4, dtype=torch.float64), padding=1)
    'X 2x3x4 float64, padding 1'
    """
    parts = []
    for name, value in inputs.items():
        if isinstance(value, torch.Tensor):
            text = f"{name} {'x'.join(map(str, value.shape)) or 'scalar'}"
            if value.dtype != torch.float32:
                text += f" {str(value.dtype).removeprefix('torch.')}"
        else:
            text = f"{name} {value!r}"
        parts.append(text)
    return ", ".join(parts)


def check_result(got, expected, *, case, atol=1e-5, rtol=1e-4):
    """Assert that ``got`` is a tensor with the shape and values of ``expected``.

    Values are compared in float64, so a float64 result of a float32 problem passes.
    """
    __tracebackhide__ = True  # IPython and pytest show the cell's line and the message
    if not isinstance(got, torch.Tensor):
        _fail(f"expected a torch.Tensor, got {_type_name(got)} for {case}")
    if tuple(got.shape) != tuple(expected.shape):
        _fail(f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)} for {case}")
    if got.is_complex() or not (got.is_floating_point() or got.dtype in _INTEGER_DTYPES):
        _fail(f"expected a real-valued tensor, got dtype {got.dtype} for {case}")
    a, b = got.detach().to(torch.float64), expected.detach().to(torch.float64)
    bad = ~torch.isclose(a, b, atol=atol, rtol=rtol, equal_nan=False)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        error = (a - b).abs().nan_to_num(nan=float("inf")).max().item()
        _fail(
            f"wrong values for {case}: at {index} expected {b[index].item():.6g}, "
            f"got {a[index].item():.6g} (max abs error {error:.3g})"
        )


def check_equal(got, expected, *, case):
    """Assert that ``got`` equals the tuple of ints ``expected`` (an int tuple, e.g. a shape).

    >>> check_equal((2.0, 2.0), (2, 2), case="input (8, 8)")
    Traceback (most recent call last):
    ...
    AssertionError: expected a tuple of 2 ints, got (2.0, 2.0) for input (8, 8)
    """
    __tracebackhide__ = True  # IPython and pytest show the cell's line and the message
    try:
        values = tuple(operator.index(v) for v in got)
    except TypeError:
        values = None
    if values is None or len(values) != len(expected):
        _fail(f"expected a tuple of {len(expected)} ints, got {got!r} for {case}")
    if values != tuple(expected):
        _fail(f"expected {tuple(expected)}, got {values} for {case}")


def check_against(student_fn, reference_fn, cases, *, positional=("X", "K"), atol=1e-5,
                  rtol=1e-4, forbidden=DELEGATION, substitute=None, name=None):
    """Assert that ``student_fn`` agrees with ``reference_fn`` on every case.

    Parameters
    ----------
    student_fn, reference_fn : callable
    cases : iterable of dict
        Keyword arguments of one call each. Keys listed in ``positional`` are
        passed by position, in that order; tensors are cloned for every call.
    forbidden : tuple of str
        Torch functions the student must not call (see :func:`check_no_delegation`);
        calling :mod:`convlab` is forbidden too, unless ``forbidden`` is ``()``,
        which allows anything.
    substitute : dict, optional
        Names in the student's notebook replaced, during the check, by trusted
        functions: ``{'corr2d': convlab.corr2d}`` tests a ``conv2d`` that calls
        ``corr2d`` without charging it for a mistake in ``corr2d``.
    name : str, optional
        Name used in messages; defaults to ``student_fn.__name__``.

    Each case checks, in order: the call does not raise, does not delegate, does
    not modify its inputs in place, and returns the reference result.
    """
    __tracebackhide__ = True  # IPython and pytest show the cell's line and the message
    name = name or getattr(student_fn, "__name__", "your function")
    for kwargs in cases:
        case = describe(**kwargs)
        ref_args, ref_options = _call_args(kwargs, positional)
        expected = reference_fn(*ref_args, **ref_options)
        args, options = _call_args(kwargs, positional)
        before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        got = check_no_delegation(student_fn, *args, forbidden=forbidden, substitute=substitute,
                                  name=name, case=case, **options)
        for key, old, new in zip(positional, before, args):
            if isinstance(old, torch.Tensor) and not (
                old.shape == new.shape and torch.equal(old, new.detach())
            ):
                _fail(
                    f"{name} modified its input {key} in place for {case}; work on a copy "
                    f"(e.g. {key}.clone()) or build a new tensor"
                )
        if isinstance(expected, torch.Tensor):
            check_result(got, expected, case=case, atol=atol, rtol=rtol)
        else:
            check_equal(got, expected, case=case)


def check_no_delegation(fn, *args, forbidden=DELEGATION, substitute=None, name=None, case=None,
                        **kwargs):
    """Call ``fn(*args, **kwargs)`` and return its result, failing if it delegates.

    Delegating means calling a torch function named in ``forbidden`` (by default
    every convolution, ``unfold`` and ``fold``) or any function of :mod:`convlab`.
    An exception raised by ``fn`` becomes an ``AssertionError`` naming the case.

    >>> import torch.nn.functional as F
    >>> check_no_delegation(lambda X: F.conv2d(X[None, None], X[None, None]), torch.ones(2, 2),
    ...                     name="corr2d")
    Traceback (most recent call last):
    ...
    AssertionError: corr2d calls torch conv2d; this part asks you to compute it yourself (explicit loops, no convolution or unfold from torch, no convlab), so it earns no points
    """
    __tracebackhide__ = True  # IPython and pytest show the cell's line and the message
    return _run_watched(fn, args, kwargs, forbidden=forbidden, substitute=substitute, name=name, case=case)[0]


def _run_watched(fn, args, kwargs, *, forbidden, substitute, name, case):
    """``(fn(*args, **kwargs), watch)`` with ``substitute`` bound; fail on delegation or an exception."""
    __tracebackhide__ = True
    name = name or getattr(fn, "__name__", "your function")
    where = f" for {case}" if case else ""
    watch = _Watch(forbidden)
    with _substituted(fn, substitute, watch), watch.active():
        try:
            result = fn(*args, **kwargs)
        except Exception as error:
            if not watch.found:  # a delegation is the message worth reading
                _fail(f"{name} raised {type(error).__name__}: {error}{where}", cause=error)
    if watch.found:
        _fail(
            f"{name} calls {watch.found[0]}{where}; this part asks you to compute it yourself "
            "(explicit loops, no convolution or unfold from torch, no convlab), so it earns no points"
        )
    return result, watch


def count_torch_calls(fn, *args, **kwargs):
    """Return ``(result, n)``: ``fn``'s result and how many torch functions it called.

    Counts calls made from Python (``torch.*``, tensor methods and operators), not
    the work inside each: a vectorized function makes a few calls whatever the
    input size, a pixel-by-pixel loop makes several per pixel. The count is the
    same on every run, unlike a timing.

    >>> X = torch.ones(3, 3)
    >>> count_torch_calls(lambda X: X * 2 + 1, X)[1]
    2
    """
    watch = _Watch(())
    with watch.active():
        result = fn(*args, **kwargs)
    return result, watch.calls


def check_few_calls(fn, kwargs, *, at_most, positional=("X", "K"), substitute=None, name=None, hint=""):
    """Assert that ``fn`` makes at most ``at_most`` torch calls on the case ``kwargs``.

    Counts torch calls as :func:`count_torch_calls` does (deterministic, unlike a
    timing); calls made inside ``substitute``'s trusted references are not counted.
    Delegation is forbidden as in :func:`check_no_delegation`.

    >>> def per_pixel(X):
    ...     return torch.stack([x.clone() for x in X.flatten()]).reshape(X.shape)
    >>> check_few_calls(per_pixel, dict(X=torch.ones(3, 3)), at_most=5, hint="; vectorize it")
    Traceback (most recent call last):
    ...
    AssertionError: per_pixel made 15 torch calls for X 3x3; at most 5 are allowed; vectorize it
    """
    __tracebackhide__ = True  # IPython and pytest show the cell's line and the message
    name = name or getattr(fn, "__name__", "your function")
    case = describe(**kwargs)
    args, options = _call_args(kwargs, positional)
    _, watch = _run_watched(fn, args, options, forbidden=DELEGATION, substitute=substitute, name=name, case=case)
    if watch.calls > at_most:
        _fail(f"{name} made {watch.calls} torch calls for {case}; at most {at_most} are allowed{hint}")


def random_tensor(generator, *shape, dtype=torch.float32):
    """Standard-normal values rounded to 1/8 from a seeded ``torch.Generator`` (readable in messages)."""
    return (torch.randn(*shape, generator=generator, dtype=torch.float64) * 8).round().div(8).to(dtype)


def random_cases(seed, n=8, *, padding=False, stride=False, max_size=9):
    """Seeded single-channel cases ``dict(X, K[, padding][, stride])``, edge cases first.

    The edge cases: a non-square input, even kernels, a kernel as large as the
    input, a float64 input; with ``stride``, a stride larger than the kernel and
    different strides per axis; with ``padding``, padding larger than the kernel
    and different padding per axis. Then ``n`` random cases drawn from ``seed``.

    >>> [describe(**c) for c in random_cases(0, 1)][:2]
    ['X 5x7, K 2x4', 'X 6x3, K 3x2']
    >>> all(describe(**a) == describe(**b) and torch.equal(a['X'], b['X'])
    ...     for a, b in zip(random_cases(0), random_cases(0)))
    True
    """
    g = torch.Generator().manual_seed(seed)
    edges = [  # (input, kernel, padding, stride, dtype)
        ((5, 7), (2, 4), 0, 1, torch.float32),
        ((6, 3), (3, 2), 0, 1, torch.float32),
        ((4, 5), (4, 5), 0, 1, torch.float32),
        ((7, 6), (3, 3), 0, 1, torch.float64),
        ((1, 6), (1, 2), 0, 1, torch.float32),
    ]
    if stride:
        edges += [((9, 8), (2, 2), 0, 3, torch.float32), ((8, 8), (3, 5), 0, (3, 4), torch.float32),
                  ((10, 7), (1, 2), 0, (4, 3), torch.float64)]
    if padding:
        edges += [((4, 6), (2, 3), 3, 1, torch.float32), ((5, 4), (3, 2), (0, 2), 1, torch.float32),
                  ((3, 3), (1, 1), (4, 1), 1, torch.float64)]
    if padding and stride:
        edges += [((8, 8), (3, 5), (0, 1), (3, 4), torch.float32), ((6, 7), (2, 2), 3, 5, torch.float32),
                  ((7, 5), (4, 2), (1, 3), (2, 6), torch.float64)]
    draws = []
    for _ in range(n):
        kh, kw = (int(v) for v in torch.randint(1, 5, (2,), generator=g))
        ph, pw = (int(v) for v in torch.randint(0, 4, (2,), generator=g)) if padding else (0, 0)
        sh, sw = (int(v) for v in torch.randint(1, 5, (2,), generator=g)) if stride else (1, 1)
        h = int(torch.randint(max(kh - 2 * ph, 1), max_size + 1, (), generator=g))
        w = int(torch.randint(max(kw - 2 * pw, 1), max_size + 1, (), generator=g))
        dtype = torch.float64 if torch.rand((), generator=g) < 0.25 else torch.float32
        draws.append(((h, w), (kh, kw), (ph, pw) if ph != pw else ph, (sh, sw) if sh != sw else sh, dtype))
    cases = []
    for size, kernel, pad, step, dtype in edges + draws:
        case = dict(X=random_tensor(g, *size, dtype=dtype), K=random_tensor(g, *kernel, dtype=dtype))
        if padding:
            case["padding"] = pad
        if stride:
            case["stride"] = step
        cases.append(case)
    return cases


# --- machinery -------------------------------------------------------------------------

_INTEGER_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _fail(message, cause=None):
    """Raise the AssertionError a student reads (the only grading frame left in the traceback)."""
    raise AssertionError(message) from cause


def _type_name(value):
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _call_args(kwargs, positional):
    """Positional arguments and options of one case, tensors cloned."""
    def copy(value):
        return value.clone() if isinstance(value, torch.Tensor) else value

    args = [copy(kwargs[key]) for key in positional if key in kwargs]
    options = {key: copy(value) for key, value in kwargs.items() if key not in positional}
    return args, options


class _Watch(TorchFunctionMode):
    """Counts torch calls, notes forbidden ones, and notes calls into convlab (via a profiler)."""

    def __init__(self, forbidden):
        super().__init__()
        self.forbidden = set(forbidden)
        self.found = []
        self.calls = 0
        self.trusted = 0  # > 0 while a substituted reference runs

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if not self.trusted:
            self.calls += 1
            label = getattr(func, "__name__", "")
            if label in self.forbidden:
                self.found.append(f"torch {label}")
        return func(*args, **(kwargs or {}))

    def _profile(self, frame, event, arg):
        if event == "call" and not self.trusted and self.forbidden:
            filename = frame.f_code.co_filename
            if filename.startswith(_PACKAGE) and filename != _HERE and not self.found:
                self.found.append(f"convlab.{frame.f_code.co_name}")

    @contextlib.contextmanager
    def active(self):
        previous = sys.getprofile()
        sys.setprofile(self._profile)
        try:
            with self:
                yield self
        finally:
            sys.setprofile(previous)


@contextlib.contextmanager
def _substituted(fn, substitute, watch):
    """Temporarily bind names in ``fn``'s module (the notebook) to trusted functions."""
    if not substitute:
        yield
        return
    namespace = fn.__globals__
    missing = object()
    saved = {key: namespace.get(key, missing) for key in substitute}

    def trust(reference):
        @functools.wraps(reference)
        def trusted(*args, **kwargs):
            watch.trusted += 1
            try:
                return reference(*args, **kwargs)
            finally:
                watch.trusted -= 1
        return trusted

    namespace.update({key: trust(ref) for key, ref in substitute.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is missing:
                namespace.pop(key, None)
            else:
                namespace[key] = value
