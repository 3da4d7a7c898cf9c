"""The true background of simulated observations, and its value on another binning.

The truth is a rate cube constant within each of its bins (per unit ONTIME,
flat solid angle, in the RADEC field-of-view frame), scaled per observation
by a norm that depends on the pointing altitude. For a set of observations:

* expected counts per bin = sum_i norm_i * ONTIME_i * rate * dE * dOmega;
* true rate of a model that accumulates the time T (ONTIME or LIVETIME) =
  expected counts / (sum_i T_i * dE * dOmega).

`integrate_rate` integrates a piecewise-constant rate over the bins of any
other binning exactly (through the 1D overlaps of the bins), so a
reconstructed model needs no particular binning to be compared with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ..backend import from_numpy, to_numpy
from ..cube import FOVCube
from ..model import RATE_UNIT, TIME_CONVENTIONS, FOVCubeBackgroundModel

if TYPE_CHECKING:
    from .._types import ArrayLike, BackendLike, QuantityLike
    from ..cube import FOVCube
    from ..model import FOVCubeBackgroundModel

__all__ = ["expected_counts", "true_model", "integrate_rate", "overlap_matrix", "as_rate_cube"]

#: Rate unit used in the computations here (canonical core units).
_CORE_RATE = u.Unit("1 / (TeV s sr)")


def _rate_core(cube):
    """Rate cube values in 1/(TeV s sr) on the host."""
    return to_numpy(cube.data) * cube.unit.to(_CORE_RATE)


def expected_counts(rate_cube, exposures):
    """Expected counts per bin of a rate cube for a total ``sum_i norm_i * ONTIME_i``.

    Parameters
    ----------
    rate_cube : `~bgcube.FOVCube`
        Rate per unit ONTIME (any unit convertible to 1/(MeV s sr)).
    exposures : float or array_like
        ``norm_i * ONTIME_i`` of each observation, s (summed).

    Returns
    -------
    counts : numpy.ndarray
        float64, shape of the cube; the flat solid angle is used, as when the
        events were sampled.
    """
    volume = to_numpy(rate_cube.bin_volume_array())  # TeV sr
    return _rate_core(rate_cube) * volume * float(np.sum(exposures))


def true_model(
    rate_cube: FOVCube,
    norms: ArrayLike,
    ontimes: QuantityLike,
    livetimes: QuantityLike | None = None,
    *,
    time_convention: str = "ONTIME",
    backend: BackendLike = None,
) -> FOVCubeBackgroundModel:
    """The true background model of a set of observations.

    Parameters
    ----------
    rate_cube : `~bgcube.FOVCube`
        Rate at norm 1, per unit ONTIME.
    norms : array_like
        Norm of each observation (e.g. `bgcube.simulate.altitude_norm` of ALT_PNT).
    ontimes : array_like
        ONTIME of each observation, s.
    livetimes : array_like, optional
        LIVETIME of each observation, s (needed for ``time_convention='LIVETIME'``).
    time_convention : {'ONTIME', 'LIVETIME'}
        Time the model is normalised by.
    backend : str or module, optional
        Array backend of the returned cubes.

    Returns
    -------
    model : `~bgcube.FOVCubeBackgroundModel`
        ``counts_cube``: expected counts (float); ``livetime_cube``: the summed
        time in every bin; ``background_cube``: their rate in 1/(MeV s sr),
        with ``meta`` FOVALIGN='RADEC', BKG_TIME, SOLIDANG='FLAT'.
    """
    if time_convention not in TIME_CONVENTIONS:
        raise ValueError(
            f"time_convention must be one of {TIME_CONVENTIONS}, got {time_convention!r}"
        )
    norms = np.atleast_1d(np.asarray(norms, dtype=float))
    ontimes = np.atleast_1d(u.Quantity(ontimes, u.s).to_value(u.s))
    if time_convention == "LIVETIME":
        if livetimes is None:
            raise ValueError("time_convention='LIVETIME' needs the livetimes")
        times = np.atleast_1d(u.Quantity(livetimes, u.s).to_value(u.s))
    else:
        times = ontimes
    counts = expected_counts(rate_cube, norms * ontimes)
    model = FOVCubeBackgroundModel.set_cube_binning(
        rate_cube.coordx_edges,
        rate_cube.coordy_edges,
        rate_cube.energy_edges,
        backend=backend,
        time_convention=time_convention,
    )
    meta = {"FOVALIGN": "RADEC", "BKG_TIME": time_convention}
    model.counts_cube.data = from_numpy(counts, backend)
    model.livetime_cube.data = from_numpy(np.full(counts.shape, float(np.sum(times))), backend)
    model.counts_cube.meta.update(meta)
    model.livetime_cube.meta.update(meta)
    model.compute_rate()
    model.background_cube.meta.update(meta)
    return model


def overlap_matrix(target_edges, source_edges):
    """Lengths of the overlaps of target bins with source bins.

    Parameters
    ----------
    target_edges, source_edges : numpy.ndarray
        Increasing edges in the same unit.

    Returns
    -------
    overlap : numpy.ndarray
        Shape ``(n_target, n_source)``: ``|[t_j, t_j+1) & [s_i, s_i+1)|``.
    """
    t = np.asarray(target_edges, dtype=float)
    s = np.asarray(source_edges, dtype=float)
    lo = np.maximum(t[:-1, None], s[None, :-1])
    hi = np.minimum(t[1:, None], s[None, 1:])
    return np.clip(hi - lo, 0.0, None)


def integrate_rate(rate_cube: FOVCube, target: FOVCube) -> np.ndarray:
    """Integrate a piecewise-constant rate cube over the bins of another cube.

    Parameters
    ----------
    rate_cube : `~bgcube.FOVCube`
        The rate (constant within each of its bins; flat solid angle).
    target : `~bgcube.FOVCube`
        Cube whose binning is wanted (its data are not used).

    Returns
    -------
    integral : numpy.ndarray
        ``int rate dE dOmega`` over each target bin, in 1/s (rate unit times
        TeV sr), shape of ``target``; the rate is zero outside its cube.
    coverage : numpy.ndarray
        Fraction of each target bin's volume inside the rate cube, in [0, 1].
    """
    deg = np.pi / 180.0
    w_e = overlap_matrix(target.energy_axis.edges_canonical, rate_cube.energy_axis.edges_canonical)
    w_y = (
        overlap_matrix(target.dety_axis.edges_canonical, rate_cube.dety_axis.edges_canonical) * deg
    )
    w_x = (
        overlap_matrix(target.detx_axis.edges_canonical, rate_cube.detx_axis.edges_canonical) * deg
    )
    rate = _rate_core(rate_cube)
    integral = np.einsum("ai,ijk->ajk", w_e, rate)
    integral = np.einsum("bj,ajk->abk", w_y, integral)
    integral = np.einsum("ck,abk->abc", w_x, integral)
    covered = (
        w_e.sum(axis=1)[:, None, None]
        * w_y.sum(axis=1)[None, :, None]
        * w_x.sum(axis=1)[None, None, :]
    )
    volume = to_numpy(target.bin_volume_array())
    return integral, np.clip(covered / volume, 0.0, 1.0)


def as_rate_cube(background):
    """The rate cube of a background description (FOVCube or FOVCubeBackgroundModel)."""
    cube = getattr(background, "background_cube", background)
    if not isinstance(cube, FOVCube):
        raise TypeError(
            f"background must be a FOVCube or FOVCubeBackgroundModel, got {type(background).__name__}"
        )
    if not cube.unit.is_equivalent(RATE_UNIT):
        raise ValueError(f"background rate must be in units of {RATE_UNIT}, got {cube.unit}")
    return cube
