"""What a build found, for people: the per-run norms and the efficiency scaling.

`norm_summary` turns the per-run models of a build
(`~bgcube.make.pipeline.MakeModelsResult.observations`) into one table row
per group; `efficiency_law` gives the one efficiency scaling all norms
follow when they come from the runs' optical efficiency. The command
prints both; the same numbers are in each per-run file (keywords BKG_NORM,
BKG_EFF).
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table

__all__ = ["norm_summary", "efficiency_law", "relative_names"]


def norm_summary(observations) -> Table:
    """One row per group: how many runs, and the median, smallest and largest norm.

    Parameters
    ----------
    observations : dict
        OBS_ID -> `~bgcube.make.per_observation.PerObservationModel`.

    Returns
    -------
    table : `~astropy.table.Table`
        GROUP_ID, N_RUNS, NORM_MEDIAN, NORM_MIN, NORM_MAX and, for fitted
        norms, COUNTS/PREDICTED (sum of the counts over the sum of the
        un-normalised predictions of the group's runs).
    """
    names = ("GROUP_ID", "N_RUNS", "NORM_MEDIAN", "NORM_MIN", "NORM_MAX", "COUNTS/PREDICTED")
    rows = []
    for gid in sorted({m.group_id for m in observations.values()}):
        models = [m for m in observations.values() if m.group_id == gid]
        norms = np.array([m.norm for m in models], dtype=float)
        counts = np.array([m.n_counts for m in models], dtype=float)
        predicted = np.array([m.n_predicted for m in models], dtype=float)
        fitted = np.isfinite(counts) & np.isfinite(predicted)
        ratio = (
            counts[fitted].sum() / predicted[fitted].sum()
            if fitted.any() and predicted[fitted].sum() > 0
            else float("nan")
        )
        rows.append(
            (
                gid,
                len(models),
                round(float(np.median(norms)), 4),
                round(float(norms.min()), 4),
                round(float(norms.max()), 4),
                round(ratio, 4),
            )
        )
    return Table(rows=rows, names=names) if rows else Table(names=names)


def efficiency_law(observations):
    """The scaling ``norm = A * (eff / eff_ref) ** index`` the per-run norms follow, if any.

    The norms made from the optical efficiency all follow one law; its
    index is read back from two runs of different efficiency and ``A`` is
    given at ``eff_ref``, the median efficiency of the runs.

    Returns
    -------
    law : tuple of float or None
        ``(A, index, eff_ref)``, or None when no norm came from an efficiency.
    """
    pairs = [
        (m.efficiency, m.norm)
        for m in observations.values()
        if np.isfinite(m.efficiency) and m.efficiency > 0 and m.norm > 0
    ]
    if len(pairs) < 2:
        return None
    eff, norm = (np.array(v, dtype=float) for v in zip(*pairs, strict=True))
    lo, hi = int(np.argmin(eff)), int(np.argmax(eff))
    if eff[hi] == eff[lo]:
        return None
    index = float(np.log(norm[hi] / norm[lo]) / np.log(eff[hi] / eff[lo]))
    eff_ref = float(np.median(eff))
    scale = float(norm[lo] * (eff_ref / eff[lo]) ** index)
    return scale, index, eff_ref


def relative_names(files, outdir) -> list[str]:
    """The files as paths relative to ``outdir`` (e.g. ``bkg/bkg_obs_020136.fits.gz``)."""
    from pathlib import Path

    base = Path(outdir).resolve()
    names = []
    for path in files:
        try:
            names.append(Path(path).resolve().relative_to(base).as_posix())
        except ValueError:
            names.append(str(path))
    return names
