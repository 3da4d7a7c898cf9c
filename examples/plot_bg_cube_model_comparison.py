"""Compare two cube background models
==================================

Compare two cube background models: the true one and one reconstructed from events.

Usage: python plot_bg_cube_model_comparison.py [output_folder]   (default: ./out)

Top row: the first model, bottom row: the second; columns: images at 0.5 and
50 TeV (log colour scale) and the spectra of both models at one position
((0, 0) deg on top, (2, 2) deg below). The first model is scaled to the
integral of the second. The files are bg_cube_model_true.fits.gz and
bg_cube_model_reco.fits.gz of the original Gammapy test data, found through
bgcube.datasets (set BGCUBE_DATA to the reference data folder).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from astropy.coordinates import Angle  # noqa: E402
from astropy.units import Quantity  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from bgcube import FOVCube  # noqa: E402
from bgcube.datasets import get_path  # noqa: E402


def plot_bg_cube_model_comparison(input_file1, name1, input_file2, name2):
    """Figure comparing the background cubes of two files; returns the Figure."""
    model1 = FOVCube.read(input_file1, format="table", scheme="bg_cube", hdu="BACKGROUND")
    model2 = FOVCube.read(input_file2, format="table", scheme="bg_cube", hdu="BACKGROUND")

    # scale model 1 to the integral of model 2, and use the same unit for both
    ratio = (model2.integral / model1.integral).decompose()
    model1.data = model1.data * float(ratio) * float(model1.unit.to(model2.unit))
    model1.unit = model2.unit

    fig, axes = plt.subplots(nrows=2, ncols=3, figsize=(30.0, 15.0))
    fig.suptitle(f"{name1} (top) vs {name2} (bottom)")

    # images: rows = models, columns = energies
    for row, (model, name) in enumerate([(model1, name1), (model2, name2)]):
        for col, energy in enumerate([Quantity(0.5, "TeV"), Quantity(50.0, "TeV")]):
            ax = axes[row, col]
            model.plot_image(energy=energy, ax=ax, style_kwargs=dict(norm=LogNorm()))
            ax.set_title(f"{name}: {ax.get_title()}")

    # spectra: both models on each panel, one position per row
    for row, coord in enumerate([Angle([0.0, 0.0], "deg"), Angle([2.0, 2.0], "deg")]):
        ax = axes[row, 2]
        model1.plot_spectrum(coord=coord, ax=ax, style_kwargs=dict(color="blue", label=name1))
        title1 = ax.get_title()
        model2.plot_spectrum(coord=coord, ax=ax, style_kwargs=dict(color="red", label=name2))
        if ax.get_title() != title1:
            raise ValueError(
                f"the models have different spatial bins: {title1!r} vs {ax.get_title()!r}"
            )
        ax.legend()
    return fig


def main(outdir):
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    fig = plot_bg_cube_model_comparison(
        get_path("gammapy-extra-background/bg_cube_model_true.fits.gz"),
        "true",
        get_path("gammapy-extra-background/bg_cube_model_reco.fits.gz"),
        "reco",
    )
    fig.savefig(outdir / "bg_cube_model_comparison.png")
    plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out")
