"""Bin volumes and the time normalisation ``rate = counts / (time * dE * dOmega)``.

Units are canonical: energy edges in TeV, field-of-view edges in deg, time
in s; solid angles come out in sr and volumes in TeV sr. The astropy shell
converts the rate to 1/(MeV s sr).
"""

from __future__ import annotations

import math

from ._typing import Array, Namespace
from .namespace import array_namespace

__all__ = ["solid_angle", "bin_volume", "compute_rate"]

_DEG = math.pi / 180.0


def solid_angle(
    dety_edges: Array, detx_edges: Array, *, exact: bool = False, xp: Namespace | None = None
) -> Array:
    """Solid angle of each field-of-view bin, in sr.

    Parameters
    ----------
    dety_edges, detx_edges : array
        Bin edges in deg (1-D, float64).
    exact : bool
        ``False`` (default): the flat approximation ``dx * dy`` in rad**2,
        as in the original FOVCube and GADF tools. ``True``: the true solid
        angle of the bin taken as a longitude/latitude rectangle of the
        field-of-view frame (DETX = longitude, DETY = latitude),
        ``dx * (sin(y_hi) - sin(y_lo))``.
    xp : module, optional
        Namespace; found from the arrays by default.

    Returns
    -------
    domega : array of float64
        Shape ``(ny, nx)``, in sr.
    """
    xp = array_namespace(dety_edges, detx_edges) if xp is None else xp
    dx = (detx_edges[1:] - detx_edges[:-1]) * _DEG
    if exact:
        dy = xp.sin(dety_edges[1:] * _DEG) - xp.sin(dety_edges[:-1] * _DEG)
    else:
        dy = (dety_edges[1:] - dety_edges[:-1]) * _DEG
    return dy[:, None] * dx[None, :]


def bin_volume(
    energy_edges: Array,
    dety_edges: Array,
    detx_edges: Array,
    *,
    exact: bool = False,
    xp: Namespace | None = None,
) -> Array:
    """Volume ``dE * dOmega`` of each cube bin, in TeV sr.

    Parameters
    ----------
    energy_edges : array
        Energy edges in TeV.
    dety_edges, detx_edges : array
        Field-of-view edges in deg.
    exact : bool
        Solid-angle convention, see :func:`solid_angle`.
    xp : module, optional
        Namespace; found from the arrays by default.

    Returns
    -------
    volume : array of float64
        Shape ``(nE, ny, nx)``, in TeV sr.
    """
    xp = array_namespace(energy_edges, dety_edges, detx_edges) if xp is None else xp
    d_energy = energy_edges[1:] - energy_edges[:-1]
    return (
        d_energy[:, None, None] * solid_angle(dety_edges, detx_edges, exact=exact, xp=xp)[None, ...]
    )


def compute_rate(
    counts: Array, time: Array, volume: Array, *, xp: Namespace | None = None
) -> Array:
    """Rate ``counts / (time * volume)``; 0 where ``time * volume`` is 0.

    Parameters
    ----------
    counts : array
        Counts, shape ``(nE, ny, nx)``.
    time : array
        Observation time per bin in s, broadcastable to ``counts``.
    volume : array
        Bin volume in TeV sr, broadcastable to ``counts``.
    xp : module, optional
        Namespace; found from the arrays by default.

    Returns
    -------
    rate : array of float64
        In 1/(TeV s sr), never NaN or infinite where the time is zero.
    """
    xp = array_namespace(counts, time, volume) if xp is None else xp
    exposure = xp.astype(time, xp.float64) * volume
    covered = exposure > 0
    safe = xp.where(covered, exposure, xp.ones_like(exposure))
    rate = xp.astype(counts, xp.float64) / safe
    return xp.where(covered, rate, xp.zeros_like(rate))
