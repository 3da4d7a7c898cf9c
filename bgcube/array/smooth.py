"""Smoothing of energy images with ROOT's TH2::Smooth ``k5a`` kernel.

As in the original FOVCubeBackgroundModel.smooth: each energy image is
convolved ``n`` times with the 5x5 ``k5a`` kernel, with the boundary
handled like ``scipy.ndimage.convolve``'s default mode ``'reflect'``
(``d c b a | a b c d | d c b a``), then rescaled so that its integral over
solid angle is unchanged.
"""

from __future__ import annotations

from ._typing import Array, Namespace
from .namespace import array_device, array_namespace

__all__ = ["K5A", "n_smooth_passes", "convolve_k5a", "smooth_images"]

#: ROOT's TH2::Smooth k5a kernel (sums to 25).
K5A = (
    (0, 0, 1, 0, 0),
    (0, 2, 2, 2, 0),
    (1, 2, 5, 2, 1),
    (0, 2, 2, 2, 0),
    (0, 0, 1, 0, 0),
)
_K5A_SUM = sum(sum(row) for row in K5A)


def n_smooth_passes(total_counts: float) -> int:
    """Number of k5a passes of the original: 3 if >= 1e6 counts, 4 if >= 1e5, else 5."""
    if total_counts >= 1e6:
        return 3
    if total_counts >= 1e5:
        return 4
    return 5


def _reflect_indices(n: int, pad: int) -> list[int]:
    """Source index of each padded position under scipy's 'reflect' mode."""
    period = 2 * n
    out = []
    for i in range(-pad, n + pad):
        j = i % period
        out.append(period - 1 - j if j >= n else j)
    return out


def convolve_k5a(images: Array, *, xp: Namespace | None = None) -> Array:
    """Convolve each image of a stack once with the k5a kernel (normalised to 1).

    Parameters
    ----------
    images : array
        Shape ``(..., ny, nx)``, floating.
    xp : module, optional
        Namespace; found from ``images`` by default.

    Returns
    -------
    smoothed : array
        Same shape and dtype; boundary as ``scipy.ndimage.convolve(mode='reflect')``.
    """
    xp = array_namespace(images) if xp is None else xp
    dev = array_device(images)
    ny, nx = images.shape[-2], images.shape[-1]
    iy = xp.asarray(_reflect_indices(ny, 2), dtype=xp.int64, device=dev)
    ix = xp.asarray(_reflect_indices(nx, 2), dtype=xp.int64, device=dev)
    padded = xp.take(xp.take(images, iy, axis=-2), ix, axis=-1)
    out = xp.zeros_like(images)
    for dy, row in enumerate(K5A):
        for dx, weight in enumerate(row):
            if weight:
                out = out + (weight / _K5A_SUM) * padded[..., dy : dy + ny, dx : dx + nx]
    return out


def smooth_images(
    images: Array, n_passes: int, pixel_area: Array | None = None, *, xp: Namespace | None = None
) -> Array:
    """Smooth each image ``n_passes`` times with k5a, preserving its integral.

    Parameters
    ----------
    images : array
        Shape ``(nE, ny, nx)``.
    n_passes : int
        Number of convolutions (see :func:`n_smooth_passes`).
    pixel_area : array, optional
        Solid angle of each pixel (shape ``(ny, nx)``, any unit); the
        integral ``sum(image * pixel_area)`` of each image is preserved.
        Default: equal pixels.
    xp : module, optional
        Namespace; found from ``images`` by default.

    Returns
    -------
    smoothed : array
        Same shape; an image whose smoothed integral is 0 stays 0.
    """
    xp = array_namespace(images) if xp is None else xp
    area = 1.0 if pixel_area is None else pixel_area
    before = xp.sum(images * area, axis=(-2, -1))
    out = images
    for _ in range(int(n_passes)):
        out = convolve_k5a(out, xp=xp)
    after = xp.sum(out * area, axis=(-2, -1))
    nonzero = after != 0
    safe = xp.where(nonzero, after, xp.ones_like(after))
    scale = xp.where(nonzero, before / safe, xp.zeros_like(after))
    return out * scale[..., None, None]
