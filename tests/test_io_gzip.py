"""Gzipped output: the same bytes for the same content, incompressible data written quickly."""

import gzip

import astropy.units as u
import numpy as np
import pytest

from bgcube.cube import FOVCube
from bgcube.errors import OutputExistsError
from bgcube.io.files import GZIP_LEVEL, gzip_bytes
from bgcube.make.gammapy_index import write_cube_files


def test_compressible_data_get_the_usual_gzip_level():
    data = (b"SIMPLE  =                    T" + bytes(50)) * 4000
    assert gzip_bytes(data) == gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def test_incompressible_data_round_trip_at_about_the_same_size():
    rng = np.random.default_rng(1)
    data = bytes(2880) + np.exp(rng.normal(size=80_000)).astype(">f8").tobytes()
    packed = gzip_bytes(data)
    assert gzip.decompress(packed) == data
    assert packed == gzip_bytes(data)  # deterministic (time stamp 0)
    usual = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
    assert packed != usual and len(packed) < 1.01 * len(usual) and len(packed) < len(data)
    from isal import igzip

    assert packed == igzip.compress(data, 1, mtime=0)  # ISA-L's fastest level


def _cubes(n):
    rng = np.random.default_rng(2)
    x, e = np.linspace(-2, 2, 11) * u.deg, np.geomspace(0.1, 100, 6) * u.TeV
    out = []
    for i in range(n):
        data = rng.random((5, 10, 10)) * u.Unit("1 / (MeV s sr)")
        cube = FOVCube(x, x, e, data=data, scheme="bg_cube")
        cube.meta["OBS_ID"] = i
        out.append(cube)
    return out


def test_cubes_written_in_the_background_are_those_written_one_by_one(tmp_path):
    cubes = _cubes(7)
    paths = [tmp_path / f"bkg_{i}.fits.gz" for i in range(7)]
    write_cube_files(cubes, paths, overwrite=False)
    for cube, path in zip(cubes, paths, strict=True):
        cube.write(tmp_path / "one.fits.gz", format="table", overwrite=True)
        assert path.read_bytes() == (tmp_path / "one.fits.gz").read_bytes()


def test_a_failed_file_is_raised_after_the_others_are_written(tmp_path):
    cubes = _cubes(6)
    paths = [tmp_path / f"bkg_{i}.fits.gz" for i in range(6)]
    paths[1].write_bytes(b"there")
    with pytest.raises(OutputExistsError):
        write_cube_files(cubes, paths, overwrite=False)
    assert paths[1].read_bytes() == b"there"
    assert all(p.exists() for p in paths)
