"""Exact sampling of events from a binned (piecewise-constant) rate cube.

A rate cube constant within each bin defines the expected counts of an
observation, ``mu = rate * time * dE * dOmega`` per bin. Drawing a Poisson
number of events in each bin and placing them uniformly within the bin (in
energy, DETX and DETY; flat solid angle) is then an exact draw from that
model: a cube filled from the events with the same edges holds exactly the
Poisson draws, and any coarser binning holds Poisson counts with the
integrated means.
"""

from __future__ import annotations

import numpy as np

__all__ = ["poisson_counts", "uniform_in_bins", "sample_binned_events"]


def poisson_counts(expected, rng):
    """Poisson draws with the given means (NumPy array in, int64 array out).

    Parameters
    ----------
    expected : numpy.ndarray
        Non-negative, finite means.
    rng : numpy.random.Generator

    Returns
    -------
    counts : numpy.ndarray of int64
        Same shape.

    Raises
    ------
    ValueError
        If a mean is negative or not finite.
    """
    expected = np.asarray(expected, dtype=np.float64)
    if not np.all(np.isfinite(expected) & (expected >= 0)):
        bad = expected[~(np.isfinite(expected) & (expected >= 0))][0]
        raise ValueError(f"expected counts must be finite and >= 0, found {bad}")
    return rng.poisson(expected).astype(np.int64)


def uniform_in_bins(edges, index, rng):
    """Values drawn uniformly in ``[edges[i], edges[i + 1])`` for each bin index ``i``.

    Parameters
    ----------
    edges : numpy.ndarray
        Increasing bin edges (float64).
    index : numpy.ndarray of int
        Bin index of each value.
    rng : numpy.random.Generator

    Returns
    -------
    values : numpy.ndarray
        float64, each strictly below its bin's upper edge.
    """
    edges = np.asarray(edges, dtype=np.float64)
    lo, hi = edges[index], edges[index + 1]
    values = lo + rng.random(index.size) * (hi - lo)
    # lo + u * (hi - lo) may round up to hi when u is within 1 ulp of 1
    return np.minimum(values, np.nextafter(hi, lo))


def sample_binned_events(expected, energy_edges, dety_edges, detx_edges, rng):
    """Events from a cube of expected counts: Poisson per bin, uniform within each bin.

    Parameters
    ----------
    expected : numpy.ndarray
        Expected counts, shape ``(nE, ny, nx)``.
    energy_edges, dety_edges, detx_edges : numpy.ndarray
        Bin edges in TeV, deg, deg.
    rng : numpy.random.Generator

    Returns
    -------
    energy, dety, detx : numpy.ndarray
        The events, in TeV, deg, deg, ordered by bin.
    counts : numpy.ndarray of int64
        The number of events drawn in each bin, shape ``(nE, ny, nx)``.
    """
    counts = poisson_counts(expected, rng)
    flat = np.repeat(np.arange(counts.size), counts.ravel())
    ie, iy, ix = np.unravel_index(flat, counts.shape)
    energy = uniform_in_bins(energy_edges, ie, rng)
    dety = uniform_in_bins(dety_edges, iy, rng)
    detx = uniform_in_bins(detx_edges, ix, rng)
    return energy, dety, detx, counts
