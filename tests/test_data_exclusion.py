"""Exclusion regions (bgcube.data.exclusion)."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.table import Table
from astropy.time import Time

from bgcube.data.events import EventList
from bgcube.data.exclusion import (
    ExclusionRegions,
    default_exclusion_regions,
    excluded_events,
    kept_fraction,
    observation_kept_fraction,
)
from bgcube.data.fov import altaz_fov_to_radec_fov, fov_to_sky, sky_to_fov
from bgcube.data.observation import GTI, Observation
from bgcube.errors import FileFormatError, OutputExistsError

RA0, DEC0 = 150.0, -30.0
EDGES = np.linspace(-3.0, 3.0, 31)  # 0.2 deg pixels


def pixel_solid_angle(ex, ey):
    """Exact solid angle (sr) of field-of-view pixels: dlon * (sin lat2 - sin lat1)."""
    dlon = np.radians(np.diff(ex))[None, :]
    dsin = np.diff(np.sin(np.radians(ey)))[:, None]
    return dlon * dsin


def circle_solid_angle(radius_deg):
    return 2 * np.pi * (1 - np.cos(np.radians(radius_deg)))


def brute_force_kept(regions, ra0, dec0, ex, ey, n, angle=None):
    """Reference: sub-sample every pixel, map it to the sky, no shortcut.

    With ``angle``, the ALTAZ frame at that field rotation.
    """
    out = np.empty((ey.size - 1, ex.size - 1))
    frac = (np.arange(n) + 0.5) / n
    for j in range(ey.size - 1):
        for i in range(ex.size - 1):
            sx = ex[i] + (ex[i + 1] - ex[i]) * frac
            sy = ey[j] + (ey[j + 1] - ey[j]) * frac
            gx, gy = np.meshgrid(sx, sy)
            w = np.cos(np.radians(gy))
            if angle is not None:
                gx, gy = altaz_fov_to_radec_fov(gx, gy, angle)
            kept = ~regions.contains(*fov_to_sky(gx, gy, ra0, dec0))
            out[j, i] = (w * kept).sum() / w.sum()
    return out


def make_observation(ra, dec, time=None, alignment="RADEC"):
    columns = {"RA": ra, "DEC": dec, "ENERGY": np.ones_like(ra)}
    if time is not None:
        columns["TIME"] = time
    events = EventList(columns)
    obs = Observation(
        7,
        events,
        GTI([0.0], [1800.0]),
        RA0,
        DEC0,
        1800 * u.s,
        location=EarthLocation(lon=16.5 * u.deg, lat=-23.27 * u.deg, height=1835 * u.m),
        time_ref=Time("2010-03-01T22:00:00", scale="tt"),
    )
    detx, dety = sky_to_fov(ra, dec, RA0, DEC0)
    obs.events = events.with_columns(meta={"FOVALIGN": alignment}, DETX=detx, DETY=dety)
    return obs


def test_contains_and_ra_wrap():
    regions = ExclusionRegions([359.9, 10.0], [0.0, 10.0], [0.3, 1.0 * u.deg.to(u.deg)])
    inside = regions.contains(
        [0.1, 359.7, 0.25, 10.0, 10.0, 20.0], [0.0, 0.0, 0.0, 10.99, 11.01, 0]
    )
    assert inside.tolist() == [True, True, False, True, False, False]
    assert ExclusionRegions.empty().contains([1.0, 2.0], [0.0, 0.0]).tolist() == [False, False]


def test_events_inside_regions_are_flagged():
    rng = np.random.default_rng(3)
    ra, dec = fov_to_sky(rng.uniform(-3, 3, 5000), rng.uniform(-3, 3, 5000), RA0, DEC0)
    obs = make_observation(ra, dec)
    src_ra, src_dec = fov_to_sky(1.0, -0.5, RA0, DEC0)
    regions = ExclusionRegions([src_ra, RA0 + 50], [src_dec, DEC0], [0.4, 0.4])
    mask = excluded_events(obs, regions)
    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(src_ra * u.deg, src_dec * u.deg))
    np.testing.assert_array_equal(mask, sep.deg <= 0.4)
    assert 0 < mask.sum() < len(mask)
    assert not excluded_events(obs, ExclusionRegions.empty()).any()


def test_kept_fraction_inside_outside_and_area():
    radius = 0.7
    src_ra, src_dec = fov_to_sky(-1.0, 0.6, RA0, DEC0)
    regions = ExclusionRegions([src_ra], [src_dec], [radius])
    frac = kept_fraction(regions, RA0, DEC0, EDGES, EDGES)
    assert frac.shape == (30, 30)
    centers = 0.5 * (EDGES[1:] + EDGES[:-1])
    i, j = np.searchsorted(centers, -1.0), np.searchsorted(centers, 0.6)  # pixel at the centre
    assert frac[j, i] == 0.0
    assert frac[0, -1] == 1.0 and frac[-1, 0] == 1.0
    assert np.all((frac >= 0) & (frac <= 1))
    excluded = np.sum((1 - frac) * pixel_solid_angle(EDGES, EDGES))
    # 10 x 10 sub-pixels: the edge error is far below one sub-pixel per boundary pixel
    assert excluded == pytest.approx(circle_solid_angle(radius), rel=2e-3)


def test_kept_fraction_converges_with_oversampling():
    radius = 0.35
    src_ra, src_dec = fov_to_sky(0.33, -0.17, RA0, DEC0)
    regions = ExclusionRegions([src_ra], [src_dec], [radius])
    truth = circle_solid_angle(radius)
    errors = []
    for n in (2, 8, 32):
        frac = kept_fraction(regions, RA0, DEC0, EDGES, EDGES, oversample=n)
        errors.append(abs(np.sum((1 - frac) * pixel_solid_angle(EDGES, EDGES)) - truth) / truth)
    assert errors[2] < errors[0] and errors[2] < 2e-3


def test_kept_fraction_equals_brute_force():
    ex, ey = np.linspace(-2, 2, 11), np.linspace(-1.5, 2.5, 9)
    ras, decs = fov_to_sky([0.3, -1.2, 1.9], [0.1, 2.0, -1.4], RA0, DEC0)
    regions = ExclusionRegions(ras, decs, [0.45, 0.8, 0.2])
    fast = kept_fraction(regions, RA0, DEC0, ex * u.deg, ey * u.deg, oversample=6)
    ref = brute_force_kept(regions, RA0, DEC0, ex, ey, 6)
    np.testing.assert_allclose(fast, ref, atol=1e-12)


def test_altaz_kept_fractions_equal_brute_force_at_each_rotation():
    # the maps of several field rotations at once, tested in the field-of-view frame,
    # against each rotation's sub-pixels mapped to the sky one by one
    from bgcube.data.exclusion_fraction import _kept_fraction

    ex, ey = np.linspace(-2, 2, 11), np.linspace(-1.5, 2.5, 9)
    ras, decs = fov_to_sky([0.3, -1.2, 1.9], [0.1, 2.0, -1.4], RA0, DEC0)
    regions = ExclusionRegions(ras, decs, [0.45, 0.8, 0.2])
    angles = [-170.0, -35.5, 0.0, 12.25, 91.0]
    maps = _kept_fraction(regions, ex, ey, 6, (RA0, DEC0), angles)
    assert maps.shape == (len(angles), ey.size - 1, ex.size - 1)
    for angle, fraction in zip(angles, maps, strict=True):
        ref = brute_force_kept(regions, RA0, DEC0, ex, ey, 6, angle=angle)
        np.testing.assert_allclose(fraction, ref, atol=1e-12)
        assert np.any(fraction < 1) and np.any(fraction == 1)


def test_no_regions_gives_ones():
    frac = kept_fraction(ExclusionRegions.empty(), RA0, DEC0, EDGES, EDGES)
    assert frac.shape == (30, 30) and np.all(frac == 1.0)
    far = ExclusionRegions([RA0 + 90], [0.0], [1.0])
    assert np.all(kept_fraction(far, RA0, DEC0, EDGES, EDGES) == 1.0)


def test_observation_kept_fraction_altaz():
    ra, dec = fov_to_sky(np.zeros(3), np.zeros(3), RA0, DEC0)
    obs = make_observation(ra, dec, time=np.array([0.0, 900.0, 1800.0]), alignment="ALTAZ")
    # a circle on the pointing does not care about the field rotation
    centred = ExclusionRegions([RA0], [DEC0], [0.9])
    radec = observation_kept_fraction(obs, centred, EDGES, EDGES, alignment="RADEC")
    altaz = observation_kept_fraction(obs, centred, EDGES, EDGES)
    np.testing.assert_allclose(altaz, radec, atol=1e-6)
    # an off-centre circle is smeared by the rotation, its area is kept
    src_ra, src_dec = fov_to_sky(1.5, 0.0, RA0, DEC0)
    off = ExclusionRegions([src_ra], [src_dec], [0.3])
    altaz = observation_kept_fraction(obs, off, EDGES, EDGES, time_step=300 * u.s)
    radec = observation_kept_fraction(obs, off, EDGES, EDGES, alignment="RADEC")
    area = pixel_solid_angle(EDGES, EDGES)
    # (a circle centred on pixel edges: 10 x 10 sub-pixels give a 1.3 % lattice error in RADEC)
    assert np.sum((1 - altaz) * area) == pytest.approx(circle_solid_angle(0.3), rel=5e-3)
    assert np.sum((1 - radec) * area) == pytest.approx(circle_solid_angle(0.3), rel=2e-2)
    assert np.count_nonzero(altaz < 1) > np.count_nonzero(radec < 1)


def test_from_list_forms():
    regions = ExclusionRegions.from_list(
        [
            (83.63, 22.01, 0.3),
            (10 * u.deg, -5 * u.deg, 30 * u.arcmin, "named"),
            (SkyCoord(200, -40, unit="deg"), 0.2 * u.deg),
            {"ra": 1.0, "dec": 2.0, "radius": 0.1, "name": "d"},
        ]
    )
    assert len(regions) == 4
    np.testing.assert_allclose(regions.radius, [0.3, 0.5, 0.2, 0.1])
    assert regions.names[1] == "named" and regions.names[3] == "d"
    assert len(ExclusionRegions.from_list([])) == 0
    with pytest.raises(ValueError, match="radius"):
        ExclusionRegions([0.0], [0.0], [-1.0])


def test_from_list_circle_sky_region():
    regions_pkg = pytest.importorskip("regions")
    circle = regions_pkg.CircleSkyRegion(SkyCoord(83.63, 22.01, unit="deg"), 0.3 * u.deg)
    regions = ExclusionRegions.from_list([circle])
    assert regions.ra[0] == pytest.approx(83.63) and regions.radius[0] == pytest.approx(0.3)


@pytest.mark.parametrize("name", ["regions.ecsv", "regions.fits"])
def test_table_round_trip(tmp_path, name):
    regions = ExclusionRegions([83.63, 329.72], [22.01, -30.23], [0.3, 0.5], ["Crab", "PKS"])
    path = tmp_path / name
    regions.write(path)
    back = ExclusionRegions.read(path)
    np.testing.assert_allclose(back.ra, regions.ra)
    np.testing.assert_allclose(back.radius, regions.radius)
    assert back.names == ["Crab", "PKS"]
    with pytest.raises(OutputExistsError):
        regions.write(path)
    regions.write(path, overwrite=True)


def test_table_units_galactic_and_errors(tmp_path):
    table = Table({"glon": [184.557], "glat": [-5.784], "radius": [18.0]})
    table["radius"].unit = "arcmin"
    regions = ExclusionRegions.from_table(table)
    assert regions.radius[0] == pytest.approx(0.3)
    assert regions.ra[0] == pytest.approx(83.63, abs=0.01)  # the Crab
    with pytest.raises(FileFormatError, match="RADIUS"):
        ExclusionRegions.from_table(Table({"RA": [1.0], "DEC": [2.0]}))
    bad = Table({"RA": [1.0], "DEC": [2.0], "RADIUS": [0.1]})
    bad["RADIUS"].unit = "s"
    with pytest.raises(FileFormatError, match="angle"):
        ExclusionRegions.from_table(bad)
    with pytest.raises(FileFormatError, match="does not exist"):
        ExclusionRegions.read(tmp_path / "absent.ecsv")


def test_default_regions_synthetic():
    table = Table(
        {
            "OBS_ID": [1, 2, 3],
            "RA_PNT": [83.63, 84.13, 0.0],
            "DEC_PNT": [22.51, 22.01, -80.0],
            "RA_OBJ": [83.63, 83.63, 10.0],
            "DEC_OBJ": [22.01, 22.01, -80.0],
            "OBJECT": ["Crab", "Crab", "empty field"],
        }
    )
    regions = default_exclusion_regions(table, target_radius=0.4 * u.deg)
    # two distinct targets, plus the catalogued Crab (within 4 deg of a pointing)
    assert regions.names == ["Crab", "empty field", "Crab Nebula"]
    np.testing.assert_allclose(regions.radius[:2], 0.4)
    none = default_exclusion_regions(table, sources=())
    assert len(none) == 2


def test_default_regions_hess(shared_data):
    path = shared_data / "hess-dl3-dr1" / "obs-index.fits.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    table = Table.read(path)
    regions = default_exclusion_regions(table)
    targets = regions.contains(np.asarray(table["RA_OBJ"]), np.asarray(table["DEC_OBJ"]))
    assert targets.all()
    by_name = dict(zip(regions.names, regions.radius, strict=True))
    assert by_name["RX J1713.7-3946"] >= 0.6 and by_name["MSH 15-52"] >= 0.5
    for name in ("Crab Nebula", "PKS 2155-304"):
        assert name in by_name


def _contains_every_direction(regions, ra, dec):
    """The exact test on every direction, without contains()' declination pre-selection."""
    ra, dec = np.radians(ra), np.radians(dec)
    x, y, z = np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)
    cra, cdec = np.radians(regions.ra), np.radians(regions.dec)
    cx, cy, cz = np.cos(cdec) * np.cos(cra), np.cos(cdec) * np.sin(cra), np.sin(cdec)
    cos_r = np.cos(np.radians(regions.radius))
    inside = np.zeros(np.shape(x), dtype=bool)
    for i in range(len(regions)):
        inside |= cx[i] * x + cy[i] * y + cz[i] * z >= cos_r[i]
    return inside


@pytest.mark.parametrize("radius", [1e-5, 0.3, 5.0])
def test_contains_is_the_exact_test_on_every_direction(radius):
    rng = np.random.default_rng(5)
    regions = ExclusionRegions([10.0, 10.5, 200.0, 0.0], [-89.9, -30.0, 45.0, 89.99], [radius] * 4)
    # directions everywhere, near the poles, and just inside / outside each circle's edge
    ra = [rng.uniform(0, 360, 20000)]
    dec = [rng.uniform(-90, 90, 20000)]
    for c_ra, c_dec in zip(regions.ra, regions.dec, strict=True):
        centre = SkyCoord(c_ra, c_dec, unit="deg")
        angle = rng.uniform(0, 360, 4000) * u.deg
        sep = radius * (1 + rng.choice([-1, 1], 4000) * 10.0 ** rng.uniform(-15, -2, 4000))
        edge = centre.directional_offset_by(angle, sep * u.deg)
        ra.append(edge.ra.deg)
        dec.append(edge.dec.deg)
    ra, dec = np.concatenate(ra), np.concatenate(dec)
    inside = regions.contains(ra, dec)
    np.testing.assert_array_equal(inside, _contains_every_direction(regions, ra, dec))
    assert 0 < inside.sum() < inside.size
    grid = regions.contains(ra[:600].reshape(20, 30), dec[:600].reshape(20, 30) * u.deg)
    assert grid.shape == (20, 30)
    np.testing.assert_array_equal(grid.ravel(), inside[:600])
    assert regions.contains(ra[:0], dec[:0]).shape == (0,)
    assert not ExclusionRegions.empty().contains(ra, dec).any()


def test_kept_fraction_of_a_pointing_asked_again_is_a_fresh_equal_array():
    regions = ExclusionRegions([RA0 + 0.5], [DEC0], [0.4])
    first = kept_fraction(regions, RA0, DEC0, EDGES, EDGES)
    first[:] = -1.0  # the caller owns its array
    again = kept_fraction(regions, RA0 * u.deg, DEC0 * u.deg, EDGES * u.deg, EDGES)
    assert again.min() == 0.0 and again.max() == 1.0
    from bgcube.data import exclusion_fraction

    exclusion_fraction._KEPT_CACHE.clear()
    np.testing.assert_array_equal(kept_fraction(regions, RA0, DEC0, EDGES, EDGES), again)
    moved = ExclusionRegions([RA0 + 0.5], [DEC0], [0.5])  # other regions: another answer
    assert kept_fraction(moved, RA0, DEC0, EDGES, EDGES).sum() < again.sum()


def test_far_circles_are_tested_on_the_events_that_reach_them():
    """Events scattered far from the pointing meet circles 5-60 deg away, exactly as before."""
    rng = np.random.default_rng(8)
    detx = np.concatenate([rng.normal(0, 1.5, 20000), rng.uniform(-70, 70, 3000)])
    dety = np.concatenate([rng.normal(0, 1.5, 20000), rng.uniform(-60, 60, 3000)])
    ra, dec = fov_to_sky(detx, dety, RA0, DEC0)
    obs = make_observation(ra, dec)
    centres = [(0.5, 0.2), (2.0, -1.0), (6.0, 0.0), (-20.0, 10.0), (40.0, -30.0), (0.0, 55.0)]
    c_ra, c_dec = fov_to_sky(*np.array(centres).T, RA0, DEC0)
    regions = ExclusionRegions(c_ra, c_dec, [0.4, 1.0, 1.5, 8.0, 12.0, 5.0])
    mask = excluded_events(obs, regions)
    np.testing.assert_array_equal(mask, _contains_every_direction(regions, ra, dec))
    far = np.hypot(detx, dety) > 5
    assert mask[far].sum() > 20 and mask[~far].sum() > 20


@pytest.mark.parametrize(
    ("ra", "dec", "radius", "said", "not_said"),
    [
        (np.nan, 0.0, 1.0, "ra=nan deg must be finite", "dec="),
        (10.0, 95.0, 1.0, "dec=95.0 deg must be in [-90, 90]", "radius="),
        (10.0, 0.0, 0.0, "radius=0.0 deg must be in (0, 90)", "ra="),
    ],
)
def test_an_invalid_circle_names_what_is_wrong_with_it(ra, dec, radius, said, not_said):
    with pytest.raises(ValueError, match=r"exclusion circle 0 is invalid: ") as error:
        ExclusionRegions([ra], [dec], [radius])
    assert said in str(error.value) and not_said not in str(error.value)
