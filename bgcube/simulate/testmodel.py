"""The analytic test background model of the original Gammapy (0.4-0.6).

The model family, in the words of the original ``make_test_bg_cube_model``:

* counts per bin follow a symmetric 2D Gaussian ``exp(-(x**2 + y**2) / s**2)``
  in (DETX, DETY), evaluated at the bin centres;
* its width ``s`` grows log-linearly with energy, from ``sigma / 2`` at the
  lowest energy edge to ``sigma`` at the highest;
* times a power law ``(E / 1 TeV) ** -spectral_index`` evaluated at the
  logarithmic energy-bin centres (so it is the *counts per bin* that follow
  the power law);
* times a norm linear in the altitude of the observation: 1 at 90 deg, 0.5 at
  0 deg;
* with a time of 1 s in every bin, and rate = counts / time / bin volume.

Binning facts needed to reproduce the original file
``bg_cube_model_true.fits.gz`` to 1e-15: the spatial ranges are converted to
deg *before* the linear edges ``lo + i * (hi - lo) / n`` are computed; the
energy edges are ``exp(linspace(log(lo), log(hi), n + 1))`` in the unit of
``energy_band``; the energy-bin centres are ``exp((log(lo) + log(hi)) / 2)``;
the solid angle is the flat ``dx * dy`` in rad**2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle

from ..backend import from_numpy
from ..model import FOVCubeBackgroundModel

if TYPE_CHECKING:
    from .._types import BackendLike, QuantityLike
    from ..model import FOVCubeBackgroundModel

__all__ = [
    "make_test_bg_cube_model",
    "model_edges",
    "model_counts",
    "altitude_norm",
]

#: Reference energy of the power law and of the energy-dependent width.
E_REF = 1.0 * u.TeV

# Defaults of the original make_test_bg_cube_model (never modified in place).
_FOV_RANGE = Angle([-10.0, 10.0], "deg")
_ENERGY_BAND = u.Quantity([0.01, 100.0], "TeV")
_ALTITUDE = Angle(70.0, "deg")
_SIGMA = Angle(5.0, "deg")


def altitude_norm(altitude: QuantityLike) -> float | np.ndarray:
    """Norm of the test model at an altitude: 1 at 90 deg, 0.5 at 0 deg, linear between.

    Parameters
    ----------
    altitude : `~astropy.coordinates.Angle`, `~astropy.units.Quantity` or float
        Pointing altitude (floats are taken as deg).

    Returns
    -------
    norm : float or numpy.ndarray
        Dimensionless factor.
    """
    alt = u.Quantity(altitude, u.deg).to_value(u.deg)
    return 0.5 + alt * (0.5 / 90.0)


def model_edges(detx_range, ndetx_bins, dety_range, ndety_bins, energy_band, nenergy_bins):
    """Bin edges of the test model, computed exactly as the original did.

    Parameters
    ----------
    detx_range, dety_range : `~astropy.coordinates.Angle`
        ``(min, max)`` of the field-of-view axes.
    ndetx_bins, ndety_bins : int
        Number of linear bins.
    energy_band : `~astropy.units.Quantity`
        ``(min, max)`` of the energy axis.
    nenergy_bins : int
        Number of logarithmic bins.

    Returns
    -------
    detx_edges, dety_edges : `~astropy.coordinates.Angle`
        In deg.
    energy_edges : `~astropy.units.Quantity`
        In the unit of ``energy_band``.
    """

    def linear(bounds, n):
        lo, hi = Angle(bounds).to_value(u.deg)
        return Angle(np.arange(n + 1) * ((hi - lo) / n) + lo, u.deg)

    band = u.Quantity(energy_band)
    lo, hi = band.value
    energy_edges = u.Quantity(
        np.exp(np.linspace(np.log(lo), np.log(hi), nenergy_bins + 1)), band.unit
    )
    return linear(detx_range, ndetx_bins), linear(dety_range, ndety_bins), energy_edges


def model_counts(detx_edges, dety_edges, energy_edges, altitude, sigma, spectral_index):
    """Counts of the test model per bin, as a NumPy array ``[energy, dety, detx]``.

    Parameters
    ----------
    detx_edges, dety_edges : `~astropy.coordinates.Angle`
        Field-of-view bin edges.
    energy_edges : `~astropy.units.Quantity`
        Energy bin edges.
    altitude : `~astropy.coordinates.Angle`
        Pointing altitude; sets the norm (see `altitude_norm`).
    sigma : `~astropy.coordinates.Angle`
        Gaussian width at the highest energy edge (``sigma / 2`` at the lowest).
    spectral_index : float
        Power-law index of the counts per bin, at the log bin centres.

    Returns
    -------
    counts : numpy.ndarray
        Dimensionless counts, float64, shape ``(nE, ny, nx)``.
    """
    x_edges = Angle(detx_edges).to_value(u.deg)
    y_edges = Angle(dety_edges).to_value(u.deg)
    e_edges = u.Quantity(energy_edges).to_value(u.TeV) / E_REF.to_value(u.TeV)
    x = 0.5 * (x_edges[:-1] + x_edges[1:])
    y = 0.5 * (y_edges[:-1] + y_edges[1:])
    energy = np.exp(0.5 * (np.log(e_edges[:-1]) + np.log(e_edges[1:])))

    sigma_max = Angle(sigma).to_value(u.deg)
    sigma_min = sigma_max / 2.0
    s_index = np.log(sigma_max / sigma_min) / np.log(e_edges[-1] / e_edges[0])
    s_norm = sigma_min * e_edges[0] ** -s_index
    width = s_norm * energy**s_index

    r2 = y[:, None] ** 2 + x[None, :] ** 2
    gaussian = np.exp(-r2[None, :, :] / width[:, None, None] ** 2)
    powerlaw = energy ** (-float(spectral_index))
    return altitude_norm(altitude) * gaussian * powerlaw[:, None, None]


def make_test_bg_cube_model(
    detx_range: QuantityLike = _FOV_RANGE,
    ndetx_bins: int = 24,
    dety_range: QuantityLike = _FOV_RANGE,
    ndety_bins: int = 24,
    energy_band: QuantityLike = _ENERGY_BAND,
    nenergy_bins: int = 14,
    altitude: QuantityLike = _ALTITUDE,
    sigma: QuantityLike = _SIGMA,
    spectral_index: float = 2.7,
    apply_mask: bool = False,
    do_not_force_mev_units: bool = False,
    backend: BackendLike = None,
) -> FOVCubeBackgroundModel:
    """Make the test background cube model of the original Gammapy.

    Counts follow a symmetric 2D Gaussian in (DETX, DETY) whose width grows
    log-linearly from ``sigma / 2`` at the lowest energy edge to ``sigma``
    at the highest, times a power law ``(E / 1 TeV) ** -spectral_index`` at
    the log bin centres, times a norm linear in altitude (1 at 90 deg, 0.5
    at 0 deg). The time cube holds 1 s everywhere and the rate is
    ``counts / time / bin volume`` (flat solid angle). The defaults are the
    original's.

    Parameters
    ----------
    detx_range, dety_range : `~astropy.coordinates.Angle`
        ``(min, max)`` of the field-of-view axes.
    ndetx_bins, ndety_bins : int
        Number of linear spatial bins.
    energy_band : `~astropy.units.Quantity`
        ``(min, max)`` energy.
    nenergy_bins : int
        Number of logarithmic energy bins.
    altitude : `~astropy.coordinates.Angle`
        Observation altitude; sets the norm.
    sigma : `~astropy.coordinates.Angle`
        Width of the Gaussian at the highest energy.
    spectral_index : float
        Power-law index of the counts per bin.
    apply_mask : bool
        If True, one quarter of the image is masked: counts, time and rate are
        zero in the bins whose centres have both ``x > x_center`` and
        ``y > y_center`` (useful to test coordinate rotations). The original
        documented this mask; its code zeroed the complement of the opposite
        quarter instead, i.e. three quarters. bgcube follows the documentation.
    do_not_force_mev_units : bool
        If True, the rate is in 1/(s sr E_unit) with E_unit the unit of
        ``energy_band`` (as the original file ``bg_cube_model_true.fits.gz``,
        1/(s sr TeV)); otherwise in 1/(MeV s sr).
    backend : str or module, optional
        Array backend of the cubes (default NumPy).

    Returns
    -------
    model : `~bgcube.FOVCubeBackgroundModel`
        Counts, time (1 s, ``time_convention='LIVETIME'`` as the original)
        and background cubes, on ``backend``.

    Examples
    --------
    >>> import astropy.units as u
    >>> model = make_test_bg_cube_model(ndetx_bins=4, ndety_bins=4, nenergy_bins=3)
    >>> model.background_cube.shape, str(model.background_cube.unit)
    ((3, 4, 4), '1 / (MeV s sr)')
    """
    for name, n in (
        ("ndetx_bins", ndetx_bins),
        ("ndety_bins", ndety_bins),
        ("nenergy_bins", nenergy_bins),
    ):
        if int(n) != n or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    detx_edges, dety_edges, energy_edges = model_edges(
        detx_range, int(ndetx_bins), dety_range, int(ndety_bins), energy_band, int(nenergy_bins)
    )
    counts = model_counts(detx_edges, dety_edges, energy_edges, altitude, sigma, spectral_index)
    time = np.ones_like(counts)
    if apply_mask:
        x_center = 0.5 * np.sum(Angle(detx_range).to_value(u.deg))
        y_center = 0.5 * np.sum(Angle(dety_range).to_value(u.deg))
        x = 0.5 * (detx_edges.deg[:-1] + detx_edges.deg[1:])
        y = 0.5 * (dety_edges.deg[:-1] + dety_edges.deg[1:])
        masked = (y[:, None] > y_center) & (x[None, :] > x_center)
        counts[:, masked] = 0.0
        time[:, masked] = 0.0

    model = FOVCubeBackgroundModel.set_cube_binning(
        detx_edges, dety_edges, energy_edges, backend=backend, time_convention="LIVETIME"
    )
    model.counts_cube.data = from_numpy(counts, backend)
    model.livetime_cube.data = from_numpy(time, backend)
    model.compute_rate()
    if do_not_force_mev_units:
        cube = model.background_cube
        unit = u.Unit(1 / (u.s * u.sr * u.Quantity(energy_band).unit))
        cube.data = cube.data * cube.unit.to(unit)
        cube.unit = unit
    return model
