"""The guided filter's model (``guided.guided_fit``) against He & Sun's formula computed with
OpenCV's box filter (the same reflected borders), on the default radius's own path (r = 1) and
the general one, at sizes with odd and one-sample edges."""
import cv2
import numpy as np
import pytest

from keyer.kernels import guided


def _reference(g, p, r, eps):
    box = lambda x: cv2.boxFilter(x.astype(np.float64), -1, (2 * r + 1, 2 * r + 1),
                                  borderType=cv2.BORDER_REFLECT)
    mg, mp = box(g), box(p)
    a = (box(g * p) - mg * mp) / (box(g * g) - mg * mg + eps)
    return a, mp - a * mg


@pytest.mark.parametrize("r", [1, 2])
@pytest.mark.parametrize("shape", [(37, 53), (4, 1), (1, 6), (2, 2)])
def test_the_model_is_he_and_suns(r, shape):
    rng = np.random.default_rng(7)
    g = rng.random(shape, dtype=np.float32)
    p = (0.6 * g + 0.3 * rng.random(shape, dtype=np.float32)).astype(np.float32)
    eps = np.float32(1e-4)
    a, b = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    scratch = np.zeros((3, 9, shape[1] + 2 * r), np.float32)
    guided.guided_fit(g, p, r, eps, scratch, a, b)
    ra, rb = _reference(g, p, r, float(eps))
    # float32 sums against float64: the slope divides by a small variance where g is flat
    assert np.abs(a * g + b - (ra * g + rb)).max() < 2e-3
    assert np.abs(a - ra).max() < 0.05 * max(1.0, np.abs(ra).max())
