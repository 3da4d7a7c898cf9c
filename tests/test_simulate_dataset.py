"""Simulated DL3 data sets: files, indices, reproducibility, events versus the true model."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.table import Table
from numpy.testing import assert_allclose, assert_array_equal

from bgcube.backend import to_numpy
from bgcube.data.fov import sky_to_fov
from bgcube.data.store import DataStore
from bgcube.errors import OutputExistsError
from bgcube.model import FOVCubeBackgroundModel
from bgcube.simulate import (
    GaussianSource,
    altitude_norm,
    example_sources,
    make_test_background,
    make_test_dataset,
    make_test_observation_table,
)
from bgcube.simulate.sampling import sample_binned_events, uniform_in_bins

#: A small, fast configuration: 3 runs of 600 s at ~15 Hz, a 20 x 20 x 8 truth.
SMALL = dict(
    n_obs=3,
    ontime=600 * u.s,
    background=None,
    spectral_index=1.5,
)


def small_background():
    return make_test_background(
        Angle(5, "deg"),
        1.5,
        15 * u.Hz,
        fov_range=Angle([-3, 3], "deg"),
        n_fov_bins=20,
        energy_band=[0.1, 100] * u.TeV,
        n_energy_bins=8,
    )


def make_small(path, seed, **kwargs):
    options = dict(SMALL, background=small_background(), random_state=seed)
    options.update(kwargs)
    return make_test_dataset(path, **options)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_small(tmp_path_factory.mktemp("sim") / "ds", seed=11)


@pytest.fixture(scope="module")
def dataset_with_sources(tmp_path_factory):
    sources = [GaussianSource("S1", ra=83.0, dec=-30.0, sigma=0.1, rate=2.0, spectral_index=2.0)]
    return make_small(tmp_path_factory.mktemp("sim") / "dss", seed=12, sources=sources)


def read_hdus(filename):
    with fits.open(filename) as hdus:
        return [
            (dict(h.header), None if h.data is None else np.asarray(h.data).copy()) for h in hdus
        ]


def test_files_and_layout(dataset):
    path = dataset.path
    assert (path / "obs-index.fits.gz").is_file()
    assert (path / "hdu-index.fits.gz").is_file()
    assert (path / "true_model.fits.gz").is_file()
    assert (path / "truth.fits.gz").is_file()
    assert not (path / "sources.ecsv").exists()  # no sources
    assert len(dataset.filenames) == 3
    for filename in dataset.filenames:
        assert filename.parent == path / "data"
        with fits.open(filename) as hdus:
            assert [h.name for h in hdus] == ["PRIMARY", "EVENTS", "GTI", "BKG"]


def test_index_columns_as_dr1(dataset, shared_data):
    dr1 = shared_data / "hess-dl3-dr1"
    obs_ref = Table.read(dr1 / "obs-index.fits.gz")
    hdu_ref = Table.read(dr1 / "hdu-index.fits.gz")
    obs = Table.read(dataset.path / "obs-index.fits.gz")
    hdu = Table.read(dataset.path / "hdu-index.fits.gz")
    assert obs.colnames == obs_ref.colnames
    assert hdu.colnames == hdu_ref.colnames
    for name in obs.colnames:
        ref_unit = obs_ref[name].unit
        assert (obs[name].unit or None) == (ref_unit or None), name
    ref_kinds = set(zip(hdu_ref["HDU_TYPE"], hdu_ref["HDU_CLASS"], strict=True))
    kinds = set(zip(hdu["HDU_TYPE"], hdu["HDU_CLASS"], strict=True))
    assert kinds == {("events", "events"), ("gti", "gti"), ("bkg", "bkg_3d")}
    assert kinds <= ref_kinds
    for key in ("HDUCLASS", "HDUCLAS1", "HDUCLAS2"):
        assert obs.meta[key] == obs_ref.meta[key]
        assert hdu.meta[key] == hdu_ref.meta[key]


def test_index_contents(dataset):
    obs = Table.read(dataset.path / "obs-index.fits.gz")
    hdu = Table.read(dataset.path / "hdu-index.fits.gz")
    assert_array_equal(obs["OBS_ID"], [1, 2, 3])
    assert_array_equal(obs["EVENT_COUNT"], dataset.n_background + dataset.n_source)
    assert_allclose(obs["ONTIME"], 600.0)
    assert_allclose(obs["LIVETIME"], obs["ONTIME"] * obs["DEADC"], rtol=1e-12)
    assert np.all((obs["DEADC"] >= 0.8) & (obs["DEADC"] <= 0.95))
    assert_allclose(obs["TSTOP"] - obs["TSTART"], 600.0, rtol=1e-9)
    assert_allclose(obs["ZEN_PNT"] + obs["ALT_PNT"], 90.0, rtol=1e-12)
    assert np.all((obs["N_TELS"] >= 3) & (obs["N_TELS"] <= 4))
    assert len(hdu) == 3 * 3
    for row in hdu:
        filename = dataset.path / row["FILE_DIR"] / row["FILE_NAME"]
        with fits.open(filename) as hdus:
            assert row["HDU_NAME"] in hdus
            h = hdus[row["HDU_NAME"]]
            assert row["SIZE"] == h.filebytes()


def test_event_files(dataset):
    obs = Table.read(dataset.path / "obs-index.fits.gz")
    edges = [
        a.edges_canonical for a in (dataset.background.detx_axis, dataset.background.dety_axis)
    ]
    for row, filename in zip(obs, dataset.filenames, strict=True):
        with fits.open(filename) as hdus:
            events, gti = hdus["EVENTS"], hdus["GTI"]
            header = events.header
            units = {c.name: c.unit for c in events.columns}
            assert units == {
                "EVENT_ID": None,
                "TIME": "s",
                "RA": "deg",
                "DEC": "deg",
                "DETX": "deg",
                "DETY": "deg",
                "ENERGY": "TeV",
            }
            for key in (
                "OBS_ID",
                "RA_PNT",
                "DEC_PNT",
                "ALT_PNT",
                "AZ_PNT",
                "ONTIME",
                "LIVETIME",
                "DEADC",
                "TSTART",
                "TSTOP",
            ):
                assert header[key] == pytest.approx(row[key], rel=1e-12), key
            assert header["FOVALIGN"] == "RADEC"
            assert header["HDUCLASS"] == "GADF" and header["HDUCLAS1"] == "EVENTS"
            assert header["GEOLAT"] == pytest.approx(-23.2717777777778)
            assert header["GEOLON"] == pytest.approx(16.5002222222222)
            assert header["ALTITUDE"] == pytest.approx(1835.0)
            assert (header["MJDREFI"], header["MJDREFF"]) == (51910, 0.000742870370370241)
            data = events.data
            assert len(data) == row["EVENT_COUNT"]
            assert_array_equal(data["EVENT_ID"], np.arange(1, len(data) + 1))
            time = data["TIME"]
            assert np.all(np.diff(time) >= 0)
            assert_allclose(gti.data["START"], [row["TSTART"]])
            assert_allclose(gti.data["STOP"], [row["TSTOP"]])
            assert time.min() >= row["TSTART"] and time.max() < row["TSTOP"]
            assert data["DETX"].min() >= edges[0][0] and data["DETX"].max() < edges[0][-1]
            assert data["DETY"].min() >= edges[1][0] and data["DETY"].max() < edges[1][-1]
            # RA/DEC and DETX/DETY agree through the RADEC convention of bgcube.data.fov
            detx, dety = sky_to_fov(data["RA"], data["DEC"], row["RA_PNT"], row["DEC_PNT"])
            assert_allclose(detx, data["DETX"], atol=1e-9)
            assert_allclose(dety, data["DETY"], atol=1e-9)


def test_bkg_hdu_is_the_runs_true_rate(dataset):
    from bgcube import FOVCube

    for obs_id, filename, norm in zip(
        dataset.obs_ids, dataset.filenames, dataset.norms, strict=True
    ):
        cube = FOVCube.read(filename, hdu="BKG")
        expected = dataset.run_background(obs_id)
        assert cube.unit.is_equivalent("1 / (MeV s sr)")
        assert_allclose(cube.quantity.to_value(expected.unit), expected.quantity.value, rtol=1e-12)
        assert_allclose(norm, altitude_norm(dataset.obs_table["ALT_PNT"][obs_id - 1]))
        assert cube.meta.get("FOVALIGN") == "RADEC"


def test_true_model_file(dataset):
    model = FOVCubeBackgroundModel.read(dataset.path / "true_model.fits.gz")
    truth = dataset.true_model()
    assert model.time_convention == "ONTIME"
    for name in ("counts_cube", "livetime_cube", "background_cube"):
        assert_allclose(
            getattr(model, name).quantity.value,
            getattr(truth, name).quantity.to_value(getattr(model, name).unit),
            rtol=1e-12,
        )
    assert_allclose(to_numpy(truth.livetime_cube.data), 3 * 600.0)


def test_data_store_reads_the_dataset(dataset):
    store = DataStore.from_dir(dataset.path)
    assert len(store) == 3
    for obs_id, n in zip(dataset.obs_ids, dataset.n_background, strict=True):
        obs = store.observation(obs_id)
        assert len(obs.events) == n
        assert obs.fov_alignment == "RADEC"
        assert obs.ontime == 600 * u.s
        assert obs.location is not None


def test_reproducible_from_seed(tmp_path):
    a = make_small(tmp_path / "a", seed=5)
    b = make_small(tmp_path / "b", seed=5)
    c = make_small(tmp_path / "c", seed=6)
    names = ["obs-index.fits.gz", "hdu-index.fits.gz", "truth.fits.gz"]
    names += [f"data/{f.name}" for f in a.filenames]
    for name in names:
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), name
    for ha, hb in zip(
        read_hdus(a.path / "true_model.fits.gz"),
        read_hdus(b.path / "true_model.fits.gz"),
        strict=True,
    ):
        if ha[1] is not None:
            assert ha[1].tobytes() == hb[1].tobytes()
    events_a = read_hdus(a.filenames[0])[1][1]
    events_c = read_hdus(c.filenames[0])[1][1]
    assert len(events_a) != len(events_c) or not np.array_equal(
        events_a["ENERGY"], events_c["ENERGY"]
    )


def test_generator_as_random_state(tmp_path):
    a = make_small(tmp_path / "a", seed=np.random.default_rng(9))
    b = make_small(tmp_path / "b", seed=9)
    assert_array_equal(a.n_background, b.n_background)


def test_outdir_not_overwritten(tmp_path, dataset):
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        make_small(dataset.path, seed=1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        make_small(tmp_path / "file", seed=1)


def test_overwrite_rewrites(tmp_path):
    first = make_small(tmp_path / "ds", seed=1)
    second = make_small(tmp_path / "ds", seed=2, overwrite=True)
    assert not np.array_equal(first.n_background, second.n_background)
    obs = Table.read(tmp_path / "ds" / "obs-index.fits.gz")
    assert_array_equal(obs["EVENT_COUNT"], second.n_background)


def test_event_counts_are_poisson_around_expectation(dataset):
    # each run: total background events ~ Poisson(sum of expected counts)
    for obs_id, n in zip(dataset.obs_ids, dataset.n_background, strict=True):
        mu = dataset.expected_counts([obs_id]).sum()
        assert mu > 1000
        assert abs(n - mu) < 5 * np.sqrt(mu), (obs_id, n, mu)
    mu_all = dataset.expected_counts().sum()
    assert abs(dataset.n_background.sum() - mu_all) < 5 * np.sqrt(mu_all)
    assert np.all(dataset.n_source == 0)
    assert_allclose(dataset.expected_counts(), to_numpy(dataset.true_model().counts_cube.data))


def test_filled_counts_equal_events_in_truth_binning(dataset):
    # events are drawn inside their bins, so a fill with the truth edges keeps every event
    b = dataset.background
    model = FOVCubeBackgroundModel.set_cube_binning(b.coordx_edges, b.coordy_edges, b.energy_edges)
    store = dataset.data_store()
    for obs_id in dataset.obs_ids:
        model.fill_events(store.observation(obs_id).events)
    assert float(np.sum(to_numpy(model.counts_cube.data))) == dataset.n_background.sum()


def test_sources_add_events_near_them(dataset_with_sources):
    ds = dataset_with_sources
    assert (ds.path / "sources.ecsv").is_file()
    table = Table.read(ds.path / "sources.ecsv")
    assert list(table["NAME"]) == ["S1"]
    assert table["RADIUS"].unit == u.deg
    assert table["RADIUS"][0] == pytest.approx(0.4)
    obs = Table.read(ds.path / "obs-index.fits.gz")
    assert list(obs["OBJECT"]) == ["S1"] * 3
    assert_allclose(obs["OFFSET_OBJ"], 0.5, atol=1e-6)
    # rate 2 Hz x 600 s, 0.5 deg from the pointing: nearly all inside the field of view
    assert np.all(np.abs(ds.n_source - 1200) < 5 * np.sqrt(1200))
    for filename in ds.filenames:
        data = fits.getdata(filename, "EVENTS")
        detx, dety = sky_to_fov(data["RA"], data["DEC"], 83.0, -30.0)
        near = np.hypot(detx, dety) < 0.3
        # the source's 2D Gaussian puts 99 % of ~1200 events within 3 sigma
        assert near.sum() > 1000


def test_point_at_sources_false_keeps_free_sky(tmp_path):
    sources = [GaussianSource("S1", ra=83.0, dec=-30.0)]
    ds = make_small(tmp_path / "ds", seed=3, sources=sources, point_at_sources=False)
    assert all(name.startswith("SIM-FIELD-") for name in ds.obs_table["OBJECT"])


def test_observation_table_ranges():
    table = make_test_observation_table(
        50, az_range=Angle([90, 180], "deg"), alt_range=Angle([60, 70], "deg"), random_state=1
    )
    assert np.all((table["ALT_PNT"] > 59.9) & (table["ALT_PNT"] < 70.1))
    assert np.all((table["AZ_PNT"] > 89.9) & (table["AZ_PNT"] < 180.1))
    assert np.all((table["DEC_PNT"] >= -90) & (table["DEC_PNT"] <= 90))
    assert len(set(table["OBS_ID"])) == 50


def test_observation_table_targets():
    sources = example_sources()
    targets = [(s.name, s.ra, s.dec) for s in sources]
    table = make_test_observation_table(12, targets=targets, random_state=2)
    assert list(table["OBJECT"][:3]) == [s.name for s in sources]
    assert_allclose(table["OFFSET_OBJ"], 0.5, atol=1e-6)
    assert np.all((table["ALT_PNT"] > 44.0) & (table["ALT_PNT"] <= 90.0))
    with pytest.raises(ValueError, match="culminates"):
        make_test_observation_table(2, targets=[("north", 10.0, 60.0)], random_state=2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_obs=0), "n_obs"),
        (dict(alt_range=Angle([50, 40], "deg")), "alt_range"),
        (dict(deadc_range=(0.0, 0.9)), "deadc_range"),
        (dict(n_tels_range=(0, 4)), "n_tels_range"),
        (dict(ontime=0 * u.s), "ontime"),
    ],
)
def test_observation_table_bad_input(kwargs, match):
    options = dict(n_obs=2, random_state=0)
    options.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_test_observation_table(**options)


def test_sample_binned_events_exact():
    rng = np.random.default_rng(0)
    e = np.geomspace(0.1, 10, 4)
    y = np.linspace(-1, 1, 3)
    x = np.linspace(-2, 2, 5)
    expected = np.arange(24, dtype=float).reshape(3, 2, 4) * 10
    energy, dety, detx, counts = sample_binned_events(expected, e, y, x, rng)
    assert counts.shape == expected.shape and counts.sum() == energy.size
    assert counts[0, 0, 0] == 0  # zero mean, zero events
    hist, _ = np.histogramdd(np.stack([energy, dety, detx], axis=1), bins=[e, y, x])
    assert_array_equal(hist, counts)
    with pytest.raises(ValueError, match="finite and >= 0"):
        sample_binned_events(-expected, e, y, x, rng)


def test_uniform_in_bins_stays_below_upper_edge():
    class AlmostOne:
        def random(self, n):
            return np.full(n, 1.0 - 2.0**-53)

    edges = np.array([0.1, 0.30000000000000004, 0.7])
    values = uniform_in_bins(edges, np.array([0, 1]), AlmostOne())
    assert np.all(values < edges[1:])
    assert np.all(values >= edges[:-1])


def test_gaussian_source_validation():
    with pytest.raises(ValueError, match="sigma"):
        GaussianSource("bad", 0.0, 0.0, sigma=0.0)
    with pytest.raises(ValueError, match="rate"):
        GaussianSource("bad", 0.0, 0.0, rate=-1.0)
    with pytest.raises(ValueError, match="dec"):
        GaussianSource("bad", 0.0, 95.0)


def test_read_by_gammapy(dataset):
    gammapy_data = pytest.importorskip("gammapy.data")
    from gammapy.utils.coordinates import sky_to_fov as gp_sky_to_fov

    store = gammapy_data.DataStore.from_dir(dataset.path)
    obs = store.obs(int(dataset.obs_ids[0]), required_irf=[])
    events = obs.events.table
    assert len(events) == dataset.n_background[0]
    pointing = obs.get_pointing_icrs(obs.tmid)
    lon, lat = gp_sky_to_fov(
        events["RA"].quantity, events["DEC"].quantity, pointing.ra, pointing.dec
    )
    assert_allclose(lon.to_value(u.deg), events["DETX"], atol=1e-7)
    assert_allclose(lat.to_value(u.deg), events["DETY"], atol=1e-7)


def test_bkg_hdu_orientation_as_gammapy(tmp_path):
    pytest.importorskip("gammapy")
    from gammapy.irf import Background3D

    from bgcube import FOVCube

    # a rate that differs along every axis, with unequal DETX and DETY bin counts
    detx = Angle(np.linspace(-3, 3, 13), "deg")
    dety = Angle(np.linspace(-2, 2, 9), "deg")
    energy = np.geomspace(0.1, 100, 5) * u.TeV
    ie, iy, ix = np.meshgrid(np.arange(4), np.arange(8), np.arange(12), indexing="ij")
    rate = 1e-3 * (1 + ix) * 10.0 ** (0.1 * iy) * 10.0 ** (-ie)
    cube = FOVCube(detx, dety, energy, data=rate * u.Unit("1 / (MeV s sr)"), scheme="bg_cube")
    ds = make_test_dataset(
        tmp_path / "ds", n_obs=1, background=cube, ontime=10 * u.s, random_state=0
    )
    bkg = Background3D.read(ds.filenames[0], hdu="BKG")
    x, y = cube.detx_axis.centers, cube.dety_axis.centers
    e = cube.energy_axis.centers
    values = bkg.evaluate(
        fov_lon=x[None, None, :],
        fov_lat=y[None, :, None],
        energy=e[:, None, None],
        method="nearest",
    )
    assert_allclose(values.to_value("1 / (MeV s sr)"), rate * ds.norms[0], rtol=1e-12)


def test_read_back_with_truth(dataset_with_sources, tmp_path):
    from bgcube.data.exclusion import ExclusionRegions
    from bgcube.simulate import SimulatedDataset

    ds = dataset_with_sources
    back = SimulatedDataset.read(ds.path)
    assert_array_equal(back.obs_ids, ds.obs_ids)
    assert_allclose(back.norms, ds.norms, rtol=0)
    assert_array_equal(back.n_background, ds.n_background)
    assert_array_equal(back.n_source, ds.n_source)
    assert back.sources == ds.sources
    assert [f.resolve() for f in back.filenames] == [f.resolve() for f in ds.filenames]
    assert_allclose(
        back.background.quantity.to_value(ds.background.unit),
        ds.background.quantity.value,
        rtol=1e-15,
    )
    assert_allclose(
        to_numpy(back.true_model([2, 3]).background_cube.data),
        to_numpy(ds.true_model([2, 3]).background_cube.data),
        rtol=1e-14,
    )
    regions = ExclusionRegions.read(ds.path / "sources.ecsv")
    assert len(regions) == 1 and regions.radius[0] == pytest.approx(0.4)
    with pytest.raises(Exception, match="not a simulated data set"):
        SimulatedDataset.read(tmp_path)
