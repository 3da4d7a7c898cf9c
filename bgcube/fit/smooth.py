"""Smoothing by fitting: replace a background cube by a fitted model's rate.

Instead of convolving the measured rate with a fixed kernel, a parametric
rate model is fitted to the counts cube (Cash statistic, times from the time
cube), and the background cube becomes the model's rate averaged over each
bin, so that ``rate x time x bin volume`` is the model's expected counts
exactly. Because the models have a free overall scale, the fitted expected
counts add up to the observed counts (a property of Poisson maximum
likelihood). The counts and time cubes are left as they were, and bins
without time, or without counts at high energy, get the model's rate too.

Below the energy threshold a telescope records (almost) nothing, a cut-off
no smooth spectrum follows. The lowest energy bins holding less than a
fraction (default 1e-3) of the counts of the fullest energy bin are
therefore left out of the fit and get rate 0; starved bins at high energy
stay in the fit and get the model's extrapolation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import astropy.units as u
import jax.numpy as jnp
import numpy as np

from ..array.namespace import with_jax_x64
from ..backend import from_numpy
from ..cube import FOVCube
from .geometry import BinGeometry, integrated_rate
from .likelihood import FitData
from .models import MODELS, FlexibleModel, RateModel
from .optimize import fit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..model import FOVCubeBackgroundModel
    from .geometry import BinGeometry
    from .result import FitResult

__all__ = ["smooth_by_fit", "fitted_rate_cube", "resolve_model", "below_threshold"]

_RATE_UNIT = u.Unit("1 / (MeV s sr)")
_PER_TEV = float(u.Unit("1 / (TeV s sr)").to(_RATE_UNIT))


def resolve_model(model, data, *, n_knots=6) -> RateModel:
    """A rate model from a user setting.

    Parameters
    ----------
    model : None, str or RateModel
        None or ``'flexible'``: a `FlexibleModel` with knots over the energy
        bins that hold counts; ``'gaussian'``: a `GaussianModel`; a model
        instance is used as given.
    data : bgcube.fit.likelihood.FitData
    n_knots : int
        Spline knots of the default flexible model.

    Returns
    -------
    model : RateModel

    Raises
    ------
    ValueError
        If the name is unknown.
    """
    if isinstance(model, RateModel):
        return model
    if model is None or model == "flexible":
        counts = np.where(np.asarray(data.mask), np.asarray(data.counts), 0.0)
        return FlexibleModel.from_counts(counts, data.geometry, n_knots=n_knots)
    if model == "gaussian":
        return MODELS["gaussian"]()
    raise ValueError(f"unknown fit model {model!r}; give a RateModel or one of {sorted(MODELS)}")


def below_threshold(counts: Any, fraction: float | None = 1e-3) -> np.ndarray:
    """Which energy bins lie below the energy threshold of the data.

    Parameters
    ----------
    counts : array_like
        Counts cube ``(nE, ny, nx)``.
    fraction : float
        The lowest energy bins with fewer counts than ``fraction`` times
        those of the fullest energy bin are below the threshold.

    Returns
    -------
    below : numpy.ndarray of bool
        Shape ``(nE,)``; True for the leading run of starved bins only.
    """
    per_energy = np.asarray(counts, dtype=np.float64).sum(axis=(1, 2))
    starved = per_energy < fraction * per_energy.max()
    # cumulative product: True until the first bin above the threshold
    return np.cumprod(starved).astype(bool)


@with_jax_x64
def fitted_rate_cube(
    model: RateModel, values: Any, like: FOVCube, geometry: BinGeometry | None = None
) -> FOVCube:
    """The bin-averaged rate of a model as a background cube in 1/(MeV s sr).

    Parameters
    ----------
    model : RateModel
    values : array_like
        Physical parameter values.
    like : bgcube.FOVCube
        Cube giving the binning, backend, device and header keywords.
    geometry : BinGeometry, optional
        Quadrature (default: `BinGeometry.from_cube(like)`).

    Returns
    -------
    cube : bgcube.FOVCube
        Scheme ``bg_cube``; ``rate * time * volume`` gives the model's
        expected counts per bin.
    """
    geometry = BinGeometry.from_cube(like) if geometry is None else geometry
    per_bin = integrated_rate(model.rate, jnp.asarray(values, dtype=jnp.float64), geometry)
    rate = np.asarray(per_bin / geometry.volume) * _PER_TEV
    return FOVCube(
        like.coordx_edges,
        like.coordy_edges,
        like.energy_edges,
        data=from_numpy(rate, like.backend, device=like.device),
        scheme="bg_cube",
        unit=_RATE_UNIT,
        meta=dict(like.meta),
    )


@with_jax_x64
def smooth_by_fit(
    bg_model: FOVCubeBackgroundModel,
    model: Any = None,
    *,
    init: Any = None,
    frozen: Sequence[str] = (),
    n_knots: int = 6,
    threshold_fraction: float | None = 1e-3,
    energy_quadrature: int | str = 3,
    spatial_nodes: int = 1,
    max_iter: int = 100,
    tol: float = 1e-8,
) -> FitResult:
    """Replace the background cube of ``bg_model`` by a model fitted to its counts.

    Parameters
    ----------
    bg_model : bgcube.FOVCubeBackgroundModel
        With counts and time cubes (any backend); its background cube is
        replaced, the other two are kept.
    model : None, str or RateModel
        See `resolve_model` (default: a `FlexibleModel`).
    init : dict or array_like, optional
        Start values (default: estimated from the data).
    frozen : sequence of str
        Parameters kept at their start values.
    n_knots : int
        Spline knots of the default flexible model.
    threshold_fraction : float or None
        Energy bins below the threshold (see `below_threshold`) are left out
        of the fit and get rate 0; None fits every bin.
    energy_quadrature, spatial_nodes
        Integration over the bins, see `BinGeometry.from_edges`.
    max_iter : int
    tol : float
        See `bgcube.fit.fit`.

    Returns
    -------
    result : bgcube.fit.FitResult
        The converged fit.

    Raises
    ------
    bgcube.fit.FitError
        If the fit does not converge; the background cube is then unchanged.
    ValueError
        If the model has no counts or time cube.
    """
    reference = bg_model.background_cube or bg_model.counts_cube
    exact = reference is not None and reference.meta.get("SOLIDANG") == "EXACT"
    data = FitData.from_model(
        bg_model,
        energy_quadrature=energy_quadrature,
        spatial_nodes=spatial_nodes,
        exact_solid_angle=exact,
    )
    below = np.zeros(data.geometry.shape[0], dtype=bool)
    if threshold_fraction is not None:
        below = below_threshold(data.counts, threshold_fraction)
        data = data._replace(mask=data.mask & jnp.asarray(~below)[:, None, None])
    model = resolve_model(model, data, n_knots=n_knots)
    result = fit(model, data, init, frozen=frozen, max_iter=max_iter, tol=tol).raise_for_status()
    like = bg_model.background_cube or bg_model.counts_cube
    cube = fitted_rate_cube(model, result.values, like, data.geometry)
    if below.any():
        keep = from_numpy(~below[:, None, None], like.backend, device=like.device)
        cube.data = cube.xp.where(keep, cube.data, cube.xp.zeros_like(cube.data))
    cube.meta.update(
        {
            "SOLIDANG": "EXACT" if exact else "FLAT",
            "SMOOTH": "FIT",
            "FITMODEL": model.name,
            "FITSTAT": round(result.statistic, 6),
            "FITDOF": result.dof,
            "FITEMIN": float(np.asarray(data.geometry.energy_edges)[int(below.sum())]),
        }
    )
    bg_model.background_cube = cube
    return result
