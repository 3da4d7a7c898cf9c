"""Exclusion regions: circles on the sky kept out of a background model.

Events inside a region are dropped, and the time of each (DETY, DETX) pixel
of an observation is reduced by the fraction of the pixel inside regions, so
that the rate stays unbiased (`observation_kept_fraction`, passed to
``FOVCubeBackgroundModel.add_observation_time(time, kept_fraction=...)``; the
geometry is in `bgcube.data.exclusion_fraction`).

Table format (`ExclusionRegions.read` / `write`, ECSV or FITS): one row per
circle with columns ``RA``, ``DEC`` (ICRS) and ``RADIUS``, in deg unless the
columns carry other angle units; ``GLON``/``GLAT`` may replace RA/DEC; an
optional ``NAME`` column. Column names are matched case-insensitively.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np

from ..errors import FileFormatError, file_format_errors
from ..io.fits import read_fits_table
from .exclusion_fraction import (
    _unit_vectors,
    event_offsets,
    excluded_events,
    exclusion_reach,
    kept_fraction,
    observation_kept_fraction,
)
from .fov import as_degrees

if TYPE_CHECKING:
    from astropy.table import Table

    from .._types import PathLike, QuantityLike

__all__ = [
    "ExclusionRegions",
    "kept_fraction",
    "observation_kept_fraction",
    "excluded_events",
    "exclusion_reach",
    "event_offsets",
    "default_exclusion_regions",
    "KNOWN_SOURCES",
]


#: File names read as FITS tables.
_FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts", ".fit.gz", ".fts.gz")


def _column_deg(table, name):
    """A table column in deg as a float64 array (masked entries become NaN)."""
    col = table[name]
    values = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
    return values * (u.Unit(col.unit).to(u.deg) if col.unit else 1.0)


class ExclusionRegions:
    """A set of circular sky regions (ICRS).

    Parameters
    ----------
    ra, dec : array_like or `~astropy.units.Quantity`
        Circle centres, deg.
    radius : array_like or `~astropy.units.Quantity`
        Circle radii, deg (> 0, < 90).
    names : sequence of str, optional
        A name per circle.

    Examples
    --------
    >>> regions = ExclusionRegions([83.633], [22.014], [0.3], names=["Crab"])
    >>> regions.contains([83.6, 85.0], [22.0, 22.0]).tolist()
    [True, False]
    """

    def __init__(
        self,
        ra: QuantityLike,
        dec: QuantityLike,
        radius: QuantityLike,
        names: Sequence[str] | None = None,
    ) -> None:
        ra = np.atleast_1d(as_degrees(ra))
        self.dec = np.atleast_1d(as_degrees(dec))
        self.radius = np.atleast_1d(as_degrees(radius))
        n = ra.size
        if ra.ndim != 1 or self.dec.shape != (n,) or self.radius.shape != (n,):
            raise ValueError(
                "ra, dec and radius must be 1-D of equal length, got shapes "
                f"{ra.shape}, {self.dec.shape}, {self.radius.shape}"
            )
        bad = ~(np.isfinite(ra) & (self.radius > 0) & (self.radius < 90) & (np.abs(self.dec) <= 90))
        if np.any(bad):
            i = int(np.argmax(bad))
            problems = [
                text
                for failed, text in (
                    (not np.isfinite(ra[i]), f"ra={ra[i]} deg must be finite"),
                    (not abs(self.dec[i]) <= 90, f"dec={self.dec[i]} deg must be in [-90, 90]"),
                    (
                        not 0 < self.radius[i] < 90,
                        f"radius={self.radius[i]} deg must be in (0, 90)",
                    ),
                )
                if failed
            ]
            raise ValueError(f"exclusion circle {i} is invalid: {'; '.join(problems)}")
        self.ra = ra % 360.0
        self.ra[self.ra >= 360.0] = 0.0  # -1e-300 % 360 rounds to 360
        self.names = [""] * n if names is None else [str(s) for s in names]
        if len(self.names) != n:
            raise ValueError(f"{len(self.names)} names for {n} circles")

    def __len__(self):
        return self.ra.size

    def __repr__(self):
        return f"ExclusionRegions(n={len(self)})"

    def __add__(self, other):
        return type(self)(
            np.concatenate([self.ra, other.ra]),
            np.concatenate([self.dec, other.dec]),
            np.concatenate([self.radius, other.radius]),
            self.names + other.names,
        )

    def __getitem__(self, index):
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        return type(self)(
            self.ra[idx], self.dec[idx], self.radius[idx], [self.names[i] for i in idx]
        )

    @classmethod
    def empty(cls) -> ExclusionRegions:
        """No regions (every kept fraction is 1, no event is dropped)."""
        return cls(np.zeros(0), np.zeros(0), np.zeros(0))

    @classmethod
    def from_list(cls, regions: Sequence[Any]) -> ExclusionRegions:
        """Regions from a list of circles.

        Parameters
        ----------
        regions : iterable
            Items may be ``(ra, dec, radius)`` or ``(ra, dec, radius, name)``
            tuples (floats in deg or angle Quantities), ``(SkyCoord, radius)``
            pairs, dicts with keys ``ra``, ``dec``, ``radius`` (and ``name``),
            or ``regions.CircleSkyRegion`` objects. An empty list gives no region.

        Returns
        -------
        regions : ExclusionRegions
        """
        ra, dec, radius, names = [], [], [], []
        for item in regions:
            name = ""
            if hasattr(item, "center") and hasattr(item, "radius"):  # CircleSkyRegion
                center, rad = item.center.icrs, item.radius
                r, d = center.ra.deg, center.dec.deg
                name = getattr(item, "meta", {}).get("name", "") or ""
            elif isinstance(item, dict):
                r, d, rad = item["ra"], item["dec"], item["radius"]
                name = item.get("name", "")
            elif len(item) == 2:
                center, rad = item
                center = center.icrs
                r, d = center.ra.deg, center.dec.deg
            elif len(item) in (3, 4):
                r, d, rad = item[:3]
                name = item[3] if len(item) == 4 else ""
            else:
                raise ValueError(
                    f"cannot read an exclusion circle from {item!r}; expected "
                    "(ra, dec, radius[, name]), (SkyCoord, radius), a dict or a CircleSkyRegion"
                )
            ra.append(float(as_degrees(r)))
            dec.append(float(as_degrees(d)))
            radius.append(float(as_degrees(rad)))
            names.append(str(name))
        return cls(ra, dec, radius, names)

    @classmethod
    def from_table(cls, table: Table, filename: PathLike | None = None) -> ExclusionRegions:
        """Regions from a table with RA, DEC (or GLON, GLAT) and RADIUS columns.

        See the module docstring for the format. Raises `FileFormatError`
        naming the missing columns.
        """
        lower = {name.lower(): name for name in table.colnames}

        def angle(key):
            col = table[lower[key]]
            unit = col.unit or u.deg
            values = np.asarray(col)
            if values.dtype.kind not in "iuf":
                raise FileFormatError(
                    f"exclusion column {lower[key]} must hold numbers, got dtype {values.dtype}",
                    filename=filename,
                )
            try:
                return u.Quantity(values, unit, dtype=np.float64).to_value(u.deg)
            except (u.UnitsError, ValueError, TypeError):
                raise FileFormatError(
                    f"exclusion column {lower[key]} has unit {unit}, expected an angle",
                    filename=filename,
                ) from None

        if "radius" not in lower or not (
            {"ra", "dec"} <= set(lower) or {"glon", "glat"} <= set(lower)
        ):
            raise FileFormatError(
                "an exclusion table needs RA, DEC (or GLON, GLAT) and RADIUS columns "
                f"(columns: {table.colnames})",
                filename=filename,
            )
        if {"ra", "dec"} <= set(lower):
            ra, dec = angle("ra"), angle("dec")
        else:
            from astropy.coordinates import SkyCoord

            icrs = SkyCoord(angle("glon"), angle("glat"), unit="deg", frame="galactic").icrs
            ra, dec = icrs.ra.deg, icrs.dec.deg
        names = None
        if "name" in lower:
            names = [str(s).strip() for s in table[lower["name"]]]
        return cls(ra, dec, angle("radius"), names)

    @classmethod
    def read(cls, filename: PathLike, format: str | None = None) -> ExclusionRegions:
        """Read regions from an ECSV or FITS table (format guessed from the name).

        Raises
        ------
        FileFormatError
            If the file cannot be read or lacks the columns.
        """
        from astropy.table import Table

        name = str(filename).lower()
        if format is None and name.endswith(".ecsv"):
            format = "ascii.ecsv"
        elif format is None and name.endswith(_FITS_SUFFIXES):
            format = "fits"
        with file_format_errors(filename, what="exclusion table"):
            try:
                if format == "fits":  # (closes the file even when astropy fails)
                    table = read_fits_table(filename, 1, "exclusion table")
                else:
                    table = Table.read(filename, **({} if format is None else {"format": format}))
            except FileNotFoundError:
                raise FileFormatError("exclusion file does not exist", filename=filename) from None
            return cls.from_table(table, filename=filename)

    def to_table(self) -> Table:
        """The regions as an `~astropy.table.Table` (NAME, RA, DEC, RADIUS in deg)."""
        from astropy.table import Table

        return Table(
            {
                "NAME": np.array(self.names, dtype=str),
                "RA": self.ra * u.deg,
                "DEC": self.dec * u.deg,
                "RADIUS": self.radius * u.deg,
            }
        )

    def write(self, filename: PathLike, overwrite: bool = False) -> None:
        """Write the regions (ECSV for ``.ecsv`` names, else FITS), atomically.

        Raises
        ------
        OutputExistsError
            If the file exists and ``overwrite`` is False.
        """
        from ..io.atomic import atomic_output
        from ..io.files import write_table

        ecsv = str(filename).lower().endswith(".ecsv")
        if not ecsv:
            write_table(self.to_table(), filename, overwrite)
            return
        from ..io.ecsv import write_ecsv

        with atomic_output(filename, overwrite=overwrite) as tmp:
            write_ecsv(self.to_table(), tmp)

    def near(
        self, ra: QuantityLike, dec: QuantityLike, max_offset: QuantityLike
    ) -> ExclusionRegions:
        """The circles that reach within ``max_offset`` (deg) of a direction."""
        if len(self) == 0:
            return self
        px, py, pz = _unit_vectors(ra, dec)
        cx, cy, cz = _unit_vectors(self.ra, self.dec)
        sep = np.degrees(np.arccos(np.clip(cx * px + cy * py + cz * pz, -1.0, 1.0)))
        return self[np.nonzero(sep <= self.radius + float(as_degrees(max_offset)))[0]]

    def contains(self, ra: QuantityLike, dec: QuantityLike) -> np.ndarray:
        """Whether each direction is inside any circle (on or inside the edge).

        Parameters
        ----------
        ra, dec : array_like or `~astropy.units.Quantity`
            ICRS directions, deg (any shape).

        Returns
        -------
        inside : numpy.ndarray of bool
        """
        ra, dec = np.broadcast_arrays(as_degrees(ra), as_degrees(dec))
        inside = np.zeros(ra.shape, dtype=bool)
        if len(self) == 0 or ra.size == 0:
            return inside
        # The angular distance to a centre is at least the declination difference,
        # so only directions within radius + _DEC_MARGIN of a circle's declination
        # are tested, with the same float64 arithmetic element by element.
        dec_flat = dec.reshape(-1)
        near = np.zeros(dec_flat.shape, dtype=bool)
        for c_dec, radius in zip(self.dec, self.radius, strict=True):
            near |= np.abs(dec_flat - c_dec) <= radius + _DEC_MARGIN
        candidates = np.flatnonzero(near)
        if candidates.size == 0:
            return inside
        x, y, z = _unit_vectors(ra.reshape(-1)[candidates], dec_flat[candidates])
        hit = np.zeros(candidates.shape, dtype=bool)
        cx, cy, cz = _unit_vectors(self.ra, self.dec)
        cos_r = np.cos(np.radians(self.radius))
        for i in range(len(self)):
            hit |= cx[i] * x + cy[i] * y + cz[i] * z >= cos_r[i]
        inside.reshape(-1)[candidates[hit]] = True
        return inside


#: Declination margin (deg) of `ExclusionRegions.contains`' pre-selection: far
#: above the rounding of the exact test (below 1e-6 deg for any radius).
_DEC_MARGIN = 1e-4


def _read_known_sources():
    """The rows of the package data file ``bgcube/data/known_sources.csv``."""
    import csv
    from importlib import resources

    text = resources.files(__package__).joinpath("known_sources.csv").read_text()
    rows = csv.reader(line for line in text.splitlines() if not line.startswith("#"))
    next(rows)  # header
    return tuple((name, float(ra), float(dec), float(radius)) for name, ra, dec, radius in rows)


#: Known gamma-ray sources in or near the H.E.S.S. DL3 DR1 fields:
#: (name, RA, Dec, exclusion radius), deg, ICRS, from the package data file
#: ``bgcube/data/known_sources.csv``. Positions of the H.E.S.S. Galactic
#: plane survey sources (rounded to 0.01 deg); radii cover the source extent
#: plus about 0.3 deg (the point-spread function and spill-over).
KNOWN_SOURCES = _read_known_sources()


def default_exclusion_regions(
    obs_table: Table,
    *,
    target_radius: QuantityLike = 0.3 * u.deg,
    sources: Any = KNOWN_SOURCES,
    max_offset: QuantityLike = 4.0 * u.deg,
) -> ExclusionRegions:
    """Exclusion circles around each run's target and the known sources in the fields.

    For an observation index such as H.E.S.S. DL3 DR1's: one circle of
    ``target_radius`` at each distinct target position (``RA_OBJ``,
    ``DEC_OBJ``; named after ``OBJECT``), plus every circle of ``sources``
    (default `KNOWN_SOURCES`, with larger radii for extended sources such as
    RX J1713.7-3946 and MSH 15-52) whose centre lies within ``max_offset`` of
    a pointing (``RA_PNT``, ``DEC_PNT``). Overlapping circles are harmless.

    Parameters
    ----------
    obs_table : `~astropy.table.Table`
        Observation index.
    target_radius : `~astropy.units.Quantity`
        Radius of the target circles (default 0.3 deg).
    sources : sequence of (name, ra, dec, radius)
        Known sources, deg.
    max_offset : `~astropy.units.Quantity`
        How far from a pointing a known source is excluded (default 4 deg,
        the half-width of the default cube, 0.07 rad).

    Returns
    -------
    regions : ExclusionRegions
    """
    cols = obs_table.colnames
    items = []
    if "RA_OBJ" in cols and "DEC_OBJ" in cols:
        names = obs_table["OBJECT"] if "OBJECT" in cols else [""] * len(obs_table)
        seen = set()
        ras, decs = _column_deg(obs_table, "RA_OBJ"), _column_deg(obs_table, "DEC_OBJ")
        masked = np.ma.getmaskarray(obs_table["RA_OBJ"]) | np.ma.getmaskarray(obs_table["DEC_OBJ"])
        for ra, dec, name, bad in zip(ras, decs, names, masked, strict=True):
            if bad or not (np.isfinite(ra) and np.isfinite(dec)):
                continue
            key = (round(float(ra), 4), round(float(dec), 4))
            if key in seen:
                continue
            seen.add(key)
            if isinstance(name, bytes):
                name = name.decode("ascii", "replace")
            items.append(
                (float(ra), float(dec), float(as_degrees(target_radius)), str(name).strip())
            )
    regions = ExclusionRegions.from_list(items)
    if sources:
        catalog = ExclusionRegions.from_list([(s[1], s[2], s[3], s[0]) for s in sources])
        px, py, pz = _unit_vectors(
            _column_deg(obs_table, "RA_PNT"), _column_deg(obs_table, "DEC_PNT")
        )
        cx, cy, cz = _unit_vectors(catalog.ra, catalog.dec)
        cos_sep = np.outer(cx, px) + np.outer(cy, py) + np.outer(cz, pz)
        near = np.degrees(np.arccos(np.clip(cos_sep, -1, 1))).min(axis=1) <= float(
            as_degrees(max_offset)
        )
        regions = regions + catalog[np.nonzero(near)[0]]
    return regions
