"""The example scripts run headless and write their files."""

import os
import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest

from bgcube import FOVCube

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_example(name, outdir, shared_data):
    """Run an example in a fresh interpreter (warnings as errors), output to ``outdir``."""
    env = dict(os.environ, BGCUBE_DATA=str(shared_data), MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name), str(outdir)],
        capture_output=True,
        text=True,
        cwd=outdir.parent,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr


def assert_png(path):
    assert path.is_file(), f"{path.name} was not written"
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE) and len(content) > 10_000


def test_plot_bg_cube_model(tmp_path, shared_data):
    out = tmp_path / "out"
    run_example("plot_bg_cube_model.py", out, shared_data)
    assert_png(out / "bg_cube_model_image.png")
    assert_png(out / "bg_cube_model_spectrum.png")
    original = FOVCube.read(
        shared_data / "gammapy-extra-background/bg_cube_model_test1.fits",
        format="table",
        scheme="bg_cube",
    )
    for fmt in ("table", "image"):
        cube = FOVCube.read(out / f"cube_background_model_{fmt}.fits", format=fmt, scheme="bg_cube")
        assert cube.unit == original.unit
        np.testing.assert_array_equal(cube.quantity.value, original.quantity.value)
        np.testing.assert_allclose(cube.energy_edges.value, original.energy_edges.value, rtol=1e-12)
    # a second run overwrites its files (overwrite=True)
    run_example("plot_bg_cube_model.py", out, shared_data)


def test_plot_bg_cube_model_comparison(tmp_path, shared_data):
    out = tmp_path / "figures"
    run_example("plot_bg_cube_model_comparison.py", out, shared_data)
    assert_png(out / "bg_cube_model_comparison.png")


def test_comparison_figure_content(shared_data):
    """The six panels: LogNorm images at 0.5 and 50 TeV, both spectra at (0, 0) and (2, 2) deg."""
    plt = pytest.importorskip("matplotlib.pyplot")
    from matplotlib.colors import LogNorm

    sys.path.insert(0, str(EXAMPLES))
    try:
        import plot_bg_cube_model_comparison as example
    finally:
        sys.path.remove(str(EXAMPLES))
    true = shared_data / "gammapy-extra-background/bg_cube_model_true.fits.gz"
    reco = shared_data / "gammapy-extra-background/bg_cube_model_reco.fits.gz"
    fig = example.plot_bg_cube_model_comparison(true, "true", reco, "reco")
    try:
        axes = np.array(fig.axes[:6]).reshape(2, 3)
        reco_cube = FOVCube.read(reco, format="table", scheme="bg_cube", hdu="BACKGROUND")
        for col, energy in enumerate((0.5, 50.0)):
            assert axes[0, col].get_title().startswith("true: Energy = [")
            assert isinstance(axes[0, col].images[0].norm, LogNorm)
            index = reco_cube.find_energy_bin(energy * u.TeV)
            np.testing.assert_array_equal(
                np.asarray(axes[1, col].images[0].get_array()), reco_cube.quantity.value[index]
            )
        for row in range(2):
            labels = [line.get_label() for line in axes[row, 2].lines]
            assert labels == ["true", "reco"]
        assert axes[0, 2].get_title().startswith("DETX = [0, ")
    finally:
        plt.close(fig)
