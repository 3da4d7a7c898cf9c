"""Gaussian gamma-ray sources for simulated data sets, so that exclusion regions matter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..data.fov import fov_to_sky

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["GaussianSource", "example_sources", "sources_table", "sample_source_events"]

#: Exclusion radius suggested for a source, in units of its Gaussian sigma:
#: a 2D Gaussian leaves exp(-4**2 / 2) = 3e-4 of its events outside 4 sigma.
EXCLUSION_SIGMAS = 4.0


@dataclass(frozen=True)
class GaussianSource:
    """A gamma-ray source with a 2D Gaussian shape and a power-law spectrum.

    Parameters
    ----------
    name : str
        Source name (written to OBJECT for runs pointed at it).
    ra, dec : float
        Centre (ICRS), deg.
    sigma : float
        Gaussian width (standard deviation per axis), deg.
    rate : float
        Expected number of detected gamma-ray events per second of ONTIME,
        over the simulated energy range, before the field-of-view cut, in Hz.
    spectral_index : float
        Index of the differential spectrum dN/dE ~ E**-index.
    """

    name: str
    ra: float
    dec: float
    sigma: float = 0.1
    rate: float = 0.5
    spectral_index: float = 2.5

    def __post_init__(self):
        if not (self.sigma > 0 and np.isfinite(self.sigma)):
            raise ValueError(f"source {self.name!r}: sigma must be > 0 deg, got {self.sigma}")
        if not (self.rate >= 0 and np.isfinite(self.rate)):
            raise ValueError(f"source {self.name!r}: rate must be >= 0 Hz, got {self.rate}")
        if not -90 <= self.dec <= 90:
            raise ValueError(f"source {self.name!r}: dec must be in [-90, 90] deg, got {self.dec}")

    @property
    def exclusion_radius(self) -> float:
        """Suggested exclusion radius, deg (``EXCLUSION_SIGMAS * sigma``)."""
        return EXCLUSION_SIGMAS * self.sigma


def example_sources() -> list[GaussianSource]:
    """Three made-up sources in the southern sky, visible from the H.E.S.S. site.

    They culminate above 50 deg altitude there, so runs pointed at them fit
    the default altitude range of `make_test_dataset`. They are not real
    objects.

    Returns
    -------
    sources : list of GaussianSource
    """
    return [
        GaussianSource("SIM-SRC-1", ra=83.0, dec=-30.0, sigma=0.08, rate=0.6, spectral_index=2.3),
        GaussianSource("SIM-SRC-2", ra=150.0, dec=-15.0, sigma=0.15, rate=0.8, spectral_index=2.6),
        GaussianSource("SIM-SRC-3", ra=270.0, dec=-45.0, sigma=0.05, rate=0.4, spectral_index=2.0),
    ]


def sources_table(sources: Sequence[GaussianSource]) -> Table:
    """The sources as an astropy Table (NAME, RA, DEC, SIGMA, RATE, SPECTRAL_INDEX, RADIUS).

    ``RADIUS`` is the suggested exclusion radius (deg).

    Parameters
    ----------
    sources : list of GaussianSource

    Returns
    -------
    table : `~astropy.table.Table`
    """
    import astropy.units as u
    from astropy.table import Table

    rows = [asdict(s) for s in sources]
    table = Table(
        {
            "NAME": [r["name"] for r in rows],
            "RA": [r["ra"] for r in rows] * u.deg,
            "DEC": [r["dec"] for r in rows] * u.deg,
            "SIGMA": [r["sigma"] for r in rows] * u.deg,
            "RATE": [r["rate"] for r in rows] * u.Hz,
            "SPECTRAL_INDEX": np.array([r["spectral_index"] for r in rows], dtype=float),
            "RADIUS": [s.exclusion_radius for s in sources] * u.deg,
        }
    )
    table.meta["EXTNAME"] = "SOURCES"
    table.meta["COMMENT"] = "Simulated Gaussian gamma-ray sources; RADIUS: suggested exclusion"
    return table


def sample_powerlaw(e_min, e_max, index, size, rng):
    """Energies drawn from dN/dE ~ E**-index on [e_min, e_max), by inverting the CDF.

    Parameters
    ----------
    e_min, e_max : float
        Energy range, TeV.
    index : float
        Differential spectral index.
    size : int
        Number of energies.
    rng : numpy.random.Generator

    Returns
    -------
    energy : numpy.ndarray
        TeV, float64.
    """
    q = rng.random(size)
    if np.isclose(index, 1.0):
        energy = e_min * (e_max / e_min) ** q
    else:
        a = 1.0 - index
        energy = (e_min**a + q * (e_max**a - e_min**a)) ** (1.0 / a)
    return np.clip(energy, e_min, np.nextafter(e_max, e_min))


def sample_source_events(source, ontime, energy_range, rng):
    """Gamma-ray events of one source during one observation.

    The number of events is Poisson with mean ``source.rate * ontime``;
    positions are Gaussian offsets (``sigma`` per axis) around the source in
    its own field-of-view frame, energies follow the power law.

    Parameters
    ----------
    source : GaussianSource
    ontime : float
        Observation time, s.
    energy_range : tuple of float
        ``(e_min, e_max)``, TeV.
    rng : numpy.random.Generator

    Returns
    -------
    energy, ra, dec : numpy.ndarray
        TeV, deg, deg.
    """
    n = int(rng.poisson(source.rate * ontime))
    energy = sample_powerlaw(*energy_range, source.spectral_index, n, rng)
    dx, dy = rng.normal(0.0, source.sigma, size=(2, n))
    ra, dec = fov_to_sky(dx, dy, source.ra, source.dec)
    return energy, np.asarray(ra, float), np.asarray(dec, float)
