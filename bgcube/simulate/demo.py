"""``bgcube demo``: simulate a data set, build its models, compare with the truth.

The demo runs the very pipeline used on real data (`bgcube.make.make_models`)
on a simulated GADF DL3 data set with known background and a few gamma-ray
sources, then compares each group's model with the truth of its runs.

Output folder layout::

    OUTDIR/dataset/    simulated runs, obs-index.fits.gz, hdu-index.fits.gz
    OUTDIR/models/     make-models output (observation tables, groups, models)
    OUTDIR/plots/      group<ID>_model.png (peek), group<ID>_comparison.png
    OUTDIR/demo_summary.ecsv   pull statistics per group
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..data.exclusion import ExclusionRegions
from ..io.atomic import atomic_output
from ..make.pipeline import make_models
from .compare import compare_models
from .dataset import make_test_dataset
from .plot import plot_comparison
from .sources import example_sources, sources_table

__all__ = ["run_demo"]


def run_demo(outdir, n_obs=20, seed=0, *, overwrite=False, progress=None, echo=print):
    """Run the demo and write its files (see the module docstring).

    Parameters
    ----------
    outdir : str or path
        Output folder (created if missing).
    n_obs : int
        Number of simulated runs (default 20).
    seed : int
        Random seed: the same seed gives the same data set and models.
    overwrite : bool
        Replace the files of an earlier demo in ``outdir``.
    progress : bool, optional
        Progress bars (default: when stderr is a terminal).
    echo : callable
        Where progress messages go (default ``print``; ``None`` for silence).

    If the demo fails and ``outdir`` did not exist before, it is removed.

    Returns
    -------
    summary : `~astropy.table.Table`
        One row per group: GROUP_ID, N_OBS, N_BINS, PULL_MEAN, PULL_WIDTH,
        MEDIAN_RATIO (reconstructed / true rate in well-filled bins).
    """
    if int(n_obs) < 1:
        raise ValueError(f"n_obs must be >= 1, got {n_obs}")
    outdir = Path(outdir)
    created = not outdir.exists()
    try:
        return _run_demo(outdir, n_obs, seed, overwrite, progress, echo)
    except BaseException:
        if created:  # a failed start leaves nothing behind that would block the next run
            shutil.rmtree(outdir, ignore_errors=True)
        raise


def _run_demo(outdir, n_obs, seed, overwrite, progress, echo):
    say = echo or (lambda *args, **kwargs: None)
    start = time.perf_counter()
    sources = example_sources()
    say(f"simulating {n_obs} runs with {len(sources)} gamma-ray sources (seed {seed}) ...")
    dataset = make_test_dataset(
        outdir / "dataset", n_obs=n_obs, random_state=seed, sources=sources, overwrite=overwrite
    )
    say(f"  {dataset}")

    regions = ExclusionRegions.from_table(sources_table(sources))
    say("building models with the make-models pipeline ...")
    result = make_models(
        dataset.path, outdir / "models", exclusion=regions, overwrite=overwrite, progress=progress
    )
    for line in result.summary_table().pformat(max_lines=-1, max_width=-1):
        say(f"  {line}")

    plots = outdir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    rows = []
    for group in result.groups:
        if group.model is None:
            continue
        truth = dataset.true_model(group.obs_ids, time_convention=result.time_convention)
        comparison = compare_models(group.model, truth)
        plot_comparison(
            comparison, plots / f"group{group.group_id}_comparison.png", overwrite=overwrite
        )
        _save_peek(group.model, plots / f"group{group.group_id}_model.png", overwrite)
        ratio = comparison.ratio[comparison.used] if comparison.used is not None else []
        rows.append(
            (
                group.group_id,
                len(group.obs_ids),
                comparison.n_bins,
                round(comparison.pull_mean, 4),
                round(comparison.pull_width, 4),
                round(float(np.nanmedian(ratio)), 4) if len(ratio) else float("nan"),
            )
        )
    summary = Table(
        rows=rows,
        names=("GROUP_ID", "N_OBS", "N_BINS", "PULL_MEAN", "PULL_WIDTH", "MEDIAN_RATIO"),
    )
    with atomic_output(outdir / "demo_summary.ecsv", overwrite=overwrite) as tmp:
        summary.write(tmp, format="ascii.ecsv", overwrite=True)
    say("true versus reconstructed (Poisson pulls of counts per bin; expect mean 0, width 1):")
    for line in summary.pformat(max_lines=-1, max_width=-1):
        say(f"  {line}")
    say(f"done in {time.perf_counter() - start:.1f} s; plots in {plots}")
    return summary


def _save_peek(model, filename, overwrite):
    import matplotlib.pyplot as plt

    figure = model.peek()
    try:
        with atomic_output(filename, overwrite=overwrite) as tmp:
            figure.savefig(tmp, format="png", dpi=90)
    finally:
        plt.close(figure)
