"""FOVCubeBackgroundModel.smooth(method='fit') and bgcube.fit.smooth_by_fit."""

import astropy.units as u
import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="bgcube.fit needs JAX")

from bgcube.backend import to_numpy  # noqa: E402
from bgcube.fit import FitError, GaussianModel, smooth_by_fit  # noqa: E402
from bgcube.fit.smooth import below_threshold  # noqa: E402
from bgcube.model import FOVCubeBackgroundModel  # noqa: E402
from bgcube.simulate import make_test_bg_cube_model  # noqa: E402

TIME_S = 3e4


def simulated(seed=0, backend=None):
    """Counts drawn from the test model (a Gaussian-model member under the centre rule).

    Counts per bin fall by ~1e8 from the first to the last energy bin, so
    the highest bins are starved.
    """
    truth = make_test_bg_cube_model(
        ndetx_bins=16,
        ndety_bins=16,
        nenergy_bins=8,
        energy_band=[0.1, 100] * u.TeV,
        sigma=4 * u.deg,
    )
    rate = truth.background_cube
    volume = rate.bin_volume.to_value(u.MeV * u.sr)
    mu = rate.quantity.value * volume * TIME_S
    model = FOVCubeBackgroundModel.set_cube_binning(
        rate.coordx_edges, rate.coordy_edges, rate.energy_edges
    )
    model.counts_cube.data = np.random.default_rng(seed).poisson(mu).astype(float)
    model.add_observation_time(TIME_S * u.s)
    model.compute_rate()
    return (model.to_backend(backend) if backend else model), rate.quantity.value


def test_smooth_fit_keeps_counts_and_time_and_the_total():
    model, _ = simulated()
    counts = model.counts_cube.data.copy()
    time = model.livetime_cube.data.copy()
    assert "rate=computed" in repr(model)
    assert model.smooth(method="fit") is model
    # the model says how its rate came to be
    assert "rate=fitted (flexible, Cash statistic " in repr(model)
    np.testing.assert_array_equal(model.counts_cube.data, counts)
    np.testing.assert_array_equal(model.livetime_cube.data, time)
    cube = model.background_cube
    assert cube.unit == u.Unit("1 / (MeV s sr)") and cube.scheme == "bg_cube"
    assert cube.meta["SMOOTH"] == "FIT" and cube.meta["FITMODEL"] == "flexible"
    assert cube.meta["SOLIDANG"] == "FLAT" and cube.meta["FITDOF"] > 0
    predicted = (cube.quantity * model.counts_cube.bin_volume * time * u.s).to_value(u.one)
    np.testing.assert_allclose(predicted.sum(), counts.sum(), rtol=1e-6)
    # per energy image too: the spline follows the spectrum of the data
    per_image = predicted.sum(axis=(1, 2)) / np.maximum(counts.sum(axis=(1, 2)), 1)
    assert np.all(np.abs(per_image[:5] - 1) < 0.01), per_image
    assert np.all(np.isfinite(cube.data)) and np.all(cube.data > 0)


def test_fit_smoothing_is_closer_to_the_truth_than_kernel_smoothing():
    model, truth = simulated(1)
    raw = model.background_cube.quantity.value.copy()
    kernel = simulated(1)[0].smooth().background_cube.quantity.value
    result = smooth_by_fit(model, "gaussian", energy_quadrature="centre")
    assert result.success and isinstance(result.model, GaussianModel)
    fitted = model.background_cube.quantity.value
    assert np.all(np.isfinite(fitted)) and np.all(fitted > 0)

    def rms(estimate):
        return np.sqrt(np.mean((estimate / truth - 1) ** 2, axis=(1, 2)))

    # every energy, including the starved ones where raw and kernel are 0 or noise
    assert np.all(rms(fitted) < 0.01), rms(fitted)
    assert np.all(rms(fitted) < rms(kernel)) and np.all(rms(fitted) < rms(raw))
    assert np.max(np.abs(fitted[-1] / truth[-1] - 1)) < 0.05
    assert model.counts_cube.data[-1].sum() < 50  # starved: under 0.2 counts per pixel


def test_energy_bins_below_the_threshold_are_left_out():
    per_energy = np.array([0.0, 2.0, 100.0, 5000.0, 0.0, 3.0])
    counts = np.ones((6, 2, 2)) * per_energy[:, None, None] / 4
    np.testing.assert_array_equal(below_threshold(counts), [True, True, False, False, False, False])
    np.testing.assert_array_equal(below_threshold(counts, 0.05), [True] * 3 + [False] * 3)

    model, _ = simulated(6)
    model.counts_cube.data[:2] = 0.0  # nothing recorded below 0.56 TeV
    model.counts_cube.data[2] = np.round(model.counts_cube.data[2] * 1e-4)
    smooth_by_fit(model, "gaussian")
    cube = model.background_cube
    assert np.all(cube.data[:3] == 0) and np.all(cube.data[3:] > 0)
    np.testing.assert_allclose(cube.meta["FITEMIN"], model.counts_cube.energy_edges[3].value)
    predicted = cube.quantity * model.counts_cube.bin_volume * model.livetime_cube.quantity
    np.testing.assert_allclose(
        predicted.to_value(u.one)[3:].sum(), model.counts_cube.data[3:].sum(), rtol=1e-6
    )


def test_k5a_stays_the_default():
    a, _ = simulated(2)
    b, _ = simulated(2)
    a.smooth()
    b.smooth(method="k5a")
    np.testing.assert_array_equal(a.background_cube.data, b.background_cube.data)
    assert "SMOOTH" not in a.background_cube.meta


def test_bad_arguments_and_failed_fits():
    model, _ = simulated(3)
    before = model.background_cube.data.copy()
    with pytest.raises(ValueError, match="unknown smoothing method"):
        model.smooth(method="gauss")
    with pytest.raises(ValueError, match="n_passes belongs to method='k5a'"):
        model.smooth(3, method="fit")
    with pytest.raises(ValueError, match="takes only n_passes"):
        model.smooth(model="gaussian")
    with pytest.raises(ValueError, match="unknown fit model"):
        model.smooth(method="fit", model="spline")
    with pytest.raises(FitError, match="maximum number of iterations"):
        model.smooth(method="fit", model="gaussian", init=[1.0, 1.0, 1.0, 0.0], max_iter=1)
    np.testing.assert_array_equal(model.background_cube.data, before)
    empty = FOVCubeBackgroundModel(background_cube=model.background_cube)
    with pytest.raises(ValueError, match="counts_cube"):
        empty.smooth(method="fit")


def test_smooth_fit_on_other_backends(xp_nocupy):
    from bgcube.array import backend_name

    name = backend_name(xp_nocupy)
    model, _ = simulated(4, backend=name)
    model.smooth(method="fit", model="gaussian")
    assert model.background_cube.backend == name
    reference, _ = simulated(4)
    reference.smooth(method="fit", model="gaussian")
    np.testing.assert_allclose(
        to_numpy(model.background_cube.data), reference.background_cube.data, rtol=1e-9
    )


def test_fit_smoothed_model_survives_a_file(tmp_path):
    model, _ = simulated(5)
    model.smooth(method="fit", model="gaussian")
    path = tmp_path / "smoothed.fits.gz"
    model.write(path)
    back = FOVCubeBackgroundModel.read(path)
    np.testing.assert_allclose(
        back.background_cube.quantity, model.background_cube.quantity, rtol=1e-12
    )
    assert back.background_cube.meta["SMOOTH"] == "FIT"
    assert back.background_cube.meta["FITMODEL"] == "gaussian"
