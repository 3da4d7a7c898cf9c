"""Per-run models read through Gammapy's DataStore predict what bgcube predicts, for every
event-file convention (H.E.S.S. SASH runs, on which Gammapy forces REVERSE_LON_RADEC, and others)."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle, SkyCoord
from astropy.io import fits
from astropy.table import Table
from numpy.testing import assert_allclose

from bgcube import FOVCube
from bgcube.data import DataStore
from bgcube.errors import BgcubeError
from bgcube.make.gammapy_alignment import (
    SASH_CREATOR,
    as_radec,
    events_forced_alignment,
    gammapy_forced_alignment,
    mirror_detx,
    predict_sky_counts,
    store_for_gammapy,
)
from bgcube.make.gammapy_index import BKG_SUBDIR, bkg_file_name, write_observation_backgrounds
from bgcube.make.per_observation import PerObservationModel
from bgcube.simulate import make_test_background, make_test_dataset

RATE = u.Unit("1 / (MeV s sr)")
DR1_RUNS = (23523, 33787)  # Crab, PKS 2155-304


def asymmetric_cube():
    """A rate cube with a strong DETX gradient and off-centre DETX edges: a mirror shows."""
    detx = np.linspace(-3.0, 3.5, 14) * u.deg
    dety = np.linspace(-3.0, 3.0, 13) * u.deg
    energy = np.geomspace(0.1, 100, 10) * u.TeV
    cx = 0.5 * (detx[1:] + detx[:-1]).value
    cy = 0.5 * (dety[1:] + dety[:-1]).value
    ce = np.sqrt(energy[1:] * energy[:-1]).value
    spatial = np.exp(-(cx[None, :] ** 2 + cy[:, None] ** 2) / 8) * (1.5 + 0.4 * cx[None, :])
    data = 1e-8 * ce[:, None, None] ** -2.7 * spatial[None] * (1 + 0.1 * cy[None, :, None])
    cube = FOVCube(detx, dety, energy, data=data * RATE, scheme="bg_cube")
    cube.meta.update(FOVALIGN="RADEC", BKG_TIME="ONTIME")
    return cube


def test_mirror_detx_reflects_and_toggles():
    cube = asymmetric_cube()
    mirrored = mirror_detx(cube)
    assert mirrored.meta["FOVALIGN"] == "REVERSE_LON_RADEC"
    x = np.array([-2.1, -0.4, 0.3, 1.7, 2.9]) * u.deg
    y = np.array([0.5, -1.0, 2.0, 0.0, -2.2]) * u.deg
    e = np.array([0.3, 1.0, 3.0, 10.0, 30.0]) * u.TeV
    ours = cube.evaluate(detx=x, dety=y, energy=e)
    assert_allclose(mirrored.evaluate(detx=-x, dety=y, energy=e), ours, rtol=1e-12)
    assert not np.allclose(mirrored.evaluate(detx=x, dety=y, energy=e), ours, rtol=1e-2)
    back = as_radec(mirrored)
    assert back.meta["FOVALIGN"] == "RADEC"
    assert_allclose(back.evaluate(detx=x, dety=y, energy=e), ours, rtol=1e-12)
    assert as_radec(cube) is cube


def test_forced_alignment_from_headers(shared_data):
    assert (
        gammapy_forced_alignment({"CREATOR": SASH_CREATOR, "HDUVERS": "0.2"}) == "REVERSE_LON_RADEC"
    )
    assert gammapy_forced_alignment({"CREATOR": SASH_CREATOR, "HDUVERS": "0.3"}) is None
    assert gammapy_forced_alignment({"CREATOR": "bgcube"}) is None
    store = DataStore.from_dir(shared_data / "hess-dl3-dr1")
    assert events_forced_alignment(store, DR1_RUNS[0]) == "REVERSE_LON_RADEC"
    cube = asymmetric_cube()
    assert store_for_gammapy(cube, None) is cube
    altaz = cube.copy()
    altaz.meta["FOVALIGN"] = "ALTAZ"
    with pytest.raises(BgcubeError, match="ALTAZ.*REVERSE_LON_RADEC"):
        store_for_gammapy(altaz, "REVERSE_LON_RADEC")


def _write(store, obs_ids, outdir):
    cube = asymmetric_cube()
    models = {
        int(i): PerObservationModel(int(i), 0, 0.9, cube, "ONTIME", norm=1.3) for i in obs_ids
    }
    write_observation_backgrounds(models, store, outdir)
    return models


def _check_through_gammapy(outdir, obs_id, model, ontime):
    """Gammapy's MapDatasetMaker background == bgcube's prediction in the same sky pixels."""
    gdata = pytest.importorskip("gammapy.data")
    from gammapy.datasets import MapDataset
    from gammapy.makers import MapDatasetMaker
    from gammapy.maps import MapAxis, WcsGeom

    obs = gdata.DataStore.from_dir(outdir).obs(obs_id, required_irf=[])
    pointing = obs.pointing.fixed_icrs
    # map energy bins from node to node of the model: both sides integrate the same power law
    nodes = np.sqrt(model.cube.energy_edges[1:] * model.cube.energy_edges[:-1])[1:7]
    axis = MapAxis.from_energy_edges(nodes, name="energy")
    geom = WcsGeom.create(skydir=pointing, width=4.5 * u.deg, binsz=0.1, frame="icrs", axes=[axis])
    maker = MapDatasetMaker(selection=["background"])
    if obs.aeff is not None:  # the whole maker
        theirs = maker.run(MapDataset.create(geom), obs).background.data
    else:  # a simulated run without IRFs: the maker's background step
        theirs = maker.make_background(geom, obs).data
    ra, dec = (
        c.to(u.deg)
        for c in (geom.to_image().get_coord().skycoord.ra, geom.to_image().get_coord().skycoord.dec)
    )
    ours = predict_sky_counts(
        model.rate, pointing, ra, dec, nodes, ontime, geom.to_image().solid_angle()
    )
    offset = SkyCoord(ra, dec).separation(pointing)
    inner = np.broadcast_to((offset < 2.2 * u.deg)[None], theirs.shape)
    assert np.all(ours[inner] > 0)
    assert_allclose(theirs[inner], ours[inner], rtol=1e-6)
    # and a mirrored model would not do: the test model's DETX gradient shows it
    mirrored = predict_sky_counts(
        mirror_detx(model.rate), pointing, ra, dec, nodes, ontime, geom.to_image().solid_angle()
    )
    flipped = predict_sky_counts(
        _declared_radec(mirror_detx(model.rate)),
        pointing,
        ra,
        dec,
        nodes,
        ontime,
        geom.to_image().solid_angle(),
    )
    assert np.max(np.abs(flipped[inner] / theirs[inner] - 1)) > 0.1
    assert_allclose(mirrored[inner], ours[inner], rtol=1e-10)  # as_radec undoes the mirror
    return obs


def _declared_radec(cube):
    """The mirrored data declared RADEC: what Gammapy did to bgcube's files before."""
    cube = cube.copy()
    cube.meta["FOVALIGN"] = "RADEC"
    return cube


@pytest.mark.gammapy
def test_forced_alignment_read_lean_equals_astropys(shared_data, monkeypatch):
    """The EVENTS header alone (bgcube.io.lean_fits.read_header) decides as astropy's."""
    from bgcube.make import gammapy_alignment

    store = DataStore.from_dir(shared_data / "hess-dl3-dr1")
    obs_ids = [int(i) for i in store.obs_ids]
    headers, original = [], gammapy_alignment.read_header

    def spy(*args):
        header = original(*args)
        headers.append(header)
        return header

    monkeypatch.setattr(gammapy_alignment, "read_header", spy)
    lean = [events_forced_alignment(store, i) for i in obs_ids]
    assert len(headers) == len(obs_ids) and all(h is not None for h in headers)
    monkeypatch.setattr(gammapy_alignment, "read_header", lambda *a: None)
    assert lean == [events_forced_alignment(store, i) for i in obs_ids]


def test_dr1_runs_through_gammapy_match_bgcube_in_the_sky(shared_data, tmp_path):
    store = DataStore.from_dir(shared_data / "hess-dl3-dr1").select(obs_ids=list(DR1_RUNS))
    models = _write(store, DR1_RUNS, tmp_path)
    written = Table.read(tmp_path / BKG_SUBDIR / bkg_file_name(DR1_RUNS[0]), hdu="BACKGROUND")
    assert written.meta["FOVALIGN"] == "REVERSE_LON_RADEC"
    with fits.open(tmp_path / BKG_SUBDIR / bkg_file_name(DR1_RUNS[0])) as hdulist:
        comment = " ".join(str(c) for c in hdulist["BACKGROUND"].header["COMMENT"])
    assert "WITHOUT Gammapy's RADEC sign flip" in comment  # the file says why, to any reader
    gammapy_irf = pytest.importorskip("gammapy.irf")
    alone = gammapy_irf.Background3D.read(
        tmp_path / BKG_SUBDIR / bkg_file_name(DR1_RUNS[0]), hdu="BACKGROUND"
    )
    assert alone.fov_alignment.value == "REVERSE_LON_RADEC"  # the file says it itself
    from bgcube.describe import describe_file

    assert "mirrored" in describe_file(tmp_path / BKG_SUBDIR / bkg_file_name(DR1_RUNS[0]))
    for obs_id in DR1_RUNS:
        ontime = u.Quantity(store.obs_table["ONTIME"][store.obs_ids == obs_id][0], u.s)
        obs = _check_through_gammapy(tmp_path, obs_id, models[obs_id], ontime)
        # evaluated directly: Gammapy's REVERSE_LON fov_lon is -DETX of bgcube's RADEC model
        x = np.array([-1.9, -0.6, 0.4, 1.2]) * u.deg
        y = np.array([0.3, -1.4, 1.0, 0.1]) * u.deg
        e = np.array([0.5, 1.5, 6.0, 25.0]) * u.TeV
        assert_allclose(
            obs.bkg.evaluate(fov_lon=-x, fov_lat=y, energy=e).to_value(RATE),
            models[obs_id].rate.evaluate(detx=x, dety=y, energy=e).to_value(RATE),
            rtol=1e-10,
        )
        assert len(obs.events.table) > 0 and obs.aeff is not None  # other HDUs still found


@pytest.mark.gammapy
def test_simulated_non_sash_run_through_gammapy(tmp_path):
    background = make_test_background(
        Angle(4, "deg"),
        2.0,
        8 * u.Hz,
        fov_range=Angle([-3, 3], "deg"),
        n_fov_bins=6,
        energy_band=[0.1, 100] * u.TeV,
        n_energy_bins=3,
    )
    ds = make_test_dataset(
        tmp_path / "ds", n_obs=1, random_state=2, background=background, ontime=200 * u.s
    )
    store = DataStore.from_dir(ds.path)
    obs_id = int(store.obs_ids[0])
    assert events_forced_alignment(store, obs_id) is None
    models = _write(store, [obs_id], tmp_path / "out")
    written = Table.read(tmp_path / "out" / BKG_SUBDIR / bkg_file_name(obs_id), hdu="BACKGROUND")
    assert written.meta["FOVALIGN"] == "RADEC"
    ontime = u.Quantity(store.obs_table["ONTIME"][0], u.s)
    _check_through_gammapy(tmp_path / "out", obs_id, models[obs_id], ontime)


def test_gammapy_extra_pins_a_regions_that_gammapy_imports_with():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    assert "regions<0.12" in extras["gammapy"]
    assert set(extras["gammapy"]) <= set(extras["test"])  # the tests run what users install
    pytest.importorskip("gammapy.data")  # and it imports here, with the pinned regions
