"""FOVCube and FOVCubeBackgroundModel: axes, lookups, filling, rates, backends."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.table import Table

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.backend import to_numpy

DETX = np.linspace(-3, 3, 13) * u.deg
DETY = np.linspace(-2, 2, 9) * u.deg
ENERGY = 10 ** np.linspace(-1, 2, 7) * u.TeV  # has an edge at exactly 1 TeV


def make_events(n=5000, seed=1):
    rng = np.random.default_rng(seed)
    return Table(
        {
            "ENERGY": 10 ** rng.uniform(-1.2, 2.2, n) * u.TeV,
            "DETX": rng.normal(0, 1.5, n) * u.deg,
            "DETY": np.deg2rad(rng.normal(0, 1.0, n)) * u.rad,  # any angle unit
        }
    )


def test_cube_axes_and_extent():
    cube = FOVCube(DETX, DETY, ENERGY, scheme="bg_counts_cube")
    assert cube.shape == (6, 8, 12)
    assert cube.data.shape == (6, 8, 12)
    assert cube.unit == u.dimensionless_unscaled
    assert cube.image_extent.to_value("deg").tolist() == [-3, 3, -2, 2]
    assert cube.spectrum_extent.to_value("TeV").tolist() == pytest.approx([0.1, 100])
    x, y = cube.image_bin_centers
    assert x[0].to_value("deg") == pytest.approx(-2.75) and y[-1].to_value("deg") == pytest.approx(
        1.75
    )
    assert cube.energy_bin_centers[0].to_value("TeV") == pytest.approx(np.sqrt(0.1 * 10**-0.5))
    assert FOVCube(DETX, DETY, ENERGY, scheme="bg_cube").unit == u.Unit("1 / (MeV s sr)")
    assert FOVCube(DETX, DETY, ENERGY, scheme="bg_livetime_cube").unit == u.s


def test_find_bins_and_errors():
    cube = FOVCube(DETX, DETY, ENERGY, scheme="bg_cube")
    assert cube.find_energy_bin(1 * u.TeV) == 2  # edge 2 is exactly 1 TeV: bins are [lo, hi)
    assert cube.find_energy_bin(0.99 * u.TeV) == 1
    np.testing.assert_array_equal(cube.find_det_bin(Angle([0.1, -0.1], "deg")), [6, 3])
    np.testing.assert_array_equal(cube.find_coord_bin(Angle([-3, 1.999], "deg")), [0, 7])
    edges = cube.find_coord_bin_edges(Angle([0.1, -0.1], "deg"))
    assert edges.to_value("deg").tolist() == [0, 0.5, -0.5, 0]
    with pytest.raises(ValueError, match=r"150.0 TeV is outside the cube's range"):
        cube.find_energy_bin(150 * u.TeV)
    with pytest.raises(ValueError, match=r"DETX value 3.0 deg is outside"):
        cube.find_coord_bin(Angle([3, 0], "deg"))
    with pytest.raises(ValueError, match="unit"):
        cube.find_energy_bin(1 * u.deg)


def test_bad_construction_is_rejected():
    with pytest.raises(ValueError, match="data shape"):
        FOVCube(DETX, DETY, ENERGY, data=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="strictly increasing"):
        FOVCube(DETX[::-1], DETY, ENERGY)
    with pytest.raises(ValueError, match="angle or an energy"):
        FOVCube(DETX.value * u.m, DETY, ENERGY)
    with pytest.raises(ValueError, match="invalid scheme"):
        FOVCube(DETX, DETY, ENERGY, scheme="nonsense")


def test_fill_events_matches_histogramdd_and_is_additive(xp):
    events = make_events()
    cube = FOVCube(DETX, DETY, ENERGY, scheme="bg_counts_cube").to_backend(xp)
    cube.fill_events([events, events])
    sample = np.c_[
        u.Quantity(events["ENERGY"]).to_value("TeV"),
        u.Quantity(events["DETY"]).to_value("deg"),
        u.Quantity(events["DETX"]).to_value("deg"),
    ]
    ref, _ = np.histogramdd(sample, [ENERGY.value, DETY.value, DETX.value])
    np.testing.assert_array_equal(to_numpy(cube.data), 2 * ref)
    assert cube.backend == {"numpy": "numpy"}.get(cube.backend, cube.backend)
    assert isinstance(cube.quantity, u.Quantity)


def test_integrals_and_volume():
    data = np.ones((6, 8, 12)) * u.Unit("1 / (TeV s sr)")
    cube = FOVCube(DETX, DETY, ENERGY, data=data, scheme="bg_cube")
    area = (6 * u.deg * 4 * u.deg).to(u.sr)
    np.testing.assert_allclose(cube.integral_images.to_value("1/(TeV s)"), area.value, rtol=1e-12)
    assert cube.integral.to_value("1/s") == pytest.approx(area.value * (100 - 0.1), rel=1e-12)
    assert cube.bin_volume.shape == (6, 8, 12)
    spectrum = cube.make_spectrum(Angle([0, 0], "deg"))
    assert spectrum.shape == (6,) and spectrum.unit == data.unit


def test_model_rate_round_trip_on_every_backend(xp):
    events = make_events(20000, seed=4)
    model = FOVCubeBackgroundModel.set_cube_binning(DETX, DETY, ENERGY, backend=xp)
    model.fill_events([events])
    model.add_observation_time(1800 * u.s).add_observation_time(0.5 * u.h)
    model.compute_rate()
    bg = model.background_cube
    assert bg.unit == u.Unit("1 / (MeV s sr)") and bg.backend == model.counts_cube.backend
    counts = to_numpy(model.counts_cube.data)
    predicted = bg.quantity * 3600 * u.s * bg.bin_volume
    np.testing.assert_allclose(predicted.to_value(""), counts, rtol=1e-12)
    assert bg.meta["SOLIDANG"] == "FLAT"


def test_zero_time_gives_zero_rate_and_exclusion_fraction():
    model = FOVCubeBackgroundModel.set_cube_binning(DETX, DETY, ENERGY)
    model.fill_events(make_events())
    fraction = np.ones((8, 12))
    fraction[:, :6] = 0.0  # half the field excluded for this observation
    model.add_observation_time(100 * u.s, kept_fraction=fraction)
    model.compute_rate()
    rate = model.background_cube.quantity.value
    assert np.all(np.isfinite(rate)) and np.all(rate[:, :, :6] == 0)
    assert np.all(rate[:, :, 6:][to_numpy(model.counts_cube.data)[:, :, 6:] > 0] > 0)
    with pytest.raises(ValueError, match="finite and > 0"):
        model.add_observation_time(-1 * u.s)


def test_smooth_preserves_integrals_and_picks_passes(xp_nocupy):
    model = FOVCubeBackgroundModel.set_cube_binning(DETX, DETY, ENERGY, backend=xp_nocupy)
    model.fill_events(make_events(3000))
    model.add_observation_time(10 * u.s)
    model.compute_rate()
    before = model.background_cube.integral_images
    raw = model.background_cube.quantity.copy()
    model.smooth()
    np.testing.assert_allclose(model.background_cube.integral_images, before, rtol=1e-12)
    assert not np.allclose(model.background_cube.quantity, raw)


def test_to_backend_round_trip(xp):
    model = FOVCubeBackgroundModel.set_cube_binning(DETX, DETY, ENERGY)
    model.fill_events(make_events())
    moved = model.to_backend(xp)
    assert moved.counts_cube.xp is not None
    np.testing.assert_array_equal(to_numpy(moved.counts_cube.data), model.counts_cube.data)
    back = moved.to_backend("numpy")
    assert isinstance(back.counts_cube.data, np.ndarray)


def test_assigning_data_is_checked(xp):
    """``cube.data = quantity`` (the original's idiom) converts; a wrong unit or shape is refused."""
    from bgcube.errors import DataUnitError

    cube = FOVCube(DETX, DETY, ENERGY, scheme="bg_cube", backend=xp)
    backend = cube.backend
    cube.data = np.ones(cube.shape) * u.Unit("1 / (TeV s sr)")  # converted to 1/(MeV s sr)
    assert cube.backend == backend and cube.unit == u.Unit("1 / (MeV s sr)")
    np.testing.assert_allclose(to_numpy(cube.data), 1e-6)
    value = cube.evaluate(detx=0 * u.deg, dety=0 * u.deg, energy=5 * u.TeV)
    assert value.to_value("1 / (TeV s sr)") == pytest.approx(1)
    cube.data = np.full(cube.shape, 2.0)  # a NumPy array goes on the cube's backend
    assert cube.backend == backend and float(cube.xp.sum(cube.data)) == 2 * cube.data.size
    on_backend = cube.xp.zeros(cube.shape, dtype=cube.xp.float64)
    cube.data = on_backend  # a backend array is kept as it is
    assert cube.data is on_backend
    with pytest.raises(DataUnitError, match=r"cube in '1 / \(MeV s sr\)' to a Quantity in 's'"):
        cube.data = np.ones(cube.shape) * u.s
    with pytest.raises(ValueError, match=r"data shape \(3, 3\) does not match the axes"):
        cube.data = np.ones((3, 3))
    with pytest.raises(ValueError, match=r"data shape \(6, 12, 8\) does not match"):
        cube.data = cube.xp.ones((6, 12, 8))
    assert cube.data is on_backend  # refused values leave the cube as it was
    repr(cube)
    # copy(data=...) is checked the same way; to_backend moves the data as they are
    assert cube.copy(data=np.ones(cube.shape)).backend == backend
    with pytest.raises(ValueError, match="data shape"):
        cube.copy(data=np.ones((2, 2, 2)))
    assert isinstance(cube.to_backend("numpy").data, np.ndarray)


@pytest.mark.parametrize("extrapolate", [False, True])
def test_evaluate_nonfinite_and_nonpositive_inputs_quietly(xp, extrapolate):
    """NaN/inf coordinates and E <= 0 give 0 (NaN when extrapolating), with no NumPy warning."""
    import warnings

    cube = FOVCube(DETX, DETY, ENERGY, data=np.ones((6, 8, 12)), scheme="bg_cube").to_backend(xp)
    expected = np.nan if extrapolate else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        at_inf = cube.evaluate(
            detx=[np.inf, -np.inf, np.nan] * u.deg,
            dety=0 * u.deg,
            energy=5 * u.TeV,
            extrapolate=extrapolate,
        )
        at_zero = cube.evaluate(
            detx=0 * u.deg, dety=0 * u.deg, energy=[-1, 0] * u.TeV, extrapolate=extrapolate
        )
        band = cube.evaluate_integral(
            detx=[np.inf, 0] * u.deg,
            dety=0 * u.deg,
            energy_min=[1, -1] * u.TeV,
            energy_max=[10, 0] * u.TeV,
            extrapolate=extrapolate,
        )
    np.testing.assert_array_equal(at_inf.value, expected)
    np.testing.assert_array_equal(at_zero.value, expected)
    np.testing.assert_array_equal(band.value, [0, expected])
