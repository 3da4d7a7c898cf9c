"""Reading the next run's file in a background thread (bgcube.io.prefetch)."""

import concurrent.futures
import gzip
import threading

import numpy as np
import pytest
from _build_helpers import assert_same_models

import bgcube.io.prefetch as prefetch
from bgcube.data.events import open_fits
from bgcube.errors import FileFormatError


def _settle():
    """Wait until every read ahead has finished (take never waits)."""
    concurrent.futures.wait([f for f in prefetch._ready.values() if not f.cancelled()])


def _write_fits(path, n=100, compress=True):
    from astropy.io import fits

    hdu = fits.BinTableHDU.from_columns(
        [fits.Column("ENERGY", "E", "TeV", array=np.arange(n))], name="EVENTS"
    )
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path.with_suffix(""), overwrite=True)
    raw = path.with_suffix("").read_bytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return raw


def test_prefetched_bytes_are_taken_once_and_read_in_another_thread(tmp_path, monkeypatch):
    files = [tmp_path / f"run{i}.fits.gz" for i in range(3)]
    raws = [_write_fits(f, n=10 * (i + 1)) for i, f in enumerate(files)]
    threads = []
    original = prefetch._read_ahead

    def recording(path, hdu):
        threads.append(threading.current_thread().name)
        return original(path, hdu)

    monkeypatch.setattr(prefetch, "_read_ahead", recording)
    with prefetch.Prefetcher(depth=2) as ahead:
        ahead.schedule(files[0:2])
        _settle()
        assert prefetch.take(files[0]) == raws[0]
        assert prefetch.take(files[0]) is None  # handed out once
        ahead.schedule(files[1:3])
        _settle()
        with open_fits(files[1]) as hdus:  # open_fits takes the prefetched bytes
            np.testing.assert_array_equal(hdus["EVENTS"].data["ENERGY"], np.arange(20))
        assert prefetch.take(files[1]) is None
    assert prefetch.take(files[2]) is None  # dropped by close()
    assert threads and all(name.startswith("bgcube-prefetch") for name in threads)
    # runs 0 and 1 were read there; run 2 too, unless close() cancelled it before it started
    assert len(threads) in (2, 3)


def test_reads_dropped_when_no_longer_wanted(tmp_path):
    files = [tmp_path / f"run{i}.fits.gz" for i in range(3)]
    for f in files:
        _write_fits(f)
    with prefetch.Prefetcher(depth=1) as ahead:
        ahead.schedule([files[0]])
        ahead.schedule([files[2]])  # run 0 was skipped (e.g. taken from a checkpoint)
        _settle()
        assert prefetch.take(files[0]) is None
        assert prefetch.take(files[2]) is not None


def test_a_failed_prefetch_leaves_the_error_to_the_normal_read(tmp_path):
    bad = tmp_path / "bad.fits.gz"
    bad.write_bytes(gzip.compress(b"not a FITS file" * 10)[:-8])  # truncated gzip
    with prefetch.Prefetcher() as ahead:
        ahead.schedule([bad])
        with pytest.raises(FileFormatError, match="bad.fits.gz"):
            with open_fits(bad):
                pass


def test_a_build_reads_every_run_through_the_prefetch_with_unchanged_cubes(
    shared_data, tmp_path, monkeypatch
):
    from bgcube.make import partial
    from bgcube.make.pipeline import make_models

    indir = shared_data / "hess-dl3-dr1"
    taken = []
    original_take = prefetch.take_source

    def counting_take(path):
        _settle()  # as on a machine with a free core: every read ahead is ready
        data = original_take(path)
        taken.append((str(path), data is not None))
        return data

    monkeypatch.setattr(prefetch, "take_source", counting_take)
    monkeypatch.setattr(partial, "spare_core", lambda: True)  # as on an idle machine
    with_prefetch = make_models(indir, tmp_path / "a", test=True, progress=False, model="groups")
    runs = [p for p, _ in taken if "obs_id" in p]
    assert len(runs) == 10 and all(hit for p, hit in taken if "obs_id" in p)

    class NoPrefetch(prefetch.Prefetcher):
        def schedule(self, paths):
            pass

    monkeypatch.setattr(partial, "Prefetcher", NoPrefetch)
    taken.clear()
    without = make_models(indir, tmp_path / "b", test=True, progress=False, model="groups")
    assert not any(hit for _, hit in taken)
    assert_same_models(with_prefetch, without)


def test_a_prefetch_with_an_hdu_decompresses_only_through_it(tmp_path):
    from astropy.io import fits

    path = tmp_path / "run.fits.gz"
    events = fits.BinTableHDU.from_columns(
        [fits.Column("ENERGY", "E", "TeV", array=np.arange(1000))], name="EVENTS"
    )
    irf = fits.BinTableHDU.from_columns(
        [fits.Column("MATRIX", "100000E", array=np.zeros((1, 100000)))], name="EDISP"
    )
    buffer = tmp_path / "run.fits"
    fits.HDUList([fits.PrimaryHDU(), events, irf]).writeto(buffer)
    raw = buffer.read_bytes()
    path.write_bytes(gzip.compress(raw))
    from bgcube.io.lean_fits import read_table_hdu

    assert read_table_hdu(path, "EVENTS") is not None  # tells the read-ahead how far
    with prefetch.Prefetcher() as ahead:
        ahead.schedule([(path, "EVENTS")])
        _settle()
        source = prefetch.take_source(path)
    assert 2880 * 3 <= len(source) < len(raw) // 2  # the events, not the response
    assert len(source) >= prefetch._needed[0]
    assert source.buffer[: len(source)] == raw[: len(source)]
    assert source.full() == raw
    # a truncated file: the part read is right, the whole file's error stays for full()
    path.write_bytes(gzip.compress(raw)[:-100])
    source = prefetch.FileBytes(path)
    assert source.ensure(10000) and source.buffer[:10000] == raw[:10000]
    assert not source.ensure(len(raw) + 1)
    with pytest.raises(EOFError):
        source.full()


def test_a_read_ahead_not_finished_is_not_waited_for(tmp_path, monkeypatch):
    """On a busy machine the reading thread may lag: the reader reads the file itself."""
    path = tmp_path / "run.fits.gz"
    _write_fits(path)
    release = threading.Event()
    original = prefetch._read_ahead

    def slow(path, hdu):
        release.wait(10)
        return original(path, hdu)

    monkeypatch.setattr(prefetch, "_read_ahead", slow)
    with prefetch.Prefetcher() as ahead:
        ahead.schedule([path])
        # the read ahead is held until `release`: waiting for it would give its bytes
        assert prefetch.take_source(path) is None  # not ready: dropped, not waited for
        assert not release.is_set()
        release.set()
        with open_fits(path) as hdus:  # the normal read
            assert len(hdus["EVENTS"].data) == 100


def test_reading_ahead_needs_a_spare_core(monkeypatch):
    monkeypatch.setattr(prefetch.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    monkeypatch.setattr(prefetch.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert prefetch.spare_core()
    monkeypatch.setattr(prefetch.os, "getloadavg", lambda: (1.8, 1.0, 1.0))
    assert not prefetch.spare_core()
    with prefetch.Prefetcher(enabled=False) as ahead:
        ahead.schedule(["/no/such/file.fits.gz"])
        assert "/no/such/file.fits.gz" not in prefetch._ready


def test_a_file_given_back_is_kept_once_and_alone(tmp_path):
    paths = [tmp_path / f"run{i}.fits.gz" for i in range(2)]
    for path in paths:
        _write_fits(path)
    sources = [prefetch.FileBytes(p) for p in paths]
    prefetch.put_back(paths[0], sources[0])
    prefetch.put_back(paths[1], sources[1])  # replaces the first: nothing piles up
    assert len(prefetch._returned) == 1
    assert prefetch.take_source(paths[0]) is None
    assert prefetch.take_source(paths[1]) is sources[1]
    assert prefetch.take_source(paths[1]) is None and not prefetch._returned


@pytest.mark.parametrize("inflate", ["default", "zlib"])
def test_partial_decompression_of_several_members_and_damage(tmp_path, monkeypatch, inflate):
    """FileBytes (ISA-L's inflate, or zlib's) gives the bytes gzip gives, member after member."""
    import zlib

    if inflate == "zlib":
        monkeypatch.setattr(prefetch, "_decompressobj", zlib.decompressobj)
    rng = np.random.default_rng(2)
    parts = [rng.integers(0, 50, 300_000, dtype=np.uint8).tobytes() for _ in range(3)]
    path = tmp_path / "multi.gz"
    path.write_bytes(b"".join(gzip.compress(p) for p in parts))
    source = prefetch.FileBytes(path)
    whole = b"".join(parts)
    for n in (10, 299_999, 300_001, 650_000, len(whole)):
        assert source.ensure(n) and bytes(source.buffer[:n]) == whole[:n]
    assert not source.ensure(len(whole) + 1) and source.full() == whole
    damaged = tmp_path / "damaged.gz"
    data = bytearray(gzip.compress(parts[0]))
    data[len(data) // 2 : len(data) // 2 + 50] = bytes(50)
    damaged.write_bytes(bytes(data))
    source = prefetch.FileBytes(damaged)
    try:  # zlib's error or ISA-L's; never the original bytes from a damaged stream
        same = source.ensure(len(parts[0])) and bytes(source.buffer) == parts[0]
    except Exception:
        same = False
    assert not same
    with pytest.raises(Exception):  # noqa: B017 - the whole file: gzip's own error
        source.full()


def test_a_gzipped_file_is_read_only_as_far_as_its_decompression_goes(tmp_path):
    """The compressed bytes are read as far as `ensure` needs them; `full` reads the rest."""
    rng = np.random.default_rng(4)
    data = rng.integers(0, 255, 3_000_000, dtype=np.uint8).tobytes()  # hardly compressible
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(data) + gzip.compress(b"second member"))
    source = prefetch.FileBytes(path)
    assert source.ensure(5000) and bytes(source.buffer[:5000]) == data[:5000]
    assert len(source._raw) < path.stat().st_size // 10  # the first few blocks only
    assert source.ensure(2_000_000) and bytes(source.buffer[:2_000_000]) == data[:2_000_000]
    assert len(source._raw) < path.stat().st_size
    assert source.ensure(len(data) + 13) and bytes(source.buffer) == data + b"second member"
    assert prefetch.FileBytes(path).full() == data + b"second member"


def test_readers_of_one_file_count_the_furthest_bytes_needed(tmp_path):
    before = prefetch._needed[0], prefetch._needed_file[0]
    try:
        prefetch.note_needed(5000, tmp_path / "a.fits.gz")  # its effective area
        prefetch.note_needed(3000, tmp_path / "a.fits.gz")  # then its events, before it
        assert prefetch._needed[0] == 5000
        prefetch.note_needed(2000, tmp_path / "b.fits.gz")  # the next file: its own
        assert prefetch._needed[0] == 2000
        prefetch.note_needed(1000)  # a reader that names no file
        assert prefetch._needed[0] == 1000
    finally:
        prefetch._needed[0], prefetch._needed_file[0] = before
