"""Natural cubic spline through fixed knots, written in ``jax.numpy``.

The spline ``f`` passes through ``(t_k, y_k)``; its second derivative is
zero at the outer knots and beyond them it continues as a straight line
(the natural extension). Since the second derivatives at the knots are a
linear function of the knot values, ``M = S @ y``, the matrix ``S`` is
computed once per set of knots on the host, and evaluating the spline is
linear in ``y``: differentiable, jit- and vmap-friendly.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

__all__ = ["second_derivative_matrix", "natural_spline"]


@functools.lru_cache(maxsize=64)
def _matrix(knots: tuple[float, ...]) -> np.ndarray:
    t = np.asarray(knots, dtype=np.float64)
    n = t.size
    h = np.diff(t)
    s = np.zeros((n, n))
    if n > 2:
        # rows i = 1..n-2: h[i-1] M[i-1] + 2 (h[i-1] + h[i]) M[i] + h[i] M[i+1] = rhs_i
        a = np.zeros((n - 2, n - 2))
        d = np.zeros((n - 2, n))
        for row, i in enumerate(range(1, n - 1)):
            a[row, row] = 2.0 * (h[i - 1] + h[i])
            if row > 0:
                a[row, row - 1] = h[i - 1]
            if row < n - 3:
                a[row, row + 1] = h[i]
            d[row, i - 1] = 6.0 / h[i - 1]
            d[row, i] = -6.0 / h[i - 1] - 6.0 / h[i]
            d[row, i + 1] = 6.0 / h[i]
        s[1:-1] = np.linalg.solve(a, d)
    return s


def second_derivative_matrix(knots) -> np.ndarray:
    """Matrix ``S`` with ``M = S @ y``: second derivatives at the knots from the values.

    Parameters
    ----------
    knots : sequence of float
        At least two strictly increasing knot positions.

    Returns
    -------
    S : numpy.ndarray
        Shape ``(n, n)``; its first and last rows are zero (natural spline).

    Raises
    ------
    ValueError
        If there are fewer than two knots or they do not increase.
    """
    knots = tuple(float(k) for k in knots)
    if len(knots) < 2 or not all(b > a for a, b in zip(knots[:-1], knots[1:], strict=False)):
        raise ValueError(f"need at least two strictly increasing knots, got {knots}")
    return _matrix(knots)


def natural_spline(x, knots, values):
    """Evaluate the natural cubic spline through ``(knots, values)`` at ``x``.

    Parameters
    ----------
    x : jax.Array
        Evaluation points, any shape.
    knots : sequence of float
        Static, strictly increasing knot positions (at least two).
    values : jax.Array
        Spline values at the knots, shape ``(n,)``.

    Returns
    -------
    f : jax.Array
        Shape of ``x``. Linear beyond the outer knots.
    """
    s = second_derivative_matrix(knots)
    t = jnp.asarray(knots, dtype=jnp.float64)
    y = jnp.asarray(values)
    m = jnp.asarray(s) @ y
    h = t[1:] - t[:-1]

    inside = jnp.clip(x, t[0], t[-1])
    # interval of each point: the number of inner knots at or below it (few knots: compare all)
    i = jnp.sum(inside[..., None] >= t[1:-1], axis=-1)
    hi = h[i]
    u = (inside - t[i]) / hi
    v = 1.0 - u
    cubic = v * y[i] + u * y[i + 1] + hi**2 / 6.0 * ((v**3 - v) * m[i] + (u**3 - u) * m[i + 1])

    slope_lo = (y[1] - y[0]) / h[0] - h[0] * m[1] / 6.0
    slope_hi = (y[-1] - y[-2]) / h[-1] + h[-1] * m[-2] / 6.0
    return cubic + jnp.where(x < t[0], slope_lo, slope_hi) * (x - inside)
