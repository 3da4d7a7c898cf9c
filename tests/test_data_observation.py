"""Event lists, observations and the data store (bgcube.data.events/observation/store)."""

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from bgcube.data.events import EventList, event_coordinates
from bgcube.data.fov import sky_to_fov
from bgcube.data.observation import GTI, Observation, observatory_location
from bgcube.data.store import DataStore, select_observations
from bgcube.errors import DataNotFoundError, EventDataError, FileFormatError, ObservationError

# --------------------------------------------------------------------------
# synthetic GADF files
# --------------------------------------------------------------------------

BASE_HEADER = {
    "OBS_ID": 1,
    "RA_PNT": 83.6,
    "DEC_PNT": 22.5,
    "ALT_PNT": 45.0,
    "AZ_PNT": 10.0,
    "ONTIME": 1600.0,
    "LIVETIME": 1440.0,
    "DEADC": 0.9,
    "MJDREFI": 51910,
    "MJDREFF": 7.428703703703703e-4,
    "TIMESYS": "TT",
    "TELESCOP": "HESS",
    "GEOLON": 16.5002,
    "GEOLAT": -23.2718,
    "ALTITUDE": 1835.0,
}


def write_run(
    path,
    n=200,
    header=None,
    drop_keys=(),
    seed=0,
    energy_unit="TeV",
    detxy=None,
    gti=((1e8, 1e8 + 1600.0),),
    events_name="EVENTS",
    omit_columns=(),
):
    """Write a small GADF-like event file; returns the event columns written."""
    rng = np.random.default_rng(seed)
    hdr = dict(BASE_HEADER, **(header or {}))
    for key in drop_keys:
        hdr.pop(key, None)
    ra = hdr.get("RA_PNT", 83.6) + rng.uniform(-2, 2, n)
    dec = hdr.get("DEC_PNT", 22.5) + rng.uniform(-2, 2, n)
    energy_tev = np.exp(rng.uniform(np.log(0.1), np.log(100), n))
    time = gti[0][0] + np.sort(rng.uniform(0, gti[0][1] - gti[0][0], n))
    energy_like = u.Unit(energy_unit).is_equivalent(u.TeV)
    factor = u.TeV.to(energy_unit) if energy_like else 1.0  # else a deliberately wrong unit
    cols = [
        fits.Column("EVENT_ID", "K", array=np.arange(n)),
        fits.Column("TIME", "D", unit="s", array=time),
        fits.Column("RA", "E", unit="deg", array=ra),
        fits.Column("DEC", "E", unit="deg", array=dec),
        fits.Column("ENERGY", "E", unit=energy_unit, array=energy_tev * factor),
    ]
    if detxy is not None:
        cols += [
            fits.Column("DETX", "E", unit="deg", array=detxy[0]),
            fits.Column("DETY", "E", unit="deg", array=detxy[1]),
        ]
    cols = [c for c in cols if c.name not in omit_columns]
    events = fits.BinTableHDU.from_columns(cols, name=events_name)
    for key, value in hdr.items():
        events.header[key] = value
    gti_hdu = fits.BinTableHDU.from_columns(
        [
            fits.Column("START", "D", unit="s", array=[g[0] for g in gti]),
            fits.Column("STOP", "D", unit="s", array=[g[1] for g in gti]),
        ],
        name="GTI",
    )
    gti_hdu.header["MJDREFI"] = hdr.get("MJDREFI", 51910)
    gti_hdu.header["MJDREFF"] = hdr.get("MJDREFF", 0.0)
    fits.HDUList([fits.PrimaryHDU(), events, gti_hdu]).writeto(path)
    # float32 columns in the file: compare with what was stored
    return {
        "RA": ra.astype(np.float32).astype(float),
        "DEC": dec.astype(np.float32).astype(float),
        "ENERGY": (energy_tev * factor).astype(np.float32).astype(float) / factor,
        "TIME": time,
    }


def make_store(tmp_path, runs, obs_rows=None, hdu_rows=None, subdir="data"):
    """Write runs {obs_id: header overrides} and the two index files."""
    folder = tmp_path / subdir
    folder.mkdir(exist_ok=True)
    obs, hdus = [], []
    for obs_id, extra in runs.items():
        name = f"run_{obs_id:06d}.fits.gz"
        hdr = dict({"OBS_ID": obs_id}, **extra)
        write_run(folder / name, header=hdr, seed=obs_id)
        full = dict(BASE_HEADER, **hdr)
        obs.append(
            {
                "OBS_ID": obs_id,
                "RA_PNT": full["RA_PNT"],
                "DEC_PNT": full["DEC_PNT"],
                "ZEN_PNT": 90.0 - full["ALT_PNT"],
                "AZ_PNT": full["AZ_PNT"],
                "ONTIME": full["ONTIME"],
                "N_TELS": extra.get("N_TELS", 4),
                "OBJECT": extra.get("OBJECT", "field"),
            }
        )
        for kind, hdu in (("events", "EVENTS"), ("gti", "GTI")):
            hdus.append(
                {
                    "OBS_ID": obs_id,
                    "HDU_TYPE": kind,
                    "HDU_CLASS": kind,
                    "FILE_DIR": subdir,
                    "FILE_NAME": name,
                    "HDU_NAME": hdu,
                }
            )
    obs_table = Table(rows=obs_rows or obs)
    obs_table["ZEN_PNT"].unit = obs_table["AZ_PNT"].unit = "deg"
    obs_table.write(tmp_path / "obs-index.fits.gz")
    Table(rows=hdu_rows or hdus).write(tmp_path / "hdu-index.fits.gz")
    return DataStore.from_dir(tmp_path)


# --------------------------------------------------------------------------
# EventList and Observation
# --------------------------------------------------------------------------


def test_read_observation_columns_keywords_and_fov(tmp_path):
    path = tmp_path / "run.fits.gz"
    written = write_run(path, energy_unit="GeV")
    obs = Observation.read(path)
    ev = obs.events
    assert set(ev.columns) == {"ENERGY", "RA", "DEC", "TIME", "DETX", "DETY"}
    np.testing.assert_allclose(ev.energy, written["ENERGY"], rtol=1e-6)  # GeV -> TeV
    np.testing.assert_array_equal(ev.ra, written["RA"])
    np.testing.assert_array_equal(ev.time, written["TIME"])
    assert ev.energy.dtype == np.float64
    detx, dety = sky_to_fov(written["RA"], written["DEC"], 83.6, 22.5)
    np.testing.assert_allclose(ev.detx, detx, atol=1e-12)
    np.testing.assert_allclose(ev.dety, dety, atol=1e-12)
    assert obs.fov_alignment == "RADEC" and ev.meta["FOVALIGN"] == "RADEC"
    assert obs.obs_id == 1 and ev.meta["OBS_ID"] == 1
    assert (obs.ra_pnt, obs.dec_pnt, obs.alt_pnt, obs.az_pnt) == (83.6, 22.5, 45.0, 10.0)
    assert obs.zenith == pytest.approx(45.0)
    assert obs.ontime == 1600 * u.s and obs.livetime == 1440 * u.s and obs.deadc == 0.9
    assert obs.observation_time("LIVETIME") == 1440 * u.s
    assert obs.gti.ontime == 1600 * u.s and len(obs.gti) == 1
    assert obs.location.lat.deg == pytest.approx(-23.2718)
    times = obs.event_times()
    assert times[0].tt.mjd == pytest.approx(51910 + 7.428703703703703e-4 + 1e8 / 86400, abs=1e-3)


def test_event_list_feeds_event_coordinates_and_table(tmp_path):
    path = tmp_path / "run.fits"
    write_run(path, n=50)
    obs = Observation.read(path)
    energy, dety, detx = event_coordinates(obs.events)
    np.testing.assert_array_equal(energy, obs.events.energy)
    np.testing.assert_array_equal(detx, obs.events.detx)
    table = obs.events.table
    assert table["ENERGY"].unit == u.TeV and table["DETX"].unit == u.deg
    sub = obs.events.select(obs.events.energy > 1.0)
    assert len(sub) == int(np.sum(obs.events.energy > 1.0))
    bare = Observation.read(path, fov_alignment=None)
    assert bare.events.detx is None and bare.fov_alignment is None
    with pytest.raises(EventDataError, match="DETX"):
        event_coordinates(bare.events)


def test_event_list_read_only_asked_columns(tmp_path):
    path = tmp_path / "run.fits"
    write_run(path, n=20, detxy=(np.zeros(20), np.ones(20)))
    ev = EventList.read(path, columns=["ENERGY"], optional=())
    assert list(ev.columns) == ["ENERGY"]
    ev = EventList.read(path, columns=["ENERGY"])
    assert set(ev.columns) == {"ENERGY", "DETX", "DETY"}
    with pytest.raises(FileFormatError, match="MISSING"):
        EventList.read(path, columns=["ENERGY", "MISSING"])


def test_fov_source_rules(tmp_path):
    n = 30
    fake = (np.full(n, 0.25), np.full(n, -0.5))  # not what RA/DEC give
    plain = tmp_path / "no_fovalign.fits"
    write_run(plain, n=n, detxy=fake)
    obs = Observation.read(plain)  # no FOVALIGN keyword: recomputed
    assert not np.allclose(obs.events.detx, 0.25)
    obs = Observation.read(plain, fov_source="file")
    np.testing.assert_allclose(obs.events.detx, 0.25)
    radec = tmp_path / "radec.fits"
    write_run(radec, n=n, detxy=fake, header={"FOVALIGN": "RADEC"})
    np.testing.assert_allclose(Observation.read(radec).events.detx, 0.25)
    assert not np.allclose(Observation.read(radec, fov_source="compute").events.detx, 0.25)
    reverse = tmp_path / "reverse.fits"
    write_run(reverse, n=n, detxy=fake, header={"FOVALIGN": "REVERSE_LON_RADEC"})
    obs = Observation.read(reverse)
    np.testing.assert_allclose(obs.events.detx, -0.25)
    assert obs.fov_alignment == "RADEC"
    none = tmp_path / "none.fits"
    write_run(none, n=n)
    with pytest.raises(ObservationError, match="DETX"):
        Observation.read(none, fov_source="file")


def test_altaz_alignment_needs_location(tmp_path):
    path = tmp_path / "run.fits"
    write_run(path, n=40)
    obs = Observation.read(path, fov_alignment="ALTAZ")
    assert obs.fov_alignment == "ALTAZ"
    # same distance from the pointing in both alignments
    radec = Observation.read(path)
    np.testing.assert_allclose(
        np.cos(np.radians(obs.events.detx)) * np.cos(np.radians(obs.events.dety)),
        np.cos(np.radians(radec.events.detx)) * np.cos(np.radians(radec.events.dety)),
        atol=1e-8,
    )
    nowhere = tmp_path / "nowhere.fits"
    write_run(nowhere, n=10, header={"TELESCOP": "UNKNOWN"}, drop_keys=("GEOLON", "GEOLAT"))
    with pytest.raises(ObservationError, match="location"):
        Observation.read(nowhere, fov_alignment="ALTAZ")


def test_field_rotation_is_computed_once_per_run_and_close_to_exact(tmp_path, monkeypatch):
    """Events' ALTAZ DETX/DETY and the exclusion's kept fraction share one astropy transform."""
    from bgcube.data import fov
    from bgcube.data.exclusion import ExclusionRegions, observation_kept_fraction
    from bgcube.data.fov import altaz_field_rotation

    path = tmp_path / "run.fits"
    write_run(path, n=300)
    calls = []
    real = fov.altaz_field_rotation
    monkeypatch.setattr(
        fov, "altaz_field_rotation", lambda times, *a: calls.append(times.size) or real(times, *a)
    )
    obs = Observation.read(path, fov_alignment="ALTAZ")
    regions = ExclusionRegions([obs.ra_pnt + 1.0], [obs.dec_pnt], [0.3])
    edges = np.linspace(-3, 3, 13)
    observation_kept_fraction(obs, regions, edges, edges)
    assert len(calls) == 1
    times = obs.event_times()[::37]
    exact = altaz_field_rotation(times, obs.ra_pnt, obs.dec_pnt, obs.location)
    difference = (obs.field_rotation(times) - exact + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(difference)) < 1e-3
    # times beyond the grid extend it (a second transform), and are still right
    later = obs.event_times()[-1:] + np.array([100.0, 400.0]) * u.s
    exact = altaz_field_rotation(later, obs.ra_pnt, obs.dec_pnt, obs.location)
    assert np.max(np.abs((obs.field_rotation(later) - exact + 180) % 360 - 180)) < 1e-3
    assert len(calls) == 2


def test_location_from_known_telescope():
    loc = observatory_location({"TELESCOP": "H.E.S.S."})
    assert loc.lat.deg == pytest.approx(-23.2718, abs=1e-3)
    assert observatory_location({"TELESCOP": "nobody"}) is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"header": {"ONTIME": 0.0}}, ObservationError, "ONTIME must be a positive"),
        ({"header": {"ONTIME": -5.0}}, ObservationError, "ONTIME must be a positive"),
        ({"header": {"LIVETIME": 0.0}}, ObservationError, "LIVETIME must be a positive"),
        ({"drop_keys": ("RA_PNT",)}, ObservationError, "no pointing"),
        ({"events_name": "EVTS"}, FileFormatError, "no event HDU 'EVENTS'"),
        ({"omit_columns": ("ENERGY",)}, FileFormatError, "ENERGY"),
        ({"energy_unit": "deg"}, FileFormatError, "ENERGY has unit"),
    ],
)
def test_bad_runs_give_clear_errors(tmp_path, kwargs, error, match):
    path = tmp_path / "bad.fits"
    write_run(path, n=10, header=dict({"OBS_ID": 42}, **kwargs.pop("header", {})), **kwargs)
    with pytest.raises(error, match=match) as info:
        Observation.read(path)
    assert "bad.fits" in str(info.value)
    if error is ObservationError:
        assert "OBS_ID 42" in str(info.value)


def test_times_from_gti_and_deadc(tmp_path):
    path = tmp_path / "run.fits"
    write_run(path, n=10, drop_keys=("ONTIME", "LIVETIME"), gti=((0.0, 600.0), (700.0, 1000.0)))
    obs = Observation.read(path)
    assert obs.ontime == 900 * u.s
    assert obs.livetime.to_value(u.s) == pytest.approx(810.0)  # DEADC 0.9
    path2 = tmp_path / "run2.fits"
    write_run(path2, n=10, drop_keys=("LIVETIME", "DEADC"))
    obs = Observation.read(path2)
    assert obs.livetime is None
    with pytest.raises(ObservationError, match="LIVETIME"):
        obs.observation_time("LIVETIME")


def test_gti_read_lean_is_astropys(tmp_path, monkeypatch):
    # the lean reader (plain tables) and astropy's give the same GTI, units and MJDREF included
    import gzip

    from bgcube.data import header as header_module

    gti = fits.BinTableHDU.from_columns(
        [
            fits.Column("START", "D", unit="min", array=[0.0, 10.0]),
            fits.Column("STOP", "D", unit="min", array=[5.0, 12.5]),
        ],
        name="GTI",
    )
    gti.header.update(MJDREFI=51910, MJDREFF=7.428703703703703e-4, TIMESYS="TT")
    path = tmp_path / "gti.fits.gz"
    with gzip.open(path, "wb") as f:
        fits.HDUList([fits.PrimaryHDU(), gti]).writeto(f)
    assert header_module.read_table_hdu(path, "GTI", ("START", "STOP")) is not None
    lean = GTI.read(path)
    monkeypatch.setattr(header_module, "read_table_hdu", lambda *a, **k: None)
    reference = GTI.read(path)
    assert lean.start.tolist() == reference.start.tolist() == [0.0, 600.0]
    assert lean.stop.tolist() == reference.stop.tolist() == [300.0, 750.0]
    assert lean.time_ref == reference.time_ref and lean.ontime == 450 * u.s


def test_obs_id_mismatch_and_missing_file(tmp_path):
    path = tmp_path / "run.fits"
    write_run(path, n=5, header={"OBS_ID": 7})
    with pytest.raises(ObservationError, match="OBS_ID 7, expected 8"):
        Observation.read(path, obs_id=8)
    with pytest.raises(FileFormatError, match="cannot read"):
        Observation.read(tmp_path / "absent.fits")
    with pytest.raises(FileFormatError, match="HDU 'NOPE'"):
        GTI.read(path, "NOPE")


# --------------------------------------------------------------------------
# DataStore on synthetic indices
# --------------------------------------------------------------------------

RUNS = {
    10: {"ALT_PNT": 80.0, "AZ_PNT": 350.0, "N_TELS": 3, "OBJECT": "A"},
    11: {"ALT_PNT": 60.0, "AZ_PNT": 20.0, "N_TELS": 4, "OBJECT": "B"},
    12: {"ALT_PNT": 40.0, "AZ_PNT": 180.0, "N_TELS": 4, "OBJECT": "A"},
}


def test_store_select(tmp_path):
    store = make_store(tmp_path, RUNS)
    assert len(store) == 3 and store.obs_ids.tolist() == [10, 11, 12]
    assert store.select(zenith=(0, 35)).obs_ids.tolist() == [10, 11]
    assert store.select(zenith=(25 * u.deg, 50 * u.deg)).obs_ids.tolist() == [11, 12]
    assert store.select(azimuth=(330, 30)).obs_ids.tolist() == [10, 11]  # wraps through 0
    assert store.select(azimuth=(100, 200)).obs_ids.tolist() == [12]
    assert store.select(n_tels_min=4).obs_ids.tolist() == [11, 12]
    assert store.select(where={"OBJECT": "A"}).obs_ids.tolist() == [10, 12]
    assert store.select(where={"ONTIME": (None, 1e4), "OBJECT": ["B"]}).obs_ids.tolist() == [11]
    assert store.select([12, 10]).obs_ids.tolist() == [10, 12]
    with pytest.raises(ObservationError, match=r"\[99\]"):
        store.select([10, 99])
    with pytest.raises(FileFormatError, match="NOPE"):
        store.select(where={"NOPE": 1})


def test_store_reads_observations_through_hdu_index(tmp_path):
    store = make_store(tmp_path, RUNS)
    path, hdu = store.hdu_location(11, "events")
    assert path == tmp_path / "data" / "run_000011.fits.gz" and hdu == "EVENTS"
    obs = store.observation(11)
    assert obs.obs_id == 11 and obs.alt_pnt == 60.0 and obs.gti.ontime == 1600 * u.s
    assert [o.obs_id for o in store.select(n_tels_min=4).observations()] == [11, 12]


def test_store_errors_name_run_and_file(tmp_path):
    store = make_store(tmp_path, RUNS)
    with pytest.raises(ObservationError, match="OBS_ID 99: no HDU_TYPE 'events'"):
        store.observation(99)
    (tmp_path / "data" / "run_000012.fits.gz").unlink()
    with pytest.raises(ObservationError, match=r"OBS_ID 12: events file .*run_000012"):
        store.observation(12)
    failures = []
    read = list(store.observations(on_error=lambda i, e: failures.append((i, str(e)))))
    assert [o.obs_id for o in read] == [10, 11]
    assert failures[0][0] == 12 and "does not exist" in failures[0][1]


def test_store_run_without_events_hdu(tmp_path):
    store = make_store(tmp_path, {5: {}})
    path = tmp_path / "data" / "run_000005.fits.gz"
    path.unlink()
    write_run(path, header={"OBS_ID": 5}, events_name="OTHER")
    with pytest.raises(ObservationError, match="OBS_ID 5") as info:
        store.observation(5)
    assert "run_000005" in str(info.value) and "EVENTS" in str(info.value)


def test_store_pointing_falls_back_to_obs_index(tmp_path):
    store = make_store(tmp_path, {5: {}})
    path = tmp_path / "data" / "run_000005.fits.gz"
    path.unlink()
    write_run(path, header={"OBS_ID": 5}, drop_keys=("RA_PNT", "DEC_PNT", "ALT_PNT"))
    obs = store.observation(5)
    assert (obs.ra_pnt, obs.dec_pnt) == pytest.approx((83.6, 22.5))
    assert obs.zenith == pytest.approx(45.0)


def test_missing_index_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="folder"):
        DataStore.from_dir(tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError, match="HDU index"):
        DataStore.from_dir(tmp_path)
    Table({"OBS_ID": [1]}).write(tmp_path / "hdu-index.fits.gz")
    Table({"OBS_ID": [1]}).write(tmp_path / "obs-index.fits.gz")
    with pytest.raises(FileFormatError, match="HDU_TYPE"):
        DataStore.from_dir(tmp_path)


def test_select_observations_requires_columns():
    table = Table({"OBS_ID": [1, 2], "AZ_PNT": [1.0, 2.0]})
    with pytest.raises(FileFormatError, match="ZEN_PNT or ALT_PNT"):
        select_observations(table, zenith=(0, 10))


# --------------------------------------------------------------------------
# H.E.S.S. DL3 DR1
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hess_store(shared_data):
    folder = shared_data / "hess-dl3-dr1"
    if not (folder / "obs-index.fits.gz").exists():
        pytest.skip(f"{folder} holds no obs-index.fits.gz")
    return DataStore.from_dir(folder)


def test_hess_index_and_zenith_selection(hess_store):
    table = hess_store.obs_table
    assert len(hess_store) == len(table) == 105
    zen = np.asarray(table["ZEN_PNT"])
    selected = hess_store.select(zenith=(20, 30))
    assert sorted(selected.obs_ids) == sorted(
        np.asarray(table["OBS_ID"])[(zen >= 20) & (zen <= 30)].tolist()
    )
    crab = hess_store.select(where={"OBJECT": "Crab Nebula"})
    assert len(crab) > 0 and set(crab.obs_table["TARGET_TAG"]) == {"crab"}


@pytest.mark.parametrize("obs_id", [20136, 23523, 33787])
def test_hess_observation_events_gti_and_times(hess_store, obs_id):
    obs = hess_store.observation(obs_id)
    row = hess_store.obs_table[np.asarray(hess_store.obs_table["OBS_ID"]) == obs_id][0]
    assert len(obs.events) == int(row["EVENT_COUNT"])
    assert obs.ontime.to_value(u.s) == pytest.approx(float(row["ONTIME"]))
    assert obs.livetime.to_value(u.s) == pytest.approx(float(row["LIVETIME"]), rel=1e-6)
    assert obs.deadc == pytest.approx(float(row["DEADC"]), rel=1e-6)
    assert obs.gti.ontime.to_value(u.s) == pytest.approx(obs.ontime.to_value(u.s), abs=1.0)
    # the DR1 GTIs are rounded to whole seconds: a few events lie < 1 s after STOP
    inside = (obs.events.time >= obs.gti.start.min() - 1) & (
        obs.events.time <= obs.gti.stop.max() + 1
    )
    assert inside.all()
    assert obs.ra_pnt == pytest.approx(float(row["RA_PNT"]), abs=1e-4)
    assert obs.location is not None and obs.fov_alignment == "RADEC"
    offset = np.hypot(obs.events.detx, obs.events.dety)
    assert np.median(offset) < 2.0  # events cluster around the pointing
