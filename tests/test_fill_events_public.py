"""The public fill path: event containers, no copies, sliced conversion, dropped events, weights."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.table import QTable, Table

from bgcube import FOVCube
from bgcube.array import Binning, fill_histogram
from bgcube.array.histogram import count_nonfinite_events
from bgcube.backend import to_numpy
from bgcube.errors import DroppedEventsWarning, EventDataError
from bgcube.event_columns import iter_event_columns

DET = np.linspace(-3, 3, 13)
ENERGY = np.geomspace(0.1, 100, 9)


def _events(n=5000, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    energy = (0.1 * (1 - rng.random(n)) ** (-1 / 1.5)).astype(dtype)
    return energy, rng.normal(0, 1.5, n).astype(dtype), rng.normal(0, 1.5, n).astype(dtype)


def _cube():
    return FOVCube(DET * u.deg, DET * u.deg, ENERGY * u.TeV, scheme="bg_counts_cube")


def _reference(energy, dety, detx, weights=None):
    binnings = tuple(Binning.from_edges(e) for e in (ENERGY, DET, DET))
    args = (
        np.asarray(energy, np.float64),
        np.asarray(dety, np.float64),
        np.asarray(detx, np.float64),
    )
    return fill_histogram(*args, binnings, weights, method="bincount")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["Table", "QTable", "dict", "tuple"])
def test_canonical_columns_are_not_copied(kind, dtype):
    energy, dety, detx = _events(dtype=dtype)
    cols = {"ENERGY": energy * u.TeV, "DETY": dety * u.deg, "DETX": detx * u.deg}
    if kind == "Table":
        events = Table(cols, copy=False)
    elif kind == "QTable":
        events = QTable(cols, copy=False)
    elif kind == "dict":
        events = {"ENERGY": energy, "DETY": dety, "DETX": detx}
    else:
        events = (energy, dety, detx)
    chunks = list(iter_event_columns(events))
    assert len(chunks) == 1
    names = ("ENERGY", "DETY", "DETX")
    originals = events if kind == "tuple" else [events[name] for name in names]
    for out, original in zip(chunks[0], originals, strict=True):
        assert out.dtype == dtype and np.shares_memory(out, np.asarray(original))
    np.testing.assert_array_equal(_cube().fill_events(events).data, _reference(energy, dety, detx))


def test_other_units_are_converted_in_slices():
    energy, dety, detx = _events(n=10_001)
    table = Table(
        {"ENERGY": (energy * 1000) * u.GeV, "DETY": np.radians(dety) * u.rad, "DETX": detx * u.deg}
    )
    chunks = list(iter_event_columns(table, chunk_size=1000))
    assert len(chunks) == 11 and chunks[-1][0].shape == (1,)
    assert np.shares_memory(chunks[0][2], table["DETX"])  # deg column: a view
    energy_tev = np.concatenate([c[0] for c in chunks])
    np.testing.assert_allclose(energy_tev, energy, rtol=1e-15)
    expected = FOVCube(DET * u.deg, DET * u.deg, ENERGY * u.TeV, scheme="bg_counts_cube")
    expected.fill_events(
        Table(
            {
                "ENERGY": energy_tev * u.TeV,
                "DETY": np.degrees(np.radians(dety)) * u.deg,
                "DETX": detx * u.deg,
            }
        )
    )
    np.testing.assert_array_equal(_cube().fill_events([table]).data, expected.data)


def test_big_endian_columns_as_read_from_fits():
    energy, dety, detx = _events()
    table = Table(
        {
            "ENERGY": energy.astype(">f4") * u.TeV,
            "DETY": dety.astype(">f8") * u.deg,
            "DETX": detx * u.deg,
        }
    )
    energy_out, dety_out, _ = next(iter_event_columns(table))
    assert energy_out.dtype == np.float32 and energy_out.dtype.isnative
    assert dety_out.dtype == np.float64 and dety_out.dtype.isnative
    np.testing.assert_array_equal(
        _cube().fill_events(table).data,
        _reference(energy.astype(np.float32), dety, detx),
    )


def test_bad_units_and_missing_columns_are_named():
    energy, dety, detx = _events(n=10)
    with pytest.raises(EventDataError, match="DETY has unit s"):
        _cube().fill_events(
            Table({"ENERGY": energy * u.TeV, "DETY": dety * u.s, "DETX": detx * u.deg})
        )
    with pytest.raises(EventDataError, match="no DETX column"):
        _cube().fill_events({"ENERGY": energy, "DETY": dety})
    with pytest.raises(EventDataError, match="ENERGY has no unit"):
        _cube().fill_events(Table({"ENERGY": energy, "DETY": dety * u.deg, "DETX": detx * u.deg}))


@pytest.mark.parametrize("method", ["numba", "bincount", "portable"])
def test_nonfinite_events_counted_in_the_fill(method):
    pytest.importorskip("numba") if method == "numba" else None
    energy, dety, detx = _events(n=3000)
    energy[[5, 17]] = np.nan
    dety[17] = np.inf
    detx[[100, 2999]] = -np.inf
    energy[200] = 1e6  # outside the cube, but finite
    binnings = tuple(Binning.from_edges(e) for e in (ENERGY, DET, DET))
    counts, n_bad = fill_histogram(
        energy, dety, detx, binnings, method=method, count_nonfinite=True
    )
    assert int(n_bad) == 4 == int(count_nonfinite_events(energy, dety, detx))
    np.testing.assert_array_equal(counts, _reference(energy, dety, detx))


def test_dropped_events_reported_once_over_slices():
    energy, dety, detx = _events(n=5000)
    energy[[1, 2500, 4999]] = np.nan
    table = Table(
        {"ENERGY": energy * 1e3 * u.GeV, "DETY": dety * u.deg, "DETX": detx * u.deg},
        meta={"OBS_ID": 7},
    )
    import bgcube.fill_events as module

    original = module.CONVERT_CHUNK
    module.CONVERT_CHUNK = 1000  # five slices
    try:
        with pytest.warns(DroppedEventsWarning) as record:
            _cube().fill_events(table)
    finally:
        module.CONVERT_CHUNK = original
    assert len(record) == 1
    assert (record[0].message.n_dropped, record[0].message.n_events) == (3, 5000)
    assert "OBS_ID 7" in str(record[0].message)


def test_weights_sliced_with_the_columns():
    energy, dety, detx = _events(n=4000)
    weights = np.random.default_rng(3).integers(0, 4, 4000).astype(np.float64)
    table = Table({"ENERGY": energy * 1e3 * u.GeV, "DETY": dety * u.deg, "DETX": detx * u.deg})
    import bgcube.fill_events as module

    original = module.CONVERT_CHUNK
    module.CONVERT_CHUNK = 999
    try:
        cube = _cube().fill_events([table], [weights])
    finally:
        module.CONVERT_CHUNK = original
    np.testing.assert_array_equal(cube.data, _reference(energy, dety, detx, weights))


def test_backend_arrays_and_weights_stay_on_the_backend(xp):
    """Columns and weights of the cube's backend reach the fill without going through NumPy."""
    energy, dety, detx = _events(n=2000)
    weights = np.arange(2000) % 3 * 1.0
    cube = _cube().to_backend(xp)
    columns = {"ENERGY": xp.asarray(energy), "DETY": xp.asarray(dety), "DETX": xp.asarray(detx)}
    w = xp.asarray(weights)
    with _no_numpy_conversion(xp):
        cube.fill_events([columns], [w])
        cube.fill_events((columns["ENERGY"], columns["DETY"], columns["DETX"]))
    expected = _reference(energy, dety, detx, weights) + _reference(energy, dety, detx)
    np.testing.assert_array_equal(to_numpy(cube.data), expected)


class _no_numpy_conversion:
    """Fail on ``numpy.asarray`` of a JAX array (a device-to-host copy on a GPU)."""

    def __init__(self, xp):
        self.jax = "jax" in xp.__name__

    def __enter__(self):
        if self.jax:
            import jax

            self.cls = type(jax.numpy.zeros(1))
            self.saved = self.cls.__array__

            def refuse(*args, **kwargs):
                raise AssertionError("a JAX array was converted to NumPy")

            self.cls.__array__ = refuse
        return self

    def __exit__(self, *exc):
        if self.jax:
            self.cls.__array__ = self.saved
        return False


def test_one_event_list_or_a_sequence():
    energy, dety, detx = _events(n=100)
    table = Table({"ENERGY": energy * u.TeV, "DETY": dety * u.deg, "DETX": detx * u.deg})
    one = _cube().fill_events(table).data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        two = _cube().fill_events((table, table)).data
    np.testing.assert_array_equal(two, 2 * one)
