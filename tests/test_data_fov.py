"""Sky <-> field-of-view coordinates (bgcube.data.fov)."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, SkyOffsetFrame
from astropy.time import Time
from hypothesis import given
from hypothesis import strategies as st

from bgcube.data.fov import (
    altaz_field_rotation,
    fov_altaz_to_radec,
    fov_to_sky,
    radec_to_fov_altaz,
    rotate_fov,
    sky_to_fov,
)
from bgcube.data.horizontal import altaz_directions

HESS = EarthLocation(lon=16.5002 * u.deg, lat=-23.2718 * u.deg, height=1835 * u.m)


def _ang_diff(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def _events_around(ra0, dec0, n=2000, max_offset=5.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-max_offset, max_offset, n)
    y = rng.uniform(-max_offset, max_offset, n)
    return fov_to_sky(x, y, ra0, dec0)


def test_orientation_longitude_reversed():
    # a direction at higher RA (east) has negative DETX; north has positive DETY
    detx, dety = sky_to_fov([1.0, 0.0], [0.0, 1.0], 0.0, 0.0)
    np.testing.assert_allclose(detx, [-1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(dety, [0.0, 1.0], atol=1e-12)


@pytest.mark.parametrize("pointing", [(83.63, 22.01), (359.9, -30.0), (10.0, 88.0), (0.0, -89.5)])
def test_matches_astropy_sky_offset_frame(pointing):
    ra0, dec0 = pointing
    ra, dec = _events_around(ra0, dec0, n=500, max_offset=10.0)
    center = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    offset = SkyCoord(ra * u.deg, dec * u.deg).transform_to(SkyOffsetFrame(origin=center))
    detx, dety = sky_to_fov(ra, dec, ra0, dec0)
    assert np.max(_ang_diff(detx, -offset.lon.wrap_at(180 * u.deg).deg)) < 1e-9
    assert np.max(np.abs(dety - offset.lat.deg)) < 1e-9


@given(
    ra0=st.floats(0, 360, exclude_max=True),
    dec0=st.floats(-89, 89),
    x=st.floats(-20, 20),
    y=st.floats(-20, 20),
)
def test_round_trip_fov_sky_fov(ra0, dec0, x, y):
    ra, dec = fov_to_sky(x, y, ra0, dec0)
    assert 0.0 <= ra < 360.0
    x2, y2 = sky_to_fov(ra, dec, ra0, dec0)
    assert abs(x2 - x) < 1e-9 and abs(y2 - y) < 1e-9


def test_round_trip_sky_fov_sky_and_quantities():
    ra, dec = _events_around(359.5, -45.0, n=1000, max_offset=8.0, seed=3)
    detx, dety = sky_to_fov(ra * u.deg, dec * u.deg, 359.5 * u.deg, -45 * u.deg)
    ra2, dec2 = fov_to_sky(detx * u.deg, dety * u.deg, 359.5, -45.0)
    assert np.max(_ang_diff(ra2, ra) * np.cos(np.radians(dec))) < 1e-9
    assert np.max(np.abs(dec2 - dec)) < 1e-9


def test_pointing_per_event_broadcasts():
    ra, dec = np.array([10.0, 20.0]), np.array([5.0, -5.0])
    detx, dety = sky_to_fov(ra, dec, np.array([11.0, 19.0]), np.array([5.0, -5.0]))
    for i in range(2):
        x, y = sky_to_fov(ra[i], dec[i], [11.0, 19.0][i], [5.0, -5.0][i])
        assert detx[i] == pytest.approx(float(x)) and dety[i] == pytest.approx(float(y))


def test_rotate_fov_is_rigid():
    x, y = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 3.0])
    xr, yr = rotate_fov(x, y, 90.0)
    # +DETY goes to +DETX
    assert xr[0] == pytest.approx(1.0) and yr[0] == pytest.approx(0.0, abs=1e-12)
    # angular distance from the pointing (cos d = cos x cos y) is kept
    np.testing.assert_allclose(
        np.cos(np.radians(xr)) * np.cos(np.radians(yr)),
        np.cos(np.radians(x)) * np.cos(np.radians(y)),
        atol=1e-14,
    )
    back = rotate_fov(*rotate_fov(x, y, 37.0), -37.0)
    np.testing.assert_allclose(back, (x, y), atol=1e-12)


def _altaz_case(n=400):
    ra0, dec0 = 228.6, -58.8
    ra, dec = _events_around(ra0, dec0, n=n, max_offset=3.0, seed=5)
    t0 = Time("2004-03-26T02:57:46", scale="utc")
    times = t0 + np.sort(np.random.default_rng(1).uniform(0, 1680, n)) * u.s
    return ra, dec, times, ra0, dec0


def test_altaz_exact_is_offset_frame_around_altaz_pointing():
    ra, dec, times, ra0, dec0 = _altaz_case()
    detx, dety = radec_to_fov_altaz(ra, dec, times, ra0, dec0, HESS, method="exact")
    frame = AltAz(obstime=times, location=HESS)
    ev = SkyCoord(ra * u.deg, dec * u.deg).transform_to(frame)
    pnt = SkyCoord(ra0 * u.deg, dec0 * u.deg).transform_to(frame)
    x, y = sky_to_fov(ev.az.deg, ev.alt.deg, pnt.az.deg, pnt.alt.deg)
    assert np.max(np.abs(detx - x)) < 1e-9 and np.max(np.abs(dety - y)) < 1e-9


def test_altaz_interpolated_agrees_with_exact():
    ra, dec, times, ra0, dec0 = _altaz_case()
    exact = radec_to_fov_altaz(ra, dec, times, ra0, dec0, HESS, method="exact")
    fast = radec_to_fov_altaz(ra, dec, times, ra0, dec0, HESS)
    # differential aberration across 3 deg, and the linear interpolation
    assert np.max(np.hypot(exact[0] - fast[0], exact[1] - fast[1])) < 2e-3
    back = fov_altaz_to_radec(*fast, times, ra0, dec0, HESS)
    assert np.max(_ang_diff(back[0], ra) * np.cos(np.radians(dec))) < 1e-9
    assert np.max(np.abs(back[1] - dec)) < 1e-9


def test_altaz_frame_is_mirrored_relative_to_radec():
    t = Time("2010-01-01T00:00:00") + np.array([0.0, 3.0]) * u.h
    ra0, dec0 = 83.63, 22.01
    angle = altaz_field_rotation(t, ra0, dec0, HESS)
    # +DETY (north) lands at the position angle `angle`; +DETX (west) at angle - 90
    ra, dec = fov_to_sky(0.5, 0.0, ra0, dec0)
    for k in range(2):
        x, y = radec_to_fov_altaz(
            np.array([ra]), np.array([dec]), t[k : k + 1], ra0, dec0, HESS, method="exact"
        )
        pa = np.degrees(np.arctan2(x, y))[0]
        assert _ang_diff(pa, angle[k] - 90.0) < 0.01


def test_field_rotation_agrees_with_astropy_altaz():
    # the angle from ERFA directly against the same construction with astropy's AltAz frame
    rng = np.random.default_rng(4)
    for _ in range(6):
        t0 = Time("2004-01-01", scale="utc") + rng.uniform(0, 5 * 365) * u.day
        times = t0 + np.arange(0.0, 1800.0, 60.0) * u.s
        ra0, dec0 = rng.uniform(0, 360), rng.uniform(-85, 20)
        ref = fov_to_sky(0.0, 0.1, ra0, dec0)
        pair = SkyCoord([ra0, float(ref[0])] * u.deg, [dec0, float(ref[1])] * u.deg)
        altaz = pair.reshape(2, 1).transform_to(AltAz(obstime=times, location=HESS))
        x, y = np.radians(
            sky_to_fov(altaz[1].az.deg, altaz[1].alt.deg, altaz[0].az.deg, altaz[0].alt.deg)
        )
        expected = np.degrees(np.arctan2(np.cos(y) * np.sin(x), np.sin(y)))
        angle = altaz_field_rotation(times, ra0, dec0, HESS)
        up = altaz[0].alt.deg > 5
        assert np.max(_ang_diff(angle, expected)[up], initial=0.0) < 5e-4
        az, alt = altaz_directions([ra0], [dec0], times, HESS)
        assert az.shape == alt.shape == (1, times.size)
        assert np.max(np.abs(alt[0] - altaz[0].alt.deg)) < 5e-4
    # times over several days (one setup per day), in a 2-D array
    times = Time("2004-03-26T02:57:46") + np.array([[0.0, 0.4], [3.2, 10.7]]) * u.day
    angle = altaz_field_rotation(times, 83.63, 22.01, HESS)
    assert angle.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            single = altaz_field_rotation(times[i : i + 1, j], 83.63, 22.01, HESS)[0]
            assert _ang_diff(angle[i, j], single) < 2e-4  # one setup for the day


def test_altaz_bad_method():
    ra, dec, times, ra0, dec0 = _altaz_case(n=3)
    with pytest.raises(ValueError, match="method"):
        radec_to_fov_altaz(ra, dec, times, ra0, dec0, HESS, method="fast")
    with pytest.raises(ValueError, match="step"):
        radec_to_fov_altaz(ra, dec, times, ra0, dec0, HESS, step=0 * u.s)


@pytest.mark.gammapy
def test_agrees_with_gammapy_on_hess_run(shared_data):
    gammapy_fov = pytest.importorskip("gammapy.utils.coordinates")
    from bgcube.data.observation import Observation

    path = shared_data / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    obs = Observation.read(path, fov_alignment="RADEC")
    ra, dec = obs.events.ra, obs.events.dec
    lon, lat = gammapy_fov.sky_to_fov(
        ra * u.deg, dec * u.deg, obs.ra_pnt * u.deg, obs.dec_pnt * u.deg
    )
    assert len(ra) > 1000
    assert np.max(_ang_diff(obs.events.detx, lon.to_value(u.deg))) < 1e-6
    assert np.max(np.abs(obs.events.dety - lat.to_value(u.deg))) < 1e-6
    ra2, dec2 = gammapy_fov.fov_to_sky(
        obs.events.detx * u.deg, obs.events.dety * u.deg, obs.ra_pnt * u.deg, obs.dec_pnt * u.deg
    )
    mine = fov_to_sky(obs.events.detx, obs.events.dety, obs.ra_pnt, obs.dec_pnt)
    assert np.max(_ang_diff(mine[0], ra2.to_value(u.deg))) < 1e-6
    assert np.max(np.abs(mine[1] - dec2.to_value(u.deg))) < 1e-6


@pytest.mark.gammapy
def test_altaz_agrees_with_gammapy_fov_altaz_frame(shared_data):
    gammapy_fov = pytest.importorskip("gammapy.utils.coordinates")
    from bgcube.data.observation import Observation

    path = shared_data / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_033787.fits.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    obs = Observation.read(path, fov_alignment=None)
    sel = slice(0, None, 20)  # a few hundred events keep astropy's AltAz quick
    times = obs.event_times()[sel]
    frame = AltAz(obstime=times, location=obs.location)
    origin = SkyCoord(obs.ra_pnt * u.deg, obs.dec_pnt * u.deg).transform_to(frame)
    events = SkyCoord(obs.events.ra[sel] * u.deg, obs.events.dec[sel] * u.deg)
    ref = events.transform_to(frame).transform_to(
        gammapy_fov.FoVAltAzFrame(origin=origin, obstime=times, location=obs.location)
    )
    detx, dety = radec_to_fov_altaz(
        obs.events.ra[sel],
        obs.events.dec[sel],
        times,
        obs.ra_pnt,
        obs.dec_pnt,
        obs.location,
        method="exact",
    )
    assert np.max(_ang_diff(detx, ref.fov_lon.deg)) < 1e-6
    assert np.max(np.abs(dety - ref.fov_lat.deg)) < 1e-6
