"""The cube binning of a background model, as the original make-models chose it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from .axes import log_edges
from .errors import ObservationError

if TYPE_CHECKING:
    from astropy.coordinates import Angle
    from astropy.table import Table

    from ._types import QuantityLike

__all__ = [
    "define_cube_binning",
    "cube_edges",
    "cube_shape",
    "ENERGY_THRESHOLD_COLUMNS",
    "EFFECTIVE_AREA_COLUMN",
    "row_energy_threshold",
]

#: obs-index columns holding a run's lower energy threshold, in order of preference.
ENERGY_THRESHOLD_COLUMNS = ("SAFE_ENERGY_LO", "ENERGY_THRESHOLD", "E_THRES", "LO_THRES")


def row_energy_threshold(row) -> float | None:
    """A run's lower energy threshold in TeV from its observation-index row, or None.

    Looks in the columns `ENERGY_THRESHOLD_COLUMNS` (SAFE_ENERGY_LO first)
    and takes the first finite, positive value (in the column's unit, TeV
    if it has none).

    Parameters
    ----------
    row : `~astropy.table.Row` or mapping
        The run's observation-index row.

    Returns
    -------
    threshold : float or None
        TeV.
    """
    names = row.colnames if hasattr(row, "colnames") else list(row.keys())
    columns = getattr(row, "columns", None)
    for name in ENERGY_THRESHOLD_COLUMNS:
        if name not in names:
            continue
        value = row[name]
        if np.ma.is_masked(value):
            continue
        unit = getattr(columns[name], "unit", None) if columns is not None else None
        value = u.Quantity(value, unit or u.TeV).to_value(u.TeV)
        if np.isfinite(value) and value > 0:
            return float(value)
    return None


#: Run-table column bgcube adds from each run's effective area (AEFF_2D HDU):
#: the area at 1 TeV and 0.5 deg offset, m2 (`bgcube.data.irf`).
EFFECTIVE_AREA_COLUMN = "AEFF_1TEV"

#: The original's defaults: 20 log energy bins over 0.1-100 TeV and 60 x 60
#: linear bins over +-0.07 rad (about +-4 deg), suited to H.E.S.S.
DEFAULT_ENERGY_RANGE = (0.1, 100.0) * u.TeV
_DEFAULT_FOV_HALF_WIDTH_RAD = 0.07


def __getattr__(name):
    # DEFAULT_FOV_HALF_WIDTH, an Angle: astropy.coordinates is imported when it is asked for
    if name == "DEFAULT_FOV_HALF_WIDTH":
        from astropy.coordinates import Angle

        return Angle(_DEFAULT_FOV_HALF_WIDTH_RAD, u.rad)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def cube_shape(n_obs: int) -> tuple[int, int, int]:
    """Number of (energy, DETY, DETX) bins for a group of ``n_obs`` observations.

    20 x 60 x 60; with fewer than 100 observations, ``m = int(n_obs / 10) - 10``
    (negative) bins are added: ``20 + m`` in energy and ``60 + 4 m`` in DETX
    and DETY, as the original did, so that sparse groups get coarser cubes.

    Raises
    ------
    ObservationError
        If ``n_obs`` is not positive.
    """
    if n_obs < 1:
        raise ObservationError(f"cannot define a cube binning for {n_obs} observations")
    n_energy, n_fov = 20, 60
    if n_obs < 100:
        m = int(n_obs / 10) - 10
        n_energy += m
        n_fov += 4 * m
    return n_energy, n_fov, n_fov


def define_cube_binning(
    observation_table: Table,
    method: str = "default",
    *,
    energy_range: QuantityLike | None = None,
    fov_half_width: QuantityLike | None = None,
) -> tuple[Angle, Angle, u.Quantity]:
    """Bin edges of a background model for a group of observations.

    Parameters
    ----------
    observation_table : `~astropy.table.Table`
        The group's rows of the observation index (its length sets the
        shape, see `cube_shape`).
    method : {'default', 'michi'}
        ``'default'``: energies from 0.1 to 100 TeV. ``'michi'``: the energy
        axis starts at the lowest energy threshold of the group's runs (obs-
        index column SAFE_ENERGY_LO, ENERGY_THRESHOLD, E_THRES or LO_THRES).
    energy_range : `~astropy.units.Quantity`, optional
        ``(min, max)`` to replace 0.1-100 TeV (the 'michi' minimum still applies).
    fov_half_width : `~astropy.coordinates.Angle`, optional
        DETX/DETY run over ``+-fov_half_width`` (default 0.07 rad).

    Returns
    -------
    detx_edges, dety_edges : `~astropy.coordinates.Angle`
        Linear field-of-view edges, deg.
    energy_edges : `~astropy.units.Quantity`
        Logarithmic energy edges, TeV.

    Raises
    ------
    ObservationError
        If the table is empty, or 'michi' finds no threshold column.
    ValueError
        If the method is unknown.
    """
    from astropy.coordinates import Angle

    detx_edges, dety_edges, energy_edges = cube_edges(
        observation_table, method, energy_range=energy_range, fov_half_width=fov_half_width
    )
    return Angle(detx_edges), Angle(dety_edges), energy_edges


def cube_edges(
    observation_table: Table,
    method: str = "default",
    *,
    energy_range: QuantityLike | None = None,
    fov_half_width: QuantityLike | None = None,
) -> tuple[u.Quantity, u.Quantity, u.Quantity]:
    """`define_cube_binning`'s edges, DETX and DETY as Quantities (deg), not Angles.

    The same numbers, without importing astropy.coordinates (about 0.1 s),
    which the builds never need.

    Parameters
    ----------
    observation_table : `~astropy.table.Table`
        The group's rows of the observation index.
    method : {'default', 'michi'}
        See `define_cube_binning`.
    energy_range : `~astropy.units.Quantity`, optional
        ``(min, max)`` to replace 0.1-100 TeV.
    fov_half_width : `~astropy.units.Quantity` or str, optional
        DETX/DETY run over ``+-fov_half_width`` (default 0.07 rad).

    Raises
    ------
    ObservationError
        If the table is empty, or 'michi' finds no threshold column.
    ValueError
        If the method is unknown.

    Returns
    -------
    detx_edges, dety_edges, energy_edges : `~astropy.units.Quantity`
        deg, deg, TeV.
    """
    if method not in ("default", "michi"):
        raise ValueError(f"method must be 'default' or 'michi', got {method!r}")
    n_energy, n_dety, n_detx = cube_shape(len(observation_table))
    e_min, e_max = u.Quantity(
        DEFAULT_ENERGY_RANGE if energy_range is None else energy_range
    ).to_value(u.TeV)
    if method == "michi":
        e_min = _lowest_threshold(observation_table)
        if not e_min < e_max:
            raise ObservationError(
                f"lowest energy threshold {e_min} TeV is not below the upper energy {e_max} TeV"
            )
    if fov_half_width is None:
        half = u.Quantity(_DEFAULT_FOV_HALF_WIDTH_RAD, u.rad).to_value(u.deg)
    elif isinstance(fov_half_width, u.Quantity):
        half = u.Quantity(fov_half_width).to_value(u.deg)
    else:  # strings such as '4d30m': astropy's Angle parses them
        from astropy.coordinates import Angle

        half = Angle(fov_half_width).to_value(u.deg)
    energy_edges = log_edges(e_min, e_max, n_energy) * u.TeV
    dety_edges = u.Quantity(np.linspace(-half, half, n_dety + 1), u.deg)
    detx_edges = u.Quantity(np.linspace(-half, half, n_detx + 1), u.deg)
    return detx_edges, dety_edges, energy_edges


def _lowest_threshold(observation_table) -> float:
    for name in ENERGY_THRESHOLD_COLUMNS:
        if name in observation_table.colnames:
            column = observation_table[name]
            values = u.Quantity(column, column.unit or u.TeV).to_value(u.TeV)
            values = values[np.isfinite(values) & (values > 0)]
            if values.size:
                return float(values.min())
    raise ObservationError(
        "the 'michi' binning needs each run's energy threshold in one of the obs-index "
        f"columns {ENERGY_THRESHOLD_COLUMNS}; the table has {observation_table.colnames}"
    )
