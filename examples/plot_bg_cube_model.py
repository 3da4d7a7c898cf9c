"""Plot a cube background model and write it in both FITS formats
==============================================================

Plot a cube background model and store it in FITS files (table and image formats).

Usage: python plot_bg_cube_model.py [output_folder]   (default: ./out)

The model is bg_cube_model_test1.fits of the original Gammapy test data, found
through bgcube.datasets (set BGCUBE_DATA to the reference data folder).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from astropy.coordinates import Angle  # noqa: E402
from astropy.units import Quantity  # noqa: E402

from bgcube import FOVCube  # noqa: E402
from bgcube.datasets import get_path  # noqa: E402


def main(outdir):
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    filename = get_path("gammapy-extra-background/bg_cube_model_test1.fits")
    bg_model = FOVCube.read(filename, format="table", scheme="bg_cube")

    bg_model.plot_image(energy=Quantity(2.0, "TeV"))
    plt.savefig(outdir / "bg_cube_model_image.png")
    plt.close()

    bg_model.plot_spectrum(coord=Angle([0.0, 0.0], "deg"))
    plt.savefig(outdir / "bg_cube_model_spectrum.png")
    plt.close()

    outname = outdir / "cube_background_model"
    bg_model.write(f"{outname}_table.fits", format="table", overwrite=True)
    bg_model.write(f"{outname}_image.fits", format="image", overwrite=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out")
