"""Figure of a true-versus-reconstructed comparison (matplotlib, imported lazily).

One figure, two rows: ratio images (reconstructed / true rate) at three
energies; then spectra of both models at a few field-of-view positions, the
mean pull per energy bin, and the pull distribution with the unit Gaussian.
The figure is a `matplotlib.figure.Figure` made without pyplot, so it
touches no global plotting state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle

from ..backend import to_numpy
from ..plotting import LEGEND_OUTSIDE, empty_bin_cmap, log_axis_errors

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .._types import PathLike, QuantityLike
    from .compare import ModelComparison

__all__ = ["plot_comparison"]


def _default_energy_bins(comparison, n=3):
    """Three energy bins spread over those with usable bins (else with finite ratios)."""
    per_bin = (
        comparison.used.sum(axis=(1, 2))
        if comparison.n_bins
        else np.isfinite(comparison.ratio).sum(axis=(1, 2))
    )
    candidates = np.flatnonzero(per_bin > 0)
    if candidates.size == 0:
        candidates = np.arange(comparison.ratio.shape[0])
    picks = np.linspace(0, candidates.size - 1, min(n, candidates.size))
    return [int(candidates[int(round(p))]) for p in picks]


def _default_positions(cube):
    """(0, 0) and two points along +DETX at 1/3 and 2/3 of the half-width."""
    x = cube.coordx_edges.to_value(u.deg)
    y = cube.coordy_edges.to_value(u.deg)
    x0, y0 = 0.5 * (x[0] + x[-1]), 0.5 * (y[0] + y[-1])
    half = 0.5 * (x[-1] - x[0])
    return [Angle([x0 + f * half, y0], u.deg) for f in (0.0, 1 / 3, 2 / 3)]


def _ratio_images(fig, axes, comparison, energy_bins, ratio_range):
    cube = comparison.true_rate
    extent = cube.image_extent.to_value(u.deg)
    edges = cube.energy_edges
    image = None
    for ax, ie in zip(axes, energy_bins, strict=False):
        image = ax.imshow(
            comparison.ratio[ie],
            origin="lower",
            extent=extent,
            cmap=empty_bin_cmap("RdBu_r"),  # bins without a ratio: grey, not white (= 1)
            vmin=ratio_range[0],
            vmax=ratio_range[1],
            interpolation="nearest",
        )
        ax.set_title(f"E = {edges[ie].value:.3g} - {edges[ie + 1].value:.3g} {edges.unit}")
        ax.set_xlabel("DETX [deg]")
        ax.set_ylabel("DETY [deg]")
    if image is not None:
        top = axes[0].get_position()
        cax = fig.add_axes([0.92, top.y0, 0.012, top.height], label="<colorbar>")
        fig.colorbar(image, cax=cax, label="reconstructed / true rate")


def _spectra(ax, comparison, positions):
    reco = comparison.reco.background_cube
    true = comparison.true_rate
    energy = true.energy_bin_centers.to_value(u.TeV)
    counts = None
    if comparison.reco.counts_cube is not None:
        counts = to_numpy(comparison.reco.counts_cube.data)
    for k, coord in enumerate(positions):
        color = f"C{k}"
        ix, iy = true.find_coord_bin(coord)
        label = f"({coord[0].to_value(u.deg):.2g}, {coord[1].to_value(u.deg):.2g}) deg"
        t = true.quantity[:, iy, ix].value
        ax.plot(energy, np.where(t > 0, t, np.nan), "-", color=color, label=f"true {label}")
        r = to_numpy(reco.data)[:, iy, ix]
        err = None
        if counts is not None:
            n = counts[:, iy, ix]
            with np.errstate(divide="ignore", invalid="ignore"):
                err = np.where(n > 0, r / np.sqrt(n), 0.0)
        good = r > 0
        ax.errorbar(
            energy[good],
            r[good],
            yerr=None if err is None else log_axis_errors(r[good], err[good]),
            fmt="o",
            ms=3,
            color=color,
            label=f"reco {label}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*true.energy_edges[[0, -1]].to_value(u.TeV))
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel(f"Rate [{reco.unit.to_string('latex_inline')}]")
    ax.legend(fontsize="x-small", **LEGEND_OUTSIDE)
    ax.set_title("Spectra")


def _no_bins(ax, comparison) -> bool:
    """Say so on ``ax`` and return True when no bin has enough expected counts."""
    if comparison.n_bins:
        return False
    ax.text(
        0.5,
        0.5,
        "no bins with enough\nexpected counts",
        ha="center",
        va="center",
        transform=ax.transAxes,
    )
    return True


def _pulls_vs_energy(ax, comparison):
    energy = comparison.true_rate.energy_bin_centers.to_value(u.TeV)
    if _no_bins(ax, comparison):
        return
    mean = np.full(energy.size, np.nan)
    err = np.full(energy.size, np.nan)
    for ie in range(energy.size):
        p = comparison.pulls[ie][comparison.used[ie]]
        if p.size:
            mean[ie] = p.mean()
            err[ie] = 1.0 / np.sqrt(p.size)
    ax.axhline(0.0, color="0.5", lw=1)
    ax.errorbar(energy, mean, yerr=err, fmt="o", ms=3)
    ax.set_xscale("log")
    ax.set_xlim(*comparison.true_rate.energy_edges[[0, -1]].to_value(u.TeV))
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("mean pull (+- 1/sqrt(n))")
    ax.set_title("Pulls per energy bin")


def _pull_histogram(ax, comparison):
    if _no_bins(ax, comparison):
        return
    pulls = comparison.pulls[comparison.used]
    lim = max(5.0, float(np.max(np.abs(pulls))))
    bins = np.linspace(-lim, lim, 61)
    ax.hist(
        pulls,
        bins=bins,
        density=True,
        histtype="stepfilled",
        alpha=0.5,
        label=f"{comparison.n_bins} bins",
    )
    model = comparison.model_pulls[comparison.used]
    if not np.allclose(model, pulls, rtol=1e-6, atol=1e-6):
        ax.hist(
            model,
            bins=bins,
            density=True,
            histtype="step",
            color="C3",
            label=f"rate model (mean {comparison.model_pull_mean:.2f}, "
            f"width {comparison.model_pull_width:.2f})",
        )
    x = np.linspace(-lim, lim, 400)
    ax.plot(x, np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi), "k-", label="unit Gaussian")
    ax.set_xlabel("(N_reco - N_exp) / sqrt(N_exp)")
    ax.set_ylabel("density")
    ax.set_title(
        f"mean {comparison.pull_mean:.3f} +- {comparison.pull_mean_error:.3f}, "
        f"width {comparison.pull_width:.3f} +- {comparison.pull_width_error:.3f}",
        fontsize="small",
    )
    ax.legend(fontsize="x-small", **LEGEND_OUTSIDE)


def plot_comparison(
    comparison: ModelComparison,
    filename: PathLike | None = None,
    *,
    energies: QuantityLike | None = None,
    positions: Any = None,
    ratio_range: tuple[float, float] = (0.5, 1.5),
    dpi: int = 100,
    overwrite: bool = False,
) -> Figure:
    """Plot a `~bgcube.simulate.ModelComparison`.

    Parameters
    ----------
    comparison : `~bgcube.simulate.ModelComparison`
        From `bgcube.simulate.compare_models`.
    filename : str or path, optional
        Write the figure there (format from the extension, e.g. ``.png``).
    energies : `~astropy.units.Quantity`, optional
        Energies of the (up to three) ratio images; default: three energy bins
        spread over those with enough expected counts.
    positions : list of `~astropy.coordinates.Angle`, optional
        ``(DETX, DETY)`` positions of the spectra; default: the centre and two
        points along +DETX.
    ratio_range : tuple of float
        Colour range of the ratio images.
    dpi : int
        Resolution of the written file.
    overwrite : bool
        Replace an existing ``filename`` (written atomically).

    Returns
    -------
    figure : `matplotlib.figure.Figure`

    Raises
    ------
    bgcube.errors.OutputExistsError
        If ``filename`` exists and ``overwrite`` is false.
    """
    from matplotlib.figure import Figure

    cube = comparison.true_rate
    if energies is None:
        energy_bins = _default_energy_bins(comparison)
    else:
        energy_bins = [int(cube.find_energy_bin(e)) for e in u.Quantity(energies).flatten()][:3]
    positions = _default_positions(cube) if positions is None else [Angle(p) for p in positions]

    fig = Figure(figsize=(15, 9))
    grid = fig.subplots(2, 3, gridspec_kw={"hspace": 0.35, "wspace": 0.3})
    fig.subplots_adjust(left=0.06, right=0.9, bottom=0.07, top=0.92)
    _ratio_images(fig, grid[0, : len(energy_bins)], comparison, energy_bins, ratio_range)
    for ax in grid[0, len(energy_bins) :]:
        ax.set_visible(False)
    _spectra(grid[1, 0], comparison, positions)
    _pulls_vs_energy(grid[1, 1], comparison)
    _pull_histogram(grid[1, 2], comparison)
    fig.suptitle("Reconstructed versus true background")
    if filename is not None:
        from ..io import atomic_output

        with atomic_output(filename, overwrite=overwrite) as tmp:
            fig.savefig(tmp, dpi=dpi)
    return fig
