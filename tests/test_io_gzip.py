"""Gzipped output: the same bytes for the same content, incompressible data written quickly
(stored uncompressed, or at ISA-L's fastest level)."""

import ast
import gzip
import threading

import astropy.units as u
import numpy as np
import pytest

from bgcube.cube import FOVCube
from bgcube.errors import OutputExistsError
from bgcube.io.files import GZIP_LEVEL, gzip_bytes
from bgcube.make.gammapy_index import write_cube_files
from bgcube.radial import RadialBackground


def test_compressible_data_get_the_usual_gzip_level():
    data = (b"SIMPLE  =                    T" + bytes(50)) * 4000
    assert gzip_bytes(data) == gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def _stored_blocks(packed):
    """The deflate blocks' types (BTYPE) of a gzip stream made of stored blocks, else None."""
    pos, types = 10, []  # after gzip's 10-byte header (no name, no extra fields)
    while True:
        head = packed[pos]
        types.append((head >> 1) & 3)
        if types[-1] != 0:
            return None
        size = int.from_bytes(packed[pos + 1 : pos + 3], "little")
        assert int.from_bytes(packed[pos + 3 : pos + 5], "little") == size ^ 0xFFFF
        pos += 5 + size
        if head & 1:  # the last block
            assert len(packed) == pos + 8  # then the CRC-32 and the size
            return types


def test_float64_noise_is_stored_uncompressed():
    rng = np.random.default_rng(1)
    data = bytes(2880) + np.exp(rng.normal(size=80_000)).astype(">f8").tobytes()
    packed = gzip_bytes(data)
    assert gzip.decompress(packed) == data
    assert packed == gzip_bytes(data)  # deterministic (time stamp 0)
    assert packed[4:8] == bytes(4)  # MTIME 0
    assert _stored_blocks(packed)  # deflate's stored blocks only
    assert len(data) < len(packed) < 1.001 * len(data)


@pytest.mark.parametrize("size", [0, 1, 65534, 65535, 65536, 3 * 65535 + 7])
def test_stored_stream_at_block_boundaries(size):
    # the stream of stored blocks, assembled by bgcube, inflates to the data with
    # Python's gzip and with zlib, and has the header zlib writes
    import zlib

    from bgcube.io.files import _gzip_stored

    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    packed = _gzip_stored(data)
    assert gzip.decompress(packed) == data
    assert zlib.decompress(packed, wbits=31) == data
    assert packed[:10] == zlib.compress(b"", 0, wbits=31)[:10]
    assert len(_stored_blocks(packed)) == max(1, -(-size // 65535))
    assert _gzip_stored(bytearray(data)) == packed == _gzip_stored(memoryview(data))


def test_the_sample_skips_a_fits_files_end_padding():
    """FITS pads its data with up to 2879 zero bytes: a sample from the end would count them."""
    rng = np.random.default_rng(4)
    noise = np.exp(rng.normal(size=39_961)).astype(">f8").tobytes()
    pad = -(2880 + len(noise)) % 2880
    data = bytes(2880) + noise + bytes(pad)
    assert pad > 2800  # near the most a FITS file has
    assert _stored_blocks(gzip_bytes(data))
    assert gzip.decompress(gzip_bytes(data)) == data


def test_a_real_rate_cube_is_stored_and_read_back_by_astropy(tmp_path):
    from astropy.io import fits

    rng = np.random.default_rng(3)
    x, e = np.linspace(-2, 2, 51) * u.deg, np.geomspace(0.1, 100, 102) * u.TeV
    rate = np.exp(rng.normal(-20.0, 3.0, size=(101, 50, 50)))
    cube = FOVCube(x, x, e, data=rate * u.Unit("1 / (MeV s sr)"), scheme="bg_cube")
    path = tmp_path / "bkg.fits.gz"
    cube.write(path, format="table")
    assert _stored_blocks(path.read_bytes())
    with fits.open(path) as hdulist:
        stored = np.asarray(hdulist[1].data["BKG"][0])  # in FITS's axis order
        assert np.array_equal(np.sort(stored, axis=None), np.sort(rate, axis=None))
    assert np.array_equal(np.asarray(FOVCube.read(path).data), rate)


def test_data_deflate_shrinks_a_little_get_isal_fastest_level():
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, size=(3000, 100), dtype=np.uint8)
    data = np.concatenate([blocks, np.zeros((3000, 20), np.uint8)], axis=1).tobytes()
    packed = gzip_bytes(data)
    assert gzip.decompress(packed) == data
    assert _stored_blocks(packed) is None and len(packed) < 0.9 * len(data)
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


def _radial_models(n):
    rng = np.random.default_rng(3)
    energy, offset = np.geomspace(0.1, 100, 7) * u.TeV, np.linspace(0, 2.5, 6) * u.deg
    rate = u.Unit("1 / (MeV s sr)")
    return [RadialBackground(energy, offset, rng.random((6, 5)) * rate) for _ in range(n)]


def test_radial_models_written_in_the_background_are_those_written_one_by_one(tmp_path):
    models = _radial_models(5)
    paths = [tmp_path / f"bkg_{i}.fits.gz" for i in range(5)]
    write_cube_files(models, paths, overwrite=False)
    for model, path in zip(models, paths, strict=True):
        model.write(tmp_path / "one.fits.gz", overwrite=True)
        assert path.read_bytes() == (tmp_path / "one.fits.gz").read_bytes()
        back = RadialBackground.read(path)
        np.testing.assert_array_equal(back.quantity.to_value(model.unit), model.quantity.value)


def test_the_writing_threads_never_parse_python_source(tmp_path, monkeypatch):
    """NumPy parses vector column formats such as '(6,5)f8' with `ast`; on CPython 3.11
    two threads parsing at once can raise SystemError (AST constructor recursion depth
    mismatch). Every table is built in the calling thread; the others only compress
    and write."""
    threads = []
    parse = ast.parse

    def recording_parse(*args, **kwargs):
        threads.append(threading.current_thread())
        return parse(*args, **kwargs)

    monkeypatch.setattr(ast, "parse", recording_parse)
    models = _radial_models(4) + _cubes(4)
    paths = [tmp_path / f"bkg_{i}.fits.gz" for i in range(8)]
    write_cube_files(models, paths, overwrite=False)
    assert threads, "a BKG_2D table's vector columns are expected to go through ast.parse"
    assert set(threads) == {threading.current_thread()}
