"""Atomic writes: no clobbering without overwrite=True, no partial files, nothing left behind."""

import os
import pathlib

import astropy.units as u
import numpy as np
import pytest

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.errors import BgcubeDeprecationWarning, BgcubeError, OutputExistsError
from bgcube.io.atomic import TEMP_MARKER, atomic_output


def small_cube(value=1.0):
    return FOVCube(
        np.linspace(-2, 2, 3) * u.deg,
        np.linspace(-2, 2, 3) * u.deg,
        np.geomspace(0.1, 10, 3) * u.TeV,
        data=np.full((2, 2, 2), value),
        scheme="bg_cube",
    )


def test_existing_file_is_not_overwritten(tmp_path):
    path = tmp_path / "cube.fits"
    small_cube(1.0).write(path)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError) as excinfo:
        small_cube(2.0).write(path)
    assert isinstance(excinfo.value, FileExistsError)
    assert isinstance(excinfo.value, BgcubeError)
    assert "cube.fits" in str(excinfo.value) and "overwrite=True" in str(excinfo.value)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["cube.fits"]


@pytest.mark.parametrize("fmt", ["table", "image"])
def test_overwrite_replaces(tmp_path, fmt):
    path = tmp_path / "cube.fits"
    small_cube(1.0).write(path, format=fmt)
    small_cube(2.0).write(path, format=fmt, overwrite=True)
    assert FOVCube.read(path, format=fmt).data[0, 0, 0] == 2.0
    assert sorted(os.listdir(tmp_path)) == ["cube.fits"]


def test_clobber_is_a_deprecated_alias(tmp_path):
    path = tmp_path / "cube.fits"
    small_cube(1.0).write(path)
    with pytest.warns(BgcubeDeprecationWarning, match="clobber"):
        small_cube(3.0).write(path, clobber=True)
    assert FOVCube.read(path).data[0, 0, 0] == 3.0
    with pytest.warns(DeprecationWarning), pytest.raises(OutputExistsError):
        small_cube(4.0).write(path, clobber=False)
    assert FOVCube.read(path).data[0, 0, 0] == 3.0


def test_model_write_rules(tmp_path):
    model = FOVCubeBackgroundModel(background_cube=small_cube(), time_convention="LIVETIME")
    path = tmp_path / "model.fits"
    model.write(path)
    with pytest.raises(OutputExistsError, match="model.fits"):
        model.write(path)
    with pytest.warns(BgcubeDeprecationWarning):
        model.write(path, clobber=True)
    model.write(path, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["model.fits"]


def failing_write_bytes(self, data):
    """Write some of the bytes, then fail as a full disk would."""
    with open(self, "wb") as handle:
        handle.write(data[:100])
    raise OSError(28, "No space left on device")


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "cube.fits.gz"
    small_cube(1.0).write(path)
    before = path.read_bytes()
    monkeypatch.setattr(pathlib.Path, "write_bytes", failing_write_bytes)
    with pytest.raises(OSError, match="No space left"):
        small_cube(2.0).write(path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["cube.fits.gz"]
    monkeypatch.undo()
    assert FOVCube.read(path).data[0, 0, 0] == 1.0


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(pathlib.Path, "write_bytes", failing_write_bytes)
    with pytest.raises(OSError):
        small_cube().write(tmp_path / "new.fits")
    assert os.listdir(tmp_path) == []


def test_atomic_output_context(tmp_path):
    target = tmp_path / "data.fits.gz"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(TEMP_MARKER) and tmp.name.endswith(".fits.gz")
        assert not target.exists()  # published only at the end
        tmp.write_bytes(b"new content")
    assert target.read_bytes() == b"new content"
    with pytest.raises(RuntimeError), atomic_output(target, overwrite=True) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["data.fits.gz"]


def test_file_appearing_during_write_is_not_clobbered(tmp_path):
    target = tmp_path / "race.fits"
    with pytest.raises(OutputExistsError), atomic_output(target) as tmp:
        tmp.write_bytes(b"ours")
        target.write_bytes(b"someone else's")
    assert target.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["race.fits"]


def test_written_file_gets_umask_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        small_cube().write(tmp_path / "cube.fits")
    finally:
        os.umask(umask)
    assert (tmp_path / "cube.fits").stat().st_mode & 0o777 == 0o644


def test_directory_target(tmp_path):
    with pytest.raises(IsADirectoryError):
        small_cube().write(tmp_path)


def test_missing_output_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=r"cannot write 'nodir/x.fits': its folder 'nodir' does not exist"
    ) as excinfo:
        small_cube().write("nodir/x.fits")
    assert TEMP_MARKER not in str(excinfo.value)
    (tmp_path / "afile").write_text("")
    with pytest.raises(NotADirectoryError, match=r"its folder 'afile' is a file, not a folder"):
        small_cube().write("afile/x.fits")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
