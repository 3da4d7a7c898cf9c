"""Parametric background-rate models: pure JAX functions of parameters and coordinates.

A model is a small, frozen (hashable) description -- reference energy,
spline knots -- with a method ``rate(values, energy, dety, detx)`` that is a
pure ``jax.numpy`` function of the physical parameter values and of
broadcastable coordinates (TeV, deg, deg), returning the rate in
1/(TeV s sr). It can be jitted, differentiated and vmapped; being hashable,
the model itself can be a static argument of a compiled function.

Two families are provided:

`GaussianModel`
    The family of the original Gammapy test model
    (`bgcube.simulate.make_test_bg_cube_model`): a power law in energy
    times a symmetric Gaussian in offset, ``exp(-r**2 / w(E)**2)``, whose
    width ``w`` is a power law of energy (log-linear).
`FlexibleModel`
    A natural cubic spline in ``ln E`` for the log of the rate at the
    field-of-view centre, times a generalised-Gaussian radial profile
    ``exp(-(rho / w(E))**beta(E))`` of the elliptical offset ``rho``, times a
    log-linear gradient ``exp(gx * x + gy * y)`` across the field of view.

Expected counts per bin come from `bgcube.fit.geometry.expected_counts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

from .parameters import Parameter
from .spline import natural_spline, second_derivative_matrix

if TYPE_CHECKING:
    from .geometry import BinGeometry

__all__ = [
    "RateModel",
    "GaussianModel",
    "FlexibleModel",
    "MODELS",
    "gaussian_values_from_test_model",
]


class RateModel:
    """Base class of the rate models (see the module docstring)."""

    #: Short name used in file headers and by ``smooth(method='fit', model=name)``.
    name = "rate model"

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """The model's parameters, in the order of the value vector."""
        raise NotImplementedError

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names."""
        return tuple(p.name for p in self.parameters)

    @property
    def default_values(self) -> np.ndarray:
        """Default start values (physical)."""
        return np.array([p.value for p in self.parameters], dtype=np.float64)

    def rate(
        self, values: jnp.ndarray, energy: jnp.ndarray, dety: jnp.ndarray, detx: jnp.ndarray
    ) -> jnp.ndarray:
        """Background rate in 1/(TeV s sr).

        Parameters
        ----------
        values : jax.Array
            Physical parameter values, shape ``(n,)``.
        energy, dety, detx : jax.Array
            Broadcastable coordinates: energy in TeV, offsets in deg.

        Returns
        -------
        rate : jax.Array
            The broadcast shape of the coordinates.
        """
        raise NotImplementedError

    def initial_values(
        self, counts: np.ndarray, time: np.ndarray, geometry: BinGeometry
    ) -> np.ndarray:
        """Start values estimated from data (physical, host NumPy).

        Parameters
        ----------
        counts, time : array_like
            Counts and observation time (s) per bin, shape ``(nE, ny, nx)``.
        geometry : bgcube.fit.geometry.BinGeometry

        Returns
        -------
        values : numpy.ndarray
        """
        return self.default_values


# ----------------------------------------------------------------------
# data summaries for start values (host side)
def _moments(counts, time, geometry):
    """Mean spectrum over the field of view and the counts' mean squared offset."""
    counts = np.asarray(counts, dtype=np.float64)
    time = np.asarray(time, dtype=np.float64)
    omega = np.asarray(geometry.solid_angle)
    d_e = np.diff(np.asarray(geometry.energy_edges))
    exposure = np.sum(time * omega[None], axis=(1, 2)) * d_e  # s sr TeV
    n_e = counts.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_rate = np.where(exposure > 0, n_e / exposure, 0.0)
    y = 0.5 * (np.asarray(geometry.dety_edges)[:-1] + np.asarray(geometry.dety_edges)[1:])
    x = 0.5 * (np.asarray(geometry.detx_edges)[:-1] + np.asarray(geometry.detx_edges)[1:])
    r2 = y[:, None] ** 2 + x[None, :] ** 2
    image = counts.sum(axis=0)
    total = image.sum()
    mean_r2 = float((image * r2).sum() / total) if total > 0 else float(r2.mean())
    return mean_rate, n_e, mean_r2, r2, time, omega


def _profile_mean(r2, width, time, omega):
    """Exposure-weighted mean of ``exp(-r2 / width**2)`` over the field of view."""
    w = (time * omega[None]).sum(axis=0)
    return float((np.exp(-r2 / width**2) * w).sum() / w.sum()) if w.sum() > 0 else 1.0


def _log_log_fit(log_e, log_rate, weights):
    """Weighted straight line through (log_e, log_rate): (value at 0, slope)."""
    if np.count_nonzero(weights) < 2:
        return (float(log_rate[weights > 0][0]) if np.any(weights > 0) else 0.0), 0.0
    slope, intercept = np.polyfit(log_e, log_rate, 1, w=np.sqrt(weights))
    return float(intercept), float(slope)


# ----------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianModel(RateModel):
    """The original test-model family: power law times a Gaussian whose width scales with energy.

    ``rate = amplitude * (E / e_ref)**-index * exp(-(x**2 + y**2) / w(E)**2)``
    with ``w(E) = width * (E / e_ref)**width_index``. Note the original's
    convention ``exp(-r**2 / w**2)``: ``w`` is sqrt(2) times a Gaussian sigma.

    Parameters (values vector, in order)
    ------------------------------------
    amplitude : 1/(TeV s sr), > 0
        Rate at the field-of-view centre at ``e_ref``.
    index : dimensionless
        Power-law index of the rate (the original's counts-per-log-bin index plus one).
    width : deg, > 0
        Width at ``e_ref``.
    width_index : dimensionless
        Log-slope of the width with energy.

    Attributes
    ----------
    e_ref : float
        Reference energy in TeV (default 1).
    """

    e_ref: float = 1.0
    name = "gaussian"

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return (
            Parameter("amplitude", 1.0, "1 / (TeV s sr)", min=0.0),
            Parameter("index", 3.0),
            Parameter("width", 2.0, "deg", min=0.0),
            Parameter("width_index", 0.0),
        )

    def rate(
        self, values: jnp.ndarray, energy: jnp.ndarray, dety: jnp.ndarray, detx: jnp.ndarray
    ) -> jnp.ndarray:
        amplitude, index, width, width_index = (values[i] for i in range(4))
        log_e = jnp.log(energy / self.e_ref)
        w = width * jnp.exp(width_index * log_e)
        r2 = dety**2 + detx**2
        return amplitude * jnp.exp(-index * log_e - r2 / w**2)

    def initial_values(
        self, counts: np.ndarray, time: np.ndarray, geometry: BinGeometry
    ) -> np.ndarray:
        mean_rate, n_e, mean_r2, r2, time, omega = _moments(counts, time, geometry)
        width = max(math.sqrt(mean_r2), 1e-3)
        log_e = np.log(np.asarray(geometry.energy_centers) / self.e_ref)
        ok = mean_rate > 0
        if not np.any(ok):
            return self.default_values
        log_amp, slope = _log_log_fit(log_e[ok], np.log(mean_rate[ok]), n_e[ok])
        amplitude = math.exp(log_amp) / _profile_mean(r2, width, time, omega)
        return np.array([amplitude, -slope, width, 0.0])


def gaussian_values_from_test_model(
    energy_edges: Any,
    dety_edges: Any,
    detx_edges: Any,
    *,
    sigma: float = 5.0,
    spectral_index: float = 2.7,
    norm: float = 1.0,
    time: float = 1.0,
) -> np.ndarray:
    """`GaussianModel` values (``e_ref`` 1 TeV) of `bgcube.simulate.make_test_bg_cube_model`.

    With the ``'centre'`` energy quadrature and one spatial node, the model
    then reproduces the test model's rate cube (1/(TeV s sr)) exactly.

    Parameters
    ----------
    energy_edges : array_like
        Logarithmically uniform energy edges, TeV.
    dety_edges, detx_edges : array_like
        Linearly uniform offset edges, deg.
    sigma : float
        The test model's width at the highest energy edge, deg.
    spectral_index : float
        The test model's index of counts per bin.
    norm : float
        The test model's norm (`bgcube.simulate.altitude_norm`) times any scale.
    time : float
        The test model's time per bin, s (1 in the original).

    Returns
    -------
    values : numpy.ndarray
        ``[amplitude, index, width, width_index]``.
    """
    e = np.asarray(energy_edges, dtype=np.float64)
    ratio = e[1] / e[0]
    omega = (
        np.diff(np.asarray(dety_edges))[0]
        * np.diff(np.asarray(detx_edges))[0]
        * (math.pi / 180.0) ** 2
    )
    width_index = math.log(2.0) / math.log(e[-1] / e[0])
    width = 0.5 * sigma * e[0] ** -width_index
    amplitude = norm / (time * omega * (math.sqrt(ratio) - 1.0 / math.sqrt(ratio)))
    return np.array([amplitude, spectral_index + 1.0, width, width_index])


# ----------------------------------------------------------------------
@dataclass(frozen=True)
class FlexibleModel(RateModel):
    """Spline spectrum times an elliptical generalised-Gaussian profile times a gradient.

    ``ln rate = s(ln E) - (rho / w(E))**beta(E) + gx * x + gy * y`` where

    * ``s`` is the natural cubic spline through ``(knots, ln_rate_k)``
      (linear, i.e. a power law, beyond the outer knots);
    * ``w(E) = width * (E / e_ref)**width_index`` and
      ``beta(E) = beta * (E / e_ref)**beta_index``: the profile can widen
      and flatten with energy, as the acceptance of Cherenkov telescopes does;
    * ``rho**2 = (x, y) exp(S) (x, y)^T`` with ``S = [[e1, e2], [e2, -e1]]``:
      ``exp(S)`` has determinant 1, so the ellipse keeps its area; its axis
      ratio is ``exp(sqrt(e1**2 + e2**2))`` and its long axis lies at
      ``0.5 * atan2(e2, e1) + 90 deg`` from DETX. ``e1 = e2 = 0`` is a
      circle, and no value is forbidden;
    * ``beta(E) = 2`` is a Gaussian (the `GaussianModel` convention),
      larger values give a flatter top and a steeper edge.

    Parameters (values vector, in order)
    ------------------------------------
    ln_rate_0 .. ln_rate_{K-1} : ln(1/(TeV s sr))
        Log rate at the centre at each knot energy.
    width : deg, > 0
    width_index : dimensionless
    beta : 0.5 < beta < 20
    beta_index : dimensionless
    ellipticity_1, ellipticity_2 : dimensionless
    gradient_x, gradient_y : 1/deg

    Attributes
    ----------
    knots : tuple of float
        Knot positions in ``ln(E / 1 TeV)`` (at least two).
    e_ref : float
        Reference energy of the width and of beta, TeV.
    """

    knots: tuple[float, ...]
    e_ref: float = 1.0
    name = "flexible"

    def __post_init__(self):
        second_derivative_matrix(self.knots)  # validates the knots

    @classmethod
    def from_energy_range(
        cls, e_min: float, e_max: float, n_knots: int = 6, e_ref: float | None = None
    ) -> FlexibleModel:
        """Knots evenly spaced in ``ln E`` from ``e_min`` to ``e_max`` (TeV).

        ``e_ref`` defaults to the geometric mean of the range.
        """
        if not 0 < e_min < e_max:
            raise ValueError(f"need 0 < e_min < e_max (TeV), got {e_min}, {e_max}")
        if int(n_knots) != n_knots or n_knots < 2:
            raise ValueError(f"n_knots must be an integer >= 2, got {n_knots!r}")
        knots = np.linspace(math.log(e_min), math.log(e_max), int(n_knots))
        e_ref = math.sqrt(e_min * e_max) if e_ref is None else float(e_ref)
        return cls(tuple(float(k) for k in knots), e_ref)

    @classmethod
    def from_counts(
        cls, counts: np.ndarray, geometry: BinGeometry, n_knots: int = 6, min_counts: float = 10.0
    ) -> FlexibleModel:
        """Knots spanning the energy bins that hold data.

        The knots run from the logarithmic centre of the lowest to that of
        the highest energy bin with at least ``min_counts`` counts (at
        least two bins; otherwise every bin with counts), so starved bins
        at the edges are described by the spline's power-law extension
        instead of pulling a knot of their own towards zero.

        Parameters
        ----------
        counts : array_like
            Counts cube ``(nE, ny, nx)``.
        geometry : bgcube.fit.geometry.BinGeometry
        n_knots : int
            Knots wanted; fewer when fewer energy bins hold data.
        min_counts : float
            Counts an energy bin needs to set the knot range.

        Returns
        -------
        model : FlexibleModel

        Raises
        ------
        ValueError
            If fewer than two energy bins have counts.
        """
        n_e = np.asarray(counts, dtype=np.float64).sum(axis=(1, 2))
        centers = np.asarray(geometry.energy_centers)
        used = np.flatnonzero(n_e >= min_counts)
        if used.size < 2:
            used = np.flatnonzero(n_e > 0)
        if used.size < 2:
            raise ValueError(
                f"a flexible model needs counts in at least two energy bins, got {used.size}"
            )
        n = int(min(n_knots, used[-1] - used[0] + 1))
        return cls.from_energy_range(centers[used[0]], centers[used[-1]], max(n, 2))

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        spectrum = tuple(
            Parameter(f"ln_rate_{k}", 0.0, "ln(1 / (TeV s sr))") for k in range(len(self.knots))
        )
        return spectrum + (
            Parameter("width", 2.0, "deg", min=0.0),
            Parameter("width_index", 0.0),
            Parameter("beta", 2.0, min=0.5, max=20.0),
            Parameter("beta_index", 0.0),
            Parameter("ellipticity_1", 0.0),
            Parameter("ellipticity_2", 0.0),
            Parameter("gradient_x", 0.0, "1 / deg"),
            Parameter("gradient_y", 0.0, "1 / deg"),
        )

    @property
    def knot_energies(self) -> np.ndarray:
        """Knot energies in TeV."""
        return np.exp(np.asarray(self.knots))

    def rate(
        self, values: jnp.ndarray, energy: jnp.ndarray, dety: jnp.ndarray, detx: jnp.ndarray
    ) -> jnp.ndarray:
        k = len(self.knots)
        width, width_index, beta, beta_index, e1, e2, gx, gy = (values[k + i] for i in range(8))
        log_e = jnp.log(energy)
        spectrum = natural_spline(log_e, self.knots, values[:k])
        log_e_ref = log_e - math.log(self.e_ref)
        w = width * jnp.exp(width_index * log_e_ref)
        b = beta * jnp.exp(beta_index * log_e_ref)
        rho2 = _elliptical_offset2(dety, detx, e1, e2)
        # (rho / w)**b, safe at rho = 0 for the derivative in b
        profile = jnp.exp(0.5 * b * jnp.log(jnp.maximum(rho2 / w**2, 1e-300)))
        return jnp.exp(spectrum - profile + gx * detx + gy * dety)

    def initial_values(
        self, counts: np.ndarray, time: np.ndarray, geometry: BinGeometry
    ) -> np.ndarray:
        mean_rate, n_e, mean_r2, r2, time, omega = _moments(counts, time, geometry)
        width = max(math.sqrt(mean_r2), 1e-3)
        log_e = np.log(np.asarray(geometry.energy_centers))
        ok = mean_rate > 0
        if np.count_nonzero(ok) == 0:
            spectrum = np.zeros(len(self.knots))
        else:
            log_rate = np.log(mean_rate[ok] / _profile_mean(r2, width, time, omega))
            spectrum = np.interp(np.asarray(self.knots), log_e[ok], log_rate)
        return np.concatenate([spectrum, [width, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0]])


def _elliptical_offset2(dety, detx, e1, e2):
    """``(x, y) exp(S) (x, y)^T`` with ``S = [[e1, e2], [e2, -e1]]``, safe at ``e1 = e2 = 0``."""
    k2 = e1**2 + e2**2
    small = k2 < 1e-12
    k = jnp.sqrt(jnp.where(small, 1.0, k2))
    cosh = jnp.where(small, 1.0 + 0.5 * k2, jnp.cosh(k))
    sinhc = jnp.where(small, 1.0 + k2 / 6.0, jnp.sinh(k) / k)
    return cosh * (detx**2 + dety**2) + sinhc * (e1 * (detx**2 - dety**2) + 2.0 * e2 * detx * dety)


#: Model families by name (for ``smooth(method='fit', model='gaussian')``).
MODELS = {"gaussian": GaussianModel, "flexible": FlexibleModel}
