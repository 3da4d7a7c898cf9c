"""Observation groups: boxes in zenith x azimuth, one background model per group.

As the original Gammapy ``ObservationGroups`` (which binned altitude and
azimuth), a group is a box ``[ZEN_MIN, ZEN_MAX) x [AZ_MIN, AZ_MAX)`` in deg.
Bins are half-open on both axes (the project's rule for every axis, the last
bin included). Azimuth boxes may wrap through north: ``AZ_MIN=330,
AZ_MAX=30`` holds azimuths in [330, 360) and [0, 30); ``AZ_MIN=0,
AZ_MAX=360`` holds every azimuth. The boxes of a `ObservationGroups` do not
overlap, so an observation is in at most one group; built by `from_bins` (and
kept by `merge_small_groups`) they tile the zenith range times the full
circle, so every observation inside the zenith range is in exactly one.

The group definitions are written as an ECSV table (``GROUP_ID``,
``ZEN_MIN``, ``ZEN_MAX``, ``AZ_MIN``, ``AZ_MAX`` with units deg), e.g.
``bg_observation_groups.ecsv`` of ``bgcube make-models``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ..data.fov import as_degrees
from ..data.store import zenith_of
from ..errors import BinningError, FileFormatError, ObservationError
from .grouping_io import GROUP_COLUMNS, GroupsIO

if TYPE_CHECKING:
    from astropy.table import Table

    from .._types import ArrayLike, QuantityLike

__all__ = ["ObservationGroups", "GROUP_COLUMNS"]


def _az_width(az_min, az_max):
    """Width of azimuth boxes, deg, in (0, 360] (equal ends mean the full circle)."""
    width = np.mod(np.asarray(az_max) - np.asarray(az_min), 360.0)
    return np.where(width == 0, 360.0, width)


def _azimuth_of(obs_table):
    if "AZ_PNT" not in obs_table.colnames:
        raise FileFormatError(
            f"observation table has no AZ_PNT column (columns: {obs_table.colnames})"
        )
    col = obs_table["AZ_PNT"]
    values = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
    return values * (u.Unit(col.unit).to(u.deg) if col.unit else 1.0)


class ObservationGroups(GroupsIO):
    """Zenith x azimuth boxes that group observations.

    Parameters
    ----------
    zen_min, zen_max : array_like or `~astropy.units.Quantity`
        Zenith range of each group, deg (``zen_min < zen_max``).
    az_min, az_max : array_like or `~astropy.units.Quantity`
        Azimuth range of each group, deg; wrapped to [0, 360), equal ends
        mean the full circle.
    group_ids : array_like of int, optional
        Identifiers (default 0, 1, 2, ...).

    Examples
    --------
    >>> groups = ObservationGroups.from_bins([0, 20, 40, 60], [-30, 90, 210, 330])
    >>> groups.n_groups
    9
    >>> groups.group_id_of([10.0, 45.0], [350.0, 100.0]).tolist()
    [0, 7]
    """

    def __init__(
        self,
        zen_min: QuantityLike,
        zen_max: QuantityLike,
        az_min: QuantityLike,
        az_max: QuantityLike,
        group_ids: ArrayLike | None = None,
    ) -> None:
        self.zen_min = np.atleast_1d(as_degrees(zen_min))
        self.zen_max = np.atleast_1d(as_degrees(zen_max))
        az_min = np.atleast_1d(as_degrees(az_min))
        az_max = np.atleast_1d(as_degrees(az_max))
        n = self.zen_min.size
        if not (self.zen_max.shape == az_min.shape == az_max.shape == (n,)):
            raise ValueError("zen_min, zen_max, az_min, az_max must be 1-D of equal length")
        finite = np.isfinite(self.zen_min) & np.isfinite(self.zen_max)
        finite &= np.isfinite(az_min) & np.isfinite(az_max)
        if not np.all(finite):
            i = int(np.argmin(finite))
            raise BinningError(
                f"group {i} has a NaN or infinite edge: ZEN_MIN={self.zen_min[i]}, "
                f"ZEN_MAX={self.zen_max[i]}, AZ_MIN={az_min[i]}, AZ_MAX={az_max[i]} deg"
            )
        if not np.all(self.zen_min < self.zen_max):
            raise BinningError(
                f"every group needs ZEN_MIN < ZEN_MAX, got {self.zen_min}, {self.zen_max}"
            )
        width = _az_width(az_min, az_max)
        self.az_min = np.mod(az_min, 360.0)
        self.az_max = self.az_min + width
        self.az_max = np.where(self.az_max > 360.0, self.az_max - 360.0, self.az_max)
        self.group_ids = (
            np.arange(n) if group_ids is None else np.asarray(group_ids, dtype=np.int64)
        )
        if self.group_ids.shape != (n,) or np.unique(self.group_ids).size != n:
            raise ValueError(f"group_ids must be {n} distinct integers, got {self.group_ids}")
        self._check_overlaps()

    def _check_overlaps(self):
        width = _az_width(self.az_min, self.az_max)
        for i in range(self.n_groups):
            for j in range(i + 1, self.n_groups):
                zen = min(self.zen_max[i], self.zen_max[j]) > max(self.zen_min[i], self.zen_min[j])
                start = np.mod(self.az_min[j] - self.az_min[i], 360.0)
                az = start < width[i] or np.mod(-start, 360.0) < width[j]
                if zen and az:
                    raise BinningError(
                        f"observation groups {self.group_ids[i]} and {self.group_ids[j]} overlap"
                    )

    # ------------------------------------------------------------------ build
    @classmethod
    def from_bins(
        cls, zenith_edges: Sequence[float], azimuth_edges: Sequence[float] = (0.0, 360.0)
    ) -> ObservationGroups:
        """Groups on a zenith x azimuth grid (azimuth fastest in GROUP_ID).

        Parameters
        ----------
        zenith_edges : array_like or `~astropy.units.Quantity`
            Increasing zenith edges, deg, e.g. ``[0, 20, 30, 40, 50, 60]``.
        azimuth_edges : array_like or `~astropy.units.Quantity`
            Increasing azimuth edges spanning exactly 360 deg; may start below
            0 to wrap through north, e.g. ``[-90, 90, 270]`` for a north and
            a south bin (default: one bin, the full circle).

        Returns
        -------
        groups : ObservationGroups

        Raises
        ------
        BinningError
            If edges are not increasing, or the azimuth edges do not span 360 deg.
        """
        zen = as_degrees(zenith_edges).ravel()
        az = as_degrees(azimuth_edges).ravel()
        if zen.size < 2 or not np.all(np.diff(zen) > 0) or not np.all(np.isfinite(zen)):
            raise BinningError(f"zenith edges must be >= 2 increasing values, got {zen}")
        if zen[0] < 0 or zen[-1] > 180:
            raise BinningError(f"zenith edges must lie in [0, 180] deg, got {zen}")
        if az.size < 2 or not np.all(np.diff(az) > 0) or not np.isclose(az[-1] - az[0], 360.0):
            raise BinningError(
                f"azimuth edges must increase and span exactly 360 deg, got {az} "
                "(start below 0 to wrap through north, e.g. [-30, 90, 210, 330])"
            )
        zi, ai = np.meshgrid(np.arange(zen.size - 1), np.arange(az.size - 1), indexing="ij")
        zi, ai = zi.ravel(), ai.ravel()
        az_max = az[ai + 1]
        az_max = np.where(ai + 1 == az.size - 1, az[0] + 360.0, az_max)  # exactly one turn
        return cls(zen[zi], zen[zi + 1], az[ai], az_max)

    @classmethod
    def from_cos_zenith_bins(
        cls, cos_zenith_edges: Sequence[float], azimuth_edges: Sequence[float] = (0.0, 360.0)
    ) -> ObservationGroups:
        """Groups with edges given in cos(zenith), in any order (see `from_bins`)."""
        cos_edges = np.asarray(cos_zenith_edges, dtype=np.float64).ravel()
        if np.any(np.abs(cos_edges) > 1):
            raise BinningError(f"cos(zenith) edges must lie in [-1, 1], got {cos_edges}")
        zen = np.sort(np.degrees(np.arccos(cos_edges)))
        return cls.from_bins(zen, azimuth_edges)

    # ------------------------------------------------------------ properties
    @property
    def n_groups(self) -> int:
        """Number of groups."""
        return self.group_ids.size

    @property
    def list_of_groups(self) -> list[int]:
        """GROUP_IDs, as a list of int."""
        return [int(g) for g in self.group_ids]

    def __len__(self):
        return self.n_groups

    def __repr__(self):
        return f"ObservationGroups(n_groups={self.n_groups})"

    @property
    def table(self) -> Table:
        """The definitions as an `~astropy.table.Table` (GROUP_ID, ZEN_MIN/MAX, AZ_MIN/MAX)."""
        from astropy.table import Table

        table = Table(
            {
                "GROUP_ID": self.group_ids,
                "ZEN_MIN": self.zen_min * u.deg,
                "ZEN_MAX": self.zen_max * u.deg,
                "AZ_MIN": self.az_min * u.deg,
                "AZ_MAX": self.az_max * u.deg,
            }
        )
        table.meta["comments"] = [
            "Observation groups of bgcube: boxes [ZEN_MIN, ZEN_MAX) x [AZ_MIN, AZ_MAX) in deg;",
            "azimuth boxes with AZ_MIN > AZ_MAX wrap through north (0/360 deg).",
        ]
        return table

    # ------------------------------------------------------------ assignment
    def group_id_of(self, zenith: QuantityLike, azimuth: QuantityLike) -> np.ndarray:
        """GROUP_ID of the box holding each (zenith, azimuth), or -1 where none does.

        Parameters
        ----------
        zenith, azimuth : array_like or `~astropy.units.Quantity`
            Pointing zenith and azimuth, deg (azimuth taken modulo 360).

        Returns
        -------
        group_id : numpy.ndarray of int64
        """
        zen = np.atleast_1d(as_degrees(zenith))
        az = np.mod(np.atleast_1d(as_degrees(azimuth)), 360.0)
        out = np.full(np.broadcast(zen, az).shape, -1, dtype=np.int64)
        width = _az_width(self.az_min, self.az_max)
        for k in range(self.n_groups):
            inside = (zen >= self.zen_min[k]) & (zen < self.zen_max[k])
            inside &= np.mod(az - self.az_min[k], 360.0) < width[k]
            out[inside] = self.group_ids[k]
        return out

    def group_observation_table(self, obs_table: Table, *, outside: str = "raise") -> Table:
        """A copy of the observation table with a GROUP_ID column.

        Parameters
        ----------
        obs_table : `~astropy.table.Table`
            Observation index with ZEN_PNT (or ALT_PNT) and AZ_PNT.
        outside : {'raise', 'drop'}
            What to do with observations in no group.

        Returns
        -------
        table : `~astropy.table.Table`

        Raises
        ------
        ObservationError
            With ``outside='raise'``, naming the OBS_IDs in no group.
        """
        if outside not in ("raise", "drop"):
            raise ValueError(f"outside must be 'raise' or 'drop', got {outside!r}")
        ids = self.group_id_of(zenith_of(obs_table), _azimuth_of(obs_table))
        table = obs_table.copy()
        table["GROUP_ID"] = ids
        lost = ids < 0
        if np.any(lost):
            if outside == "raise":
                obs_ids = (
                    np.asarray(obs_table["OBS_ID"])[lost].tolist()
                    if "OBS_ID" in (obs_table.colnames)
                    else np.nonzero(lost)[0].tolist()
                )
                raise ObservationError(
                    f"{int(lost.sum())} observation(s) lie in no group (zenith range "
                    f"[{self.zen_min.min()}, {self.zen_max.max()}) deg): OBS_ID {obs_ids}"
                )
            table = table[~lost]
        return table

    def get_group_of_observations(self, obs_table: Table, group_id: int) -> Table:
        """Rows of an observation table (with GROUP_ID, or grouped now) in one group."""
        if "GROUP_ID" not in obs_table.colnames:
            obs_table = self.group_observation_table(obs_table, outside="drop")
        return obs_table[np.asarray(obs_table["GROUP_ID"]) == int(group_id)]

    def summary(self, obs_table: Table, time_column: str = "ONTIME") -> Table:
        """The group table with N_OBS and the summed ``time_column`` (s) of each group."""
        grouped = self.group_observation_table(obs_table, outside="drop")
        ids = np.asarray(grouped["GROUP_ID"])
        time = _time_of(grouped, time_column)
        table = self.table
        table["N_OBS"] = [int(np.sum(ids == g)) for g in self.group_ids]
        table[time_column] = [float(time[ids == g].sum()) for g in self.group_ids] * u.s
        return table

    # ---------------------------------------------------------------- merge
    def merge_small_groups(
        self,
        obs_table: Table,
        *,
        min_observations: int = 1,
        min_time: u.Quantity = 0 * u.s,
        time_column: str = "ONTIME",
    ) -> ObservationGroups:
        """Merge groups with too few observations or too little time into a zenith neighbour.

        Repeatedly, the group with the least time among those below a
        threshold is merged with its zenith neighbour in the same azimuth
        range (the neighbour with less time; the lower zenith one on a tie),
        until every group passes or has no neighbour left. Empty groups are
        merged too when ``min_observations >= 1``; an azimuth range without
        any observation ends as one empty group. The result still tiles the
        same zenith x azimuth domain.

        Parameters
        ----------
        obs_table : `~astropy.table.Table`
            Observation index (ZEN_PNT or ALT_PNT, AZ_PNT, ``time_column``).
        min_observations : int
            Fewest observations a group may hold (default 1).
        min_time : `~astropy.units.Quantity`
            Least summed time a group may hold (default 0 s).
        time_column : str
            Column of observation times (default ONTIME, in s unless it has a unit).

        Returns
        -------
        groups : ObservationGroups
            New groups, numbered 0, 1, ... by zenith then azimuth.
        """
        min_time_s = u.Quantity(min_time, u.s).to_value(u.s)
        ids = self.group_id_of(zenith_of(obs_table), _azimuth_of(obs_table))
        time = _time_of(obs_table, time_column) if min_time_s > 0 else np.zeros(len(obs_table))
        boxes = [
            {
                "zen": [float(self.zen_min[k]), float(self.zen_max[k])],
                "az": (float(self.az_min[k]), float(self.az_max[k])),
                "n": int(np.sum(ids == g)),
                "t": float(time[ids == g].sum()),
            }
            for k, g in enumerate(self.group_ids)
        ]

        def small(b):
            return b["n"] < min_observations or b["t"] < min_time_s

        def neighbours(i):
            b = boxes[i]
            return [
                j
                for j, c in enumerate(boxes)
                if j != i
                and np.allclose(c["az"], b["az"])
                and (np.isclose(c["zen"][0], b["zen"][1]) or np.isclose(c["zen"][1], b["zen"][0]))
            ]

        while True:
            candidates = [i for i, b in enumerate(boxes) if small(b) and neighbours(i)]
            if not candidates:
                break
            i = min(candidates, key=lambda k: (boxes[k]["t"], boxes[k]["n"], boxes[k]["zen"][0]))
            j = min(neighbours(i), key=lambda k: (boxes[k]["t"], boxes[k]["n"], boxes[k]["zen"][0]))
            a, b = boxes[i], boxes[j]
            merged = {
                "zen": [min(a["zen"][0], b["zen"][0]), max(a["zen"][1], b["zen"][1])],
                "az": a["az"],
                "n": a["n"] + b["n"],
                "t": a["t"] + b["t"],
            }
            boxes = [c for k, c in enumerate(boxes) if k not in (i, j)] + [merged]

        boxes.sort(key=lambda c: (c["zen"][0], c["az"][0]))
        return type(self)(
            [c["zen"][0] for c in boxes],
            [c["zen"][1] for c in boxes],
            [c["az"][0] for c in boxes],
            [c["az"][1] for c in boxes],
        )


def _time_of(obs_table, column):
    if column not in obs_table.colnames:
        raise FileFormatError(
            f"observation table has no {column} column (columns: {obs_table.colnames})"
        )
    col = obs_table[column]
    values = np.ma.filled(np.ma.asarray(col, dtype=np.float64), 0.0)
    return values * (u.Unit(col.unit).to(u.s) if col.unit else 1.0)
