"""Evaluating a rate cube between its bin centres, and integrating it over energy.

The interpolation follows Gammapy 2.x ``Background3D.evaluate`` (read in
``gammapy/irf/core.py`` and ``gammapy/utils/interpolation.py``):

* the nodes are the bin centres: arithmetic means of the DETX and DETY edges,
  geometric means of the energy edges;
* the interpolation is trilinear in ``(log E, DETY, DETX)`` on the
  *logarithm* of the values, so the cube is a power law in energy between
  two energy nodes and an exponential in DETX, DETY between two pixel nodes;
* a value ``v`` enters as ``log(max(v, floor))``, ``floor`` being the
  smallest normal number of the data's dtype (``1.18e-38`` for float32,
  ``2.2e-308`` for float64), and the log is taken in the data's dtype, as
  Gammapy does; results at or below ``2 * floor`` are returned as 0, so a
  region of zero rate stays exactly zero (Gammapy applies the float64 floor
  to the result, so for float32 data it returns ~1.2e-38 where bgcube
  returns 0; elsewhere the two agree);
* a point is inside the cube when each coordinate lies in the closed range
  ``[first edge, last edge]`` (Gammapy's test, ``numpy.digitize``); between
  the outermost bin centre and the edge the value is extrapolated from the
  two outermost nodes, as Gammapy does. Outside the edges, and where the
  result is not finite (NaN coordinates), the value is 0 unless
  ``extrapolate=True``, which extends the outermost linear pieces to every
  point.

An axis with a single bin is constant along that axis.

Everything is vectorised and jit-compatible: the binnings are static
(hashable :class:`~bgcube.array.binning.Binning` objects), the output
shape is the broadcast shape of the coordinates, and there are no
data-dependent shapes. Computations are in float64.
"""

from __future__ import annotations

import math
import sys

from ._typing import Array, Namespace
from .binning import Binning
from .namespace import array_device, array_namespace, check_jax_x64, is_jax

__all__ = ["bin_centers", "interpolate_cube", "integrate_energy_log_log", "log_values"]

#: Below this |exponent difference| the power-law integral uses its Taylor series.
_SERIES_LIMIT = 1e-4

#: Largest exponent whose exponential is a finite float64.
_LOG_MAX = math.log(sys.float_info.max)


def bin_centers(binning: Binning, log: bool) -> tuple[float, ...]:
    """Interpolation nodes of an axis: bin centres as plain floats.

    Parameters
    ----------
    binning : Binning
        The axis, edges in canonical units (deg or TeV).
    log : bool
        ``True`` for geometric centres ``sqrt(lo * hi)`` (energy), ``False``
        for arithmetic ones ``(lo + hi) / 2`` (DETX, DETY).

    Returns
    -------
    centers : tuple of float
    """
    e = binning.edges
    if log:
        return tuple(math.sqrt(lo * hi) for lo, hi in zip(e[:-1], e[1:], strict=True))
    return tuple(0.5 * (lo + hi) for lo, hi in zip(e[:-1], e[1:], strict=True))


def log_values(data: Array, *, xp: Namespace | None = None) -> Array:
    """Logarithm of the cube values as the interpolation uses them.

    Parameters
    ----------
    data : array
        Cube values, any shape; real floating dtype (integers are taken as
        float64).
    xp : module, optional
        Namespace; found from ``data`` by default.

    Returns
    -------
    log_data : array of float64
        ``log(max(data, floor))``, the log computed in the data's dtype.
    floor : float
        Smallest normal number of the data's dtype.
    """
    xp = array_namespace(data) if xp is None else xp
    if not xp.isdtype(data.dtype, "real floating"):
        data = xp.astype(data, xp.float64)
    floor = float(xp.finfo(data.dtype).smallest_normal)
    floor_array = xp.asarray(floor, dtype=data.dtype, device=array_device(data))
    log_data = xp.log(xp.maximum(data, floor_array))
    return xp.astype(log_data, xp.float64), floor


def _nodes_and_weights(q, nodes, xp, dev):
    """Lower node index and fractional distance to the next node, per value."""
    n = len(nodes)
    if n == 1:
        return xp.zeros(q.shape, dtype=xp.int64, device=dev), xp.zeros_like(q)
    node_array = xp.asarray(nodes, dtype=xp.float64, device=dev)
    index = xp.astype(xp.searchsorted(node_array, q, side="right"), xp.int64) - 1
    index = xp.clip(index, 0, n - 2)
    lo = xp.take(node_array, index)
    hi = xp.take(node_array, index + 1)
    return index, (q - lo) / (hi - lo)


def _inside(q, binning: Binning):
    """Whether each value lies in ``[first edge, last edge]`` (False for NaN)."""
    return (q >= binning.lo) & (q <= binning.hi)


def _prepare(data, binnings, coords, xp):
    """Check the data against the binnings; broadcast and flatten the coordinates (float64)."""
    if is_jax(xp):
        check_jax_x64()
    if data.ndim != 3:
        raise ValueError(f"data must be 3-D (energy, dety, detx), got shape {tuple(data.shape)}")
    expected = tuple(b.nbin for b in binnings)
    if tuple(data.shape) != expected:
        raise ValueError(f"data shape {tuple(data.shape)} does not match the binnings {expected}")
    coords = [xp.astype(c, xp.float64, copy=False) for c in coords]
    coords = xp.broadcast_arrays(*coords)
    shape = tuple(coords[0].shape)
    return shape, [xp.reshape(c, (-1,)) for c in coords]


def _lerp(a, b, t):
    return a + t * (b - a)


def _exp(x, xp):
    """``exp(x)``, giving inf without an overflow warning where x is too large."""
    over = x > _LOG_MAX
    value = xp.exp(xp.where(over, xp.zeros_like(x), x))
    return xp.where(over, xp.full_like(x, math.inf), value)


def _finish(result, inside, extrapolate, xp):
    """Without extrapolation: 0 outside the axes and where the result is not finite."""
    zero = xp.zeros_like(result)
    if not extrapolate:
        result = xp.where(inside & xp.isfinite(result), result, zero)
    return result


def interpolate_cube(
    data: Array,
    binnings: tuple[Binning, Binning, Binning],
    energy: Array,
    dety: Array,
    detx: Array,
    *,
    extrapolate: bool = False,
) -> Array:
    """Evaluate a cube at arbitrary ``(energy, dety, detx)`` points.

    See the module docstring for the interpolation rule (Gammapy's).

    Parameters
    ----------
    data : array
        Cube values, shape ``(nE, ny, nx)``, indexed ``[energy, dety, detx]``.
    binnings : tuple of Binning
        ``(energy, dety, detx)`` binnings in canonical units (TeV, deg).
    energy : array
        Energies in TeV (positive).
    dety, detx : array
        Field-of-view coordinates in deg. The three coordinate arrays
        broadcast together.
    extrapolate : bool
        If ``False`` (default) points outside the axes' edges, and points
        whose result is not finite, get 0; if ``True`` the outermost pieces
        are extended.

    Returns
    -------
    values : array of float64
        Broadcast shape of the coordinates, in the unit of ``data``.
    """
    xp = array_namespace(data, energy, dety, detx)
    dev = array_device(data)
    shape, (e, y, x) = _prepare(data, binnings, (energy, dety, detx), xp)
    b_e, b_y, b_x = binnings
    ne, ny, nx = (b.nbin for b in binnings)
    log_data, floor = log_values(data, xp=xp)
    flat = xp.reshape(log_data, (-1,))

    log_nodes = tuple(math.log(c) for c in bin_centers(b_e, log=True))
    ie, te = _nodes_and_weights(xp.log(e), log_nodes, xp, dev)
    iy, ty = _nodes_and_weights(y, bin_centers(b_y, log=False), xp, dev)
    ix, tx = _nodes_and_weights(x, bin_centers(b_x, log=False), xp, dev)
    step_e = ny * nx if ne > 1 else 0
    step_y = nx if ny > 1 else 0
    step_x = 1 if nx > 1 else 0
    base = (ie * ny + iy) * nx + ix

    def corner(de, dy, dx):
        return xp.take(flat, base + (de * step_e + dy * step_y + dx * step_x))

    def plane(de):
        row0 = _lerp(corner(de, 0, 0), corner(de, 0, 1), tx)
        row1 = _lerp(corner(de, 1, 0), corner(de, 1, 1), tx)
        return _lerp(row0, row1, ty)

    log_result = _lerp(plane(0), plane(1), te)
    result = _exp(log_result, xp)
    result = xp.where(result <= 2 * floor, xp.zeros_like(result), result)
    inside = _inside(e, b_e) & _inside(y, b_y) & _inside(x, b_x)
    result = _finish(result, inside, extrapolate, xp)
    return xp.reshape(result, shape)


def _power_law_integral(log_a, log_fa, log_b, log_fb, xp):
    """Integral of the power law through ``(a, f(a))`` and ``(b, f(b))`` from a to b.

    All inputs are natural logs; ``a > b`` gives the negative integral.
    With ``h = log(b f(b)) - log(a f(a))`` the integral is
    ``a f(a) (log b - log a) (exp(h) - 1) / h``; it is evaluated from the
    larger of ``a f(a)`` and ``b f(b)`` so that the exponential cannot
    overflow, and with a Taylor series where ``h`` is close to 0.
    """
    width = log_b - log_a
    empty = width == 0
    ha = log_fa + log_a
    hb = log_fb + log_b
    z = xp.where(empty, xp.zeros_like(ha), xp.abs(hb - ha))
    small = z < _SERIES_LIMIT
    safe_z = xp.where(small, xp.ones_like(z), z)
    # (1 - exp(-z)) / z, with its Taylor series near z = 0
    shape = xp.where(small, 1.0 - z / 2.0 + z * z / 6.0, -xp.expm1(-z) / safe_z)
    scale = _exp(xp.where(empty, xp.zeros_like(ha), xp.maximum(ha, hb)), xp)
    return xp.where(empty, xp.zeros_like(ha), scale * width * shape)


def integrate_energy_log_log(
    data: Array,
    binnings: tuple[Binning, Binning, Binning],
    energy_min: Array,
    energy_max: Array,
    dety: Array,
    detx: Array,
    *,
    extrapolate: bool = False,
) -> Array:
    """Integral over energy of the interpolated cube, at given positions.

    Between two energy nodes the interpolated cube is a power law in energy
    (see :func:`interpolate_cube`), so the band ``[energy_min, energy_max]``
    is cut at the energy nodes and each piece is integrated exactly as a
    power law, as Gammapy's ``trapz_loglog`` does between two energies. The
    result is the exact integral along energy of what
    :func:`interpolate_cube` returns (a piece whose two ends are both zero
    contributes 0; a subnormal result is returned as 0).

    Gammapy's ``integrate_log_log`` gives the same numbers when called with
    the band limits and the energy nodes between them, with two
    differences: (1) bgcube integrates only the part of the band inside the
    energy axis, where Gammapy returns 0 for a band reaching outside it;
    (2) Gammapy drops a piece with *one* zero end (for float64 data, where
    its zeros are exact), while bgcube integrates the steep power law the
    interpolation draws there from the floor value. For float32 data
    (H.E.S.S., CTA files) Gammapy's zeros are floor values too, and the two
    agree.

    Parameters
    ----------
    data : array
        Cube values (e.g. a rate per TeV), shape ``(nE, ny, nx)``.
    binnings : tuple of Binning
        ``(energy, dety, detx)`` binnings in canonical units (TeV, deg).
    energy_min, energy_max : array
        Band limits in TeV; ``energy_max < energy_min`` gives the negative
        integral.
    dety, detx : array
        Field-of-view coordinates in deg; all four arrays broadcast.
    extrapolate : bool
        If ``False`` (default) only the part of the band inside the energy
        axis's edges counts and positions outside the DETX/DETY edges give
        0; if ``True`` the outermost pieces are extended.

    Returns
    -------
    integral : array of float64
        Broadcast shape, in the unit of ``data`` times TeV.
    """
    xp = array_namespace(data, energy_min, energy_max, dety, detx)
    dev = array_device(data)
    shape, (e_lo, e_hi, y, x) = _prepare(data, binnings, (energy_min, energy_max, dety, detx), xp)
    b_e, b_y, b_x = binnings
    ne, ny, nx = (b.nbin for b in binnings)
    log_data, floor = log_values(data, xp=xp)
    planes = xp.reshape(log_data, (ne, ny * nx))

    # log values at every energy node, interpolated in DETY, DETX: (nE, P)
    iy, ty = _nodes_and_weights(y, bin_centers(b_y, log=False), xp, dev)
    ix, tx = _nodes_and_weights(x, bin_centers(b_x, log=False), xp, dev)
    step_y = nx if ny > 1 else 0
    step_x = 1 if nx > 1 else 0
    base = iy * nx + ix

    def corner(dy, dx):
        return xp.take(planes, base + (dy * step_y + dx * step_x), axis=1)

    nodes = _lerp(_lerp(corner(0, 0), corner(0, 1), tx), _lerp(corner(1, 0), corner(1, 1), tx), ty)

    # pieces between consecutive nodes, plus one below the first and one above the last
    log_centers = [math.log(c) for c in bin_centers(b_e, log=True)]
    if extrapolate:
        bounds = [-math.inf, *log_centers, math.inf]
    else:
        bounds = [math.log(b_e.lo), *log_centers, math.log(b_e.hi)]
    n_pieces = ne + 1
    piece_lo = xp.asarray(bounds[:-1], dtype=xp.float64, device=dev)[:, None]
    piece_hi = xp.asarray(bounds[1:], dtype=xp.float64, device=dev)[:, None]
    log_a = xp.minimum(xp.maximum(xp.log(e_lo)[None, :], piece_lo), piece_hi)
    log_b = xp.minimum(xp.maximum(xp.log(e_hi)[None, :], piece_lo), piece_hi)

    # the node pair each piece is a straight line through (in log-log)
    if ne == 1:
        log_fa = log_fb = xp.broadcast_to(nodes, (n_pieces, nodes.shape[1]))
    else:
        j0 = [min(max(k - 1, 0), ne - 2) for k in range(n_pieces)]
        take0 = xp.asarray(j0, dtype=xp.int64, device=dev)
        g0 = xp.take(nodes, take0, axis=0)
        g1 = xp.take(nodes, take0 + 1, axis=0)
        u0 = xp.asarray([log_centers[j] for j in j0], dtype=xp.float64, device=dev)[:, None]
        du = xp.asarray(
            [log_centers[j + 1] - log_centers[j] for j in j0], dtype=xp.float64, device=dev
        )[:, None]
        slope = (g1 - g0) / du
        log_fa = g0 + slope * (log_a - u0)
        log_fb = g0 + slope * (log_b - u0)

    limit = math.log(2 * floor)
    nonzero = (log_fa > limit) | (log_fb > limit)
    pieces = _power_law_integral(log_a, log_fa, log_b, log_fb, xp)
    pieces = xp.where(nonzero, pieces, xp.zeros_like(pieces))
    result = xp.sum(pieces, axis=0)
    # subnormal results become 0 on every backend (XLA flushes them on CPU)
    subnormal = xp.abs(result) < float(xp.finfo(xp.float64).smallest_normal)
    result = xp.where(subnormal, xp.zeros_like(result), result)
    inside = _inside(y, b_y) & _inside(x, b_x)
    result = _finish(result, inside, extrapolate, xp)
    return xp.reshape(result, shape)
