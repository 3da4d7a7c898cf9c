"""Fit the flexible background model to H.E.S.S. DL3 DR1 runs
==========================================================

Fit the flexible background model to H.E.S.S. DL3 DR1 runs and plot data, model and residuals.

Usage: python fit_hess_dr1.py [output_folder] [--target NAME | --obs-ids ID ...]
       (default: ./out, the 21 runs on PKS 2155-304)

The runs are filled into a background model with the original binning for
their number (`FOVCubeBackgroundModel.define_cube_binning`), minus events in
the default exclusion regions (targets and known sources) and with each
pixel's time reduced by its excluded fraction. The `bgcube.fit.FlexibleModel`
(spline spectrum, elliptical generalised-Gaussian profile, gradient) is fitted
to the counts with the Cash statistic by `bgcube.fit.smooth_by_fit` (what
``model.smooth(method='fit')`` runs; energy bins below the threshold, with
almost no counts, are left out and get rate 0), and the script writes

* ``fit_hess_dr1_images.png``: counts, fitted counts and residual
  significance in three energy bands;
* ``fit_hess_dr1_profiles.png``: spectrum, radial profiles and the
  distribution of the per-bin residual significance;
* ``fit_hess_dr1_model.fits.gz``: the model with the fitted background cube.

The data are from the H.E.S.S. DL3 public test data release 1 (found through
bgcube.datasets: set BGCUBE_DATA to the reference data folder). This work made
use of data from the H.E.S.S. DL3 public test data release 1 (HESS DL3 DR1,
H.E.S.S. collaboration, 2018).
"""

import argparse
from pathlib import Path

import astropy.units as u
import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from bgcube import FOVCubeBackgroundModel  # noqa: E402
from bgcube.data.exclusion import default_exclusion_regions  # noqa: E402
from bgcube.data.store import DataStore  # noqa: E402
from bgcube.datasets import get_path  # noqa: E402
from bgcube.fit import deviance_residuals, smooth_by_fit  # noqa: E402
from bgcube.fit.smooth import below_threshold  # noqa: E402

BANDS_TEV = ((0.1, 1.0), (1.0, 5.0), (5.0, 100.0))


def select_runs(store, target=None, obs_ids=None):
    """The runs on ``target`` (OBJECT column), or the given OBS_IDs."""
    if obs_ids:
        return store.select(obs_ids=[int(i) for i in obs_ids])
    table = store.obs_table
    ids = [
        int(i)
        for i, name in zip(table["OBS_ID"], table["OBJECT"], strict=True)
        if str(name).strip() == target
    ]
    if not ids:
        raise SystemExit(f"no run on target {target!r}; targets: {sorted(set(table['OBJECT']))}")
    return store.select(obs_ids=ids)


def band_sum(cube, energy_edges, band):
    lo, hi = band
    use = (energy_edges[:-1] >= lo * 0.999) & (energy_edges[1:] <= hi * 1.001)
    return cube[use].sum(axis=0), use


def plot_images(counts, mu, energy_edges, extent, filename):
    fig, axes = plt.subplots(3, 3, figsize=(11, 10), constrained_layout=True)
    for row, band in zip(axes, BANDS_TEV, strict=True):
        n, use = band_sum(counts, energy_edges, band)
        m, _ = band_sum(mu, energy_edges, band)
        label = (
            f"{energy_edges[:-1][use][0]:.3g}-{energy_edges[1:][use][-1]:.3g} TeV"
            if use.any()
            else f"{band[0]}-{band[1]} TeV (no bin)"
        )
        vmax = max(n.max(), m.max(), 1)
        for ax, image, title in ((row[0], n, "counts"), (row[1], m, "fitted model")):
            im = ax.imshow(image, origin="lower", extent=extent, vmin=0, vmax=vmax)
            ax.set_title(f"{title}, {label}")
            fig.colorbar(im, ax=ax, shrink=0.8)
        sig = deviance_residuals(m, n)
        im = row[2].imshow(sig, origin="lower", extent=extent, cmap="RdBu_r", vmin=-5, vmax=5)
        row[2].set_title(f"residual significance, {label}")
        fig.colorbar(im, ax=row[2], shrink=0.8)
        for ax in row:
            ax.set(xlabel="DETX [deg]", ylabel="DETY [deg]")
    fig.savefig(filename, dpi=90)
    plt.close(fig)


def plot_profiles(counts, mu, mask, energy_edges, detx, dety, filename):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)
    centers = np.sqrt(energy_edges[1:] * energy_edges[:-1])
    n_e, m_e = counts.sum(axis=(1, 2)), mu.sum(axis=(1, 2))
    ax = axes[0]
    ax.errorbar(centers, n_e, yerr=np.sqrt(n_e), fmt="o", label="counts")
    ax.plot(centers, m_e, "-", label="fitted model")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="Energy [TeV]",
        ylabel="Counts per energy bin",
        title="spectrum over the field of view",
    )
    ax.legend()

    offset = np.hypot(detx[None, :], dety[:, None])
    rings = np.linspace(0, offset.max(), 13)
    ring = np.digitize(offset, rings) - 1
    r_mid = 0.5 * (rings[1:] + rings[:-1])
    ax = axes[1]
    for band in BANDS_TEV:
        n, use = band_sum(counts, energy_edges, band)
        m, _ = band_sum(mu, energy_edges, band)
        if not use.any():
            continue
        n_r = np.bincount(ring.ravel(), n.ravel(), minlength=12)[:12]
        m_r = np.bincount(ring.ravel(), m.ravel(), minlength=12)[:12]
        lines = ax.errorbar(
            r_mid, n_r, yerr=np.sqrt(n_r), fmt="o", label=f"{band[0]}-{band[1]} TeV"
        )
        ax.plot(r_mid, m_r, "-", color=lines[0].get_color())
    ax.set(
        yscale="log",
        xlabel="Offset [deg]",
        ylabel="Counts per ring",
        title="radial profiles (points: data, lines: model)",
    )
    ax.legend()

    sig = deviance_residuals(mu, counts)[mask & (mu > 5)]
    ax = axes[2]
    ax.hist(
        sig,
        bins=np.linspace(-5, 5, 51),
        density=True,
        histtype="step",
        label=f"bins with > 5 expected counts: mean {sig.mean():.2f}, std {sig.std():.2f}",
    )
    x = np.linspace(-5, 5, 201)
    ax.plot(x, np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi), label="standard normal")
    ax.set(xlabel="Residual significance per bin", ylabel="Density", title="residuals")
    ax.legend(fontsize="small")
    fig.savefig(filename, dpi=90)
    plt.close(fig)


def main(outdir="out", target="PKS 2155-304", obs_ids=None, n_knots=8, spatial_nodes=2):
    """Fill, fit and plot; returns the fit result and the files written."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    store = select_runs(DataStore.from_dir(get_path("hess-dl3-dr1")), target, obs_ids)
    table = store.obs_table
    regions = default_exclusion_regions(table)
    model = FOVCubeBackgroundModel.define_cube_binning(table)
    filled, failed = model.fill_obs(table, store, regions, progress=False)
    print(
        f"{len(filled)} runs filled ({len(failed)} failed), "
        f"{sum(f.n_filled for f in filled)} events in the cube, "
        f"{sum(f.n_excluded for f in filled)} excluded; cube {model.counts_cube.shape}"
    )
    model.compute_rate()

    # the fit: energy bins below the threshold (almost no counts) stay out and get rate 0
    result = smooth_by_fit(model, n_knots=n_knots, spatial_nodes=spatial_nodes)
    print(result)
    print(f"Cash statistic per degree of freedom: {result.statistic / result.dof:.3f}")

    counts = model.counts_cube.data
    time = model.livetime_cube.quantity
    mu = (model.background_cube.quantity * model.counts_cube.bin_volume * time).to_value(u.one)
    mask = (time.value > 0) & ~below_threshold(counts)[:, None, None]
    energy_edges = model.counts_cube.energy_axis.edges_canonical
    detx = model.counts_cube.detx_axis.centers.to_value(u.deg)
    dety = model.counts_cube.dety_axis.centers.to_value(u.deg)
    extent = model.counts_cube.image_extent.to_value(u.deg)

    files = [
        outdir / "fit_hess_dr1_images.png",
        outdir / "fit_hess_dr1_profiles.png",
        outdir / "fit_hess_dr1_model.fits.gz",
    ]
    plot_images(counts, mu, energy_edges, extent, files[0])
    plot_profiles(counts, mu, mask, energy_edges, detx, dety, files[1])
    model.write(files[2], overwrite=True)
    for f in files:
        print(f"wrote {f}")
    return {"result": result, "files": files, "counts": counts, "mu": mu, "mask": mask}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="out")
    parser.add_argument("--target", default="PKS 2155-304", help="OBJECT of the runs to use")
    parser.add_argument("--obs-ids", nargs="*", type=int, help="use these runs instead")
    parser.add_argument("--n-knots", type=int, default=8)
    parser.add_argument("--spatial-nodes", type=int, default=2)
    args = parser.parse_args()
    main(args.outdir, args.target, args.obs_ids, args.n_knots, args.spatial_nodes)
