"""UT1 of times in the IERS-B era, as astropy gives it, without loading astropy's IERS tables.

astropy's ``Time.ut1`` interpolates UT1-UTC in its Earth-orientation table
(``IERS_Auto``), which it builds, once per process, by parsing the IERS-A
and IERS-B text files of the ``astropy-iers-data`` package with its generic
CDS reader: about 1 s, a third of an ALTAZ build of the H.E.S.S. DR1.
For days that table takes from the IERS-B final values (all
but its last months; from 1973), its UT1-UTC is that of the IERS-B file,
linearly interpolated between days. `ut1` reads the two columns it needs
from the same file (about 30 ms, once per process), interpolates
them as astropy does, and hands the result to ``Time.delta_ut1_utc``: the UT1
times are those of ``Time.ut1`` to the last bit (``tests/test_ut1.py`` holds
this on random times from 1973 to the end of the file).

Times outside that range (or not finite), a process whose astropy table is already loaded
(then it costs nothing), a user's own Earth-orientation table
(``astropy.utils.iers.earth_orientation_table.set``) or a file this module
cannot read take astropy's own path.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from astropy.time import Time

__all__ = ["ut1", "iers_b_ut1_utc"]

#: First MJD of astropy's combined IERS table (IERS-A starts on 1973-01-02).
_FIRST_MJD = 41684.0
#: Days before the end of the IERS-B file left to astropy: the last days of the file
#: are past the IERS-B values of the IERS-A file, where astropy's table takes IERS-A's.
_MARGIN_DAYS = 60.0
#: JD of MJD 0, as astropy's IERS tables write it.
_MJD_ZERO = 2400000.5


def iers_b_ut1_utc() -> tuple[np.ndarray, np.ndarray] | None:
    """MJD and UT1-UTC (s) of the IERS-B file that astropy uses, or None if unreadable.

    The file is the one astropy's ``IERS_B.read`` reads by default
    (``astropy.utils.iers.iers.IERS_B_FILE``, from ``astropy-iers-data``: the
    EOP 20 C04 series, one line a day at 0h UTC), read once per process.
    """
    try:
        from astropy.utils.iers import iers

        path = os.fspath(iers.IERS_B_FILE)
    except (ImportError, AttributeError, TypeError):
        return None
    return _read_iers_b(path)


@functools.lru_cache(maxsize=2)
def _read_iers_b(path: str) -> tuple[np.ndarray, np.ndarray] | None:
    """MJD (characters 16-26) and UT1-UTC (50-62) of an EOP C04 file; None if unreadable
    or if its days are not consecutive."""
    try:
        with open(path, "rb") as stream:
            lines = [line for line in stream if not line.startswith(b"#") and line.strip()]
        mjd = np.array([float(line[16:26]) for line in lines])
        delta = np.array([float(line[50:62]) for line in lines])
    except (OSError, ValueError):
        return None
    if mjd.size < 2 or not np.all(np.diff(mjd) == 1.0):
        return None
    return mjd, delta


def _astropy_table_is_default_and_unloaded() -> bool:
    """Whether astropy would build its default table (IERS_Auto) on the next ``Time.ut1``."""
    from astropy.utils import iers

    state = getattr(iers.earth_orientation_table, "_value", "unknown")  # None: the default
    return state is None and getattr(iers.IERS_Auto, "iers_table", "unknown") is None


def _delta_ut1_utc(jd1: np.ndarray, jd2: np.ndarray) -> np.ndarray | None:
    """UT1-UTC (s) at UTC two-part JDs, as astropy's table interpolates it; None if out of range."""
    table = iers_b_ut1_utc()
    if table is None:
        return None
    mjd_table, delta_table = table
    mjd = np.floor(jd1 - _MJD_ZERO + jd2)  # astropy's IERS.mjd_utc
    utc = jd1 - (_MJD_ZERO + mjd) + jd2
    last = mjd_table[-1] - _MARGIN_DAYS
    if not np.all(np.isfinite(mjd)):
        return None
    if mjd.size and (np.min(mjd) < _FIRST_MJD or np.max(mjd) + 1.0 > last):
        return None
    i0 = (mjd - mjd_table[0]).astype(np.intp)
    mjd_0, mjd_1 = mjd_table[i0], mjd_table[i0 + 1]
    val_0, val_1 = delta_table[i0], delta_table[i0 + 1]
    d_val = val_1 - val_0
    d_val -= d_val.round()  # a leap second between the two days
    return val_0 + (mjd - mjd_0 + utc) / (mjd_1 - mjd_0) * d_val  # astropy's IERS._interpolate


def ut1(times: Time) -> Time:
    """``times`` in the UT1 scale: ``times.ut1``, without astropy's IERS tables where possible.

    Parameters
    ----------
    times : `~astropy.time.Time`
        Any scale and shape.

    Returns
    -------
    ut1 : `~astropy.time.Time`
        The same times in UT1, equal to ``times.ut1`` to the last bit.
    """
    if getattr(times, "_delta_ut1_utc", None) is not None or times.scale == "ut1":
        return times.ut1  # its own UT1-UTC, given by the caller
    if not _astropy_table_is_default_and_unloaded():
        return times.ut1
    utc = times.utc
    delta = _delta_ut1_utc(np.asarray(utc.jd1), np.asarray(utc.jd2))
    if delta is None:
        return times.ut1
    own = times.replicate()  # its own object: nothing is set on the caller's times
    own.delta_ut1_utc = delta  # used by astropy's own conversion, as its table's would be
    return own.ut1
