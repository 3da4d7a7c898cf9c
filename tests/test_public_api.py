"""The public surface: top-level names, and readers that build the class they are called on."""

import subprocess
import sys

import astropy.units as u
import numpy as np

import bgcube
from bgcube import FOVCube, FOVCubeBackgroundModel


def test_top_level_names_resolve():
    for name in bgcube.__all__:
        assert getattr(bgcube, name) is not None, name
    assert issubclass(bgcube.FileFormatError, ValueError)
    assert callable(bgcube.make_models)


def test_import_bgcube_loads_nothing_heavy():
    code = "import sys, bgcube; print(sorted(m for m in ('astropy', 'matplotlib', 'jax') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


class MyCube(FOVCube):
    pass


class MyModel(FOVCubeBackgroundModel):
    pass


def _cube(cls=FOVCube):
    edges = np.linspace(-1, 1, 5) * u.deg
    energy = np.logspace(-1, 1, 4) * u.TeV
    data = np.arange(3 * 4 * 4, dtype=float).reshape(3, 4, 4)
    return cls(edges, edges, energy, data=data, scheme="bg_cube", unit="1 / (MeV s sr)")


def test_cube_readers_respect_cls(tmp_path):
    cube = _cube()
    for fmt in ("table", "image"):
        path = tmp_path / f"cube_{fmt}.fits"
        cube.write(path, format=fmt)
        back = MyCube.read(path, format=fmt)
        assert type(back) is MyCube
        np.testing.assert_array_equal(np.asarray(back.data), np.asarray(cube.data))
    assert type(MyCube.from_table(cube.to_table())) is MyCube
    assert type(MyCube.from_hdulist(cube.to_hdulist())) is MyCube
    assert type(FOVCube.read(tmp_path / "cube_table.fits")) is FOVCube


def test_model_reader_respects_cls(tmp_path):
    model = FOVCubeBackgroundModel(background_cube=_cube())
    path = tmp_path / "model.fits"
    model.write(path)
    back = MyModel.read(path)
    assert type(back) is MyModel
    np.testing.assert_array_equal(
        np.asarray(back.background_cube.data), np.asarray(model.background_cube.data)
    )
