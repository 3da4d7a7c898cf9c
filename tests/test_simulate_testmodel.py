"""The original test background model: reproduction of the 2015 file, mask, units, backends."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.io import fits
from numpy.testing import assert_allclose, assert_array_equal

from bgcube.backend import to_numpy
from bgcube.simulate import altitude_norm, make_test_bg_cube_model

#: The parameters that made gammapy-extra's bg_cube_model_true.fits.gz.
TRUE_FILE_PARAMETERS = dict(
    detx_range=Angle([-0.07, 0.07], "rad"),
    ndetx_bins=60,
    dety_range=Angle([-0.07, 0.07], "rad"),
    ndety_bins=60,
    energy_band=u.Quantity([0.1, 80.0], "TeV"),
    nenergy_bins=20,
    altitude=Angle(81.0, "deg"),
    sigma=Angle(5.0, "deg"),
    spectral_index=1.5,
    apply_mask=False,
    do_not_force_mev_units=True,
)


def test_reproduces_bg_cube_model_true(shared_data):
    filename = shared_data / "gammapy-extra-background" / "bg_cube_model_true.fits.gz"
    model = make_test_bg_cube_model(**TRUE_FILE_PARAMETERS)
    cubes = {
        "COUNTS": (model.counts_cube, "COUNTS"),
        "LIVETIME": (model.livetime_cube, "LIVETIME"),
        "BACKGROUND": (model.background_cube, "Bgd"),
    }
    with fits.open(filename) as hdus:
        for hdu_name, (cube, column) in cubes.items():
            table = hdus[hdu_name].data
            ref_unit = u.Unit(hdus[hdu_name].columns[column].unit or "")
            ref = table[column][0]
            assert ref.shape == cube.shape == (20, 60, 60)
            values = cube.quantity.to_value(ref_unit)
            assert np.all(ref != 0)
            assert_allclose(values, ref, rtol=1e-12, atol=0)
            for axis, name in ((cube.detx_axis, "DETX"), (cube.dety_axis, "DETY")):
                edges = axis.edges.to_value(u.deg)
                assert_allclose(edges[:-1], table[f"{name}_LO"][0], rtol=1e-12, atol=1e-14)
                assert_allclose(edges[1:], table[f"{name}_HI"][0], rtol=1e-12, atol=1e-14)
            energy = cube.energy_axis.edges.to_value(u.TeV)
            assert_allclose(energy[:-1], table["ENERG_LO"][0], rtol=1e-12)
            assert_allclose(energy[1:], table["ENERG_HI"][0], rtol=1e-12)
    assert model.background_cube.unit.is_equivalent("1 / (s sr TeV)")
    assert model.background_cube.unit == u.Unit("1 / (s sr TeV)")


def test_shape_with_unequal_axes_and_default_units():
    model = make_test_bg_cube_model(ndetx_bins=1, ndety_bins=2, nenergy_bins=3)
    for cube in (model.counts_cube, model.livetime_cube, model.background_cube):
        assert cube.shape == (3, 2, 1)
    assert model.background_cube.unit == u.Unit("1 / (MeV s sr)")
    assert model.livetime_cube.unit == u.s
    assert_array_equal(to_numpy(model.livetime_cube.data), 1.0)


def test_rate_is_counts_over_time_and_volume():
    model = make_test_bg_cube_model(ndetx_bins=6, ndety_bins=5, nenergy_bins=4)
    volume = model.counts_cube.bin_volume.to_value(u.MeV * u.sr)
    expected = to_numpy(model.counts_cube.data) / 1.0 / volume
    assert_allclose(model.background_cube.quantity.to_value("1 / (MeV s sr)"), expected, rtol=1e-13)


def test_apply_mask_zeroes_one_quarter():
    model = make_test_bg_cube_model(apply_mask=True)
    unmasked = make_test_bg_cube_model(apply_mask=False)
    x, y = (c.to_value(u.deg) for c in model.background_cube.image_bin_centers)
    quarter = (y[:, None] > 0) & (x[None, :] > 0)
    assert quarter.sum() == 12 * 12  # one quarter of 24 x 24
    for name in ("counts_cube", "livetime_cube", "background_cube"):
        data = to_numpy(getattr(model, name).data)
        ref = to_numpy(getattr(unmasked, name).data)
        assert_array_equal(data[:, quarter], 0.0)
        assert_array_equal(data[:, ~quarter], ref[:, ~quarter])
        assert np.all(ref[:, ~quarter] > 0)
    # the original test: points with x, y > 0 fall in zero bins
    cube = model.background_cube
    for xy in np.arange(5) + 0.01:
        ix, iy = cube.find_coord_bin(Angle([xy, xy], "deg"))
        assert np.all(to_numpy(cube.data)[:, iy, ix] == 0)


def test_gaussian_width_and_powerlaw():
    sigma = Angle(2.0, "deg")
    model = make_test_bg_cube_model(
        detx_range=Angle([-6, 6], "deg"),
        ndetx_bins=120,
        dety_range=Angle([-6, 6], "deg"),
        ndety_bins=120,
        energy_band=[0.1, 100] * u.TeV,
        nenergy_bins=3,
        altitude=Angle(90, "deg"),
        sigma=sigma,
        spectral_index=2.0,
    )
    counts = to_numpy(model.counts_cube.data)
    energy = model.counts_cube.energy_bin_centers.to_value(u.TeV)
    # on-axis value: the power law (centre bins are at +-0.05 deg: tiny Gaussian factor)
    x = model.counts_cube.detx_axis.centers.deg
    i0 = np.argmin(np.abs(x - 0.05))
    width = 1.0 * (energy / 0.1) ** (np.log(2) / np.log(1000))
    expected = np.exp(-2 * 0.05**2 / width**2) * energy**-2.0
    assert_allclose(counts[:, i0, i0], expected, rtol=1e-12)


def test_altitude_norm():
    assert altitude_norm(Angle(90, "deg")) == 1.0
    assert altitude_norm(Angle(0, "deg")) == 0.5
    assert altitude_norm(np.pi / 4 * u.rad) == pytest.approx(0.75)
    low = make_test_bg_cube_model(
        altitude=Angle(30, "deg"), nenergy_bins=2, ndetx_bins=3, ndety_bins=3
    )
    high = make_test_bg_cube_model(
        altitude=Angle(60, "deg"), nenergy_bins=2, ndetx_bins=3, ndety_bins=3
    )
    ratio = to_numpy(high.background_cube.data) / to_numpy(low.background_cube.data)
    assert_allclose(ratio, altitude_norm(60) / altitude_norm(30), rtol=1e-14)


def test_bad_bin_numbers():
    with pytest.raises(ValueError, match="ndetx_bins"):
        make_test_bg_cube_model(ndetx_bins=0)
    with pytest.raises(ValueError, match="nenergy_bins"):
        make_test_bg_cube_model(nenergy_bins=2.5)


def test_backends_agree(xp):
    ref = make_test_bg_cube_model(ndetx_bins=5, ndety_bins=4, nenergy_bins=3)
    model = make_test_bg_cube_model(ndetx_bins=5, ndety_bins=4, nenergy_bins=3, backend=xp)
    for name in ("counts_cube", "livetime_cube", "background_cube"):
        cube = getattr(model, name)
        assert cube.xp is xp or cube.backend in xp.__name__
        assert_allclose(to_numpy(cube.data), to_numpy(getattr(ref, name).data), rtol=1e-15)
