"""Images used throughout the course. Nothing is downloaded."""

import numpy as np
import torch


def stripes():
    """The lecture's 6x8 image: white (1) with a black (0) band in columns 2 to 5.

    Examples
    --------
    >>> stripes()[0]
    tensor([1., 1., 0., 0., 0., 0., 1., 1.])
    """
    X = torch.ones(6, 8)
    X[:, 2:6] = 0
    return X


def photo():
    """A real grayscale photo, ``(H, W)`` float32 in ``[0, 1]``.

    Grace Hopper's portrait from the sample data bundled with matplotlib,
    converted to luminance with the ITU-R BT.601 weights.

    Examples
    --------
    >>> X = photo()
    >>> X.shape, X.dtype
    (torch.Size([600, 512]), torch.float32)
    >>> 0 <= float(X.min()) < float(X.max()) <= 1
    True
    """
    from matplotlib import cbook, image  # imported here: most users of convlab never need it

    with cbook.get_sample_data("grace_hopper.jpg") as file:
        rgb = image.imread(file, format="jpg").astype(np.float32) / 255.0
    gray = rgb[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(gray))


def digits():
    """The 1,797 handwritten digits of scikit-learn (UCI's optical digits), 8x8 pixels each.

    Shipped inside scikit-learn: nothing is downloaded.

    Returns
    -------
    images : torch.Tensor
        Shape ``(1797, 1, 8, 8)``, float32 in ``[0, 1]`` (the 17 grey levels 0 to 16, divided by 16).
    labels : torch.Tensor
        Shape ``(1797,)``, int64, the digit 0 to 9 each image shows.

    Examples
    --------
    >>> images, labels = digits()
    >>> images.shape, labels[:5].tolist()
    (torch.Size([1797, 1, 8, 8]), [0, 1, 2, 3, 4])
    >>> float(images.min()), float(images.max())
    (0.0, 1.0)
    """
    from sklearn.datasets import load_digits  # imported here: most users of convlab never need it

    data = load_digits()
    images = torch.from_numpy(data.images.astype(np.float32) / 16.0)[:, None]
    return images, torch.from_numpy(data.target.astype(np.int64))
