"""bgcube.fit models, spline, parameters and quadrature: exact properties, no fits."""

import math

import astropy.units as u
import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="bgcube.fit needs JAX")

import jax.numpy as jnp  # noqa: E402

from bgcube.fit import (  # noqa: E402
    BinGeometry,
    FlexibleModel,
    GaussianModel,
    Parameter,
    expected_counts,
    gaussian_values_from_test_model,
    integrated_rate,
)
from bgcube.fit.parameters import to_internal, to_physical, transform_jacobian  # noqa: E402
from bgcube.fit.spline import natural_spline  # noqa: E402
from bgcube.simulate import altitude_norm, make_test_bg_cube_model  # noqa: E402


def test_x64_is_on():
    assert jnp.zeros(1).dtype == jnp.float64


# ----------------------------------------------------------------------
# spline
@pytest.mark.parametrize("knots", [(0.0, 1.0), (-2.0, -0.5, 0.1, 1.7, 3.0), (0.0, 0.3, 2.0, 2.1)])
def test_spline_matches_scipy_natural_spline(knots):
    from scipy.interpolate import CubicSpline

    rng = np.random.default_rng(len(knots))
    values = rng.normal(size=len(knots))
    x = np.linspace(knots[0], knots[-1], 301)
    ref = CubicSpline(knots, values, bc_type="natural")(x)
    got = np.asarray(natural_spline(jnp.asarray(x), knots, jnp.asarray(values)))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    # through the knots
    at_knots = np.asarray(natural_spline(jnp.asarray(knots), knots, jnp.asarray(values)))
    np.testing.assert_allclose(at_knots, values, atol=1e-12)


def test_spline_extends_linearly_with_matching_slope():
    from scipy.interpolate import CubicSpline

    knots = (0.0, 1.0, 2.5, 3.0)
    values = np.array([1.0, -1.0, 2.0, 0.5])
    ref = CubicSpline(knots, values, bc_type="natural")
    for edge, sign in ((knots[0], -1.0), (knots[-1], 1.0)):
        x = edge + sign * np.array([0.5, 1.0, 3.0])
        got = np.asarray(natural_spline(jnp.asarray(x), knots, jnp.asarray(values)))
        expected = ref(edge) + ref(edge, 1) * (x - edge)
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_spline_reproduces_straight_lines_exactly():
    knots = tuple(np.linspace(-1, 2, 5).tolist())
    values = 0.3 - 1.7 * np.asarray(knots)
    x = np.linspace(-3, 4, 50)
    got = np.asarray(natural_spline(jnp.asarray(x), knots, jnp.asarray(values)))
    np.testing.assert_allclose(got, 0.3 - 1.7 * x, atol=1e-12)


def test_spline_rejects_bad_knots():
    with pytest.raises(ValueError, match="increasing"):
        FlexibleModel((0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="at least two"):
        FlexibleModel((0.0,))


# ----------------------------------------------------------------------
# parameters
PARAMS = (
    Parameter("free", 0.3),
    Parameter("positive", 2.0, min=0.0),
    Parameter("below", -1.0, max=5.0),
    Parameter("interval", 0.9, min=0.5, max=20.0),
)


def test_transforms_round_trip_and_respect_bounds():
    values = np.array([-4.0, 1e-3, 4.9, 19.0])
    z = to_internal(PARAMS, values)
    np.testing.assert_allclose(np.asarray(to_physical(PARAMS, jnp.asarray(z))), values, rtol=1e-12)
    extreme = np.asarray(to_physical(PARAMS, jnp.asarray([50.0, -50.0, 30.0, -30.0])))
    assert extreme[1] > 0 and extreme[2] < 5.0 and 0.5 <= extreme[3] < 20.0
    jac = np.asarray(transform_jacobian(PARAMS, jnp.asarray(z)))
    eps = 1e-6
    fd = [
        (float(to_physical(PARAMS, jnp.asarray(z) + eps * np.eye(4)[i])[i]) - values[i]) / eps
        for i in range(4)
    ]
    np.testing.assert_allclose(jac, fd, rtol=1e-4)


def test_parameter_bounds_are_checked():
    with pytest.raises(ValueError, match="outside its bounds"):
        to_internal(PARAMS, [0.0, -1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="outside its bounds"):
        Parameter("width", 0.0, min=0.0)
    with pytest.raises(ValueError, match="below max"):
        Parameter("x", 1.0, min=2.0, max=1.0)
    with pytest.raises(ValueError, match="expected 4 values"):
        to_internal(PARAMS, [1.0])


# ----------------------------------------------------------------------
# quadrature
def test_energy_quadrature_errors_are_as_documented():
    edges = np.geomspace(0.1, 100, 21)
    exact = (edges[1:] ** -2.7 - edges[:-1] ** -2.7) / -2.7  # integral of E**-3.7
    errors = {}
    for rule in ("centre", 2, 3):
        g = BinGeometry.from_edges(edges, [-1, 1], [-1, 1], energy_quadrature=rule)
        approx = np.sum(np.asarray(g.energy_weights) * np.asarray(g.energy_nodes) ** -3.7, axis=1)
        errors[rule] = np.max(np.abs(approx / exact - 1))
    assert 0.02 < errors["centre"] < 0.04
    assert errors[2] < 3e-4
    assert errors[3] < 1e-6


def test_spatial_quadrature_converges_to_the_pixel_average():
    from scipy.special import erf

    w, edges = 1.0, np.linspace(-3, 3, 25)
    exact_1d = (erf(edges[1:] / w) - erf(edges[:-1] / w)) * math.sqrt(math.pi) / 2 * w
    exact = exact_1d[:, None] * exact_1d[None, :] * (math.pi / 180) ** 2

    def gaussian(values, energy, dety, detx):
        return jnp.exp(-(detx**2 + dety**2) / w**2) + 0.0 * energy

    errs = []
    for s in (1, 2, 3):
        g = BinGeometry.from_edges([1.0, 2.0], edges, edges, spatial_nodes=s)
        got = np.asarray(integrated_rate(gaussian, None, g))[0]
        errs.append(np.max(np.abs(got / exact - 1)[exact > 1e-3 * exact.max()]))
    assert errs[0] > 1e-3 and errs[1] < 2e-3 and errs[2] < 1e-5


def test_geometry_checks_its_input():
    with pytest.raises(ValueError, match="strictly increasing"):
        BinGeometry.from_edges([1, 2, 2], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="positive"):
        BinGeometry.from_edges([0, 2], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="energy_quadrature"):
        BinGeometry.from_edges([1, 2], [0, 1], [0, 1], energy_quadrature=0)
    with pytest.raises(ValueError, match="spatial_nodes"):
        BinGeometry.from_edges([1, 2], [0, 1], [0, 1], spatial_nodes=0)


def test_exact_solid_angle_follows_the_cube():
    model = make_test_bg_cube_model(ndetx_bins=4, ndety_bins=4, nenergy_bins=2)
    cube = model.background_cube
    flat = BinGeometry.from_cube(cube)
    cube.meta["SOLIDANG"] = "EXACT"
    exact = BinGeometry.from_cube(cube)
    np.testing.assert_allclose(np.asarray(flat.solid_angle), cube.solid_angle().to_value(u.sr))
    np.testing.assert_allclose(
        np.asarray(exact.solid_angle), cube.solid_angle(exact=True).to_value(u.sr)
    )


# ----------------------------------------------------------------------
# models
def test_gaussian_model_reproduces_the_original_test_model():
    """With the centre rule the family member reproduces make_test_bg_cube_model to 1e-12."""
    ref = make_test_bg_cube_model(ndetx_bins=12, ndety_bins=10, nenergy_bins=7)
    cube = ref.background_cube
    g = BinGeometry.from_cube(cube, energy_quadrature="centre")
    values = gaussian_values_from_test_model(
        g.energy_edges,
        g.dety_edges,
        g.detx_edges,
        sigma=5.0,
        spectral_index=2.7,
        norm=altitude_norm(70.0),
    )
    rate = np.asarray(integrated_rate(GaussianModel().rate, jnp.asarray(values), g) / g.volume)
    expected = cube.quantity.to_value("1 / (TeV s sr)")
    np.testing.assert_allclose(rate, expected, rtol=1e-12)


def test_flexible_model_contains_the_gaussian_family():
    """beta = 2, no ellipticity or gradient, straight spline: the Gaussian model exactly."""
    gauss = GaussianModel(e_ref=1.0)
    amplitude, index, width, width_index = 3e3, 3.6, 1.7, 0.15
    flex = FlexibleModel.from_energy_range(0.2, 50.0, 5, e_ref=1.0)
    spline = math.log(amplitude) - index * np.asarray(flex.knots)
    v_flex = np.concatenate([spline, [width, width_index, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    energy = jnp.geomspace(0.05, 200, 9)[:, None, None]
    y, x = jnp.linspace(-3, 3, 7)[None, :, None], jnp.linspace(-3, 3, 8)[None, None, :]
    a = gauss.rate(jnp.asarray([amplitude, index, width, width_index]), energy, y, x)
    b = flex.rate(jnp.asarray(v_flex), energy, y, x)
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12)


def _flexible_values(model, **changes):
    values = dict(zip(model.names, model.default_values, strict=True))
    values.update({f"ln_rate_{k}": 2.0 - 2.5 * t for k, t in enumerate(model.knots)})
    values.update(changes)
    return jnp.asarray([values[n] for n in model.names])


def test_ellipticity_keeps_the_area_and_orients_the_long_axis():
    model = FlexibleModel.from_energy_range(0.5, 5.0, 3)
    edges = np.linspace(-12, 12, 241)
    g = BinGeometry.from_edges([0.9, 1.1], edges, edges)
    round_ = np.asarray(integrated_rate(model.rate, _flexible_values(model, width=1.5), g))
    e1, e2 = 0.3, -0.4
    ellipse = np.asarray(
        integrated_rate(
            model.rate, _flexible_values(model, width=1.5, ellipticity_1=e1, ellipticity_2=e2), g
        )
    )
    np.testing.assert_allclose(ellipse.sum(), round_.sum(), rtol=1e-6)
    # the long axis: 0.5 * atan2(e2, e1) + 90 deg from DETX, axis ratio exp(|e|)
    angle = 0.5 * math.atan2(e2, e1) + math.pi / 2
    k = math.hypot(e1, e2)
    v = _flexible_values(model, width=1.5, ellipticity_1=e1, ellipticity_2=e2)
    r = 1.2
    along = model.rate(v, 1.0, r * math.sin(angle), r * math.cos(angle))
    across = model.rate(v, 1.0, r * math.cos(angle), -r * math.sin(angle))
    centre = model.rate(v, 1.0, 0.0, 0.0)
    assert float(along) > float(across)
    # ln(centre / rate) = (rho / w)**2 with rho**2 = exp(-+k) r**2
    np.testing.assert_allclose(float(jnp.log(centre / along)), math.exp(-k) * r**2 / 1.5**2)
    np.testing.assert_allclose(float(jnp.log(centre / across)), math.exp(k) * r**2 / 1.5**2)


def test_gradient_is_log_linear_across_the_field_of_view():
    model = FlexibleModel.from_energy_range(0.5, 5.0, 3)
    v = _flexible_values(model, gradient_x=0.2, gradient_y=-0.1, beta=3.0)
    x, y = 1.3, 0.7
    ratio_x = model.rate(v, 2.0, y, x) / model.rate(v, 2.0, y, -x)
    ratio_y = model.rate(v, 2.0, y, x) / model.rate(v, 2.0, -y, x)
    np.testing.assert_allclose(float(ratio_x), math.exp(2 * 0.2 * x), rtol=1e-12)
    np.testing.assert_allclose(float(ratio_y), math.exp(-2 * 0.1 * y), rtol=1e-12)


def test_width_and_beta_follow_energy():
    model = FlexibleModel.from_energy_range(0.5, 5.0, 3, e_ref=1.0)
    v = _flexible_values(model, width=1.0, width_index=0.25, beta=2.0, beta_index=0.5)
    for energy in (1.0, 4.0, 16.0):
        w, b = energy**0.25, 2.0 * energy**0.5
        r = 1.5 * w
        ratio = model.rate(v, energy, 0.0, 0.0) / model.rate(v, energy, 0.0, r)
        np.testing.assert_allclose(float(jnp.log(ratio)), 1.5**b, rtol=1e-12)


def test_beta_flattens_the_top():
    model = FlexibleModel.from_energy_range(0.5, 5.0, 3)
    r = jnp.asarray([0.5, 1.0, 2.0])
    low = model.rate(_flexible_values(model, beta=2.0, width=1.0), 1.0, 0.0, r)
    high = model.rate(_flexible_values(model, beta=6.0, width=1.0), 1.0, 0.0, r)
    assert float(high[0]) > float(low[0])  # flatter inside the width
    assert float(high[2]) < float(low[2])  # steeper outside
    np.testing.assert_allclose(float(high[1]), float(low[1]), rtol=1e-12)  # equal at rho = w


@pytest.mark.parametrize(
    "model",
    [GaussianModel(), FlexibleModel.from_energy_range(0.3, 30.0, 4)],
    ids=["gaussian", "flexible"],
)
def test_rates_jit_vmap_and_grad(model):
    g = BinGeometry.from_edges(
        np.geomspace(0.3, 30, 5), np.linspace(-2, 2, 5), np.linspace(-2, 2, 6)
    )
    values = jnp.asarray(model.initial_values(np.ones(g.shape), np.ones(g.shape), g))
    values = values.at[-1].add(0.05)  # off the symmetric point for the flexible model

    def eager_total(v):
        return jnp.sum(expected_counts(model, v, g, 100.0))

    plain = eager_total(values)
    total = jax.jit(eager_total)
    np.testing.assert_allclose(float(total(values)), float(plain), rtol=1e-14)
    batch = jnp.stack([values, values * 1.01])
    np.testing.assert_allclose(float(jax.vmap(total)(batch)[0]), float(plain), rtol=1e-14)
    grad = np.asarray(jax.grad(total)(values))
    for i in range(values.shape[0]):
        h = 1e-6 * max(1.0, abs(float(values[i])))
        fd = (float(total(values.at[i].add(h))) - float(total(values.at[i].add(-h)))) / (2 * h)
        np.testing.assert_allclose(grad[i], fd, rtol=1e-6, atol=1e-9 * abs(float(plain)))


def test_start_values_are_close_to_the_truth():
    g = BinGeometry.from_edges(
        np.geomspace(0.3, 30, 9), np.linspace(-4, 4, 33), np.linspace(-4, 4, 33)
    )
    model = GaussianModel()
    truth = np.array([5e3, 3.5, 1.5, 0.1])
    mu = np.asarray(expected_counts(model, jnp.asarray(truth), g, 1e4))
    start = model.initial_values(mu, np.full(mu.shape, 1e4), g)
    assert abs(start[1] - truth[1]) < 0.5 and 0.5 < start[2] / truth[2] < 2
    assert 0.3 < start[0] / truth[0] < 3


def test_flexible_knots_skip_starved_energy_bins():
    g = BinGeometry.from_edges(np.geomspace(0.1, 100, 11), [-1, 1], [-1, 1])
    counts = np.zeros(g.shape)
    counts[2:8] = 50.0
    counts[8] = 3.0  # starved: not enough for a knot
    model = FlexibleModel.from_counts(counts, g, n_knots=4)
    centers = np.asarray(g.energy_centers)
    np.testing.assert_allclose(model.knot_energies[[0, -1]], centers[[2, 7]])
    assert len(model.knots) == 4
    with pytest.raises(ValueError, match="at least two energy bins"):
        FlexibleModel.from_counts(np.zeros(g.shape), g)
