"""The joint background model: bases, the penalised Poisson fit, recovery of a known truth."""

import dataclasses

import numpy as np
import pytest
from astropy.table import Table

from bgcube.array.namespace import jax_x64
from bgcube.backend import to_numpy
from bgcube.errors import ConditionError, FileFormatError, FitError
from bgcube.fit.joint import (
    Condition,
    JointBackgroundModel,
    JointModelSpec,
    parse_condition,
    run_features,
)
from bgcube.fit.joint_basis import bspline_basis, clamped_knots, difference_penalty
from bgcube.fit.joint_fitting import fit_joint_model, night_labels
from bgcube.fit.joint_groups import group_effects
from bgcube.fit.joint_problem import Problem
from bgcube.fit.joint_solver import JointData, fit_joint

#: A small model family for fast tests: 15 energy bins, 10 x 10 pixels.
SPEC = JointModelSpec(
    energy_step_dex=0.2,
    fit_pixel=0.5,
    output_pixel=0.25,
    n_energy_basis=6,
    n_spatial_energy_basis=4,
    n_radial_basis=5,
    night_sigma=0.0,
)
CONDITIONS = (Condition("ZEN_PNT", "cos", 1), Condition("MUONEFF", "log", 1))
SPATIAL = (Condition("ZEN_PNT", "cos", 1),)


# ---------------------------------------------------------------------------
# bases
def test_bspline_basis_partition_of_unity_and_linear_reproduction():
    knots = clamped_knots(-1.0, 2.0, 7)
    x = np.linspace(-1.0, 2.0, 301)
    b = bspline_basis(x, knots)
    assert b.shape == (301, 7)
    assert np.all(b >= -1e-15)
    np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-12)
    # coefficients at the Greville abscissae reproduce a straight line exactly
    greville = np.array([knots[i + 1 : i + 4].mean() for i in range(7)])
    np.testing.assert_allclose(b @ (3.0 - 2.0 * greville), 3.0 - 2.0 * x, atol=1e-12)
    # outside the range: the boundary value (finite)
    np.testing.assert_allclose(bspline_basis([-5.0, 9.0], knots), b[[0, -1]], atol=1e-12)


def test_difference_penalty_vanishes_on_straight_lines_only():
    p = difference_penalty(6)
    line = np.arange(6.0) * 0.7 - 1.0
    assert abs(line @ p @ line) < 1e-12
    assert np.array([0, 0, 1.0, 0, 0, 0]) @ p @ np.array([0, 0, 1.0, 0, 0, 0]) > 0


def test_parse_condition():
    assert parse_condition("ZEN_PNT") == Condition("ZEN_PNT", "cos", 1)
    assert parse_condition("MUONEFF:log:2") == Condition("MUONEFF", "log", 2)
    assert parse_condition("N_TELS") == Condition("N_TELS", "linear", 1)
    with pytest.raises(ValueError, match="transform"):
        parse_condition("ZEN_PNT:sqrt")
    with pytest.raises(ValueError, match="degree"):
        parse_condition("ZEN_PNT:cos:x")


def test_condition_errors_name_the_column():
    table = Table({"ZEN_PNT": [10.0, 20.0], "MUONEFF": [0.9, 0.9], "BAD": [1.0, np.nan]})
    with pytest.raises(ConditionError, match="'NOPE' is not in the observation index"):
        Condition("NOPE").fitted_to(table)
    with pytest.raises(ConditionError, match="same value for all 2 fitted runs"):
        Condition("MUONEFF", "log").fitted_to(table)
    with pytest.raises(ConditionError, match="not finite"):
        Condition("BAD").fitted_to(table)


# ---------------------------------------------------------------------------
# a known truth inside the model family
def _runs(n_runs, rng):
    zen = rng.uniform(5.0, 50.0, n_runs)
    return Table(
        {
            "OBS_ID": np.arange(1, n_runs + 1),
            "ZEN_PNT": zen,
            "MUONEFF": rng.uniform(0.8, 1.2, n_runs),
            "TSTART": np.arange(n_runs) * 86400.0 * 3,  # one run a night
            "GLAT_PNT": np.full(n_runs, 40.0),
        }
    )


def _truth(table, spec=SPEC):
    """A model of the family: power law with a turn-over, zenith and efficiency dependent."""
    conditions = tuple(c.fitted_to(table) for c in CONDITIONS)
    spatial = tuple(c.fitted_to(table) for c in SPATIAL)
    lo, hi = np.log10(spec.energy_range)
    knots = clamped_knots(lo, hi, spec.n_energy_basis)
    x = np.array([knots[i + 1 : i + 4].mean() for i in range(spec.n_energy_basis)])
    spectrum = 9.0 - 2.7 * np.log(10) * x - 1.5 * (x < -0.5)  # turn-over below 0.3 TeV
    coef_a = np.stack([spectrum, 0.25 + 0.1 * x, -0.15 + 0.05 * x])
    rk = clamped_knots(0.0, spec.radial_max, spec.n_radial_basis)
    r = np.array([rk[i + 1 : i + 4].mean() for i in range(spec.n_radial_basis)])[1:]
    j = spec.n_radial_basis - 1 + 2
    coef_s = np.zeros((2, spec.n_spatial_energy_basis, j))
    width = np.linspace(1.0, 1.6, spec.n_spatial_energy_basis)
    coef_s[0, :, :-2] = -(r[None, :] ** 2) / (2 * width[:, None] ** 2)
    coef_s[0, :, -2] = 0.05  # gradient in DETX
    coef_s[1, :, :-2] = 0.04 * r[None, :]  # wider at high zenith... within the family
    n = coef_a.size + coef_s.size
    return JointBackgroundModel(spec, conditions, spatial, coef_a, coef_s, np.zeros((n, n)))


def _simulate(model, table, rng, ontime=1800.0, spec=SPEC):
    e = spec.energy_edges()
    xy = spec.fov_edges(spec.fit_pixel)
    c = 0.5 * (xy[1:] + xy[:-1])
    gx, gy = np.meshgrid(c, c)
    log_e = 0.5 * (np.log10(e[1:]) + np.log10(e[:-1]))
    volume = np.diff(e)[:, None] * np.radians(spec.fit_pixel) ** 2 * ontime
    mu = np.stack(
        [np.exp(model.log_rate(row, log_e, gx.ravel(), gy.ravel())) * volume for row in table]
    )
    exposure = np.full((len(table), gx.size), ontime)
    return rng.poisson(mu).astype(float), exposure, mu


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(11)
    table = _runs(40, rng)
    truth = _truth(table)
    counts, exposure, mu = _simulate(truth, table, rng)
    thresholds = np.full(len(table), 0.0)
    fitted = fit_joint_model(
        counts,
        exposure,
        thresholds,
        table,
        spec=SPEC,
        conditions=CONDITIONS,
        spatial_conditions=SPATIAL,
    )
    return table, truth, counts, exposure, mu, fitted


def test_fit_converges_with_a_stated_reason(simulated):
    fitted = simulated[-1]
    assert fitted.meta["CONVERGE"] is True
    assert fitted.meta["REASON"].startswith("converged")
    assert 1 <= fitted.meta["NITER"] < 30


def test_pulls_of_counts_against_the_fitted_model(simulated):
    table, truth, counts, exposure, mu, fitted = simulated
    _, _, predicted = _simulate(fitted, table, np.random.default_rng(0))
    ok = predicted > 20  # Gaussian regime
    pulls = (counts[ok] - predicted[ok]) / np.sqrt(predicted[ok])
    assert pulls.size > 5000
    assert abs(pulls.mean()) < 3 / np.sqrt(pulls.size) + 0.01
    assert abs(pulls.std() - 1) < 0.03


def test_condition_dependence_recovered_within_its_uncertainty(simulated):
    table, truth, counts, exposure, mu, fitted = simulated
    lo = {"ZEN_PNT": 10.0, "MUONEFF": 0.85, "OBS_ID": 0}
    hi = {"ZEN_PNT": 45.0, "MUONEFF": 1.15, "OBS_ID": 0}
    for log_e in (-0.6, 0.0, 0.8):
        diff_true = (
            truth.log_rate(hi, [log_e], [0.5], [0.3]) - truth.log_rate(lo, [log_e], [0.5], [0.3])
        )[0, 0]
        diff_fit = (
            fitted.log_rate(hi, [log_e], [0.5], [0.3]) - fitted.log_rate(lo, [log_e], [0.5], [0.3])
        )[0, 0]
        error = fitted.log_rate_difference_error(hi, lo, log_e, 0.5, 0.3)
        assert 0 < error < 0.1
        assert abs(diff_fit - diff_true) < 4 * error, (log_e, diff_fit, diff_true, error)


def test_model_write_read_roundtrip(simulated, tmp_path):
    fitted = simulated[-1]
    path = tmp_path / "joint.fits.gz"
    fitted.write(path)
    back = JointBackgroundModel.read(path)
    row = simulated[0][3]
    np.testing.assert_allclose(back.background(row).data, fitted.background(row).data, rtol=1e-12)
    assert back.conditions == fitted.conditions
    assert back.spec == fitted.spec
    np.testing.assert_array_equal(back.covariance, fitted.covariance)
    with pytest.raises(FileExistsError):
        fitted.write(path)
    assert back.validity["ZEN_PNT"][0] == pytest.approx(float(np.min(simulated[0]["ZEN_PNT"])))


def test_read_refuses_other_files(tmp_path):
    path = tmp_path / "other.fits"
    Table({"A": [1]}).write(path)
    with pytest.raises(FileFormatError, match="not a bgcube joint model"):
        JointBackgroundModel.read(path)


def test_background_cube_is_positive_and_finite_everywhere(simulated):
    fitted = simulated[-1]
    cube = fitted.background({"ZEN_PNT": 60.0, "MUONEFF": 0.7, "OBS_ID": 5})  # extrapolated
    data = np.asarray(cube.data)
    assert np.all(np.isfinite(data)) and np.all(data > 0)
    assert cube.unit == "1 / (MeV s sr)"
    assert cube.meta["BKG_TIME"] == "ONTIME" and cube.meta["FOVALIGN"] == "RADEC"


def test_background_below_the_safe_threshold_holds_the_first_fitted_bin(simulated):
    """Below a run's threshold (its row's SAFE_ENERGY_LO) the cube is not extrapolated."""
    import astropy.units as u

    fitted = simulated[-1]
    e = fitted.spec.energy_edges()
    row = {"ZEN_PNT": 45.0, "MUONEFF": 0.9, "OBS_ID": 5}
    free = np.asarray(fitted.background(row).data)  # no threshold in the row: the model
    threshold = float(e[6])  # an edge: the bins the fit would use start there
    held = np.asarray(fitted.background({**row, "SAFE_ENERGY_LO": threshold}).data)
    np.testing.assert_array_equal(held[6:], free[6:])
    np.testing.assert_array_equal(held[:6], np.broadcast_to(free[6], held[:6].shape))
    # a threshold inside a bin: that bin is not fitted either, the next one starts the model
    inside = np.asarray(fitted.background(row, energy_threshold=1.01 * threshold * u.TeV).data)
    np.testing.assert_array_equal(inside[:7], np.broadcast_to(free[7], inside[:7].shape))
    np.testing.assert_array_equal(inside[7:], free[7:])
    # 0 TeV: the model at every energy, whatever the row says
    zero = fitted.background({**row, "SAFE_ENERGY_LO": threshold}, energy_threshold=0 * u.TeV)
    np.testing.assert_array_equal(np.asarray(zero.data), free)


def test_sparse_data_give_a_defined_model():
    """Few counts and a threshold above most bins: still converged, positive, finite."""
    rng = np.random.default_rng(3)
    table = _runs(8, rng)
    truth = _truth(table)
    counts, exposure, _ = _simulate(truth, table, rng, ontime=20.0)
    fitted = fit_joint_model(
        counts,
        exposure,
        np.full(8, 1.0),
        table,
        spec=SPEC,
        conditions=CONDITIONS,
        spatial_conditions=SPATIAL,
    )
    data = np.asarray(fitted.background(table[0]).data)
    assert fitted.meta["CONVERGE"]
    assert np.all(np.isfinite(data)) and np.all(data > 0)


def test_too_few_runs_and_constant_conditions_are_errors():
    rng = np.random.default_rng(4)
    table = _runs(4, rng)
    counts, exposure, _ = _simulate(_truth(_runs(40, rng)), table, rng)
    with pytest.raises(FitError, match="needs at least 6 runs"):
        fit_joint_model(
            counts,
            exposure,
            np.zeros(4),
            table,
            spec=SPEC,
            conditions=CONDITIONS,
            spatial_conditions=SPATIAL,
        )
    table["MUONEFF"] = 1.0
    with pytest.raises(ConditionError, match="'MUONEFF' has the same value"):
        fit_joint_model(
            counts,
            exposure,
            np.zeros(4),
            table,
            spec=SPEC,
            conditions=CONDITIONS,
            spatial_conditions=SPATIAL,
        )


def test_fit_that_does_not_converge_says_why(simulated):
    table, truth, counts, exposure, mu, fitted = simulated
    features = run_features(fitted.conditions, table)
    spatial = run_features(fitted.spatial_conditions, table)
    data, design = _problem(SPEC, counts, exposure, features, spatial)
    solution = fit_joint(data, design, max_iterations=2)
    assert not solution.converged
    assert "not converged after 2 iterations" in solution.reason


def _problem(spec, counts, exposure, features, spatial, xp=np, groups=None, sigma=None):
    e = spec.energy_edges()
    xy = spec.fov_edges(spec.fit_pixel)
    c = 0.5 * (xy[1:] + xy[:-1])
    gx, gy = np.meshgrid(c, c)
    log_e = 0.5 * (np.log10(e[1:]) + np.log10(e[:-1]))
    design = spec.design(log_e, gx.ravel(), gy.ravel(), features.shape[1], spatial.shape[1])
    mask = np.ones(counts.shape[:2])

    def a(x):
        return None if x is None else xp.asarray(np.ascontiguousarray(x, dtype=np.float64))

    data = JointData(
        a(exposure),
        a(mask),
        a(counts.sum(axis=2)),
        a(np.einsum("rm,rep->mep", spatial, counts)),
        a(np.diff(e)),
        a(np.full(gx.size, np.radians(spec.fit_pixel) ** 2)),
        a(features),
        a(spatial),
        a(groups),
        a(sigma),
    )
    design = type(design)(*(a(getattr(design, f.name)) for f in dataclasses.fields(design)))
    return data, design


def _nights(n_runs, per_night):
    """Night labels of ``n_runs`` runs, ``per_night`` a night, their one-hot groups and widths 0.1."""
    nights = night_labels(np.arange(n_runs) // per_night * 86400.0, 6.0)
    groups = (nights[:, None] == np.unique(nights)[None, :]).astype(float)
    return nights, groups, np.full(groups.shape[1], 0.1)


def test_fit_is_the_same_on_every_backend(simulated, xp_nocupy):
    table, truth, counts, exposure, mu, fitted = simulated
    features = run_features(fitted.conditions, table)
    spatial = run_features(fitted.spatial_conditions, table)
    nights, groups, sigma = _nights(len(table), 2)  # two runs a night
    data, design = _problem(SPEC, counts, exposure, features, spatial, np, groups, sigma)
    reference = fit_joint(dataclasses.replace(data, run_sigma=0.05), design)
    with jax_x64():
        data, design = _problem(SPEC, counts, exposure, features, spatial, xp_nocupy, groups, sigma)
        solution = fit_joint(dataclasses.replace(data, run_sigma=0.05), design)
        coef_a, effect = to_numpy(solution.coef_a), to_numpy(solution.group_effect)
        run_effect = to_numpy(solution.run_effect)
    assert solution.converged
    np.testing.assert_allclose(coef_a, reference.coef_a, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(effect, reference.group_effect, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(run_effect, reference.run_effect, rtol=1e-7, atol=1e-9)


def test_fit_in_chunks_of_runs_is_the_same_fit(simulated, xp_nocupy):
    # 40 runs in chunks of 7 (on JAX one compiled loop over 6 chunks, the last
    # padded with runs of zero exposure) against all runs at once
    table, truth, counts, exposure, mu, fitted = simulated
    features = run_features(fitted.conditions, table)
    spatial = run_features(fitted.spatial_conditions, table)
    nights, groups, sigma = _nights(len(table), 3)
    with jax_x64():
        data, design = _problem(SPEC, counts, exposure, features, spatial, xp_nocupy, groups, sigma)
        data = dataclasses.replace(data, run_sigma=0.05)
        problem = Problem(data, design, chunk=7)
        assert len(list(problem.chunks())) == 6 and 6 * problem.chunk > len(table)
        whole, parts = (fit_joint(data, design, chunk=c) for c in (len(table), 7))
        whole, parts = (
            {
                f: to_numpy(getattr(s, f))
                for f in (
                    "coef_a",
                    "coef_s",
                    "group_effect",
                    "run_effect",
                    "covariance",
                    "run_predicted",
                )
            }
            for s in (whole, parts)
        )
    for field, value in whole.items():
        assert parts[field].shape == value.shape, field
        np.testing.assert_allclose(parts[field], value, rtol=1e-9, atol=1e-12, err_msg=field)


def test_fit_in_threads_is_exactly_the_fit_in_one_thread(simulated, monkeypatch):
    # NumPy computes chunks of runs in threads and adds their sums in the chunks'
    # order: the same numbers, to the last bit, as one chunk after the other
    import bgcube.fit.joint_problem as joint_problem

    table, truth, counts, exposure, mu, fitted = simulated
    features = run_features(fitted.conditions, table)
    spatial = run_features(fitted.spatial_conditions, table)
    nights, groups, sigma = _nights(len(table), 3)
    data, design = _problem(SPEC, counts, exposure, features, spatial, np, groups, sigma)
    data = dataclasses.replace(data, run_sigma=0.05)
    fits = {}
    for threads in (1, 3):
        monkeypatch.setattr(joint_problem, "fit_threads", lambda xp, n=threads: n)
        problem = Problem(data, design, chunk=7)
        assert problem.threads == threads and len(list(problem.chunks())) == 6
        fits[threads] = fit_joint(data, design, chunk=7)
    for field in ("coef_a", "coef_s", "group_effect", "run_effect", "covariance"):
        np.testing.assert_array_equal(
            getattr(fits[3], field), getattr(fits[1], field), err_msg=field
        )
    # without a chunk size, each thread gets a chunk at least
    assert len(list(Problem(data, design).chunks())) == 3


def test_fit_threads_leave_blas_threads_their_cores(monkeypatch):
    import array_api_strict
    import threadpoolctl

    from bgcube.fit.joint_compiled import fit_threads

    monkeypatch.setenv("BGCUBE_NUM_THREADS", "4")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert fit_threads(np) == 4
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        blas = [
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        ]
        assert fit_threads(np) == (2 if max(blas, default=1) == 2 else 4)
    assert fit_threads(array_api_strict) == 1  # only NumPy computes chunks in threads
    monkeypatch.setenv("BGCUBE_NUM_THREADS", "1")
    assert fit_threads(np) == 1


def test_run_effects_equal_a_group_level_of_one_run_each(simulated):
    # the solver eliminates run effects as a diagonal block: the same fit as
    # run effects written as groups of one run (a dense group block)
    table, truth, counts, exposure, mu, fitted = simulated
    features = run_features(fitted.conditions, table)
    spatial = run_features(fitted.spatial_conditions, table)
    n = len(table)
    nights, groups, sigma = _nights(n, 3)
    data, design = _problem(SPEC, counts, exposure, features, spatial, np, groups, sigma)
    fast = fit_joint(dataclasses.replace(data, run_sigma=0.05), design)
    dense_groups = np.concatenate([groups, np.eye(n)], axis=1)
    dense_sigma = np.concatenate([sigma, np.full(n, 0.05)])
    dense = fit_joint(
        *_problem(SPEC, counts, exposure, features, spatial, np, dense_groups, dense_sigma)
    )
    assert fast.converged and dense.converged
    np.testing.assert_allclose(fast.coef_a, dense.coef_a, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fast.coef_s, dense.coef_s, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fast.group_effect, dense.group_effect[: groups.shape[1]], atol=1e-8)
    np.testing.assert_allclose(fast.run_effect, dense.group_effect[groups.shape[1] :], atol=1e-8)
    np.testing.assert_allclose(fast.covariance, dense.covariance, rtol=1e-6, atol=1e-12)
    # run effects widen the uncertainty of the spectrum and its condition dependence
    plain = fit_joint(data, design)
    n_a = fast.coef_a.size
    assert np.diag(fast.covariance)[:n_a].sum() > np.diag(plain.covariance)[:n_a].sum() * 1.01


def test_huber_run_effects_keep_the_level_at_the_typical_run(simulated):
    # two runs far off (half their counts): Gaussian run effects let them pull
    # the model's level down, exponential tails much less
    table, truth, counts, exposure, mu, fitted = simulated
    features = run_features(fitted.conditions, table)
    spatial = run_features(fitted.spatial_conditions, table)
    data, design = _problem(SPEC, counts, exposure, features, spatial)
    reference = fit_joint(dataclasses.replace(data, run_sigma=0.05), design)
    damaged = counts.copy()
    damaged[:2] = np.round(damaged[:2] * 0.5)
    data, design = _problem(SPEC, damaged, exposure, features, spatial)
    shift = {}
    for tail in (np.inf, 0.5):
        solution = fit_joint(dataclasses.replace(data, run_sigma=0.05, run_tail=tail), design)
        assert solution.converged, solution.reason
        shift[tail] = abs(float(np.mean(solution.coef_a[0] - reference.coef_a[0])))
        assert np.all(solution.run_effect[:2] < -0.3)  # the damaged runs are found
    assert shift[0.5] < 0.5 * shift[np.inf]


def test_huber_run_effects_converge_as_fast_as_gaussian_ones(simulated):
    # runs scattered about their nights' levels as on real data, so that many run
    # effects lie beyond the Huber edge: near the optimum the Newton curvature
    # there is close to the exact one, with no slow linear tail of iterations
    # while the runs' common level settles (the secant alone took 14 here)
    table, truth, counts, exposure, mu, fitted = simulated
    features = run_features(fitted.conditions, table)
    spatial = run_features(fitted.spatial_conditions, table)
    nights, groups, sigma = _nights(len(table), 4)
    run_scatter = np.exp(np.random.default_rng(3).normal(0, 0.07, len(table)))
    night_scatter = np.exp(np.random.default_rng(4).normal(0, 0.1, groups.shape[1]))[nights]
    scattered = np.round(counts * (run_scatter * night_scatter)[:, None, None])
    data, design = _problem(SPEC, scattered, exposure, features, spatial, np, groups, sigma)
    iterations = {}
    for tail in (np.inf, 0.5):
        solution = fit_joint(dataclasses.replace(data, run_sigma=0.05, run_tail=tail), design)
        assert solution.converged, solution.reason
        iterations[tail] = solution.n_iterations
    assert np.sum(np.abs(solution.run_effect) > 0.025) >= 10  # beyond the edge
    assert iterations[0.5] <= iterations[np.inf] + 2, iterations


# ---------------------------------------------------------------------------
# night effects
def test_night_labels_split_at_gaps():
    hours = np.array([0.0, 0.5, 1.0, 20.0, 20.5, 60.0])
    labels = night_labels(hours[::-1] * 3600.0, 6.0)[::-1]
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 2])


def test_left_out_night_effect_never_uses_the_runs_own_counts():
    rng = np.random.default_rng(5)
    predicted = rng.uniform(1000, 3000, 9)
    counts = rng.poisson(predicted * np.repeat([0.8, 1.0, 1.3], 3)).astype(float)
    groups = np.repeat(np.eye(3), 3, axis=0)
    sigma = np.full(3, 0.1)
    delta, left_out = group_effects(counts, predicted, groups, sigma)
    changed = counts.copy()
    changed[4] *= 3.0
    delta2, left_out2 = group_effects(changed, predicted, groups, sigma)
    assert left_out2[4] == left_out[4]  # its own counts do not enter its own effect
    assert delta2[1] > delta[1] and left_out2[3] > left_out[3]  # but its neighbours'
    assert left_out[0] < -0.1 and left_out[8] > 0.1  # the night's level is found
    alone = group_effects(counts[:1], predicted[:1], np.ones((1, 1)), sigma[:1])[1]
    assert alone[0] == 0.0


def test_left_out_night_effect_with_run_scatter():
    # with run-to-run scatter, a night's other runs weigh by 1 / (1/n + run_sigma**2):
    # still never the run's own counts, and one neighbour tells less than many
    predicted = np.full(12, 10000.0)
    counts = predicted * 1.2  # every night 20 % high
    groups = np.zeros((12, 2))
    groups[:2, 0] = 1.0  # a night of 2 runs
    groups[2:, 1] = 1.0  # a night of 10 runs
    sigma = np.full(2, 0.1)
    _, plain = group_effects(counts, predicted, groups, sigma)
    _, scatter = group_effects(counts, predicted, groups, sigma, run_sigma=0.07)
    changed = counts.copy()
    changed[0] *= 2.0
    _, scatter2 = group_effects(changed, predicted, groups, sigma, run_sigma=0.07)
    assert abs(scatter2[0] - scatter[0]) < 1e-12 and scatter2[1] > scatter[1] + 0.01
    truth = np.log(1.2)
    assert 0 < scatter[0] < scatter[2] < truth  # shrunk, less with more neighbours
    assert scatter[0] < plain[0] - 0.03  # one neighbour is not trusted at its counts alone
    # the precision-weighted mean, shrunk by the prior, for one neighbour
    w = 1.0 / (1.0 / 12000.0 + 0.07**2)
    np.testing.assert_allclose(scatter[0], w * truth / (w + 1.0 / 0.1**2), rtol=1e-12)
    assert np.all(
        group_effects(counts, predicted, np.zeros((12, 0)), sigma[:0], run_sigma=0.07)[1] == 0
    )


def test_group_effects_refuse_runs_in_two_groups():
    with pytest.raises(ValueError, match="one group at most"):
        group_effects(np.ones(2), np.ones(2), np.ones((2, 2)), np.ones(2))


def test_energy_edges_are_anchored_at_one_tev():
    """Edges at 1 TeV x 10^(k step): thresholds on that grid start a whole fitted bin."""
    edges = JointModelSpec().energy_edges()
    k = np.log10(edges) / 0.03
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert edges[0] <= 0.1 and edges[-1] >= 100.0 and edges.size == 102
    for threshold in (10**-0.6, 10**-0.48, 10**0.12):  # H.E.S.S. DR1 safe thresholds
        assert np.min(np.abs(np.log10(edges / threshold))) < 1e-9
    # the 0.1-dex grid of earlier models is unchanged
    old = JointModelSpec(energy_step_dex=0.1).energy_edges()
    np.testing.assert_allclose(old, 0.1 * 10 ** (0.1 * np.arange(31)), rtol=1e-12)
    with pytest.raises(ValueError, match="energy_step_dex"):
        JointModelSpec(energy_step_dex=0.0).energy_edges()
