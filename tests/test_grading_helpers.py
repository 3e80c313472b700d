"""convlab.grading: the messages students read, and the checks nbgrader relies on."""

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convlab
from convlab import grading


def test_describe_names_shapes_dtypes_and_options():
    X, K = torch.zeros(8, 8), torch.zeros(3, 5, dtype=torch.float64)
    assert grading.describe(X=X, K=K, padding=(0, 1), stride=(3, 4)) == (
        "X 8x8, K 3x5 float64, padding (0, 1), stride (3, 4)"
    )


@pytest.mark.parametrize(
    "got, message",
    [
        (np.zeros((2, 2)), "expected a torch.Tensor, got numpy.ndarray for C"),
        ([[0.0]], "expected a torch.Tensor, got list for C"),
        (torch.zeros(3, 3), "expected shape (2, 2), got (3, 3) for C"),
        (torch.tensor([[1.0, 2.0], [3.0, 5.0]]), "wrong values for C: at (1, 1) expected 4, got 5 (max abs error 1)"),
        (torch.tensor([[1.0, 2.0], [3.0, float("nan")]]), "wrong values for C: at (1, 1) expected 4, got nan"),
    ],
)
def test_check_result_says_what_is_wrong(got, message):
    with pytest.raises(AssertionError) as info:
        grading.check_result(got, torch.tensor([[1.0, 2.0], [3.0, 4.0]]), case="C")
    assert str(info.value).startswith(message)


def test_check_result_tolerates_rounding_and_wants_the_dtype():
    expected = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    grading.check_result(expected + 1e-6, expected, case="C")
    grading.check_result(expected.requires_grad_() * 1, expected, case="C")
    grading.check_result(expected.double() + 1e-7, expected, case="C", dtype=False)
    with pytest.raises(AssertionError, match="expected dtype float32, got float64 for C; keep the dtype"):
        grading.check_result(expected.double(), expected, case="C")
    with pytest.raises(AssertionError, match=r"expected dtype float32, got int64 for C; create it as a float tensor"):
        grading.check_result(expected.long(), expected, case="C")


def test_an_integer_result_is_told_what_made_it_integer():
    """Typed integers in torch.tensor and an integer result of a float input are different mistakes."""
    def kernel(direction):
        return torch.tensor([[-1, 1]])

    def corr2d(X, K):  # torch.zeros(..., dtype=int)
        Y = torch.zeros(X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1, dtype=int)
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i:i + K.shape[0], j:j + K.shape[1]] * K).sum()
        return Y

    floats = "write the numbers as floats (1.0, not 1)"
    input_dtype = "create the result with the input's dtype, torch.zeros(..., dtype=X.dtype)"
    with pytest.raises(AssertionError) as info:
        grading.check_result(grading.call(kernel, "vertical"), torch.tensor([[-1.0, 1.0]]), case="c")
    assert floats in str(info.value) and input_dtype not in str(info.value)
    X, K = torch.arange(9.0).reshape(3, 3), torch.ones(2, 2)
    for check in (lambda: grading.check_result(grading.call(corr2d, X, K), convlab.corr2d(X, K), case="c"),
                  lambda: grading.check_against(corr2d, convlab.corr2d, [dict(X=X, K=K)])):
        with pytest.raises(AssertionError) as info:
            check()
        assert input_dtype in str(info.value) and floats not in str(info.value)


def test_a_function_not_written_yet_says_so():
    def corr2d(X, K):
        raise NotImplementedError()

    with pytest.raises(AssertionError) as info:
        grading.check_against(corr2d, convlab.corr2d, grading.random_cases(0, 1))
    assert str(info.value) == ("corr2d raised NotImplementedError for X 5x7, K 2x4; this function is not written "
                               "yet: replace `raise NotImplementedError()` under `# YOUR CODE HERE` with your code")


def test_check_raises_wants_that_error_and_nothing_else(capsys):
    def kernel(direction):
        print("looking up", direction)  # captured: a raise check passes without output
        table = {"vertical": torch.ones(1, 2)}
        if direction not in table:
            raise ValueError(f"unknown direction {direction!r}")
        return table[direction]

    grading.check_raises(kernel, "diag", case="'diag'")
    assert capsys.readouterr() == ("", "")
    with pytest.raises(AssertionError, match="kernel should raise ValueError for 'vertical'; it returned a result"):
        grading.check_raises(kernel, "vertical", case="'vertical'")
    with pytest.raises(AssertionError, match="should raise ValueError for 'x', not KeyError: 'x'"):
        grading.check_raises(lambda d: {}[d], "x", case="'x'")
    grading.check_raises(lambda d: {}[d], "x", error=KeyError, case="'x'")


def test_check_equal_wants_ints():
    grading.check_equal((2, 3), (2, 3), case="C")
    grading.check_equal([np.int64(2), 3], (2, 3), case="C")
    with pytest.raises(AssertionError, match=r"expected \(2, 3\), got \(3, 3\) for C"):
        grading.check_equal((3, 3), (2, 3), case="C")
    with pytest.raises(AssertionError, match="expected a tuple of 2 ints, got 5 for C"):
        grading.check_equal(5, (2, 3), case="C")


def loops(X, K):
    kh, kw = K.shape
    Y = torch.zeros(X.shape[0] - kh + 1, X.shape[1] - kw + 1, dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + kh, j : j + kw] * K).sum()
    return Y


def test_check_against_passes_a_correct_function_on_generated_cases():
    grading.check_against(loops, convlab.corr2d, grading.random_cases(0, 10))


def test_check_against_catches_in_place_modification():
    def in_place(X, K):
        Y = loops(X, K)
        X.zero_()
        return Y

    with pytest.raises(AssertionError, match="in_place modified its input X in place for X 5x7, K 2x4"):
        grading.check_against(in_place, convlab.corr2d, grading.random_cases(0, 1))


def test_check_against_turns_exceptions_into_messages():
    def broken(X, K):
        return X[100]

    with pytest.raises(AssertionError, match="broken raised IndexError: .* for X 5x7, K 2x4"):
        grading.check_against(broken, convlab.corr2d, grading.random_cases(0, 1))


def by_torch(X, K):
    return F.conv2d(X[None, None], K[None, None])[0, 0]


def by_unfold_function(X, K):
    cols = F.unfold(X[None, None], K.shape)
    return (K.reshape(1, -1) @ cols[0]).reshape(X.shape[0] - K.shape[0] + 1, -1)


def by_tensor_unfold(X, K):
    return (X.unfold(0, K.shape[0], 1).unfold(1, K.shape[1], 1) * K).sum((-2, -1))


def by_module(X, K):
    layer = torch.nn.Conv2d(1, 1, K.shape, bias=False, dtype=X.dtype)
    with torch.no_grad():
        layer.weight.copy_(K[None, None])
    return layer(X[None, None])[0, 0]


def by_convlab(X, K):
    import convlab as cl

    return cl.corr2d_loop(X, K)


@pytest.mark.parametrize(
    "fn, culprit",
    [(by_torch, "torch conv2d"), (by_unfold_function, "torch unfold"), (by_tensor_unfold, "torch unfold"),
     (by_module, "torch conv2d"), (by_convlab, "convlab.corr2d_loop")],
)
def test_delegation_is_caught(fn, culprit):
    with pytest.raises(AssertionError, match=f"{fn.__name__} calls {culprit} for .*earns no points"):
        grading.check_against(fn, convlab.corr2d, grading.random_cases(0, 1))
    grading.check_against(fn, convlab.corr2d, grading.random_cases(0, 1), forbidden=())


def delegates_then_raises(X, K):
    torch.nn.functional.conv2d(X[None, None], K[None, None])
    raise IndexError("index 9 is out of bounds")


def test_a_delegation_is_reported_before_the_error_it_led_to():
    with pytest.raises(AssertionError, match="delegates_then_raises calls torch conv2d for .*earns no points"):
        grading.check_against(delegates_then_raises, convlab.corr2d, grading.random_cases(0, 1))


def test_check_few_calls_fails_on_errors_and_delegation_and_skips_trusted_calls():
    case = dict(X=torch.ones(5, 5), K=torch.ones(2, 2))
    with pytest.raises(AssertionError, match="delegates_then_raises calls torch conv2d for X 5x5, K 2x2"):
        grading.check_few_calls(delegates_then_raises, case, at_most=100)

    def broken(X, K):
        return X[9]

    with pytest.raises(AssertionError, match="broken raised IndexError: .* for X 5x5, K 2x2"):
        grading.check_few_calls(broken, case, at_most=100)
    # my_conv2d's own call (flip) counts; the calls of a trusted corr2d do not, a student's do
    globals()["corr2d"] = lambda X, K: X * 1
    try:
        grading.check_few_calls(my_conv2d, case, at_most=1, substitute={"corr2d": convlab.corr2d})
        with pytest.raises(AssertionError, match="my_conv2d made 2 torch calls for X 5x5, K 2x2; at most 1"):
            grading.check_few_calls(my_conv2d, case, at_most=1)
    finally:
        del globals()["corr2d"]


def my_conv2d(X, K):
    return corr2d(X, K.flip(0, 1))  # noqa: F821 (bound by the test below, as in a notebook)


def test_substitute_binds_trusted_references_and_restores_the_namespace():
    globals()["corr2d"] = lambda X, K: X  # a student's wrong corr2d
    try:
        grading.check_against(my_conv2d, convlab.conv2d, grading.random_cases(1, 3),
                              substitute={"corr2d": convlab.corr2d})
        with pytest.raises(AssertionError, match="expected shape"):
            grading.check_against(my_conv2d, convlab.conv2d, grading.random_cases(1, 3))
    finally:
        del globals()["corr2d"]
    assert "corr2d" not in globals()


def test_count_torch_calls_separates_vectorized_from_per_pixel():
    def per_pixel(X):
        Y = torch.zeros_like(X)
        for i in range(X.shape[0]):
            for j in range(X.shape[1]):
                Y[i, j] = X[i, j]
        return Y

    small, large = torch.ones(4, 4), torch.ones(16, 16)
    assert grading.count_torch_calls(lambda X: X.clone() * 2, small)[1] == grading.count_torch_calls(
        lambda X: X.clone() * 2, large)[1] == 2
    assert grading.count_torch_calls(per_pixel, large)[1] >= 2 * 16 * 16


def test_random_cases_are_seeded_and_cover_the_edge_cases():
    first, again = grading.random_cases(3, padding=True, stride=True), grading.random_cases(3, padding=True, stride=True)
    assert [grading.describe(**c) for c in first] == [grading.describe(**c) for c in again]
    assert all(torch.equal(a["X"], b["X"]) and torch.equal(a["K"], b["K"]) for a, b in zip(first, again))
    assert [grading.describe(**c) for c in first] != [grading.describe(**c) for c in grading.random_cases(4, padding=True, stride=True)]

    def pairs(v):
        return (v, v) if isinstance(v, int) else v

    kernels = [tuple(c["K"].shape) for c in first]
    assert any(c["X"].shape[0] != c["X"].shape[1] for c in first)
    assert any(kh % 2 == 0 or kw % 2 == 0 for kh, kw in kernels)
    assert any(c["X"].dtype == torch.float64 for c in first)
    assert any(max(pairs(c["stride"])) > max(c["K"].shape) for c in first)
    assert any(max(pairs(c["padding"])) > max(c["K"].shape) for c in first)
    for c in first:  # every case is valid for the reference
        convlab.corr2d(c["X"], c["K"], padding=c["padding"], stride=c["stride"])


def test_call_keeps_what_the_code_prints_and_warns_out_of_the_cell(capsys):
    """nbgrader scores a cell that writes to stderr as 0: nothing of a passing call reaches it."""
    import warnings

    import tqdm

    def noisy(X):
        print("working")
        print("progress", file=sys.stderr)
        warnings.warn("a library warning")
        torch.tensor(X)  # torch's copy-construct UserWarning
        for _ in tqdm.tqdm(range(3)):
            pass
        return X.clone()

    for _ in range(2):  # a warning shown once per line must not show the second time either
        grading.check_against(noisy, lambda X: X.clone(), [dict(X=torch.ones(2, 3))], positional=("X",),
                              forbidden=())
        grading.call(noisy, torch.ones(2, 2))
    assert capsys.readouterr() == ("", "")


def test_a_failing_call_shows_what_it_printed():
    def loud(X):
        print("shape of X:", tuple(X.shape))
        return X[:1]

    with pytest.raises(AssertionError) as info:
        grading.check_against(loud, lambda X: X.clone(), [dict(X=torch.ones(2, 3))], positional=("X",))
    message = str(info.value)
    assert message.splitlines()[0] == "expected shape (2, 3), got (1, 3) for X 2x3"
    assert message.splitlines()[1:] == ["It printed:", "shape of X: (2, 3)"]


def test_call_hints_at_the_in_place_update_of_a_leaf():
    def step(p):
        p -= 0.1 * p.grad

    p = torch.ones(2, requires_grad=True)
    p.grad = torch.ones(2)
    with pytest.raises(AssertionError, match=r"sgd raised RuntimeError: a leaf Variable .* for p 2; "
                                             r"update parameters inside `with torch.no_grad\(\):`"):
        grading.call(step, p, name="sgd", case="p 2")


def test_known_mistakes_and_transposes_are_named():
    X, K = torch.arange(12.0).reshape(3, 4), torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    forgot_flip = (convlab.corr2d, "this is the cross-correlation: flip K")
    with pytest.raises(AssertionError, match="; this is the cross-correlation: flip K$"):
        grading.check_against(convlab.corr2d, convlab.conv2d, [dict(X=X, K=K)], forbidden=(),
                              mistakes=[forgot_flip])
    with pytest.raises(AssertionError) as info:  # a mistake that is not this one adds no hint
        grading.check_against(lambda X, K: convlab.corr2d(X, K) + 1, convlab.conv2d, [dict(X=X, K=K)],
                              forbidden=(), mistakes=[forgot_flip])
    assert "flip" not in str(info.value)
    with pytest.raises(AssertionError, match=r"expected shape \(3, 4\), got \(4, 3\) .*rows and columns are swapped"):
        grading.check_result(X.T, X, case="X 3x4")
    square = torch.arange(9.0).reshape(3, 3)
    with pytest.raises(AssertionError, match="the result is the transpose of the expected one"):
        grading.check_result(square.T, square, case="X 3x3")


def test_of_mistakes_that_agree_on_the_failing_case_the_one_that_explains_every_case_is_named():
    def shape(formula):
        return lambda i, k, p: (formula(i, k, p),)

    off_by_one = (shape(lambda i, k, p: i + 2 * p - k), "add 1")
    total = (shape(lambda i, k, p: i + p - k + 1), "padding is per side")
    # i 5, k 3, p 1: both mistakes give 4; i 6, k 3, p 2 tells them apart (5 and 6).
    cases = [dict(i=5, k=3, p=1), dict(i=6, k=3, p=2)]
    for mistake in (off_by_one, total):
        with pytest.raises(AssertionError) as info:
            grading.check_against(mistake[0], shape(lambda i, k, p: i + 2 * p - k + 1), cases,
                                  positional=("i", "k", "p"), mistakes=[off_by_one, total])
        assert str(info.value).startswith("expected (5,), got (4,) for i 5, k 3, p 1")
        assert str(info.value).endswith(f"; {mistake[1]}")

    # A dtype mistake on a case where a known mistake changes nothing gets no hint of that mistake.
    with pytest.raises(AssertionError) as info:
        grading.check_against(lambda i, k, p: (float(i - k + 1),), shape(lambda i, k, p: i + 2 * p - k + 1),
                              [dict(i=5, k=3, p=0)], positional=("i", "k", "p"), mistakes=[total])
    assert "per side" not in str(info.value)


def _pool_cases(mode):
    g = torch.Generator().manual_seed(5)
    return [dict(X=grading.random_tensor(g, 5, 7), pool_size=(2, 3), mode=mode),
            dict(X=grading.random_tensor(g, 6, 7) - 2, pool_size=(2, 4), mode=mode, padding=(1, 2)),
            dict(X=grading.random_tensor(g, 7, 4) - 2, pool_size=3, mode=mode, padding=1, stride=2)]


_g = torch.Generator().manual_seed(4)
_XK = [dict(X=grading.random_tensor(_g, 5, 6), K=grading.random_tensor(_g, 2, 3))]
# Each list of convlab.mistakes with its reference and cases like those of its exercise.
KNOWN_MISTAKES = {
    "CORR2D": (convlab.corr2d, _XK, ("X", "K")),
    "CONV2D": (convlab.conv2d, _XK, ("X", "K")),
    "CORR2D_MULTI_IN_OUT_1X1": (convlab.corr2d_multi_in_out_1x1,
                                [dict(X=grading.random_tensor(_g, 3, 4, 5), K=grading.random_tensor(_g, 2, 3, 1, 1))],
                                ("X", "K")),
    "OUTPUT_SHAPE": (convlab.output_shape,
                     [dict(input_hw=(8, 8), kernel_hw=(3, 5), padding=(0, 1), stride=(3, 4)),
                      dict(input_hw=(5, 5), kernel_hw=(3, 3), padding=1, stride=1),
                      dict(input_hw=(7, 4), kernel_hw=(2, 2), padding=0, stride=2),
                      dict(input_hw=(6, 9), kernel_hw=(1, 4), padding=(2, 0), stride=(1, 3))],
                     ("input_hw", "kernel_hw")),
    "PAD2D": (convlab.pad2d, [dict(X=torch.arange(1.0, 7.0).reshape(2, 3), padding=(1, 2))], ("X", "padding")),
    "EDGE_KERNEL": (convlab.kernels.edge_kernel, [dict(direction=d) for d in ("vertical", "horizontal")],
                    ("direction",)),
    "POOL2D": (convlab.pool2d, _pool_cases("max") + _pool_cases("avg"), ("X", "pool_size")),
    # the lecture's loops and loops that only skip outputs agree where no output is skipped but the first
    # (stride >= output size): the last case tells them apart.
    "CORR2D_PADDING_STRIDE": (convlab.corr2d, grading.random_cases(0, 2, padding=True, stride=True) + [
        dict(X=torch.arange(20.0).reshape(4, 5), K=torch.tensor([[1.0, 2.0], [0.0, -1.0]]), padding=1, stride=2)],
        ("X", "K")),
    "EDGE_MAGNITUDE": (lambda X: torch.sqrt(convlab.corr2d(X, convlab.kernels.DIFFERENCE_X)[:-1] ** 2
                                            + convlab.corr2d(X, convlab.kernels.DIFFERENCE_Y)[:, :-1] ** 2),
                       [dict(X=convlab.stripes()), dict(X=grading.random_tensor(_g, 5, 7))], ("X",)),
    "CONV_COST": (convlab.conv_cost,
                  [dict(input_hw=(8, 8), c_in=4, c_out=6, kernel_size=3, padding=1, stride=1, groups=2, bias=True),
                   dict(input_hw=(9, 7), c_in=3, c_out=5, kernel_size=(3, 2), padding=0, stride=2, groups=1,
                        bias=False)],
                  ("input_hw", "c_in", "c_out", "kernel_size")),
    "RECEPTIVE_FIELD": (convlab.receptive_field,
                        [dict(layers=[dict(kernel_size=3, stride=2), dict(kernel_size=3)]),
                         dict(layers=[dict(kernel_size=(5, 3)), dict(kernel_size=2, stride=2),
                                      dict(kernel_size=3, dilation=2)])],
                        ("layers",)),
    "CORR2D_GROUPED": (convlab.corr2d_grouped,
                       [dict(X=grading.random_tensor(_g, 4, 5, 5), K=grading.random_tensor(_g, 6, 2, 3, 3), groups=2)],
                       ("X", "K")),
}
# The lists for values that are not one call's result, explained with grading.explained: each with the
# reference and inputs (called like the mistakes).
EXPLAINED = {
    "SGD": (lambda values, grads, lr, weight_decay: [v - lr * (g + weight_decay * v) for v, g in zip(values, grads)],
            dict(values=[torch.tensor([1.0, -2.0]), torch.tensor([0.5])], grads=[torch.tensor([0.5, 0.5]),
                 torch.tensor([-1.0])], lr=0.1, weight_decay=0.5)),
    "TRAIN": (lambda X, Y, kernel_size, **options: (lambda layer, losses: (layer.weight, layer.bias, losses))(
                  *convlab.fit_kernel(X, Y, kernel_size, progress=False, **options)),
              dict(X=convlab.stripes(), Y=convlab.corr2d(convlab.stripes(), torch.tensor([[-1.0, 1.0]])),
                   kernel_size=(1, 2), lr=0.01, num_epochs=30, weight_decay=0.5, seed=0)),
}


def test_every_list_of_known_mistakes_is_checked_here():
    from convlab import mistakes
    assert set(KNOWN_MISTAKES) | set(EXPLAINED) == set(mistakes.__all__)


@pytest.mark.parametrize("name", sorted(EXPLAINED))
def test_each_explained_mistake_is_named_when_a_student_makes_it(name):
    """The values a mistake gives, checked against the reference's inside grading.explained, get its hint only."""
    from convlab import mistakes
    reference, inputs = EXPLAINED[name]
    expected = reference(**inputs)
    for mistaken, hint in getattr(mistakes, name):
        got = mistaken(**inputs)
        with pytest.raises(AssertionError) as info:
            with grading.explained(getattr(mistakes, name), got, **inputs):
                for mine, theirs in zip(got, expected):
                    grading.check_result(torch.as_tensor(mine), torch.as_tensor(theirs).detach(), case="c")
        assert str(info.value).endswith(f"; {hint}"), str(info.value)
    with grading.explained(getattr(mistakes, name), expected, **inputs):  # right values: nothing to explain
        pass


@pytest.mark.parametrize("name", sorted(KNOWN_MISTAKES))
def test_each_known_mistake_is_named_when_a_student_makes_it(name):
    """Graded as a student's answer, each mistake fails with its own hint, not another's."""
    from convlab import mistakes
    reference, cases, positional = KNOWN_MISTAKES[name]
    known = getattr(mistakes, name)
    for mistaken, hint in known:
        def student(*args, mistaken=mistaken, **kwargs):
            return mistaken(*args, **kwargs)
        applies = []  # the cases where the mistake applies and changes the result
        for case in cases:
            try:
                mistaken(*(case[k] for k in positional), **{k: v for k, v in case.items() if k not in positional})
            except ValueError:  # a mistake of another mode or option
                continue
            except Exception:  # the mistaken code raises here: the student's would raise the same
                applies.append(case)
                continue
            try:
                grading.check_against(mistaken, reference, [case], positional=positional, forbidden=())
            except AssertionError:
                applies.append(case)
        assert applies, f"{hint!r} gives the right answer on every case"
        with pytest.raises(AssertionError) as info:
            grading.check_against(student, reference, applies, positional=positional, forbidden=(),
                                  mistakes=known)
        assert str(info.value).endswith(f"; {hint}"), str(info.value)
