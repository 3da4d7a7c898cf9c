"""Per-observation normalisation: norm and spectral tilt of a background template.

Like Gammapy's ``FoVBackgroundMaker(method='fit')`` with its default
power-law norm model, the predicted background of one run is the template's
expected counts ``b`` times ::

    norm * (E / e_ref) ** -tilt

evaluated at the logarithmic energy-bin centres, and ``norm`` and ``tilt``
are fitted to the run's counts outside exclusion regions (Cash statistic).
The template's expected counts are ``rate x time x bin volume`` with the
run's time reduced by the kept (non-excluded) fraction of each bin, so a
bin half covered by an exclusion region weighs half. Bins with no time
are left out.

The fit is the jittable damped-Newton fit of `bgcube.fit.optimize`, so it
can be vmapped over many runs of one binning and differentiated: the
best-fit norm and tilt have derivatives with respect to the template and
the counts (implicit-function theorem).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple

import astropy.units as u
import jax
import jax.numpy as jnp
import numpy as np

from ..array.namespace import with_jax_x64
from ..backend import to_numpy
from .likelihood import cash
from .optimize import build_fitter
from .parameters import Parameter, to_internal
from .result import FitResult

if TYPE_CHECKING:
    from ..cube import FOVCube
    from ..model import FOVCubeBackgroundModel

__all__ = [
    "NORM_TILT_PARAMETERS",
    "NormTiltData",
    "norm_tilt_npred",
    "norm_tilt_statistic",
    "make_norm_tilt_fitter",
    "fit_norm_tilt",
    "fit_norm_tilt_at",
    "fit_observation_norm",
]

#: The parameters of the normalisation fit.
NORM_TILT_PARAMETERS = (Parameter("norm", 1.0, min=0.0), Parameter("tilt", 0.0))


class NormTiltData(NamedTuple):
    """One run's data for the normalisation fit (JAX pytree).

    Attributes
    ----------
    counts : jax.Array
        Counts ``(nE, ny, nx)`` outside exclusion regions.
    template : jax.Array
        The template's expected counts ``(nE, ny, nx)`` for this run.
    mask : jax.Array of bool
        Bins used.
    log_energy : jax.Array
        ``ln(E_c / e_ref)`` of the energy bins, shape ``(nE,)``.
    """

    counts: jnp.ndarray
    template: jnp.ndarray
    mask: jnp.ndarray
    log_energy: jnp.ndarray


def norm_tilt_npred(
    values: jnp.ndarray, template: jnp.ndarray, log_energy: jnp.ndarray
) -> jnp.ndarray:
    """Background prediction ``norm * (E / e_ref)**-tilt * template`` (JAX).

    Parameters
    ----------
    values : jax.Array
        ``[norm, tilt]``.
    template : jax.Array
        Template expected counts ``(nE, ny, nx)``.
    log_energy : jax.Array
        ``ln(E_c / e_ref)``, shape ``(nE,)``.

    Returns
    -------
    npred : jax.Array
    """
    factor = values[0] * jnp.exp(-values[1] * log_energy)
    return factor[:, None, None] * template


def norm_tilt_statistic(values, data):
    """Cash statistic of the normalised template on one run (JAX)."""
    return cash(norm_tilt_npred(values, data.template, data.log_energy), data.counts, data.mask)


@functools.lru_cache(maxsize=8)
def make_norm_tilt_fitter(fit_tilt=True, max_iter=100, tol=1e-8):
    """Jitted ``fitter(internal_start, NormTiltData) -> FitOutput`` (vmap it over runs).

    Parameters
    ----------
    fit_tilt : bool
        Fit the tilt too (else it stays at its start value).
    max_iter : int
    tol : float
        See `bgcube.fit.optimize.build_fitter`.
    """
    frozen = () if fit_tilt else ("tilt",)
    return jax.jit(
        build_fitter(norm_tilt_statistic, NORM_TILT_PARAMETERS, frozen, max_iter=max_iter, tol=tol)
    )


@with_jax_x64
def fit_norm_tilt(
    counts: Any,
    template: Any,
    energy_edges: Any,
    mask: Any = None,
    *,
    e_ref: float = 1.0,
    fit_tilt: bool = True,
    tilt: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-8,
) -> FitResult:
    """Fit the norm and tilt of a template's expected counts to one run's counts.

    Parameters
    ----------
    counts : array_like
        The run's counts outside exclusion regions, ``(nE, ny, nx)``.
    template : array_like
        The template's expected counts for the run (rate x kept-fraction
        corrected time x bin volume), same shape.
    energy_edges : array_like
        Energy edges, TeV.
    mask : array_like of bool, optional
        Bins to use besides those where the template is positive.
    e_ref : float
        Reference energy of the tilt, TeV.
    fit_tilt : bool
        False: fit the norm only, with the tilt fixed at ``tilt``.
    tilt : float
        Start (or fixed) value of the tilt.
    max_iter : int
    tol : float

    Returns
    -------
    result : bgcube.fit.FitResult
        Parameters ``norm`` and ``tilt``; check ``result.success``.

    Raises
    ------
    ValueError
        Shapes that do not match, or no bin with a positive template.
    """
    counts = np.asarray(to_numpy(counts), dtype=np.float64)
    template = np.asarray(to_numpy(template), dtype=np.float64)
    edges = np.asarray(energy_edges, dtype=np.float64)
    if counts.shape != template.shape or counts.shape[0] != edges.size - 1:
        raise ValueError(
            f"counts {counts.shape}, template {template.shape} and {edges.size} energy edges "
            "do not describe one cube"
        )
    log_energy = 0.5 * (np.log(edges[:-1]) + np.log(edges[1:])) - np.log(e_ref)
    return fit_norm_tilt_at(
        counts, template, log_energy, mask, fit_tilt=fit_tilt, tilt=tilt, max_iter=max_iter, tol=tol
    )


@with_jax_x64
def fit_norm_tilt_at(
    counts: Any,
    template: Any,
    log_energy: Any,
    mask: Any = None,
    *,
    fit_tilt: bool = True,
    tilt: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-8,
) -> FitResult:
    """`fit_norm_tilt` given ``ln(E / e_ref)`` of each first-axis slice instead of energy edges.

    The model ``norm * exp(-tilt * log_energy) * template`` is the same for
    any quantity along the first axis: the efficiency scaling of a set of
    runs (`bgcube.make.norms.fit_efficiency_scaling`) fits it with one run
    per slice and ``log_energy`` the runs' log efficiencies.

    Parameters
    ----------
    counts, template : array_like
        Shape ``(n, ny, nx)``.
    log_energy : array_like
        Shape ``(n,)``.
    mask : array_like of bool, optional
    fit_tilt : bool
    tilt : float
    max_iter : int
    tol : float
        See `fit_norm_tilt`.

    Returns
    -------
    result : bgcube.fit.FitResult

    Raises
    ------
    ValueError
        No bin with a positive template.
    """
    counts = np.asarray(to_numpy(counts), dtype=np.float64)
    template = np.asarray(to_numpy(template), dtype=np.float64)
    log_energy = np.asarray(log_energy, dtype=np.float64)
    use = np.isfinite(template) & (template > 0) & np.isfinite(counts)
    if mask is not None:
        use &= np.asarray(to_numpy(mask), dtype=bool)
    if not use.any():
        raise ValueError("the template predicts no counts in any fitted bin")
    data = NormTiltData(
        jnp.asarray(np.where(use, counts, 0.0)),
        jnp.asarray(np.where(use, template, 0.0)),
        jnp.asarray(use),
        jnp.asarray(log_energy),
    )
    ratio = counts[use].sum() / template[use].sum()
    z0 = to_internal(NORM_TILT_PARAMETERS, [max(ratio, 1e-6), tilt])
    output = make_norm_tilt_fitter(bool(fit_tilt), int(max_iter), float(tol))(jnp.asarray(z0), data)
    frozen = () if fit_tilt else ("tilt",)
    return FitResult.from_output(output, "norm_tilt", NORM_TILT_PARAMETERS, int(use.sum()), frozen)


@with_jax_x64
def fit_observation_norm(
    template: FOVCube,
    run: FOVCubeBackgroundModel,
    *,
    e_ref: float = 1.0,
    fit_tilt: bool = True,
    **kwargs: Any,
) -> FitResult:
    """Norm and tilt of a background cube for one run filled into a background model.

    Parameters
    ----------
    template : bgcube.FOVCube
        Background rate (for example a group's model) on the run's binning.
    run : bgcube.FOVCubeBackgroundModel
        One observation's counts (outside exclusion regions) and its
        kept-fraction-corrected time cube, e.g. from ``fill_obs`` on a
        one-row observation table.
    e_ref : float
        Reference energy of the tilt, TeV.
    fit_tilt : bool
    **kwargs
        Passed to `fit_norm_tilt`.

    Returns
    -------
    result : bgcube.fit.FitResult

    Raises
    ------
    ValueError
        If the binnings differ or the run has no counts/time cube.
    """
    if run.counts_cube is None or run.livetime_cube is None:
        raise ValueError("the run needs a counts cube and a time cube")
    counts, times = run.counts_cube, run.livetime_cube
    if counts.shape != template.shape or not all(
        np.allclose(a.edges_canonical, b.edges_canonical)
        for a, b in (
            (counts.energy_axis, template.energy_axis),
            (counts.dety_axis, template.dety_axis),
            (counts.detx_axis, template.detx_axis),
        )
    ):
        raise ValueError("the template and the run must have the same binning")
    exact = template.meta.get("SOLIDANG") == "EXACT"
    volume = to_numpy(template.bin_volume_array(exact)) * (u.TeV * u.sr)
    npred = template.quantity * volume * to_numpy(times.data) * times.unit
    return fit_norm_tilt(
        counts.data,
        npred.to_value(u.one),
        counts.energy_axis.edges_canonical,
        e_ref=e_ref,
        fit_tilt=fit_tilt,
        **kwargs,
    )
