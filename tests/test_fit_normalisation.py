"""Per-observation norm and tilt of a background template: recovery, Gammapy, gradients, vmap."""

import astropy.units as u
import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="bgcube.fit needs JAX")

import jax.numpy as jnp  # noqa: E402

from bgcube.fit import fit_norm_tilt, fit_observation_norm, make_norm_tilt_fitter  # noqa: E402
from bgcube.fit.normalisation import NORM_TILT_PARAMETERS, NormTiltData  # noqa: E402
from bgcube.fit.parameters import to_internal  # noqa: E402
from bgcube.model import FOVCubeBackgroundModel  # noqa: E402
from bgcube.simulate import make_test_bg_cube_model  # noqa: E402

NORM, TILT = 1.3, 0.15


def run_with_exclusion(seed, norm=NORM, tilt=TILT, time_s=2000.0):
    """A template rate and one simulated run with a circular exclusion region.

    The run's time per pixel is reduced by the kept fraction; pixels fully
    inside the region have no time and no counts; partly covered pixels keep
    the events of their kept part only.
    """
    template = make_test_bg_cube_model(
        ndetx_bins=14,
        ndety_bins=12,
        nenergy_bins=6,
        energy_band=[0.5, 50] * u.TeV,
        detx_range=[-3, 3] * u.deg,
        dety_range=[-3, 3] * u.deg,
        sigma=4 * u.deg,
    ).background_cube
    x, y = (c.to_value(u.deg) for c in template.image_bin_centers)
    distance = np.hypot(x[None, :] - 1.0, y[:, None] - 0.5)
    kept = np.clip((distance - 0.5) / 0.6, 0.0, 1.0)  # 0 inside 0.5 deg, 1 beyond 1.1 deg
    run = FOVCubeBackgroundModel.set_cube_binning(
        template.coordx_edges, template.coordy_edges, template.energy_edges
    )
    run.add_observation_time(time_s * u.s, kept_fraction=kept)
    e = template.energy_axis.edges_canonical
    factor = norm * (np.sqrt(e[1:] * e[:-1]) / 1.0) ** -tilt
    volume = template.bin_volume.to_value(u.MeV * u.sr)
    mu = factor[:, None, None] * template.quantity.value * volume * time_s * kept[None]
    run.counts_cube.data = np.random.default_rng(seed).poisson(mu).astype(float)
    return template, run


def test_recovers_norm_and_tilt_outside_exclusion_regions():
    pulls = []
    for seed in range(4):
        template, run = run_with_exclusion(seed)
        result = fit_observation_norm(template, run)
        assert result.success, result.message
        assert result.n_bins == int(np.count_nonzero(run.livetime_cube.data > 0))
        pulls.append((result.values - [NORM, TILT]) / result.errors)
    assert np.all(np.abs(pulls) < 3.5), pulls
    assert np.mean(np.abs(pulls) < 2) >= 0.75, pulls


def test_norm_only_is_the_ratio_of_totals():
    template, run = run_with_exclusion(5, tilt=0.0)
    result = fit_observation_norm(template, run, fit_tilt=False)
    volume = template.bin_volume.to_value(u.MeV * u.sr)
    npred = template.quantity.value * volume * run.livetime_cube.data
    np.testing.assert_allclose(
        result.parameters["norm"], run.counts_cube.data.sum() / npred.sum(), rtol=1e-6
    )
    assert result.parameters["tilt"] == 0.0 and "tilt" in result.frozen
    # the norm's error is Poisson: norm / sqrt(N)
    np.testing.assert_allclose(
        result.errors[0], result.values[0] / np.sqrt(run.counts_cube.data.sum()), rtol=1e-3
    )


def test_agrees_with_gammapy_fov_background_maker():
    pytest.importorskip("gammapy")
    from gammapy.datasets import MapDataset
    from gammapy.makers import FoVBackgroundMaker
    from gammapy.maps import Map, MapAxis, WcsGeom
    from gammapy.modeling.models import PowerLawNormSpectralModel

    template, run = run_with_exclusion(6)
    volume = template.bin_volume.to_value(u.MeV * u.sr)
    npred = template.quantity.value * volume * run.livetime_cube.data
    counts = run.counts_cube.data
    use = npred > 0
    axis = MapAxis.from_energy_edges(template.energy_edges, name="energy")
    ny, nx = counts.shape[1:]
    geom = WcsGeom.create(npix=(nx, ny), binsz=0.5, skydir=(83.6, 22.0), frame="icrs", axes=[axis])
    spectral = PowerLawNormSpectralModel()
    spectral.tilt.frozen = False
    dataset = MapDataset(
        counts=Map.from_geom(geom, data=counts),
        background=Map.from_geom(geom, data=np.where(use, npred, 0.0)),
        mask_fit=Map.from_geom(geom, data=use),
        name="run",
    )
    dataset = FoVBackgroundMaker(method="fit", spectral_model=spectral).run(dataset)
    theirs = dataset.models[0].spectral_model
    ours = fit_observation_norm(template, run)
    np.testing.assert_allclose(ours.parameters["norm"], theirs.norm.value, rtol=2e-4)
    np.testing.assert_allclose(ours.parameters["tilt"], theirs.tilt.value, atol=2e-4)
    np.testing.assert_allclose(ours.errors, [theirs.norm.error, theirs.tilt.error], rtol=0.02)


def _data(run, template_scale=1.0):
    template, run_model = run
    volume = template.bin_volume.to_value(u.MeV * u.sr)
    npred = template.quantity.value * volume * run_model.livetime_cube.data
    e = template.energy_axis.edges_canonical
    return NormTiltData(
        jnp.asarray(run_model.counts_cube.data),
        jnp.asarray(npred) * template_scale,
        jnp.asarray(npred > 0),
        jnp.asarray(0.5 * (np.log(e[1:]) + np.log(e[:-1]))),
    )


def test_best_fit_norm_is_differentiable():
    """Scaling the template by s divides the best norm by s: d norm / d s = -norm / s."""
    data = _data(run_with_exclusion(7))
    fitter = make_norm_tilt_fitter()
    start = jnp.asarray(to_internal(NORM_TILT_PARAMETERS, [1.0, 0.0]))

    @jax.jit
    def best_norm(scale):
        scaled = data._replace(template=data.template * scale)
        return fitter(start, scaled).values[0]

    norm = float(best_norm(2.0))
    grad = float(jax.grad(best_norm)(2.0))
    np.testing.assert_allclose(grad, -norm / 2.0, rtol=1e-6)
    fd = (float(best_norm(2.0 + 1e-4)) - float(best_norm(2.0 - 1e-4))) / 2e-4
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    # and with respect to the counts: adding counts at high energy raises the norm, lowers the tilt
    weights = jax.grad(lambda c: fitter(start, data._replace(counts=c)).values[1])(data.counts)
    assert float(weights[-1].sum()) < 0 < float(weights[0].sum())


def test_vmapped_over_runs_matches_single_fits():
    runs = [run_with_exclusion(seed) for seed in (10, 11, 12)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[_data(r) for r in runs])
    start = jnp.tile(jnp.asarray(to_internal(NORM_TILT_PARAMETERS, [1.0, 0.0])), (3, 1))
    out = jax.jit(jax.vmap(make_norm_tilt_fitter()))(start, stacked)
    for i, (template, run) in enumerate(runs):
        single = fit_observation_norm(template, run)
        np.testing.assert_allclose(np.asarray(out.values[i]), single.values, rtol=1e-6)
        assert int(out.status[i]) == 0


def test_bad_input_is_reported():
    template, run = run_with_exclusion(13)
    with pytest.raises(ValueError, match="do not describe one cube"):
        fit_norm_tilt(np.ones((2, 3, 3)), np.ones((2, 3, 4)), [1, 2, 3])
    with pytest.raises(ValueError, match="predicts no counts"):
        fit_norm_tilt(np.ones((2, 3, 3)), np.zeros((2, 3, 3)), [1, 2, 3])
    other = make_test_bg_cube_model(ndetx_bins=14, ndety_bins=12, nenergy_bins=6).background_cube
    with pytest.raises(ValueError, match="same binning"):
        fit_observation_norm(other, run)
    run.counts_cube = None
    with pytest.raises(ValueError, match="counts cube"):
        fit_observation_norm(template, run)
