"""Per-observation models: cos-zenith interpolation, norm fit, per-run BKG_3D files for Gammapy."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.table import Table
from numpy.testing import assert_allclose

from bgcube import FOVCube
from bgcube.cli import main
from bgcube.data import DataStore
from bgcube.errors import OutputExistsError
from bgcube.make import make_models
from bgcube.make.gammapy_index import BKG_SUBDIR, bkg_file_name
from bgcube.make.per_observation import (
    cos_zenith_weights,
    fit_efficiency_scaling,
    group_cos_zenith,
    interpolate_cos_zenith,
    observation_counts,
    poisson_norm,
    resample_rate,
)
from bgcube.simulate import make_test_background, make_test_dataset

RATE = u.Unit("1 / (MeV s sr)")


def _cube(n_fov, n_energy, data_of_energy, e_range=(0.1, 100.0), half=3.0):
    """A cube flat in the field of view with data ``data_of_energy(log-centre energy)``."""
    fov = np.linspace(-half, half, n_fov + 1) * u.deg
    energy = np.geomspace(*e_range, n_energy + 1) * u.TeV
    e_c = np.sqrt(energy[1:] * energy[:-1]).to_value(u.TeV)
    data = np.broadcast_to(data_of_energy(e_c)[:, None, None], (n_energy, n_fov, n_fov))
    return FOVCube(fov, fov, energy, data=np.array(data) * RATE, scheme="bg_cube")


# ---------------------------------------------------------------- interpolation
def test_cos_zenith_weights_clamp_and_sum_to_one():
    nodes = [0.9, 0.5, 0.7]  # any order
    assert cos_zenith_weights(nodes, 0.95) == [(0, 1.0)]
    assert cos_zenith_weights(nodes, 0.2) == [(1, 1.0)]
    weights = dict(cos_zenith_weights(nodes, 0.8))
    assert set(weights) == {0, 2}
    assert weights[0] == pytest.approx(0.5) and weights[2] == pytest.approx(0.5)
    weights = dict(cos_zenith_weights(nodes, 0.55))
    assert weights == pytest.approx({1: 0.75, 2: 0.25})
    with pytest.raises(ValueError, match="distinct"):
        cos_zenith_weights([0.5, 0.5], 0.5)


def test_interpolation_is_exact_for_a_linear_in_cos_zenith_truth():
    rng = np.random.default_rng(1)
    base = rng.uniform(1, 2, size=(6, 8, 8))
    fov = np.linspace(-2, 2, 9) * u.deg
    energy = np.geomspace(0.3, 30, 7) * u.TeV
    nodes = np.array([0.95, 0.8, 0.6, 0.45])

    def truth(c):
        return base * (0.2 + 1.5 * c)  # linear in cos(zenith) in every bin

    cubes = [FOVCube(fov, fov, energy, data=truth(c) * RATE, scheme="bg_cube") for c in nodes]
    for c in (0.9, 0.7, 0.61, 0.5, 0.8):
        got = interpolate_cos_zenith(cubes, nodes, c)
        assert_allclose(got.data, truth(c), rtol=1e-12)
        assert got.unit == RATE
    # clamped (not extrapolated) outside the nodes
    assert_allclose(interpolate_cos_zenith(cubes, nodes, 1.0).data, truth(0.95), rtol=1e-12)
    assert_allclose(interpolate_cos_zenith(cubes, nodes, 0.2).data, truth(0.45), rtol=1e-12)


def test_resample_rate_is_exact_for_a_power_law_and_copies_equal_binnings():
    index = 2.7
    cube = _cube(10, 12, lambda e: 1e-3 * e**-index)
    assert_allclose(resample_rate(cube, cube).data, cube.data, rtol=0)
    like = _cube(7, 9, lambda e: np.zeros_like(e), e_range=(0.2, 50.0), half=2.0)
    got = resample_rate(cube, like)
    e = like.energy_axis.edges_canonical
    mean = 1e-3 * (e[:-1] ** (1 - index) - e[1:] ** (1 - index)) / ((index - 1) * np.diff(e))
    assert_allclose(got.data, np.broadcast_to(mean[:, None, None], like.shape), rtol=1e-9)


def test_interpolation_across_binnings_stays_linear_in_cos_zenith():
    index = 2.5
    a = _cube(10, 12, lambda e: 2e-3 * e**-index)  # node 0.9: twice the rate of node 0.5
    b = _cube(8, 10, lambda e: 1e-3 * e**-index)
    got = interpolate_cos_zenith([a, b], [0.9, 0.5], 0.6)  # like = b, the nearest
    assert got.shape == b.shape
    # b is taken as it is; a is resampled to the mean of its power law over b's bins
    e = b.energy_axis.edges_canonical
    mean_a = 2e-3 * (e[:-1] ** (1 - index) - e[1:] ** (1 - index)) / ((index - 1) * np.diff(e))
    expected = 0.75 * np.asarray(b.data) + 0.25 * mean_a[:, None, None]
    assert_allclose(got.data, expected, rtol=1e-9)


def test_group_cos_zenith_is_time_weighted():
    table = Table(
        {
            "OBS_ID": [1, 2, 3],
            "ZEN_PNT": [0.0, 60.0, 10.0] * u.deg,
            "ONTIME": [1000.0, 3000.0, 50.0] * u.s,
        }
    )
    assert group_cos_zenith(table, [1, 2]) == pytest.approx((1000 * 1.0 + 3000 * 0.5) / 4000)
    assert group_cos_zenith(table, [3]) == pytest.approx(np.cos(np.radians(10.0)))


# ---------------------------------------------------------------- norm fit
def test_poisson_norm_recovers_a_known_norm():
    rng = np.random.default_rng(7)
    cube = _cube(12, 8, lambda e: 5e-7 * e**-2.7)
    time = np.full(cube.shape, 1800.0)
    mu = cube.quantity * time * u.s * cube.bin_volume
    mu = mu.to_value(u.dimensionless_unscaled)
    norms = []
    for _ in range(20):
        counts = rng.poisson(1.3 * mu)
        norm, n, pred = poisson_norm(cube, counts, time)
        assert n == counts.sum() and pred == pytest.approx(mu.sum())
        norms.append(norm)
    error = 1.3 / np.sqrt(1.3 * mu.sum())
    assert abs(np.mean(norms) - 1.3) < 3 * error / np.sqrt(20)
    assert np.std(norms) == pytest.approx(error, rel=0.5)
    # a mask restricts the fit to some bins
    mask = np.zeros(cube.shape, bool)
    mask[3:] = True
    norm, n, _ = poisson_norm(cube, counts, time, mask)
    assert n == counts[3:].sum()
    assert np.isnan(poisson_norm(cube.copy(data=cube.data * 0), counts, time)[0])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    background = make_test_background(
        Angle(4, "deg"),
        2.0,
        8 * u.Hz,
        fov_range=Angle([-3, 3], "deg"),
        n_fov_bins=12,
        energy_band=[0.1, 100] * u.TeV,
        n_energy_bins=6,
    )
    return make_test_dataset(
        tmp_path_factory.mktemp("perobs") / "ds",
        n_obs=6,
        random_state=3,
        background=background,
        alt_range=Angle([35, 85], "deg"),
        ontime=1200 * u.s,
    )


def test_norm_fit_on_simulated_runs_recovers_their_true_norms(dataset):
    store = DataStore.from_dir(dataset.path)
    truth = dataset.background
    for obs_id, true_norm in zip(dataset.obs_ids, dataset.norms, strict=True):
        observation = store.observation(int(obs_id), fov_alignment="RADEC")
        counts, time = observation_counts(truth, observation)
        norm, n, pred = poisson_norm(truth, counts, time)
        assert n == len(observation.events)  # every event lands in the truth's cube
        assert abs(norm - true_norm) < 4 * true_norm / np.sqrt(n)


# ---------------------------------------------------------------- pipeline and Gammapy
@pytest.fixture(scope="module")
def per_run(dataset, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("perobs_out")
    result = make_models(
        dataset.path,
        outdir,
        zenith_edges=(0, 20, 40, 60),
        exclusion="none",
        per_observation="interpolate",
        fit_norm=True,
        progress=False,
        model="groups",
    )
    return result, outdir


def test_make_models_per_observation_writes_a_model_per_run(per_run, dataset):
    result, outdir = per_run
    assert len(result.groups) >= 2  # interpolation has neighbours
    assert sorted(result.observations) == sorted(int(i) for i in dataset.obs_ids)
    for obs_id, model in result.observations.items():
        assert (outdir / BKG_SUBDIR / bkg_file_name(obs_id)) in result.files
        assert np.isfinite(model.norm) and model.norm > 0
        assert model.n_counts > 0
        assert model.norm * model.n_predicted == pytest.approx(model.n_counts)


def test_fitted_norms_follow_the_true_norms_of_the_runs(dataset, tmp_path):
    # one group for all runs: its model is the ONTIME-weighted mean background
    # (equal ONTIMEs), so each run's fitted norm is its true norm over the mean
    result = make_models(
        dataset.path,
        tmp_path,
        zenith_edges=(0, 90),
        exclusion="none",
        fit_norm=True,
        progress=False,
        model="groups",
    )
    assert len(result.groups) == 1
    expected = dataset.norms / np.mean(dataset.norms)
    for obs_id, truth in zip(dataset.obs_ids, expected, strict=True):
        model = result.observations[int(obs_id)]
        assert abs(model.norm - truth) < 4 * truth / np.sqrt(model.n_counts)


def test_efficiency_scaling_fit_recovers_scale_and_index():
    rng = np.random.default_rng(11)
    eff = rng.uniform(0.8, 1.2, 60)
    predicted = rng.uniform(2e3, 8e3, 60)
    estimates = []
    for _ in range(20):
        counts = rng.poisson(predicted * 0.9 * eff**1.8)
        scale, index, eff_ref = fit_efficiency_scaling(counts, predicted, eff)
        estimates.append((scale * eff_ref**-index, index))
    a, index = np.mean(estimates, axis=0)
    assert a == pytest.approx(0.9, rel=0.01) and index == pytest.approx(1.8, abs=0.1)
    # runs without a usable efficiency or prediction are left out; too few runs is an error
    counts = rng.poisson(predicted * eff)
    kept = fit_efficiency_scaling(counts, predicted, eff)
    eff_bad, predicted_bad = eff.copy(), predicted.copy()
    eff_bad[:3], predicted_bad[3:5] = np.nan, 0.0
    left_out = fit_efficiency_scaling(counts, predicted_bad, eff_bad)
    assert left_out == pytest.approx(fit_efficiency_scaling(counts[5:], predicted[5:], eff[5:]))
    assert kept != left_out
    with pytest.raises(ValueError, match="two or more efficiencies"):
        fit_efficiency_scaling(counts[:5], predicted[:5], np.ones(5))


def test_efficiency_norms_follow_the_true_norms_of_the_runs(dataset, tmp_path):
    """Runs whose background scales as efficiency**1.5: the scaling gives each its norm."""
    store = DataStore.from_dir(dataset.path)
    true_eff = dict(zip(dataset.obs_ids, dataset.norms ** (1 / 1.5), strict=True))
    store.obs_table["EFF_TEST"] = [true_eff[i] for i in store.obs_table["OBS_ID"]]
    result = make_models(
        store,
        tmp_path,
        zenith_edges=(0, 90),
        exclusion="none",
        efficiency_column="eff_test",
        progress=False,
        model="groups",
    )
    expected = dataset.norms / np.mean(dataset.norms)
    total = sum(m.n_counts for m in result.observations.values())
    for obs_id, truth in zip(dataset.obs_ids, expected, strict=True):
        model = result.observations[int(obs_id)]
        assert model.efficiency == pytest.approx(true_eff[obs_id])
        assert abs(model.norm - truth) < 4 * truth / np.sqrt(total / len(expected))
        written = FOVCube.read(tmp_path / BKG_SUBDIR / bkg_file_name(obs_id))
        assert written.meta["BKG_EFF"] == pytest.approx(true_eff[obs_id])
    with pytest.raises(ValueError, match="alternatives"):
        make_models(
            store, tmp_path / "a", efficiency_column="EFF_TEST", fit_norm=True, model="groups"
        )
    with pytest.raises(ValueError, match="no column 'OPTEFF'"):  # before any work
        make_models(
            store,
            tmp_path / "b",
            efficiency_column="OPTEFF",
            exclusion="none",
            progress=False,
            model="groups",
        )
    assert not (tmp_path / "b").exists()
    store.obs_table["EFF_FLAT"] = 1.0
    with pytest.raises(ValueError, match="two or more efficiencies"):
        make_models(
            store,
            tmp_path / "c",
            efficiency_column="EFF_FLAT",
            exclusion="none",
            progress=False,
            model="groups",
        )
    assert not (tmp_path / "c").exists()


def test_rerun_without_overwrite_refuses_before_writing(per_run, dataset):
    _, outdir = per_run
    index = outdir / "hdu-index.fits.gz"
    before = index.stat().st_mtime_ns
    with pytest.raises(OutputExistsError):
        make_models(
            dataset.path,
            outdir,
            zenith_edges=(0, 20, 40, 60),
            exclusion="none",
            per_observation="group",
            progress=False,
            model="groups",
        )
    assert index.stat().st_mtime_ns == before


def test_gammapy_datastore_uses_the_new_models(per_run, dataset):
    gammapy_data = pytest.importorskip("gammapy.data")
    result, outdir = per_run
    hdu_index = Table.read(outdir / "hdu-index.fits.gz")
    assert not any(str(d).startswith("/") for d in hdu_index["FILE_DIR"])  # relative
    store = gammapy_data.DataStore.from_dir(outdir)
    x = np.array([0.0, 0.7, -1.3, 2.1]) * u.deg
    y = np.array([0.2, -0.9, 1.1, 0.0]) * u.deg
    energy = np.array([0.3, 1.0, 4.0, 20.0]) * u.TeV
    for obs_id, model in result.observations.items():
        obs = store.obs(obs_id, required_irf=[])
        assert len(obs.events.table) > 0  # events still found in the input folder
        theirs = obs.bkg.evaluate(fov_lon=x, fov_lat=y, energy=energy)
        ours = model.rate.evaluate(detx=x, dety=y, energy=energy)
        assert_allclose(theirs.to_value(RATE), ours.to_value(RATE), rtol=1e-10)
    # the files hold the fitted norms (a one-run group clamped to its own model fits 1)
    assert any(abs(m.norm - 1.0) > 1e-3 for m in result.observations.values())


def test_livetime_models_are_written_per_ontime(dataset, tmp_path):
    result = make_models(
        dataset.path,
        tmp_path,
        time_convention="LIVETIME",
        exclusion="none",
        per_observation="group",
        progress=False,
        model="groups",
    )
    table = DataStore.from_dir(dataset.path).obs_table
    for row in table:
        obs_id = int(row["OBS_ID"])
        written = FOVCube.read(tmp_path / BKG_SUBDIR / bkg_file_name(obs_id))
        assert written.meta["BKG_TIME"] == "ONTIME"
        rate = result.observations[obs_id].cube
        assert_allclose(written.data, np.asarray(rate.data) * float(row["DEADC"]), rtol=1e-12)


def test_command_line_flags(dataset, tmp_path, capsys):
    status = main(
        [
            "make-models",
            "--model",
            "groups",
            str(dataset.path),
            str(tmp_path),
            "--fit-norm",
            "--no-progress",
            "--exclusion",
            "none",
        ]
    )
    assert status == 0
    assert (tmp_path / "hdu-index.fits.gz").is_file()
    assert len(list((tmp_path / BKG_SUBDIR).glob("bkg_obs_*.fits.gz"))) == len(dataset.obs_ids)
    with pytest.raises(SystemExit):
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(dataset.path),
                str(tmp_path / "x"),
                "--per-observation",
                "nearest",
            ]
        )
    with pytest.raises(SystemExit):  # two norms: one or the other
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(dataset.path),
                str(tmp_path / "y"),
                "--fit-norm",
                "--efficiency-norm",
                "MUONEFF",
            ]
        )


def test_resample_rate_stays_bounded_next_to_empty_bins():
    # an empty bin next to the last energy node: the log interpolation there is a
    # power law of enormous index, and a target bin past the last node would explode
    cube = _cube(6, 6, lambda e: 1e-6 * e**-2.0, e_range=(0.1, 100.0))
    data = np.array(cube.data)
    data[-2, 2, 3] = 0.0
    data[-1, 2, 3] = 1e-9
    cube = cube.copy(data=data)
    like = _cube(5, 4, lambda e: np.zeros_like(e), e_range=(0.3, 100.0), half=2.5)
    got = np.asarray(resample_rate(cube, like).data)
    assert np.all(np.isfinite(got)) and np.all(got >= 0)
    assert got.max() <= data.max()


def test_resample_rate_memory_stays_bounded_for_a_large_cube():
    # 20 x 60 x 60 onto another binning: 3 x 3 points a pixel, 21 energy pieces
    # each; integrated at once, the pieces took about 2 GB of temporaries
    import tracemalloc

    rng = np.random.default_rng(3)
    cube = _cube(60, 20, lambda e: 1e-3 * e**-2.5)
    cube = cube.copy(data=np.asarray(cube.data) * rng.uniform(0.5, 2.0, cube.shape))
    like = _cube(60, 20, lambda e: np.zeros_like(e), e_range=(0.12, 90.0), half=2.9)
    tracemalloc.start()
    try:
        got = resample_rate(cube, like)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert got.shape == like.shape
    assert np.all(np.isfinite(got.data)) and np.all(np.asarray(got.data) > 0)
