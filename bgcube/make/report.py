"""What a build found, for people: the per-run norms, the efficiency scaling, the listings.

`norm_summary` turns the per-run models of a build
(`~bgcube.make.pipeline.MakeModelsResult.observations`) into one table row
per group; `efficiency_law` gives the one efficiency scaling all norms
follow when they come from the runs' optical efficiency. The command
prints both; the same numbers are in each per-run file (keywords BKG_NORM,
BKG_EFF). `shortened_rows` and `file_listing` keep what the command prints
about thousands of runs to a screenful.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table

__all__ = [
    "norm_summary",
    "efficiency_law",
    "relative_names",
    "shortened_rows",
    "file_listing",
    "ratio_summary",
]

#: Rows of a per-run table, and files of one folder, listed in full; longer
#: listings show their first and last ones.
LISTED = 20


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


def shortened_rows(table: Table, limit: int | None = None) -> list[str]:
    """A table as printed lines: every row up to ``limit``, else the first and last ones.

    Parameters
    ----------
    table : `~astropy.table.Table`
    limit : int, optional
        Most rows printed (default ``LISTED``); a longer table shows
        ``limit // 2`` rows at each end around a ``...`` line.

    Returns
    -------
    lines : list of str
        The header lines and the rows, as `~astropy.table.Table.pformat` writes them.
    """
    limit = LISTED if limit is None else limit
    lines = table.pformat(max_lines=-1, max_width=-1)
    n_header = len(lines) - len(table)
    if len(table) <= limit:
        return lines
    half = limit // 2
    return [*lines[: n_header + half], "...", *lines[len(lines) - half :]]


def file_listing(files, outdir, limit: int | None = None) -> list[str]:
    """The files written, relative to ``outdir``; a folder with many files on one line.

    Parameters
    ----------
    files : sequence of path
    outdir : path
        The output folder the names are relative to.
    limit : int, optional
        Files of one subfolder named one by one up to this number (default
        ``LISTED``); beyond
        it, the folder is one line with its count and its first and last
        file (e.g. ``bkg/: 105 files, bkg_obs_020136.fits.gz ...
        bkg_obs_047829.fits.gz``).

    Returns
    -------
    lines : list of str
        In the order of ``files``; a shortened folder where its first file was.
    """
    limit = LISTED if limit is None else limit
    names = relative_names(files, outdir)
    folders: dict[str, list[str]] = {}
    for name in names:
        folder, sep, _ = name.rpartition("/")
        if sep and not name.startswith("/"):
            folders.setdefault(folder, []).append(name)
    lines = []
    for name in names:
        folder, _, base = name.rpartition("/")
        inside = folders.get(folder, ())  # top-level and absolute names: none
        if len(inside) <= limit:
            lines.append(name)
        elif name == inside[0]:
            last = inside[-1].rpartition("/")[2]
            lines.append(f"{folder}/: {len(inside)} files, {base} ... {last}")
    return lines


def ratio_summary(table: Table) -> str:
    """One line on the OBS/PRED column of a joint build's run table (its median and spread).

    Parameters
    ----------
    table : `~astropy.table.Table`
        With an ``OBS/PRED`` column (observed over predicted counts per run,
        `~bgcube.make.joint.JointBuildResult.summary_table`).

    Returns
    -------
    line : str
        E.g. ``OBS/PRED of the 105 runs: median 1.003, 16-84% 0.902-1.121``.
    """
    ratio = np.asarray(table["OBS/PRED"], dtype=float)
    lo, mid, hi = np.nanpercentile(ratio, [16, 50, 84])
    return f"OBS/PRED of the {len(ratio)} runs: median {mid:.3f}, 16-84% {lo:.3f}-{hi:.3f}"
