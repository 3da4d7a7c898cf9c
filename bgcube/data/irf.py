"""Summaries of a run's instrument response, as conditions of its background.

A run's effective area (its GADF ``AEFF_2D`` HDU) is computed for the run's
own zenith, azimuth, optical efficiency and telescopes; its value at a
reference energy and offset summarises that state in one number, which
`bgcube.fit.joint` can use as a condition (the column `AEFF_COLUMN`) like
any observation-index column. It is not derived from the run's counts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ..binning import EFFECTIVE_AREA_COLUMN as AEFF_COLUMN
from ..errors import BgcubeError, FileFormatError
from ..io.fits import read_fits_table
from ..io.lean_fits import read_header, read_table_hdu
from ..progress import progress_bar

if TYPE_CHECKING:
    from collections.abc import Mapping

    from astropy.table import Table

    from .._types import PathLike, QuantityLike
    from .store import DataStore

__all__ = [
    "AEFF_ENERGY",
    "AEFF_OFFSET",
    "effective_area_at",
    "with_effective_area",
]

#: Reference energy of AEFF_COLUMN (where every run's area is well above threshold).
AEFF_ENERGY = 1.0 * u.TeV
#: Reference offset from the pointing of AEFF_COLUMN.
AEFF_OFFSET = 0.5 * u.deg

_COLUMNS = ("ENERG_LO", "ENERG_HI", "THETA_LO", "THETA_HI", "EFFAREA")
#: A binary-table column format (astropy's ``TFORMAT_RE``, before any option).
_TFORM = re.compile(r" *[0-9]*[LXBIJKAEDCMPQ]")


def effective_area_at(
    filename: PathLike,
    hdu: str | int,
    energy: QuantityLike = AEFF_ENERGY,
    offset: QuantityLike = AEFF_OFFSET,
    *,
    hand_on: bool = False,
) -> u.Quantity:
    """Effective area of a GADF ``AEFF_2D`` table at one energy and offset.

    Interpolated linearly in log energy between energy-bin centres and
    linearly in offset between offset-bin centres (clipped at the first and
    last centres).

    Parameters
    ----------
    filename : str or path
        FITS file (gzipped or not).
    hdu : str or int
        The AEFF_2D HDU.
    energy : `~astropy.units.Quantity`
        Energy (default 1 TeV).
    offset : `~astropy.coordinates.Angle` or `~astropy.units.Quantity`
        Offset from the pointing (default 0.5 deg).
    hand_on : bool
        The file is read next by a build (the run's events): the bytes
        decompressed here are kept for that read, and the files of the next
        runs are decompressed ahead as far (`bgcube.io.prefetch`), so that
        a gzipped file holding both HDUs is decompressed once.

    Returns
    -------
    area : `~astropy.units.Quantity`
        In m2.

    Raises
    ------
    FileFormatError
        The file or HDU cannot be read, a column is missing, is not numeric
        or has a format (TFORM) FITS does not know or a unit of another
        kind, the shape of EFFAREA (its TDIM) does not match the axes, the
        bins are not finite and increasing (energies positive), the table
        has no rows, or the area there is not finite; the message names
        file, HDU and column.
    """
    cells = _first_row(filename, hdu, hand_on)
    for name, (value, _) in cells.items():
        if np.asarray(value).dtype.kind not in "fiu":
            raise FileFormatError(
                f"column {name} holds {np.asarray(value).dtype} values"
                f"{_format_cards(filename, hdu, name)}, expected numbers",
                filename=filename,
                hdu=hdu,
            )

    def error(message):
        return FileFormatError(message, filename=filename, hdu=hdu)

    def quantity(name, unit):
        value, column_unit = cells[name]
        try:
            return u.Quantity(value, column_unit or unit).to_value(unit)
        except (u.UnitsError, ValueError, TypeError):
            raise error(f"column {name} has unit {column_unit!s}, expected {unit}") from None

    def axis(lo, hi, unit):
        return np.ravel(quantity(lo, unit)), np.ravel(quantity(hi, unit))

    e_lo, e_hi = axis("ENERG_LO", "ENERG_HI", u.TeV)
    t_lo, t_hi = axis("THETA_LO", "THETA_HI", u.deg)
    area = quantity("EFFAREA", u.m**2)
    area = np.asarray(area, dtype=np.float64)
    if area.shape == (e_lo.size, t_lo.size):  # written energy-major
        area = area.T
    if area.shape != (t_lo.size, e_lo.size):
        raise error(
            f"EFFAREA of shape {area.shape} does not match {t_lo.size} offset x "
            f"{e_lo.size} energy bins{_format_cards(filename, hdu, 'EFFAREA')}"
        )
    if e_lo.size != e_hi.size or t_lo.size != t_hi.size:
        raise error(
            f"ENERG_LO/ENERG_HI hold {e_lo.size}/{e_hi.size} values and THETA_LO/THETA_HI "
            f"{t_lo.size}/{t_hi.size}: each pair must hold as many"
        )
    if not (np.all(np.isfinite(e_lo) & (e_lo > 0)) and np.all(np.isfinite(e_hi) & (e_hi > 0))):
        raise error("ENERG_LO and ENERG_HI must be finite and positive")
    log_e = 0.5 * (np.log10(e_lo) + np.log10(e_hi))
    theta = 0.5 * (t_lo + t_hi)
    for name, centres in (("ENERG_LO/ENERG_HI", log_e), ("THETA_LO/THETA_HI", theta)):
        if centres.size == 0 or not np.all(
            np.isfinite(centres) & (np.diff(centres, prepend=-np.inf) > 0)
        ):
            raise error(f"the bins of {name} must be finite and increasing")
    x = float(np.log10(u.Quantity(energy, u.TeV).to_value(u.TeV)))
    t = float(u.Quantity(offset, u.deg).to_value(u.deg))
    per_offset = np.array([np.interp(x, log_e, a) for a in area])
    value = float(np.interp(t, theta, per_offset))
    if not np.isfinite(value):
        raise error(f"EFFAREA is not finite at {x:g} (log10 TeV) and {t:g} deg")
    return value * u.m**2


def _first_row(filename, hdu, hand_on=False) -> dict:
    """The first row's cell and the unit of each AEFF_2D column: ``{name: (value, unit)}``.

    Read by the lean reader of `bgcube.io.lean_fits` (the file decompressed
    only through the HDU) where the table is plain, else by astropy's
    ``Table.read``; the values, units and errors are the same either way.

    Raises
    ------
    FileFormatError
        The file or HDU cannot be read, or a column is missing.
    """
    lean = read_table_hdu(filename, hdu, _COLUMNS, read_ahead=hand_on, hand_on=hand_on)
    if lean is not None:
        cells = _lean_cells(lean, filename, hdu)
        if cells is not None:
            return cells
    try:
        table = read_fits_table(filename, hdu, "effective area")
    except FileFormatError as exc:
        bad = _bad_format(filename, hdu)
        if bad is None:
            raise
        raise FileFormatError(
            f"cannot read the effective area: column {bad}, which is no FITS binary-table format",
            filename=filename,
            hdu=hdu,
        ) from exc
    _check_columns(table.colnames, filename, hdu)
    if len(table) == 0:
        raise FileFormatError("effective area table has no rows", filename=filename, hdu=hdu)
    row = table[0]
    return {name: (row[name], table[name].unit) for name in _COLUMNS}


def _lean_cells(lean, filename, hdu) -> dict | None:
    """`_first_row` from a lean table, or None where astropy's ``Table.read`` would
    differ (no row, a masked value, a unit astropy would not give the same)."""
    names = lean.columns.names
    if len(set(names)) != len(names) or int(lean.header["NAXIS2"]) < 1:
        return None
    if any(name not in names for name in _COLUMNS):
        _check_columns(names, filename, hdu)
    cells = {}
    for column in lean.columns:
        if column.name not in _COLUMNS:
            continue
        i = names.index(column.name) + 1
        value = lean.data.field(column.name)[0]
        if f"TNULL{i}" in lean.header or np.isnan(value).any():
            return None  # astropy's table masks them
        unit = column.unit
        if unit is not None:
            if not isinstance(unit, str):
                return None
            unit = u.Unit(unit, format="fits", parse_strict="warn")  # as astropy's Table.read
        cells[column.name] = (value, unit)
    return cells


def _cards(filename, hdu) -> dict:
    """``{column name: [(keyword, value) of its TFORM and TDIM]}`` from the HDU's
    header, for messages; empty where the header cannot be read."""
    header = read_header(filename, hdu)
    if header is None:
        return {}
    cards = {}
    try:
        for i in range(1, int(header.get("TFIELDS", 0)) + 1):
            name = str(header.get(f"TTYPE{i}", ""))
            keys = [k for k in (f"TFORM{i}", f"TDIM{i}") if k in header]
            cards[name] = [(k, header[k]) for k in keys]
    except Exception:  # a card astropy cannot parse either: the message goes without
        return {}
    return cards


def _format_cards(filename, hdu, name) -> str:
    """`` (TFORM5 = '576E', TDIM5 = '(96,7)')`` of a column, or ``''``."""
    cards = _cards(filename, hdu).get(name)
    return f" ({', '.join(f'{k} = {v!r}' for k, v in cards)})" if cards else ""


def _bad_format(filename, hdu) -> str | None:
    """``"EFFAREA (TFORM5 = '576Z')"`` for the first AEFF_2D column whose TFORM is
    no binary-table format, else None."""
    for name, cards in _cards(filename, hdu).items():
        for key, value in cards:
            if name in _COLUMNS and key.startswith("TFORM") and not _TFORM.match(str(value)):
                return f"{name} ({key} = {value!r})"
    return None


def _check_columns(names, filename, hdu) -> None:
    missing = [c for c in _COLUMNS if c not in names]
    if missing:
        raise FileFormatError(
            f"effective area table lacks column(s) {', '.join(missing)} "
            f"(an AEFF_2D table has {', '.join(_COLUMNS)})",
            filename=filename,
            hdu=hdu,
        )


def with_effective_area(
    store: DataStore,
    table: Table,
    messages: list[str] | None = None,
    progress: bool | None = False,
    failed: list[tuple[int, str]] | None = None,
    known: Mapping[int, float] | None = None,
) -> Table:
    """``table`` with the column `AEFF_COLUMN` from each run's AEFF_2D HDU, where all have one.

    The table is copied, never changed in place. Where a run has no
    effective area in the store (no ``aeff`` row in the HDU index) the
    column is not added and ``messages`` (a list) says why. A run whose
    AEFF_2D HDU cannot be read (a missing, truncated or malformed file)
    raises, or, where ``failed`` (a list) is given, gets NaN and its
    ``(OBS_ID, reason)`` is appended to ``failed``: the caller leaves it out.

    Parameters
    ----------
    store : `~bgcube.data.DataStore`
    table : `~astropy.table.Table`
        Observation-index rows (column OBS_ID).
    messages : list of str, optional
    progress : bool, optional
        Show a progress bar (None: when stderr is a terminal).
    failed : list of (int, str), optional
        Collects the runs whose effective area cannot be read (default: raise).
    known : mapping of int to float, optional
        Values already read, m2, by OBS_ID (e.g. by a build, in the same pass
        as the events): those runs are not read again (NaN: it could not be
        read, the caller has the reason).

    Returns
    -------
    table : `~astropy.table.Table`

    Raises
    ------
    BgcubeError
        A run's AEFF_2D HDU cannot be read and ``failed`` is None (the message
        names file and HDU).
    """
    if AEFF_COLUMN in table.colnames:
        return table
    obs_ids = [int(i) for i in np.asarray(table["OBS_ID"])]
    for obs_id in obs_ids:
        if not store.has_hdu(obs_id, "aeff"):
            if messages is not None:
                messages.append(
                    f"OBS_ID {obs_id} has no effective area (aeff) in the HDU index: "
                    f"the condition column {AEFF_COLUMN} is not available"
                )
            return table
    known = {} if known is None else {int(i): float(v) for i, v in known.items()}
    values = np.array([known.get(i, np.nan) for i in obs_ids])
    todo = [k for k, obs_id in enumerate(obs_ids) if obs_id not in known]
    for k in progress_bar(todo, len(todo), "effective areas", progress if todo else False):
        obs_id = obs_ids[k]
        try:
            filename, hdu = store.hdu_location(obs_id, "aeff")
            values[k] = effective_area_at(filename, hdu).to_value(u.m**2)
        except BgcubeError as exc:
            if failed is None:
                raise
            failed.append((obs_id, str(exc)))
    out = table.copy(copy_data=False)
    out[AEFF_COLUMN] = values
    out[AEFF_COLUMN].unit = u.m**2
    out[
        AEFF_COLUMN
    ].description = (
        f"effective area at {AEFF_ENERGY:g} and {AEFF_OFFSET:g} offset (from the run's AEFF_2D)"
    )
    return out
