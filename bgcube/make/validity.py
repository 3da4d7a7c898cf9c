"""The range of conditions a model is valid in, and a run's value of an obs-index column.

`Validity` holds a closed range per observation-index column (zenith,
optical efficiency, energy threshold); ``apply-models`` and ``make-models``
judge a run outside it alike (`bgcube.make.extrapolation`). `row_value`
reads one run's value of a column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np

from ..binning import ENERGY_THRESHOLD_COLUMNS

__all__ = ["VALIDITY_COLUMNS", "Validity", "row_value"]


#: Observation-index columns whose range of a model's runs defines its validity
#: (zenith, optical efficiency, energy threshold), where the index has them.
VALIDITY_COLUMNS = ("ZEN_PNT", "MUONEFF", *ENERGY_THRESHOLD_COLUMNS)


def row_value(row, name) -> float:
    """A run's value of an obs-index column as a float in the column's unit (NaN if absent).

    ``ZEN_PNT`` falls back to ``90 - ALT_PNT``.
    """
    names = list(row.colnames) if hasattr(row, "colnames") else list(row.keys())
    if name not in names:
        if name == "ZEN_PNT" and "ALT_PNT" in names:
            return 90.0 - row_value(row, "ALT_PNT")
        return float("nan")
    value = row[name]
    if np.ma.is_masked(value):
        return float("nan")
    try:
        return float(u.Quantity(value).value if isinstance(value, u.Quantity) else value)
    except (TypeError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class Validity:
    """Closed ranges of observation-index columns a model is valid in.

    Parameters
    ----------
    ranges : dict of str to (float, float)
        Column name -> (lowest, highest) value, in the column's unit.
    """

    ranges: dict = field(default_factory=dict)

    @classmethod
    def from_runs(cls, obs_table, columns=VALIDITY_COLUMNS) -> Validity:
        """The ranges spanned by a model's runs (columns they lack are left out)."""
        ranges = {}
        for name in columns:
            values = np.array([row_value(row, name) for row in obs_table])
            values = values[np.isfinite(values)]
            if values.size:
                ranges[name] = (float(values.min()), float(values.max()))
        return cls(ranges)

    def reasons(self, row) -> list[str]:
        """Why a run is outside, one text per column (empty when inside or unknown)."""
        out = []
        for name, (lo, hi) in self.ranges.items():
            value = row_value(row, name)
            if np.isfinite(value) and not (lo <= value <= hi):
                v, a, b = _distinct(value, lo, hi)
                out.append(f"{name} = {v} outside the model's range [{a}, {b}]")
        return out


def _distinct(value: float, lo: float, hi: float) -> tuple[str, str, str]:
    """``value``, ``lo`` and ``hi`` with 4 significant digits, or as many more as it takes
    for the value to read differently from the edge it lies beyond."""
    edge = lo if value < lo else hi
    for digits in range(4, 18):
        text = f"{value:.{digits}g}"
        if text != f"{edge:.{digits}g}":
            break
    return text, f"{lo:.{digits}g}", f"{hi:.{digits}g}"
