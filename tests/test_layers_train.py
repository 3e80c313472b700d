"""Conv2D, fit_kernel, the kernels and the data."""

import pytest
import torch
import torch.nn.functional as F
from strategies import tensors

import convlab
from convlab import kernels


def test_conv2d_layer_forward_and_gradients_match_torch():
    torch.manual_seed(0)
    layer = convlab.Conv2D((3, 2), padding=1, stride=(2, 1))
    X = tensors(0, 7, 6)
    reference = torch.nn.Conv2d(1, 1, (3, 2), padding=1, stride=(2, 1))
    with torch.no_grad():
        reference.weight.copy_(layer.weight[None, None])
        reference.bias.copy_(layer.bias)
    Y, Y_ref = layer(X), reference(X[None, None])[0, 0]
    torch.testing.assert_close(Y, Y_ref, atol=1e-5, rtol=1e-5)
    upstream = tensors(1, *Y.shape)
    (Y * upstream).sum().backward()
    (Y_ref * upstream).sum().backward()
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad[0, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.bias.grad, reference.bias.grad, atol=1e-5, rtol=1e-5)


def test_conv2d_layer_parameters():
    layer = convlab.Conv2D(3)
    assert dict(layer.named_parameters()).keys() == {"weight", "bias"}
    assert layer.weight.shape == (3, 3) and torch.equal(layer.bias, torch.zeros(1))
    assert "kernel_size=(3, 3)" in repr(layer)


def lecture_problem():
    X = convlab.stripes()
    return X, convlab.corr2d(X, kernels.DIFFERENCE_X)


def test_fit_kernel_recovers_the_lecture_kernel():
    X, Y = lecture_problem()
    layer, losses = convlab.fit_kernel(X, Y, (1, 2), num_epochs=60, progress=False)
    assert len(losses) == 60 and losses[-1] < 1e-3 * losses[0]
    torch.testing.assert_close(layer.weight.detach(), kernels.DIFFERENCE_X, atol=5e-3, rtol=0)


def test_fit_kernel_is_reproducible_and_seeded():
    X, Y = lecture_problem()
    first = convlab.fit_kernel(X, Y, (1, 2), num_epochs=5, seed=3, progress=False)
    again = convlab.fit_kernel(X, Y, (1, 2), num_epochs=5, seed=3, progress=False)
    other = convlab.fit_kernel(X, Y, (1, 2), num_epochs=5, seed=4, progress=False)
    assert first[1] == again[1] and first[1] != other[1]


def test_fit_kernel_does_not_touch_the_global_random_state():
    X, Y = lecture_problem()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    convlab.fit_kernel(X, Y, (1, 2), num_epochs=2, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_weight_decay_converges_to_the_regularised_least_squares_solution():
    """The fixed point of SGD with weight decay lam solves (2 A^T A + lam I) theta = 2 A^T y."""
    X, Y = lecture_problem()
    lam = 0.1
    layer, _ = convlab.fit_kernel(X.double(), Y.double(), (1, 2), weight_decay=lam, num_epochs=3000, progress=False)
    A = torch.stack([X[:, :-1].reshape(-1), X[:, 1:].reshape(-1), torch.ones(Y.numel())], dim=1).double()
    theta = torch.linalg.solve(2 * A.T @ A + lam * torch.eye(3, dtype=torch.float64), 2 * A.T @ Y.reshape(-1).double())
    learned = torch.cat([layer.weight.detach().reshape(-1), layer.bias.detach()])
    torch.testing.assert_close(learned, theta, atol=1e-6, rtol=0)
    assert theta[1] < 1 and -theta[0] < 1  # the decay shrinks the kernel towards zero


def test_fit_kernel_on_a_batch():
    X = torch.stack([convlab.stripes(), convlab.stripes().flip(1)])
    Y = torch.stack([convlab.corr2d(x, kernels.DIFFERENCE_X) for x in X])
    layer, losses = convlab.fit_kernel(X, Y, (1, 2), num_epochs=60, lr=0.005, progress=False)
    torch.testing.assert_close(layer.weight.detach(), kernels.DIFFERENCE_X, atol=5e-3, rtol=0)


def test_fit_kernel_shows_a_progress_bar_when_asked(capsys):
    X, Y = lecture_problem()
    convlab.fit_kernel(X, Y, (1, 2), num_epochs=3, progress=True)
    assert "fit_kernel" in capsys.readouterr().err
    convlab.fit_kernel(X, Y, (1, 2), num_epochs=3, progress=False)
    convlab.fit_kernel(X, Y, (1, 2), num_epochs=3)  # not interactive under pytest: no bar
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "name, expected",
    [
        ("SOBEL_X", [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
        ("PREWITT_X", [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]),
        ("LAPLACIAN", [[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
        ("DIFFERENCE_X", [[-1, 1]]),
        ("DIAGONAL", [[-1, 0], [0, 1]]),
    ],
)
def test_kernel_constants(name, expected):
    assert torch.equal(getattr(kernels, name), torch.tensor(expected, dtype=torch.float32))


def test_y_kernels_are_the_transposes():
    for name in ("DIFFERENCE", "SOBEL", "PREWITT"):
        assert torch.equal(getattr(kernels, name + "_Y"), getattr(kernels, name + "_X").T)


def test_edge_kernels_respond_to_a_step_and_ignore_flat_regions():
    step = torch.zeros(8, 8)
    step[:, 4:] = 1.0
    for K in (kernels.SOBEL_X, kernels.PREWITT_X, kernels.DIFFERENCE_X):
        Y = convlab.corr2d(step, K)
        assert Y.min() >= 0 and Y.max() > 0 and Y[:, 0].abs().sum() == 0
        assert torch.count_nonzero(convlab.corr2d(step.T, K)) == 0
    ramp = torch.arange(8.0).expand(8, 8)
    assert torch.count_nonzero(convlab.corr2d(ramp, kernels.LAPLACIAN)) == 0


def test_sobel_on_the_photo_matches_torch():
    X = convlab.photo()
    expected = F.conv2d(X[None, None], kernels.SOBEL_X[None, None], padding=1)[0, 0]
    torch.testing.assert_close(convlab.corr2d(X, kernels.SOBEL_X, padding=1), expected, atol=1e-5, rtol=1e-5)


def test_stripes_is_the_lecture_image():
    X = convlab.stripes()
    assert X.shape == (6, 8) and torch.equal(X.sum(dim=0), torch.tensor([6.0, 6, 0, 0, 0, 0, 6, 6]))
