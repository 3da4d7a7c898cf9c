"""Precision: counts beyond 2**24 in one bin and total times beyond 1e7 s stay exact.

Float32 stops counting at 2**24 = 16777216 (2**24 + 1 rounds back to 2**24)
and, near 1e7 s, cannot hold less than a second. bgcube accumulates counts
and times in float64 on every backend (JAX with x64, which ``conftest.py``
enables), through the array core and through the shell
(`FOVCubeBackgroundModel.fill_events`, ``add_observation_time``), also when
a cube was read from a float32 file. Each test also shows that a float32
accumulator would have failed it, so the test can fail.

Memory: the big fill uses one float32 column of 2**24 + 5 events (64 MB),
shared by ENERGY, DETX and DETY and built once; each backend fills it once.
"""

import math
from fractions import Fraction

import astropy.units as u
import numpy as np
import pytest

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.array import Binning, fill_histogram
from bgcube.array.histogram import FILL_METHODS
from bgcube.array.namespace import backend_name
from bgcube.backend import to_numpy
from bgcube.data.events import EventList

#: Events in the one filled bin: more than float32 can count.
N_BIG = 2**24 + 5

#: Two bins per axis; the value 0.5 (TeV, deg) lies inside bin 1 of each.
ENERGY = np.array([0.1, 0.3, 1.0]) * u.TeV
DET = np.array([-1.0, 0.0, 1.0]) * u.deg
BIN = (1, 1, 1)

#: Number of observation times added, and their sum's order (> 1e7 s).
N_TIMES = 10_000


def _float32_sum(values):
    """What a float32 accumulator would hold after adding ``values`` one by one."""
    total = np.float32(0)
    for v in values:
        total = np.float32(total + np.float32(v))
    return float(total)


@pytest.fixture(scope="module")
def big_column():
    """2**24 + 5 float32 values of 0.5, made once (64 MB)."""
    return np.full(N_BIG, 0.5, dtype=np.float32)


def test_float32_cannot_count_this_far():
    """The premise: float32 loses counts past 2**24 and seconds past 1e7 s."""
    assert np.float32(2**24) + np.float32(1) == np.float32(2**24)
    assert np.float32(1e7) + np.float32(0.25) == np.float32(1e7)


# ---------------------------------------------------------------------------
# counts
# ---------------------------------------------------------------------------
def test_counts_beyond_2_24_through_the_model(xp, big_column):
    """2**24 + 5 float32 events in one bin, one fill on each backend: every one counted."""
    model = FOVCubeBackgroundModel.set_cube_binning(DET, DET, ENERGY, backend=xp)
    events = EventList({"ENERGY": big_column, "DETX": big_column, "DETY": big_column})
    model.fill_events([events])
    counts = to_numpy(model.counts_cube.data)
    assert counts.dtype == np.float64
    assert counts[BIN] == N_BIG
    assert counts.sum() == N_BIG  # and nothing elsewhere
    assert float(np.float32(N_BIG)) != N_BIG  # what float32 would have stored


@pytest.mark.parametrize("method", [m for m in FILL_METHODS if m != "auto"])
def test_weighted_counts_beyond_2_24_on_every_fill_path(xp, method):
    """Each fill path sums in float64: weights 2**24, 1, 1, 1 give exactly 2**24 + 3."""
    name = backend_name(xp)
    allowed = {
        "numpy": ("numba", "bincount", "portable"),
        "cupy": ("bincount", "portable"),
        "jax": ("jax", "portable"),
        "array_api_strict": ("portable",),
    }[name]
    if method not in allowed:
        pytest.skip(f"fill method {method!r} does not run on {name}")
    if method == "numba":
        pytest.importorskip("numba", reason="the numba fill path needs numba")
    binnings = tuple(Binning.from_edges(e.value) for e in (ENERGY, DET, DET))
    column = xp.full((4,), 0.5, dtype=xp.float32)
    weights = xp.asarray([2.0**24, 1.0, 1.0, 1.0], dtype=xp.float64)
    counts = to_numpy(fill_histogram(column, column, column, binnings, weights, method=method))
    assert counts[BIN] == 2**24 + 3
    assert _float32_sum([2.0**24, 1.0, 1.0, 1.0]) == 2**24  # float32 would lose all three


def test_counts_keep_counting_in_a_cube_read_from_a_float32_file(xp, tmp_path):
    """A counts cube stored as float32 is promoted to float64 before events are added."""
    data = np.zeros((2, 2, 2), dtype=np.float32)
    data[BIN] = 2**24
    FOVCube(DET, DET, ENERGY, data=data, scheme="bg_counts_cube").write(tmp_path / "c.fits")
    cube = FOVCube.read(tmp_path / "c.fits", backend=xp)
    assert to_numpy(cube.data).dtype == np.float32  # as stored
    column = np.full(3, 0.5, dtype=np.float32)
    for _ in range(2):
        cube.fill_events([EventList({"ENERGY": column, "DETX": column, "DETY": column})])
    assert to_numpy(cube.data)[BIN] == 2**24 + 6
    assert _float32_sum([2**24] + [1] * 6) == 2**24


# ---------------------------------------------------------------------------
# times
# ---------------------------------------------------------------------------
def _dyadic_times(seed):
    """Odd multiples of 1/64 s between 1000 and 2000 s: sums of them are exact in float64."""
    rng = np.random.default_rng(seed)
    numerators = 2 * rng.integers(32_000, 64_000, N_TIMES) + 1
    return [Fraction(int(k), 64) for k in numerators]


def test_total_time_beyond_1e7_s_is_exact(xp):
    """1e4 odd times added one by one: the time cube equals the exact (Fraction) sum."""
    times = _dyadic_times(seed=11)
    exact = sum(times)
    assert exact > 1e7
    kept = np.ones((2, 2))
    kept[0, 1] = 0.75  # a pixel partly excluded in every observation
    model = FOVCubeBackgroundModel.set_cube_binning(DET, DET, ENERGY, backend=xp)
    for t in times:
        model.add_observation_time(float(t) * u.s, kept_fraction=kept)
    total = to_numpy(model.livetime_cube.data)
    assert total.dtype == np.float64
    assert Fraction(float(total[0, 0, 0])) == exact
    assert Fraction(float(total[1, 0, 1])) == exact * Fraction(3, 4)
    assert np.all(total == total[:, :1, :1] * np.where(kept == 1, 1.0, 0.75))
    assert Fraction(_float32_sum(float(t) for t in times)) != exact


def test_total_time_of_arbitrary_times_is_float64_accurate(xp):
    """Times with full mantissas: within float64 summation error of math.fsum."""
    rng = np.random.default_rng(12)
    times = rng.uniform(1000.0, 2000.0, N_TIMES)
    exact = math.fsum(times)
    model = FOVCubeBackgroundModel.set_cube_binning(DET, DET, ENERGY, backend=xp)
    for t in times:
        model.add_observation_time(t * u.s)
    total = to_numpy(model.livetime_cube.data)
    bound = N_TIMES * np.finfo(np.float64).eps * exact  # naive summation, worst case
    assert np.all(np.abs(total - exact) <= bound)
    assert bound < 1e-4  # a tenth of a millisecond over ~1.5e7 s
    assert abs(_float32_sum(times) - exact) > 1e3 * bound


def test_time_keeps_adding_in_a_cube_read_from_a_float32_file(xp):
    """A time cube read as float32 (1e7 s) still takes a quarter second."""
    model = FOVCubeBackgroundModel.set_cube_binning(DET, DET, ENERGY, backend=xp)
    cube = model.livetime_cube
    cube.data = cube.xp.full(cube.shape, 1e7, dtype=cube.xp.float32)
    model.add_observation_time(0.25 * u.s).add_observation_time(0.25 * u.s)
    assert np.all(to_numpy(model.livetime_cube.data) == 1e7 + 0.5)
