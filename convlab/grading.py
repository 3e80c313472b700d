"""Checks used by the test cells of the graded notebooks (nbgrader).

Every check raises ``AssertionError`` with a message a student can act on: which
input, what was expected, what came back, and whether the type, the shape, the
dtype or the values are wrong. Generated cases are seeded, so grading the same
submission twice gives the same grade and the same feedback.

The grading policy (the instructors' chapter of the book states it in full):

- A part's points are earned by its values on every case, with the expected
  shape and dtype, its inputs left unmodified and, where the part says so, no
  delegation. A property (no delegation, few calls) is checked only together
  with the values.
- Whatever the student's code writes to stdout or stderr, and every warning it
  raises, is captured while it runs (:func:`call`), and shown only in the
  message of a check that fails: nbgrader scores a test cell that writes to
  stderr as 0, and a progress bar or a library warning must not cost points.
- A test of one part runs with the reference in place of the functions of the
  other parts it uses (``substitute``), so a mistake costs only its own part.
- A test calls the student's code only through these functions (:func:`call`,
  :func:`check_against`, ...) and compares only through the checks
  (:func:`check_result`, :func:`check_equal`, :func:`check_raises`), on what those
  calls returned or changed: a class grader can then make the same calls again,
  in a process that holds no test, and compare their values outside it.

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
import io
import operator
import os
import sys
import warnings

import torch
from torch.overrides import TorchFunctionMode

__all__ = [
    "DELEGATION",
    "call",
    "check_against",
    "check_equal",
    "check_few_calls",
    "check_no_delegation",
    "check_raises",
    "check_result",
    "count_torch_calls",
    "describe",
    "explained",
    "layer_gradients",
    "random_cases",
    "random_tensor",
    "run_tests",
    "summary",
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


def check_result(got, expected, *, case, atol=1e-5, rtol=1e-4, dtype=True, given=None):
    """Assert that ``got`` is a tensor with the shape, dtype and values of ``expected``.

    Values are compared in float64 with the tolerances ``atol`` and ``rtol``. With
    ``dtype=False`` any real dtype is accepted (for values the student did not compute
    a tensor for, such as a list of losses). ``given``, the inputs of the call that
    computed ``got`` (by default those of the last :func:`call` if it returned ``got``),
    chooses the hint for an integer result: keep the input's dtype, or write floats.

    >>> check_result(torch.zeros(2, dtype=torch.float64), torch.zeros(2), case="X 2")
    Traceback (most recent call last):
    ...
    AssertionError: expected dtype float32, got float64 for X 2; keep the dtype of the input (e.g. torch.zeros(..., dtype=X.dtype))
    """
    __tracebackhide__ = True  # IPython and pytest show the cell's line and the message
    if not isinstance(got, torch.Tensor):
        _fail(f"expected a torch.Tensor, got {_type_name(got)} for {case}")
    if tuple(got.shape) != tuple(expected.shape):
        hint = ""
        if got.dim() == 2 and tuple(got.shape) == tuple(expected.shape)[::-1]:
            hint = "; rows and columns are swapped: is a transpose missing, or one too many?"
        _fail(f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)} for {case}{hint}")
    if got.is_complex() or not (got.is_floating_point() or got.dtype in _INTEGER_DTYPES):
        _fail(f"expected a real-valued tensor, got dtype {got.dtype} for {case}")
    if dtype and got.dtype != expected.dtype:
        if expected.is_floating_point() and not got.is_floating_point():
            hint = _integer_hint(got, given)
        else:
            hint = "keep the dtype of the input (e.g. torch.zeros(..., dtype=X.dtype))"
        _fail(f"expected dtype {_dtype_name(expected.dtype)}, got {_dtype_name(got.dtype)} for {case}; {hint}")
    a, b = got.detach().to(torch.float64), expected.detach().to(torch.float64)
    bad = ~torch.isclose(a, b, atol=atol, rtol=rtol, equal_nan=False)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        error = (a - b).abs().nan_to_num(nan=float("inf")).max().item()
        hint = ""
        if a.dim() == 2 and a.shape[0] == a.shape[1] > 1 and torch.allclose(a, b.T, atol=atol, rtol=rtol):
            hint = "; the result is the transpose of the expected one: is a transpose missing, or one too many?"
        _fail(
            f"wrong values for {case}: at {index} expected {b[index].item():.6g}, "
            f"got {a[index].item():.6g} (max abs error {error:.3g}){hint}"
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
                  rtol=1e-4, forbidden=DELEGATION, substitute=None, name=None, mistakes=()):
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
    mistakes : sequence of (callable, str)
        Common mistakes, each as a function that computes what the mistaken code
        returns (called like ``reference_fn``) and the hint to add to the message
        when the student's wrong result equals it, or when the student's code
        raises the error the mistaken code raises (same type and text). One hint
        at most: where several mistakes give the failing result, the first that
        gives the student's results on every case.

    Each case checks, in order: the call does not raise, does not delegate, does
    not modify its inputs in place, and returns the reference result, with its
    shape and dtype. What the student's code prints or warns is captured (see
    :func:`call`).

    >>> import convlab
    >>> forgot_flip = (convlab.corr2d, "flip K along both axes")
    >>> case = dict(X=torch.arange(9.0).reshape(3, 3), K=torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    >>> check_against(convlab.corr2d, convlab.conv2d, [case], forbidden=(), mistakes=[forgot_flip])
    Traceback (most recent call last):
    ...
    AssertionError: wrong values for X 3x3, K 2x2: at (0, 0) expected 4, got 0 (max abs error 4); flip K along both axes
    """
    __tracebackhide__ = True  # IPython and pytest show the cell's line and the message
    name = name or getattr(student_fn, "__name__", "your function")
    cases = list(cases)
    for kwargs in cases:
        case = describe(**kwargs)
        ref_args, ref_options = _call_args(kwargs, positional)
        args, options = _call_args(kwargs, positional)
        before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
        try:
            got, watch = _run_watched(student_fn, args, options, forbidden=forbidden, substitute=substitute,
                                      name=name, case=case)
        except AssertionError as failure:  # it raised: a known mistake that raises the same error is named
            hint = _raising_mistake(failure.__cause__, mistakes, kwargs, positional)
            if hint is None:
                raise
            text = str(failure)
            at = text.find("\nIt printed:") if "\nIt printed:" in text else len(text)
            _fail(f"{text[:at]}; {hint}{text[at:]}", cause=failure.__cause__)
        expected = reference_fn(*ref_args, **ref_options)  # after: nothing to read from this frame
        for key, old, new in zip(positional, before, args):
            if isinstance(old, torch.Tensor) and not (
                old.shape == new.shape and torch.equal(old, new.detach())
            ):
                _fail(
                    f"{name} modified its input {key} in place for {case}; work on a copy "
                    f"(e.g. {key}.clone()) or build a new tensor"
                )
        try:
            if isinstance(expected, torch.Tensor):
                check_result(got, expected, case=case, atol=atol, rtol=rtol, given=(*args, *options.values()))
            else:
                check_equal(got, expected, case=case)
        except AssertionError as error:
            hints = [(mistaken, hint) for mistaken, hint in mistakes  # a mistake that changes this result
                     if _same(got, mistaken, kwargs, positional, atol, rtol)
                     and not _same(expected, mistaken, kwargs, positional, atol, rtol)]
            if len(hints) > 1:  # several mistakes give this result: name the one that explains every case
                hints = [(mistaken, hint) for mistaken, hint in hints
                         if _explains(mistaken, student_fn, cases, positional, substitute, atol, rtol)] or hints
            _fail("; ".join([str(error), *(hint for _, hint in hints[:1])]) + watch.printed)


def call(fn, *args, name=None, case=None, substitute=None, forbidden=(), **kwargs):
    """Call the student's ``fn(*args, **kwargs)`` as a test should, and return its result.

    - What ``fn`` writes to ``sys.stdout`` and ``sys.stderr`` and every warning it
      raises are captured, and shown only if the call fails (nbgrader would score a
      test cell that writes to stderr as 0: a warning or a progress bar must not
      cost a correct answer its points).
    - An exception becomes an ``AssertionError`` naming ``name`` and ``case``, with a
      hint for the common mistakes (an in-place update of a parameter outside
      ``torch.no_grad()``, ...).
    - ``substitute`` binds names of the notebook to trusted functions during the
      call; ``forbidden`` names torch functions it must not use (none by default,
      see :func:`check_no_delegation`).

    >>> import warnings
    >>> def noisy(x):
    ...     print("working...")
    ...     warnings.warn("a library warning")
    ...     return x + 1
    >>> call(noisy, 1)
    2
    >>> call(lambda: 1 / 0, name="ratio", case="x 0")
    Traceback (most recent call last):
    ...
    AssertionError: ratio raised ZeroDivisionError: division by zero for x 0
    """
    __tracebackhide__ = True  # IPython and pytest show the cell's line and the message
    global _last_call
    result = _run_watched(fn, args, kwargs, forbidden=forbidden, substitute=substitute, name=name, case=case)[0]
    _last_call = (result, (*args, *kwargs.values()))
    return result


def check_raises(fn, *args, error=ValueError, name=None, case=None, **kwargs):
    """Assert that the student's ``fn(*args, **kwargs)`` raises ``error``; output captured as in :func:`call`.

    >>> check_raises(lambda d: {"a": 1}[d], "b", name="lookup", case="'b'")
    Traceback (most recent call last):
    ...
    AssertionError: lookup should raise ValueError for 'b', not KeyError: 'b'
    """
    __tracebackhide__ = True  # IPython and pytest show the cell's line and the message
    name = name or getattr(fn, "__name__", "your function")
    try:
        call(fn, *args, name=name, case=case, **kwargs)
    except AssertionError as failure:
        cause = failure.__cause__
        if isinstance(cause, error):
            return
        got = f"not {_raised(cause)}" if cause is not None else f"but: {failure}"
        _fail(f"{name} should raise {error.__name__} for {case}, {got}")
    _fail(f"{name} should raise {error.__name__} for {case}; it returned a result")


def check_no_delegation(fn, *args, forbidden=DELEGATION, substitute=None, name=None, case=None,
                        **kwargs):
    """Call ``fn(*args, **kwargs)`` and return its result, failing if it delegates.

    Delegating means calling a torch function named in ``forbidden`` (by default
    every convolution, ``unfold`` and ``fold``) or any function of :mod:`convlab`.
    Otherwise the same as :func:`call`: output captured, an exception becomes an
    ``AssertionError`` naming the case.

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
    with _Captured() as printed, _substituted(fn, substitute, watch), watch.active():
        try:
            result = fn(*args, **kwargs)
        except Exception as error:
            if not watch.found:  # a delegation is the message worth reading
                _fail(f"{name} raised {_raised(error)}{where}{_hint(error)}{printed.text()}", cause=error)
    watch.printed = printed.text()
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


@contextlib.contextmanager
def explained(mistakes, got, *args, **kwargs):
    """Add to a check that fails inside the block the hint of the known mistake that computes ``got``.

    For values that are not one function's result (a parameter updated in place, the
    trained weights and the losses of a loop): ``mistakes`` as in :func:`check_against`,
    each function called with ``*args, **kwargs`` (tensors cloned) and returning what the
    mistaken code gives for ``got``, a tensor or a tuple or list of tensors and numbers,
    compared entry by entry with the tolerances of :func:`check_result`.

    >>> p = torch.tensor([0.9])
    >>> with explained([(lambda v: v - 0.1, "the step is not in place")], p, torch.tensor([1.0])):
    ...     check_result(p, torch.tensor([0.8]), case="p")
    Traceback (most recent call last):
    ...
    AssertionError: wrong values for p: at (0,) expected 0.8, got 0.9 (max abs error 0.1); the step is not in place
    """
    __tracebackhide__ = True  # IPython and pytest show the cell's line and the message
    try:
        yield
    except AssertionError as error:
        for mistaken, hint in mistakes:
            try:
                with _Captured():
                    value = mistaken(*map(_copy, args), **{k: _copy(v) for k, v in kwargs.items()})
            except Exception:  # a mistake that does not apply to these inputs
                continue
            if _agree(got, value):
                _fail(f"{error}; {hint}")
        raise


def _agree(got, value, atol=1e-5, rtol=1e-4):
    """Whether ``got`` equals ``value`` entry by entry (tensors, numbers, and tuples or lists of them)."""
    if isinstance(value, (tuple, list)):
        return (isinstance(got, (tuple, list)) and len(got) == len(value)
                and all(_agree(a, b, atol, rtol) for a, b in zip(got, value)))
    try:
        a = torch.as_tensor(got.detach() if isinstance(got, torch.Tensor) else got, dtype=torch.float64)
        b = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=rtol))


def layer_gradients(layer, X):
    """Return ``(layer(X), weight.grad, bias.grad)`` after back-propagating ``sum(layer(X) ** 2)``.

    For a test of a student's layer: called through :func:`call`, it runs the layer's
    forward and backward pass from zero gradients and returns what a check compares.

    >>> import convlab
    >>> layer = convlab.Conv2D((1, 2))
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[1.0, -1.0]]))
    >>> Y, dweight, dbias = layer_gradients(layer, torch.tensor([[1.0, 3.0]]))
    >>> Y.tolist(), dweight.tolist(), dbias.tolist()
    ([[-2.0]], [[-4.0, -12.0]], [-4.0])
    """
    for p in (layer.weight, layer.bias):
        p.grad = None
    Y = layer(X)
    Y.pow(2).sum().backward()
    return Y.detach(), layer.weight.grad, layer.bias.grad


def run_tests(notebook, namespace):
    """Run the test cells of the notebook file ``notebook`` in ``namespace``; one dict per graded part.

    Each dict has ``part`` (the grade id), ``points``, ``state`` (``'passed'``, ``'failed'`` or
    ``'graded by hand'``), ``message`` (the whole message of a failure, else ``''``) and
    ``hidden`` (the cell says that hidden tests check more when the notebook is graded).
    What the cells print is captured; the student's functions are those of ``namespace``.
    """
    import json

    with open(notebook, encoding="utf-8") as file:
        cells = json.load(file)["cells"]
    parts = []
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade"):
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        part = dict(part=meta.get("grade_id", "?"), points=meta.get("points", 0), message="",
                    hidden="hidden" in source.split("\n", 1)[0].lower())
        if meta.get("solution") or cell["cell_type"] != "code":
            parts.append(dict(part, state="graded by hand"))
            continue
        try:
            with _Captured():
                exec(compile(source, f"<test cell {part['part']}>", "exec"), namespace)
        except AssertionError as error:
            parts.append(dict(part, state="failed", message=str(error) or "AssertionError"))
        except Exception as error:
            message = f"the test cell raised {_raised(error)}"
            if isinstance(error, NameError):
                message += ("; run the cell that defines it first (or Kernel > Restart & Run All), "
                            "and keep every name the notebook gives you")
            parts.append(dict(part, state="failed", message=message))
        else:
            parts.append(dict(part, state="passed"))
    return parts


def summary(notebook, namespace=None):
    """Run every visible test of ``notebook`` again and print where each part stands, before you hand it in.

    The last cell of each assignment calls it with the notebook's file name: it runs the
    test cells with the functions as the kernel has them now (so run every cell first),
    and prints one line per part, passed or failed with its points and the first line of
    its message, the parts graded by hand, then the failures' messages in full. Nothing
    runs while nbgrader grades or validates the notebook (its tests run anyway).
    """
    if os.environ.get("NBGRADER_EXECUTION"):   # nbgrader sets it; so do classgrade's sandboxes
        print("summary: skipped while the notebook is graded (every test cell runs anyway)")
        return
    if namespace is None:
        namespace = sys._getframe(1).f_globals  # the notebook's names, in a Jupyter cell
    if not os.path.exists(notebook):  # a downloaded copy may be renamed, e.g. "cross_correlation (1).ipynb"
        import glob

        stem = os.path.splitext(os.path.basename(notebook))[0]
        found = sorted(glob.glob(os.path.join(os.path.dirname(notebook), glob.escape(stem) + "*.ipynb")))
        if len(found) != 1:
            print(f"summary: cannot find the notebook {notebook!r} in {os.getcwd()}; give its file name: "
                  f"grading.summary('your file.ipynb')")
            return
        notebook = found[0]
    parts = run_tests(notebook, namespace)
    auto = [p for p in parts if p["state"] != "graded by hand"]
    earned = sum(p["points"] for p in auto if p["state"] == "passed")
    total = sum(p["points"] for p in auto)
    by_hand = sum(p["points"] for p in parts if p["state"] == "graded by hand")
    print(f"{os.path.basename(notebook)}: {sum(p['state'] == 'passed' for p in auto)} of {len(auto)} tests "
          f"pass, {earned} of {total} points, on the visible tests; {by_hand} more points are graded by hand.")
    width = max((len(p["part"]) for p in parts), default=0)
    for p in parts:
        points = f"{p['points']:g} point{'s' if p['points'] != 1 else ''}"
        line = f"  {p['state']:<15} {points:<10} {p['part']:<{width}}"
        if p["state"] == "failed":
            line += "  " + p["message"].splitlines()[0]
        elif p["state"] == "graded by hand":
            line += "  your written answer, read by the instructor"
        elif p["hidden"]:
            line += "  (hidden tests check more cases when it is graded)"
        print(line.rstrip())
    failed = [p for p in parts if p["state"] == "failed"]
    if failed:
        print("\nThe messages in full:")
        for p in failed:
            print(f"{p['part']}: {p['message']}")
    else:
        print("Every visible test passes. Hidden tests check more cases when the notebook is graded.")


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


def _same(got, mistake, kwargs, positional, atol, rtol):
    """Whether a wrong result ``got`` equals what the function ``mistake`` computes on the case."""
    try:
        args, options = _call_args(kwargs, positional)
        mistaken = mistake(*args, **options)
        if isinstance(mistaken, torch.Tensor):
            return (isinstance(got, torch.Tensor) and got.shape == mistaken.shape
                    and torch.allclose(got.detach().double(), mistaken.detach().double(), atol=atol, rtol=rtol))
        return tuple(got) == tuple(mistaken)
    except Exception:  # a mistake that cannot be computed for this case is not this one
        return False


def _raising_mistake(error, mistakes, kwargs, positional):
    """The hint of the first mistake that raises ``error`` again (same type and text) on this case, or None."""
    if error is None or not mistakes:
        return None
    for mistaken, hint in mistakes:
        args, options = _call_args(kwargs, positional)
        try:
            with _Captured():
                mistaken(*args, **options)
        except Exception as again:
            if type(again) is type(error) and str(again) == str(error):
                return hint
    return None


def _explains(mistake, student_fn, cases, positional, substitute, atol, rtol):
    """Whether ``mistake`` computes what ``student_fn`` returns on every case (output captured)."""
    for kwargs in cases:
        args, options = _call_args(kwargs, positional)
        try:
            got, _ = _run_watched(student_fn, args, options, forbidden=(), substitute=substitute, name=None, case=None)
        except AssertionError:
            return False
        if not _same(got, mistake, kwargs, positional, atol, rtol):
            return False
    return True


# (result, inputs) of the last call(): check_result's hint for an integer result reads the inputs.
_last_call = None


def _integer_hint(got, given):
    """The hint for an integer tensor where floats are expected, from the inputs that gave it."""
    if given is None and _last_call is not None and _last_call[0] is got:
        given = _last_call[1]
    if given is None:
        return ("create it as a float tensor: dtype=X.dtype in torch.zeros(...) for a result computed from X, "
                "1.0 (not 1) in torch.tensor([...])")
    if any(isinstance(v, torch.Tensor) and v.is_floating_point() for v in given):
        return ("an integer tensor (dtype=int, or torch.zeros_like of an integer tensor) cannot hold these values: "
                "create the result with the input's dtype, torch.zeros(..., dtype=X.dtype)")
    return "write the numbers as floats (1.0, not 1) or pass dtype= to torch.tensor"


# Exceptions whose text does not say what to change, by a piece of that text.
_HINTS = (
    ("leaf Variable that requires grad is being used in an in-place operation",
     "update parameters inside `with torch.no_grad():`, so that autograd does not record the update"),
    ("Can't call numpy() on Tensor that requires grad",
     "keep the computation in torch (no .numpy()), or .detach() a tensor you only read"),
    ("does not require grad and does not have a grad_fn",
     "the result is not connected to the parameters: compute it with torch operations on them, "
     "not on .data, .detach() or .item()"),
    ("expected scalar type", "give every tensor of the computation the same dtype (e.g. K.to(X.dtype))"),
)


def _hint(error):
    if isinstance(error, NotImplementedError):
        return ("; this function is not written yet: replace `raise NotImplementedError()` under "
                "`# YOUR CODE HERE` with your code")
    text = str(error)
    return "".join(f"; {hint}" for piece, hint in _HINTS if piece in text)


def _raised(error):
    """``'KeyError: 'b''``, or the type alone for an exception without a message.

    >>> _raised(NotImplementedError())
    'NotImplementedError'
    """
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _Captured:
    """Capture stdout, stderr and warnings while the student's code runs; ``text()`` for a message."""

    LIMIT = 600  # characters of captured output quoted in a message

    def __enter__(self):
        self._out = io.StringIO()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(self._out))
        self._stack.enter_context(contextlib.redirect_stderr(self._out))
        self._warnings = self._stack.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc_info):
        return self._stack.__exit__(*exc_info)

    def text(self):
        """What was printed and warned, quoted after the message, or ``''``."""
        lines = self._out.getvalue().rstrip()
        warned = "\n".join(f"{w.category.__name__}: {w.message}" for w in self._warnings)
        printed = "\n".join(part for part in (lines, warned) if part)
        if not printed:
            return ""
        if len(printed) > self.LIMIT:
            printed = printed[: self.LIMIT] + " [...]"
        return f"\nIt printed:\n{printed}"


def _dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


def _type_name(value):
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _copy(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


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
        self.printed = ""  # what the watched call printed or warned, for a message

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
