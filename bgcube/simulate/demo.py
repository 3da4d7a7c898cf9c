"""``bgcube demo``: simulate a data set, build its models, compare with the truth.

The demo runs the very pipeline used on real data (`bgcube.make.make_models`,
with its default joint model) on a simulated GADF DL3 data set whose
background depends on each run's zenith angle and optical efficiency in a
known way, with a few gamma-ray sources, then checks what the build
delivers: every run's model (the BKG_3D written for Gammapy) against the
run's true background, and against the run's counts.

Output folder layout::

    OUTDIR/dataset/    simulated runs, obs-index.fits.gz, hdu-index.fits.gz
    OUTDIR/models/     make-models output (joint model, per-run BKG_3D, hdu-index)
    OUTDIR/plots/      demo_spectra.png, demo_ratio.png
    OUTDIR/demo_summary.ecsv   per zenith band: pulls and ratios of the delivered models
"""

from __future__ import annotations

import numbers
import os
import shutil
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..data.exclusion import ExclusionRegions
from ..errors import OutputExistsError
from ..io.atomic import atomic_output
from ..make.guard import OutputFolderError, check_output_folder, data_store_around
from ..make.pipeline import make_models
from .dataset import make_test_background, make_test_dataset
from .sources import example_sources, sources_table

__all__ = ["run_demo", "check_demo_folder", "delivered_checks"]

#: The simulated background scales as (MUONEFF / 0.8) ** this.
DEMO_EFFICIENCY_INDEX = 1.5
#: Energy bins of the true background over 0.1-100 TeV: the truth is constant
#: within its bins, so they are made fine (0.025 dex) to keep it close to smooth.
DEMO_ENERGY_BINS = 120


def run_demo(outdir, n_obs=20, seed=0, *, overwrite=False, progress=None, echo=print):
    """Run the demo and write its files (see the module docstring).

    Parameters
    ----------
    outdir : str or path
        Output folder (created if missing).
    n_obs : int
        Number of simulated runs (default 20, at least 10).
    seed : int
        Random seed, >= 0: the same seed gives the same data set and models.
    overwrite : bool
        Write into a folder that holds files: replace the files of an earlier
        demo in ``outdir`` (see `check_demo_folder`).
    progress : bool, optional
        Progress bars (default: when stderr is a terminal).
    echo : callable
        Where progress messages go (default ``print``; ``None`` for silence).

    If the demo fails and ``outdir`` did not exist before, it is removed.

    Returns
    -------
    summary : `~astropy.table.Table`
        One row per zenith band (see `delivered_checks`).

    Raises
    ------
    ValueError
        ``n_obs`` below 10 or ``seed`` not an integer >= 0 (before anything is written).
    OutputFolderError, OutputExistsError
        An output folder the demo may not write into (`check_demo_folder`).
    """
    if int(n_obs) < 10:
        raise ValueError(
            f"n_obs must be >= 10 (the joint model fits four condition terms), got {n_obs}"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    outdir = Path(outdir)
    check_demo_folder(outdir, overwrite)
    created = not outdir.exists()
    try:
        return _run_demo(outdir, n_obs, seed, overwrite, progress, echo)
    except BaseException:
        if created:  # a failed start leaves nothing behind that would block the next run
            shutil.rmtree(outdir, ignore_errors=True)
        raise


def check_demo_folder(outdir, overwrite=False) -> None:
    """Refuse an output folder the demo may not write into.

    Parameters
    ----------
    outdir : path
        The demo's output folder (it need not exist).
    overwrite : bool
        Whether a folder holding files may be written into.

    Raises
    ------
    OutputFolderError
        ``outdir`` is a file, or is (or lies inside) a data store (a folder
        holding an HDU or observation index): never written, even with
        ``overwrite``.
    OutputExistsError
        ``outdir`` holds files and ``overwrite`` is false.
    """
    check_output_folder(outdir)
    store = data_store_around(outdir)
    if store is not None:
        inside = store != Path(os.path.realpath(outdir.expanduser()))
        where = f"lies inside the data store {str(store)!r}" if inside else "is a data store"
        raise OutputFolderError(
            f"output folder {str(outdir)!r} {where} (it holds an HDU or observation index); "
            "the demo writes a new data set and its models: choose a new or empty folder "
            "outside any data store"
        )
    if not overwrite and outdir.is_dir() and any(outdir.iterdir()):
        raise OutputExistsError(
            f"output folder {str(outdir)!r} is not empty; choose a new or empty folder, or "
            "pass overwrite=True to replace the files of an earlier demo there"
        )


def _run_demo(outdir, n_obs, seed, overwrite, progress, echo):
    say = echo or (lambda *args, **kwargs: None)
    start = time.perf_counter()
    sources = example_sources()
    say(f"simulating {n_obs} runs with {len(sources)} gamma-ray sources (seed {seed}) ...")
    dataset = make_test_dataset(
        outdir / "dataset",
        n_obs=n_obs,
        random_state=seed,
        sources=sources,
        overwrite=overwrite,
        efficiency_index=DEMO_EFFICIENCY_INDEX,
        background=make_test_background(n_energy_bins=DEMO_ENERGY_BINS),
    )
    say(f"  {dataset}")

    regions = ExclusionRegions.from_table(sources_table(sources))
    say("building models with the make-models pipeline (joint model, the default) ...")
    result = make_models(
        dataset.path,
        outdir / "models",
        exclusion=regions,
        overwrite=overwrite,
        progress=progress,
        fit_glat_min=0.0,
    )
    model = result.joint.model
    say(f"  {model}")
    checks = delivered_checks(dataset, model, regions)
    plots = outdir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    plot_delivered(checks, plots, overwrite)
    summary = checks["summary"]
    with atomic_output(outdir / "demo_summary.ecsv", overwrite=overwrite) as tmp:
        summary.write(tmp, format="ascii.ecsv", overwrite=True)
    say(
        "delivered per-run models against the truth, per zenith band (Poisson pulls of "
        "the runs' counts per bin against the delivered models: expect mean 0, width 1; "
        "delivered / true rate in the bins with at least 10 true counts: expect 1):"
    )
    for line in summary.pformat(max_lines=-1, max_width=-1):
        say(f"  {line}")
    say(f"done in {time.perf_counter() - start:.1f} s; plots in {plots}")
    return summary


#: Zenith bands of the demo summary, deg.
ZENITH_BANDS = (0.0, 15.0, 30.0, 45.0)


def delivered_checks(dataset, model, regions, *, min_expected=10.0):
    """Compare every run's delivered model with its true background and its counts.

    On the joint model's fit binning: the runs' counts outside the exclusion
    regions, the counts the delivered model predicts (rate x time x kept
    fraction x bin volume) and the true rate of each run.

    Returns
    -------
    checks : dict
        ``summary`` (a `~astropy.table.Table`, one row per zenith band:
        N_OBS, N_BINS, PULL_MEAN, PULL_WIDTH of the counts against the
        delivered models, MEDIAN_RATIO and RATIO_SPREAD (robust std) of
        delivered / true rate in the bins with at least ``min_expected``
        true counts), and per-run arrays for the plots.
    """
    import astropy.units as u

    from ..make.joint_runs import read_run_cubes, run_tasks

    spec = model.spec
    store = dataset.data_store()
    cubes = read_run_cubes(run_tasks(store, dataset.obs_ids, spec, regions), spec)
    e = spec.energy_edges()
    xy = spec.fov_edges(spec.fit_pixel)
    centres = 0.5 * (xy[1:] + xy[:-1])
    gx, gy = np.meshgrid(centres, centres)
    e_centre = np.sqrt(e[1:] * e[:-1])
    volume = np.diff(e)[:, None] * np.radians(spec.fit_pixel) ** 2  # TeV sr
    rows, per_run = [], []
    table = dataset.obs_table
    for k, obs_id in enumerate(cubes.obs_ids):
        row = table[int(np.flatnonzero(dataset.obs_ids == obs_id)[0])]
        delivered = model.background(row, energy_edges=e * u.TeV, fov_edges=xy * u.deg)
        rate = np.asarray(delivered.data).reshape(e.size - 1, -1) * 1e6  # 1/(TeV s sr)
        true = (
            dataset.run_background(obs_id)
            .evaluate(
                detx=gx.ravel()[None, :] * u.deg,
                dety=gy.ravel()[None, :] * u.deg,
                energy=e_centre[:, None] * u.TeV,
            )
            .to_value("1 / (TeV s sr)")
        )
        exposure = cubes.exposure[k][None, :] * volume
        per_run.append(
            (
                float(90.0 - float(row["ALT_PNT"])),
                cubes.counts[k],
                rate * exposure,
                true * exposure,
                rate,
                true,
            )
        )
    zenith = np.array([p[0] for p in per_run])
    order = np.argsort(zenith)
    picks = [int(order[0]), int(order[len(order) // 2]), int(order[-1])]
    spectrum_error = {
        k: _summed_log_rate_error(
            model,
            table[int(np.flatnonzero(dataset.obs_ids == cubes.obs_ids[k])[0])],
            e_centre,
            gx,
            gy,
        )
        for k in sorted(set(picks))
    }
    for lo, hi in zip(ZENITH_BANDS[:-1], ZENITH_BANDS[1:], strict=True):
        band = [p for p in per_run if lo <= p[0] < hi]
        if not band:
            continue
        counts = sum(p[1] for p in band)
        predicted = sum(p[2] for p in band)
        expected = sum(p[3] for p in band)
        used = expected >= min_expected
        pulls = (counts[used] - predicted[used]) / np.sqrt(predicted[used])
        ratio = predicted[used] / expected[used]
        rows.append(
            (
                f"{lo:g}-{hi:g}",
                len(band),
                int(used.sum()),
                round(float(np.mean(pulls)), 4),
                round(float(np.std(pulls)), 4),
                round(float(np.median(ratio)), 4),
                round(float(1.4826 * np.median(np.abs(ratio - np.median(ratio)))), 4),
            )
        )
    summary = Table(
        rows=rows,
        names=(
            "ZENITH",
            "N_OBS",
            "N_BINS",
            "PULL_MEAN",
            "PULL_WIDTH",
            "MEDIAN_RATIO",
            "RATIO_SPREAD",
        ),
    )
    return {
        "summary": summary,
        "zenith": zenith,
        "runs": per_run,
        "energy_edges": e,
        "fov_edges": xy,
        "picks": picks,
        "spectrum_error": spectrum_error,
    }


def _summed_log_rate_error(model, row, energy, gx, gy):
    """Statistical 1-sigma error of the log of a run's rate summed over pixels, per energy.

    From the fit's covariance and the gradient of the summed rate (the
    gradient of each pixel's log rate weighted by its rate), one energy at a
    time (bounded memory).
    """
    error = np.empty(energy.size)
    x, y = gx.ravel(), gy.ravel()
    for i, log_e in enumerate(np.log(energy)):
        rate = np.exp(np.asarray(model.log_rate(row, [log_e], x, y)).ravel())
        grad = rate @ model.gradient(row, [log_e], x, y) / rate.sum()
        error[i] = np.sqrt(max(float(grad @ model.covariance @ grad), 0.0))
    return error


def plot_delivered(checks, folder, overwrite=False):
    """Spectra (delivered and true, three runs) and the delivered / true ratio image."""
    import matplotlib.pyplot as plt

    from ..plotting import empty_bin_cmap

    e = checks["energy_edges"]
    e_centre = np.sqrt(e[1:] * e[:-1])
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    lowest = []
    for i, k in enumerate(checks["picks"]):
        zen, _, _, _, rate, true = checks["runs"][k]
        delivered, error = rate.sum(axis=1), checks["spectrum_error"][k]
        ax.plot(e_centre, delivered, color=f"C{i}", label=f"delivered, zenith {zen:.0f} deg")
        ax.fill_between(
            e_centre,
            delivered * np.exp(-error),
            delivered * np.exp(error),
            color=f"C{i}",
            alpha=0.2,
            label="1 sigma, statistical",
        )
        true = true.sum(axis=1)  # zero below the run's threshold: not drawn on log axes
        lowest.append(float(np.min(true[true > 0])))
        ax.plot(e_centre, np.where(true > 0, true, np.nan), color=f"C{i}", ls="--", label="true")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="Energy [TeV]",
        ylabel="Rate summed over pixels [1 / (TeV s sr)]",
        title="Delivered per-run models against the truth",
    )
    ax.set_ylim(bottom=0.01 * min(lowest))  # a band far below the truth's range is cut
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    with atomic_output(folder / "demo_spectra.png", overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    predicted = sum(p[2] for p in checks["runs"])
    expected = sum(p[3] for p in checks["runs"])
    n = checks["fov_edges"].size - 1
    k = int(np.argmin(np.abs(e_centre - 1.0)))
    ratio = (predicted[k] / np.where(expected[k] > 0, expected[k], np.nan)).reshape(n, n)
    fig, ax = plt.subplots(figsize=(5, 4), layout="constrained")
    xy = checks["fov_edges"]
    mesh = ax.pcolormesh(xy, xy, ratio, vmin=0.8, vmax=1.2, cmap=empty_bin_cmap("RdBu_r"))
    fig.colorbar(mesh, ax=ax, label="delivered / true, all runs")
    ax.set(
        xlabel="DETX [deg]", ylabel="DETY [deg]", aspect="equal", title=f"E = {e_centre[k]:.2g} TeV"
    )
    with atomic_output(folder / "demo_ratio.png", overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
