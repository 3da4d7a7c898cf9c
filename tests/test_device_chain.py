"""The per-run chain on array backends: same cubes as NumPy, events moved to the device once."""

import numpy as np
import pytest

from bgcube.array import fov as afov
from bgcube.backend import to_backend_array, to_numpy
from bgcube.binning import define_cube_binning
from bgcube.data import fov as host_fov
from bgcube.data.exclusion import ExclusionRegions
from bgcube.data.store import DataStore
from bgcube.make import device_chain
from bgcube.make.partial import PairwiseSum, RunTask, compute_partial

#: Four H.E.S.S. DR1 runs: two on the Crab (with its exclusion circle), two on PKS 2155.
OBS_IDS = (23523, 23526, 33787, 33788)
#: Circles on the Crab and PKS 2155-304, one large enough to cut through the cube.
REGIONS = ExclusionRegions([83.633, 329.717, 84.5], [22.015, -30.226, 21.0], [0.3, 0.4, 1.0])


@pytest.fixture(scope="module")
def dr1(tmp_path_factory):
    """(store, edges, obs_ids, regions): four DR1 runs, or a small simulated set without DR1."""
    from bgcube.datasets import data_dir
    from bgcube.errors import BgcubeError

    try:
        store = DataStore.from_dir(data_dir() / "hess-dl3-dr1")
        obs_ids, regions = OBS_IDS, REGIONS
    except (BgcubeError, OSError):  # e.g. on a GPU machine without the reference data
        import astropy.units as u

        from bgcube.simulate.dataset import make_test_dataset

        folder = tmp_path_factory.mktemp("sim") / "dataset"
        make_test_dataset(
            folder, n_obs=3, random_state=3, background_rate=20 * u.Hz, write_bkg=False
        )
        store = DataStore.from_dir(folder)
        obs_ids = tuple(int(i) for i in store.obs_ids)
        table = store.obs_table
        ra, dec = (float(table[c][0]) for c in ("RA_PNT", "DEC_PNT"))
        regions = ExclusionRegions([ra + 0.8, ra - 1.5], [dec, dec + 0.5], [0.5, 1.0])
    rows = store.obs_table[np.isin(np.asarray(store.obs_table["OBS_ID"]), obs_ids)]
    return store, define_cube_binning(rows), obs_ids, regions


def _tasks(dr1, alignment="RADEC", backend="numpy"):
    store, edges, obs_ids, regions = dr1
    return [RunTask.make(i, store, edges, regions, alignment, "ONTIME", backend) for i in obs_ids]


def _assert_same(partial, reference):
    assert not partial.failed and not reference.failed
    np.testing.assert_array_equal(to_numpy(partial.counts), reference.counts)
    np.testing.assert_allclose(to_numpy(partial.time), reference.time, rtol=1e-12, atol=0)
    (a,), (b,) = partial.fills, reference.fills
    assert (a.obs_id, a.n_events, a.n_excluded, a.n_filled, a.time) == (
        b.obs_id,
        b.n_events,
        b.n_excluded,
        b.n_filled,
        b.time,
    )


@pytest.mark.parametrize("alignment", ["RADEC", "ALTAZ"])
def test_chain_on_any_array_api_library_gives_the_numpy_cubes(dr1, xp, alignment):
    """array_api_strict proves the chain portable; JAX and CuPy run it on their device."""
    excluded = 0
    for task in _tasks(dr1, alignment):
        reference = compute_partial(task)
        partial = device_chain.compute_partial_on_backend(task, backend=xp)
        _assert_same(partial, reference)
        excluded += partial.fills[0].n_excluded
        if "numpy" not in xp.__name__:  # the cubes stay on the backend
            assert not isinstance(partial.counts, np.ndarray)
    assert excluded > 0  # the exclusion was exercised


def test_summed_cubes_stay_on_the_device_and_events_cross_once(dr1, monkeypatch):
    """On JAX: each event column is sent once per run; only scalars come back."""
    jax = pytest.importorskip("jax")
    sent, read = [], []
    original_put = device_chain._put

    def counting_put(values, size, fill_value, xp, device):
        sent.append(values.shape[0])
        return original_put(values, size, fill_value, xp, device)

    def counting_to_numpy(x):
        read.append(int(np.size(x)))
        return np.asarray(x)

    monkeypatch.setattr(device_chain, "_put", counting_put)
    monkeypatch.setattr(device_chain, "to_numpy", counting_to_numpy)
    array_type = type(jax.numpy.zeros(1))
    original_array = array_type.__array__
    implicit = []

    def counting_array(self, *args, **kwargs):
        implicit.append(self.size)
        return original_array(self, *args, **kwargs)

    monkeypatch.setattr(array_type, "__array__", counting_array)
    tree = PairwiseSum()
    n_events = 0
    for task in _tasks(dr1, backend="jax"):
        partial = compute_partial(task)  # dispatches on task.backend
        n_events += partial.fills[0].n_events
        tree.push(partial)
    total = tree.result()
    assert isinstance(total.counts, jax.Array) and isinstance(total.time, jax.Array)
    # ENERGY, RA, DEC of every run, once each
    n_runs = len(dr1[2])
    assert sum(sent) == 3 * n_events and len(sent) == 3 * n_runs
    # per run, two reads: the largest offset (1 value); (excluded, non-finite, filled)
    assert len(read) == 2 * n_runs and max(read) <= 3
    assert max(implicit, default=0) <= 3  # no array came back through numpy.asarray
    reference = PairwiseSum()
    for task in _tasks(dr1):
        reference.push(compute_partial(task))
    np.testing.assert_array_equal(np.asarray(total.counts), reference.result().counts)


@pytest.mark.parametrize("chain", ["device", "auto"])
def test_make_models_jax_gives_the_numpy_cubes(dr1, tmp_path, monkeypatch, chain):
    """The chain on JAX's device, and (auto on a CPU) on the host: the NumPy cubes either way."""
    pytest.importorskip("jax")
    from bgcube.make.chain_backend import ENV_VAR
    from bgcube.make.pipeline import make_models

    monkeypatch.setenv(ENV_VAR, chain)

    store, _, obs_ids, _ = dr1
    indir = store.base_dir
    runs = dict(obs_ids=list(obs_ids), progress=False)
    on_numpy = make_models(indir, tmp_path / "np", **runs, model="groups")
    on_jax = make_models(indir, tmp_path / "jax", backend="jax", **runs, model="groups")
    for a, b in zip(on_numpy.groups, on_jax.groups, strict=True):
        assert (a.n_events, a.n_excluded, a.n_filled) == (b.n_events, b.n_excluded, b.n_filled)
        if a.model is None:
            continue
        np.testing.assert_array_equal(to_numpy(b.model.counts_cube.data), a.model.counts_cube.data)
        np.testing.assert_allclose(
            to_numpy(b.model.livetime_cube.data), a.model.livetime_cube.data, rtol=1e-12, atol=0
        )
        # finished on the host, handed back on the asked backend
        assert {c.backend for c in b.model._cubes().values() if c is not None} == {"jax"}
        np.testing.assert_allclose(
            to_numpy(b.model.background_cube.data), a.model.background_cube.data, rtol=1e-10
        )


def test_array_fov_matches_the_host_formulas(xp_nocupy):
    rng = np.random.default_rng(5)
    ra, dec = rng.uniform(0, 360, 500), rng.uniform(-89, 89, 500)
    x, y = afov.sky_to_fov(xp_nocupy.asarray(ra), xp_nocupy.asarray(dec), 120.0, -30.0)
    hx, hy = host_fov.sky_to_fov(ra, dec, 120.0, -30.0)
    np.testing.assert_allclose(to_numpy(x), hx, rtol=0, atol=1e-12)
    np.testing.assert_allclose(to_numpy(y), hy, rtol=0, atol=1e-12)
    angle = rng.uniform(-180, 180, 500)
    rx, ry = afov.radec_fov_to_altaz_fov(
        xp_nocupy.asarray(hx), xp_nocupy.asarray(hy), xp_nocupy.asarray(angle)
    )
    ex, ey = host_fov.radec_fov_to_altaz_fov(hx, hy, angle)
    np.testing.assert_allclose(to_numpy(rx), ex, rtol=0, atol=1e-12)
    np.testing.assert_allclose(to_numpy(ry), ey, rtol=0, atol=1e-12)
    regions = ExclusionRegions([120.0, 10.0], [-30.0, 45.0], [20.0, 35.0])
    circles = afov.circle_unit_vectors(regions.ra, regions.dec, regions.radius)
    inside = afov.inside_circles(xp_nocupy.asarray(ra), xp_nocupy.asarray(dec), circles)
    np.testing.assert_array_equal(to_numpy(inside), regions.contains(ra, dec))


def test_chunks_have_power_of_two_lengths():
    assert device_chain.chunk_length(0) == device_chain.chunk_length(32768) == 1 << 15
    assert device_chain.chunk_length(32769) == device_chain.chunk_length(65536) == 1 << 16
    assert device_chain.chunk_length(65537) == 1 << 17
    assert device_chain.chunk_length(2**20) == device_chain.chunk_length(10**8) == 1 << 20


def test_to_backend_array_without_the_host(xp_nocupy):
    host = np.arange(6.0)
    there = to_backend_array(host, xp_nocupy)
    np.testing.assert_array_equal(to_numpy(there), host)
    back = to_backend_array(there, "numpy")
    assert isinstance(back, np.ndarray) and not np.shares_memory(back, host)
    np.testing.assert_array_equal(back, host)
    same = to_backend_array(there, xp_nocupy)
    assert same is not there


def test_from_numpy_on_jax_compiles_nothing(caplog):
    jax = pytest.importorskip("jax")
    from bgcube.array.namespace import jax_x64
    from bgcube.backend import from_numpy

    host = np.arange(77.0).reshape(7, 11) * 0.5
    with jax_x64():
        with jax.log_compiles(True), caplog.at_level("DEBUG"):
            there = from_numpy(host, "jax")
        # jnp.asarray would compile a program for each new shape; device_put none
        assert not [r for r in caplog.records if "ompil" in r.getMessage()]
        assert isinstance(there, jax.Array) and there.dtype == jax.numpy.float64
        assert there.devices() == {jax.devices()[0]}  # the default device
        np.testing.assert_array_equal(to_numpy(there), host)
