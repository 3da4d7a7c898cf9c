"""Basis functions and smoothness penalties of the joint background model.

The joint model (`bgcube.fit.joint`) writes the logarithm of the background
rate as a sum of products of one-dimensional basis functions: cubic
B-splines in log10(energy) and in field-of-view offset, and plain
polynomials in the run conditions. This module builds those bases on the
host (NumPy, unitless floats in canonical units: TeV, deg) and the
difference penalties that keep the fitted functions smooth where data are
sparse. The fit itself (`bgcube.fit.joint_solver`) runs on any Array API
backend.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bspline_basis", "clamped_knots", "difference_penalty"]


def clamped_knots(lo: float, hi: float, n_basis: int, degree: int = 3) -> np.ndarray:
    """Knot vector of ``n_basis`` B-splines of ``degree`` on ``[lo, hi]``, equally spaced.

    The end knots are repeated ``degree + 1`` times, so that the splines
    span ``[lo, hi]`` and only the first (last) one is non-zero at ``lo`` (``hi``).

    Parameters
    ----------
    lo, hi : float
        Range covered by the splines (``lo < hi``).
    n_basis : int
        Number of basis functions, at least ``degree + 1``.
    degree : int
        Polynomial degree (3: cubic).

    Returns
    -------
    knots : numpy.ndarray
        ``n_basis + degree + 1`` knots.
    """
    if n_basis < degree + 1:
        raise ValueError(f"need at least {degree + 1} basis functions, got {n_basis}")
    if not hi > lo:
        raise ValueError(f"the spline range must be increasing, got [{lo}, {hi}]")
    inner = np.linspace(lo, hi, n_basis - degree + 1)
    return np.concatenate([np.full(degree, lo), inner, np.full(degree, hi)])


def bspline_basis(x, knots, degree: int = 3) -> np.ndarray:
    """Values of every B-spline of a knot vector at ``x`` (Cox-de Boor recursion).

    Outside the knot range the splines are continued by their end
    polynomials' value at the boundary (constant), so that an evaluation a
    hair outside the range stays finite and positive-definite sums stay so.

    Parameters
    ----------
    x : array_like
        Points, any shape.
    knots : numpy.ndarray
        Knot vector (`clamped_knots`).
    degree : int

    Returns
    -------
    basis : numpy.ndarray
        Shape ``x.shape + (n_basis,)``; rows sum to 1 inside the range.
    """
    knots = np.asarray(knots, dtype=np.float64)
    x = np.clip(np.asarray(x, dtype=np.float64), knots[degree], knots[-degree - 1])
    flat = x.reshape(-1)
    n_basis = knots.size - degree - 1
    # degree 0: indicator of [t_i, t_i+1); the last non-empty interval is closed
    b = ((flat[:, None] >= knots[None, :-1]) & (flat[:, None] < knots[None, 1:])).astype(float)
    last = np.flatnonzero(knots[:-1] < knots[1:])[-1]
    b[flat >= knots[last + 1], last] = 1.0
    for k in range(1, degree + 1):
        left_den = knots[k:-1] - knots[: -k - 1]
        right_den = knots[k + 1 :] - knots[1:-k]
        with np.errstate(divide="ignore", invalid="ignore"):
            left = np.where(left_den > 0, (flat[:, None] - knots[None, : -k - 1]) / left_den, 0.0)
            right = np.where(right_den > 0, (knots[None, k + 1 :] - flat[:, None]) / right_den, 0.0)
        b = left * b[:, :-1] + right * b[:, 1:]
    return b[:, :n_basis].reshape(x.shape + (n_basis,))


def difference_penalty(n: int, order: int = 2) -> np.ndarray:
    """``D.T @ D`` for the ``order``-th difference matrix ``D`` of ``n`` coefficients.

    Added to a likelihood's Hessian, it penalises curvature of a B-spline
    (P-spline penalty): with no data, the fitted spline is a straight line.

    Parameters
    ----------
    n : int
        Number of coefficients.
    order : int
        Difference order (2: curvature).

    Returns
    -------
    penalty : numpy.ndarray
        Shape ``(n, n)``, symmetric, positive semi-definite.
    """
    if n <= order:
        return np.zeros((n, n))
    d = np.diff(np.eye(n), order, axis=0)
    return d.T @ d
