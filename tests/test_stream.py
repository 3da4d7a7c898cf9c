"""Streaming fills: chunked counts equal one-shot counts; FITS columns read chunk by chunk."""

import tracemalloc

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from bgcube.array import Binning, array_namespace, fill_histogram
from bgcube.array.stream import HistogramFiller, fill_histogram_chunks
from bgcube.backend import to_numpy
from bgcube.data.chunks import iter_event_chunks
from bgcube.errors import FileFormatError

AXES = (
    Binning.from_edges(np.geomspace(0.1, 100, 11)),
    Binning.from_edges(np.linspace(-3, 3, 13)),
    Binning.from_edges(np.linspace(-3, 3, 7)),
)


def _events(n, seed=0):
    rng = np.random.default_rng(seed)
    energy = 0.08 * (1 - rng.random(n)) ** (-1 / 1.5)
    return energy, rng.normal(0, 1.5, n), rng.normal(0, 1.5, n), rng.integers(0, 4, n) * 0.5


@pytest.mark.parametrize("weighted", [False, True])
def test_chunks_equal_one_shot(xp, weighted):
    energy, dety, detx, weights = _events(5003)
    columns = (energy, dety, detx, weights) if weighted else (energy, dety, detx)
    whole = fill_histogram(
        *(xp.asarray(c) for c in columns[:3]), AXES, xp.asarray(weights) if weighted else None
    )
    bounds = [0, 1, 1000, 1000, 2500, 5003]  # includes an empty chunk
    chunks = (
        tuple(xp.asarray(c[a:b]) for c in columns)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    )
    counts = fill_histogram_chunks(chunks, AXES)
    assert array_namespace(counts) is array_namespace(whole)
    np.testing.assert_array_equal(to_numpy(counts), to_numpy(whole))
    assert float(to_numpy(xp.sum(counts))) > 0


def test_filler_counts_and_bookkeeping(xp):
    filler = HistogramFiller(AXES, xp=xp)
    np.testing.assert_array_equal(to_numpy(filler.counts), np.zeros((10, 12, 6)))
    energy, dety, detx, _ = _events(100)
    out = filler.fill(xp.asarray(energy), xp.asarray(dety), xp.asarray(detx))
    assert out is filler
    filler.fill(xp.asarray(energy), xp.asarray(dety), xp.asarray(detx))
    assert (filler.n_chunks, filler.n_events) == (2, 200)
    single = fill_histogram(xp.asarray(energy), xp.asarray(dety), xp.asarray(detx), AXES)
    np.testing.assert_array_equal(to_numpy(filler.counts), 2 * to_numpy(single))


def test_empty_stream_needs_a_namespace():
    with pytest.raises(ValueError, match="backend is unknown"):
        fill_histogram_chunks([], AXES)
    with pytest.raises(ValueError, match=r"energy, dety, detx\[, weights\]"):
        fill_histogram_chunks([(np.zeros(2), np.zeros(2))], AXES)


def test_peak_memory_is_one_chunk_not_the_stream():
    """30 chunks of 1e5 events (2.4 MB each): traced peak stays near one chunk."""
    chunk = 100_000

    def chunks():
        for i in range(30):
            energy, dety, detx, _ = _events(chunk, seed=i)
            yield energy, dety, detx

    fill_histogram_chunks(chunks(), AXES)  # compile first, outside the trace
    tracemalloc.start()
    counts = fill_histogram_chunks(chunks(), AXES)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert counts.sum() > 0.5 * 30 * chunk
    whole_stream = 30 * chunk * 3 * 8
    assert peak < whole_stream / 5, f"peak {peak / 1e6:.1f} MB"


def _write_events(path, n, energy_unit="TeV"):
    energy, dety, detx, _ = _events(n, seed=3)
    factor = {"TeV": 1.0, "GeV": 1e3}[energy_unit]
    table = Table({"ENERGY": (energy * factor).astype(np.float32), "DETX": detx, "DETY": dety})
    table["ENERGY"].unit = energy_unit
    table["DETX"].unit = table["DETY"].unit = "deg"
    hdu = fits.table_to_hdu(table)
    hdu.name = "EVENTS"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return table


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fits_chunks_concatenate_to_the_columns(tmp_path, dtype):
    path = tmp_path / "events.fits"
    table = _write_events(path, 1000, energy_unit="GeV")
    chunks = list(iter_event_chunks([path, path], chunk_size=300, dtype=dtype))
    assert [len(c[0]) for c in chunks] == [300, 300, 300, 100] * 2
    energy, dety, detx = (np.concatenate(parts) for parts in zip(*chunks[:4], strict=True))
    assert energy.dtype == dtype
    expected_energy = np.asarray(table["ENERGY"], np.float64) / 1e3  # GeV -> TeV
    np.testing.assert_allclose(energy, expected_energy.astype(dtype), rtol=1e-7)
    np.testing.assert_array_equal(dety, np.asarray(table["DETY"]).astype(dtype))
    np.testing.assert_array_equal(detx, np.asarray(table["DETX"]).astype(dtype))


def test_fits_chunks_fill_like_the_whole_file(tmp_path):
    path = tmp_path / "events.fits"
    table = _write_events(path, 2000)
    whole = fill_histogram(
        *(np.asarray(table[c], np.float64) for c in ("ENERGY", "DETY", "DETX")), AXES
    )
    counts = fill_histogram_chunks(iter_event_chunks(path, chunk_size=512), AXES)
    np.testing.assert_array_equal(counts, whole)


def test_fits_chunks_errors_name_file_hdu_and_column(tmp_path):
    path = tmp_path / "events.fits"
    _write_events(path, 10)
    with pytest.raises(FileFormatError, match="TIME") as info:
        next(iter_event_chunks(path, columns=("ENERGY", "TIME")))
    assert "events.fits" in str(info.value) and "EVENTS" in str(info.value)
    with pytest.raises(FileFormatError, match="no event HDU 'EVENTS2'"):
        next(iter_event_chunks(path, hdu="EVENTS2"))
    with pytest.raises(ValueError, match="chunk_size"):
        next(iter_event_chunks(path, chunk_size=0))


def test_fits_chunks_reject_a_column_unit_of_the_wrong_kind(tmp_path):
    path = tmp_path / "events.fits"
    table = Table({"ENERGY": np.ones(3), "DETX": np.zeros(3), "DETY": np.zeros(3)})
    table["ENERGY"].unit = "m"
    table["DETX"].unit = table["DETY"].unit = "deg"
    hdu = fits.table_to_hdu(table)
    hdu.name = "EVENTS"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with pytest.raises(FileFormatError, match="ENERGY has unit 'm'"):
        next(iter_event_chunks(path))
