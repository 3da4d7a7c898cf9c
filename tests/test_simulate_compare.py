"""True versus reconstructed: pulls of models filled from simulated events, rebinning, plots."""

import sys

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from numpy.testing import assert_allclose

from bgcube import FOVCube
from bgcube.backend import to_numpy
from bgcube.errors import OutputExistsError
from bgcube.model import FOVCubeBackgroundModel
from bgcube.simulate import compare_models, integrate_rate, make_test_background, make_test_dataset
from bgcube.simulate.truth import overlap_matrix

#: Tolerances of the statistical tests, in standard errors of the pull mean
#: (1/sqrt(n)) and of the pull width (1/sqrt(2(n-1)), Gaussian pulls; the
#: Poisson excess kurtosis 1/N_exp <= 0.1 adds under 3 % to it).
N_SIGMA = 4.0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    background = make_test_background(
        Angle(5, "deg"),
        1.5,
        40 * u.Hz,
        fov_range=Angle([-3, 3], "deg"),
        n_fov_bins=30,
        energy_band=[0.1, 100] * u.TeV,
        n_energy_bins=10,
    )
    return make_test_dataset(
        tmp_path_factory.mktemp("sim") / "ds",
        n_obs=5,
        ontime=1200 * u.s,
        background=background,
        random_state=20240601,
        write_bkg=False,
    )


def reconstruct(dataset, detx_edges, dety_edges, energy_edges, time_convention="ONTIME"):
    """Fill the simulated runs into a model: the steps of the make-models pipeline."""
    model = FOVCubeBackgroundModel.set_cube_binning(
        detx_edges, dety_edges, energy_edges, time_convention=time_convention
    )
    store = dataset.data_store()
    for obs_id in dataset.obs_ids:
        obs = store.observation(obs_id)
        model.fill_events(obs.events)
        model.add_observation_time(obs.observation_time(time_convention))
    return model.compute_rate()


def assert_pulls_are_unit_gaussian(comparison, min_bins):
    assert comparison.n_bins >= min_bins
    assert abs(comparison.pull_mean) < N_SIGMA * comparison.pull_mean_error, comparison.summary()
    assert abs(comparison.pull_width - 1) < N_SIGMA * comparison.pull_width_error, (
        comparison.summary()
    )


def test_pulls_on_the_true_binning(dataset):
    b = dataset.background
    reco = reconstruct(dataset, b.coordx_edges, b.coordy_edges, b.energy_edges)
    comparison = compare_models(reco, dataset.true_model())
    assert_pulls_are_unit_gaussian(comparison, min_bins=2500)
    # counts in the used bins are the Poisson draws, and the expectation is the truth's
    assert_allclose(
        comparison.expected, to_numpy(dataset.true_model().counts_cube.data), rtol=1e-10
    )
    assert np.all(comparison.coverage == pytest.approx(1.0))
    assert abs(comparison.ratio_median - 1) < 0.05


def test_pulls_on_a_coarser_binning(dataset):
    # bins that straddle the truth's bins: the truth is integrated exactly over them
    edges = Angle(np.linspace(-2.9, 2.9, 14), "deg")
    energy = np.geomspace(0.15, 60, 7) * u.TeV
    reco = reconstruct(dataset, edges, edges, energy)
    comparison = compare_models(reco, dataset.true_model())
    assert_pulls_are_unit_gaussian(comparison, min_bins=500)
    assert abs(comparison.ratio_median - 1) < 0.05


def test_pulls_with_livetime_convention(dataset):
    b = dataset.background
    reco = reconstruct(dataset, b.coordx_edges, b.coordy_edges, b.energy_edges, "LIVETIME")
    comparison = compare_models(reco, dataset.true_model(time_convention="LIVETIME"))
    assert_pulls_are_unit_gaussian(comparison, min_bins=2500)
    with pytest.raises(ValueError, match="time conventions differ"):
        compare_models(reco, dataset.true_model(time_convention="ONTIME"))


def test_wrong_truth_fails_the_pull_test(dataset):
    # negative control: a truth 5 % too high is detected
    b = dataset.background
    reco = reconstruct(dataset, b.coordx_edges, b.coordy_edges, b.energy_edges)
    wrong = dataset.true_model()
    wrong.background_cube.data = wrong.background_cube.data * 1.05
    comparison = compare_models(reco, wrong)
    assert comparison.pull_mean < -N_SIGMA * comparison.pull_mean_error
    assert abs(comparison.ratio_median - 1 / 1.05) < 0.05


def test_subset_truth(dataset):
    # the truth of one run is that run's norm x ONTIME; reconstructing two runs needs their truth
    ids = dataset.obs_ids[:2]
    truth = dataset.true_model(ids)
    expected = sum(dataset.expected_counts([i]).sum() for i in ids)
    assert_allclose(to_numpy(truth.counts_cube.data).sum(), expected, rtol=1e-12)
    assert_allclose(to_numpy(truth.livetime_cube.data), 2 * 1200.0)
    with pytest.raises(ValueError, match="not in this data set"):
        dataset.true_model([999])


def test_model_against_itself():
    truth = make_test_background(n_fov_bins=6, n_energy_bins=3, total_rate=1e3 * u.Hz)
    model = FOVCubeBackgroundModel.set_cube_binning(
        truth.coordx_edges, truth.coordy_edges, truth.energy_edges
    )
    model.add_observation_time(100 * u.s)
    volume = to_numpy(truth.bin_volume_array())
    model.counts_cube.data = to_numpy(truth.data) * truth.unit.to("1/(TeV s sr)") * volume * 100
    model.compute_rate()
    comparison = compare_models(model, truth)
    assert_allclose(comparison.ratio[np.isfinite(comparison.ratio)], 1.0, rtol=1e-12)
    assert_allclose(comparison.pulls[comparison.used], 0.0, atol=1e-9)
    assert comparison.n_bins > 0


def test_overlap_matrix():
    w = overlap_matrix([0.0, 1.0, 2.0], [0.5, 1.5, 2.5, 3.0])
    assert_allclose(w, [[0.5, 0.0, 0.0], [0.5, 0.5, 0.0]])


def test_integrate_rate_conserves_and_reports_coverage():
    truth = make_test_background(n_fov_bins=12, n_energy_bins=6, total_rate=50 * u.Hz)
    # a target twice as coarse, covering the truth exactly
    coarse = FOVCube(truth.coordx_edges[::2], truth.coordy_edges[::2], truth.energy_edges[::3])
    integral, coverage = integrate_rate(truth, coarse)
    assert_allclose(integral.sum(), 50.0, rtol=1e-12)
    assert_allclose(coverage, 1.0)
    # a target reaching beyond the truth: partial coverage, and only the covered part counts
    wide = FOVCube(
        Angle(np.linspace(-8, 8, 5), "deg"),
        Angle(np.linspace(-8, 8, 5), "deg"),
        [0.05, 1000] * u.TeV,
    )
    integral, coverage = integrate_rate(truth, wide)
    assert_allclose(integral.sum(), 50.0, rtol=1e-12)
    assert np.all(coverage < 1)


def test_no_counts_cube_gives_ratio_only(dataset):
    truth = dataset.true_model()
    reco = FOVCubeBackgroundModel(background_cube=truth.background_cube)
    comparison = compare_models(reco, truth)
    assert comparison.pulls is None and comparison.n_bins == 0
    assert np.isnan(comparison.pull_mean)
    assert_allclose(comparison.ratio[np.isfinite(comparison.ratio)], 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="no background cube"):
        compare_models(FOVCubeBackgroundModel(), truth)


def test_summary_is_plain_numbers(dataset):
    b = dataset.background
    reco = reconstruct(dataset, b.coordx_edges, b.coordy_edges, b.energy_edges)
    summary = compare_models(reco, dataset.true_model()).summary()
    assert all(type(v) in (int, float) for v in summary.values()), summary


def test_plot_comparison(dataset, tmp_path):
    b = dataset.background
    reco = reconstruct(dataset, b.coordx_edges, b.coordy_edges, b.energy_edges)
    comparison = compare_models(reco, dataset.true_model())
    had_pyplot = "matplotlib.pyplot" in sys.modules
    filename = tmp_path / "comparison.png"
    fig = comparison.plot(filename)
    assert filename.stat().st_size > 10_000
    assert filename.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert len(visible) == 6
    ratio_images = [ax.images[0] for ax in fig.axes if ax.images]
    assert ratio_images and all(im.get_cmap().get_bad()[3] == 1 for im in ratio_images)  # not white
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot  # no pyplot state touched
    with pytest.raises(OutputExistsError):
        comparison.plot(filename)
    comparison.plot(
        filename, overwrite=True, energies=[1.0] * u.TeV, positions=[Angle([0.5, 0.5], "deg")]
    )


def test_model_pulls_equal_pulls_unsmoothed_and_show_smoothing(dataset):
    b = dataset.background
    reco = reconstruct(dataset, b.coordx_edges, b.coordy_edges, b.energy_edges)
    comparison = compare_models(reco, dataset.true_model())
    used = comparison.used
    assert_allclose(comparison.model_pulls[used], comparison.pulls[used], rtol=1e-9, atol=1e-9)
    smoothed = compare_models(reco.smooth(), dataset.true_model())
    # smoothing averages neighbours: far less scatter than Poisson around the truth
    assert smoothed.model_pull_width < 0.8
    assert_allclose(smoothed.pulls[smoothed.used], comparison.pulls[used])  # counts unchanged
