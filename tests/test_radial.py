"""Radially symmetric models: GADF BKG_2D I/O against Gammapy, make-models/apply-models 2d."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.table import Table
from numpy.testing import assert_allclose, assert_array_equal

from bgcube import FOVCube
from bgcube.cli import main
from bgcube.data import DataStore
from bgcube.describe import describe_file
from bgcube.errors import DataNotFoundError, FileFormatError
from bgcube.make import make_models
from bgcube.make.apply import apply_models
from bgcube.make.gammapy_index import BKG_SUBDIR, bkg_file_name
from bgcube.make.radial_models import RadialGroupModels, radial_group_files
from bgcube.radial import RadialBackground, radial_from_cubes
from bgcube.simulate import make_test_background, make_test_dataset
from bgcube.simulate.compare import compare_models

RATE = u.Unit("1 / (MeV s sr)")


def _model(n_e, n_o, seed=0):
    rng = np.random.default_rng(seed)
    energy = np.geomspace(0.1, 100, n_e + 1) * u.TeV
    offset = np.linspace(0, 2.5, n_o + 1) * u.deg
    data = rng.uniform(0.5, 2, (n_e, n_o)) * 1e-6 * np.geomspace(1, 1e-6, n_e)[:, None]
    return RadialBackground(energy, offset, data * RATE, meta={"BKG_TIME": "ONTIME"})


@pytest.mark.gammapy
@pytest.mark.parametrize(("n_e", "n_o"), [(7, 5), (6, 6)])  # 6 x 6: a shape that cannot tell
def test_gammapy_background2d_reads_identical_values(tmp_path, n_e, n_o):
    irf = pytest.importorskip("gammapy.irf")
    model = _model(n_e, n_o)
    model.write(tmp_path / "bkg2d.fits.gz")
    theirs = irf.Background2D.read(tmp_path / "bkg2d.fits.gz", hdu="BACKGROUND")
    # Gammapy rebuilds log edges from the bin bounds (last-digit rounding); the data are exact
    assert_allclose(
        theirs.axes["energy"].edges.to_value(u.TeV), model.energy_edges.value, rtol=1e-14
    )
    assert_allclose(
        theirs.axes["offset"].edges.to_value(u.deg), model.offset_edges.value, rtol=1e-14
    )
    assert theirs.unit == model.unit
    assert_array_equal(theirs.data, model.data)  # [energy, offset], bit for bit
    # and the other way: a file Gammapy wrote reads back to the same values
    theirs.write(tmp_path / "gammapy.fits", overwrite=True)
    back = RadialBackground.read(tmp_path / "gammapy.fits")
    assert_array_equal(back.data, model.data)
    assert_array_equal(back.offset_edges.value, model.offset_edges.value)


def test_roundtrip_info_and_errors(tmp_path):
    model = _model(5, 4)
    model.write(tmp_path / "m.fits")
    back = RadialBackground.read(tmp_path / "m.fits", hdu="BACKGROUND")
    assert_array_equal(back.data, model.data) and back.meta["BKG_TIME"] == "ONTIME"
    assert "BKG_2D (energy, offset) = (5, 4)" in describe_file(tmp_path / "m.fits")
    header = Table.read(tmp_path / "m.fits", hdu=1).meta
    assert header["HDUCLAS4"] == "BKG_2D" and header["HDUCLAS2"] == "BKG"
    with pytest.raises(FileFormatError, match="no BKG_2D HDU"):
        _cube3d().write(tmp_path / "c.fits", format="table")
        RadialBackground.read(tmp_path / "c.fits")
    with pytest.raises(FileFormatError, match="BKG_2D.*RadialBackground.read"):
        FOVCube.read(tmp_path / "m.fits")
    with pytest.raises(ValueError, match="data shape"):
        RadialBackground(model.energy_edges, model.offset_edges, np.ones((4, 4)))
    with pytest.raises(Exception, match="exists"):
        model.write(tmp_path / "m.fits")


def _cube3d():
    e = np.geomspace(0.1, 100, 4) * u.TeV
    x = np.linspace(-2, 2, 5) * u.deg
    return FOVCube(x, x, e, data=np.ones((3, 4, 4)) * RATE, scheme="bg_cube")


def test_evaluate_is_a_power_law_in_energy_and_linear_in_offset():
    energy = np.geomspace(1, 100, 3) * u.TeV  # nodes at 3.16 and 31.6 TeV
    offset = np.array([0, 1, 2]) * u.deg  # nodes at 0.5 and 1.5 deg
    data = np.array([[4.0, 2.0], [0.04, 0.02]])
    model = RadialBackground(energy, offset, data * RATE)
    e_mid = np.sqrt(energy[1:] * energy[:-1])
    assert_allclose(model.evaluate(0.5 * u.deg, np.sqrt(e_mid[0] * e_mid[1])).value, 0.4)
    assert_allclose(model.evaluate(1.0 * u.deg, e_mid[0]).value, 3.0)
    assert model.evaluate(2.5 * u.deg, e_mid[0]).value == 0  # outside


def test_radial_reduction_of_a_flat_cube_is_exact():
    cube = _cube3d()
    time = cube.copy(data=np.full(cube.shape, 10.0))
    time.unit = u.s
    counts = cube.copy(data=np.full(cube.shape, 5.0))
    counts.unit = u.dimensionless_unscaled
    radial = radial_from_cubes(counts, time, offset_edges=[0, 1, 2] * u.deg)
    d_omega = np.radians(1.0) ** 2
    d_e = np.diff(cube.energy_edges.to_value(u.MeV))[:, None]
    # 4 pixel centres at offset 0.71 deg, 8 at 1.58 deg (4 at 2.12 deg fall outside)
    assert_array_equal(radial.counts[0], [20, 40])
    assert_allclose(radial.data, 5 / (10 * d_omega * d_e) * np.ones((3, 2)), rtol=1e-12)


@pytest.fixture(scope="module")
def radial_dataset(tmp_path_factory):
    background = make_test_background(
        Angle(4, "deg"),
        2.0,
        20 * u.Hz,
        fov_range=Angle([-3, 3], "deg"),
        n_fov_bins=24,
        energy_band=[0.1, 100] * u.TeV,
        n_energy_bins=8,
    )
    root = tmp_path_factory.mktemp("radial")
    ds = make_test_dataset(
        root / "ds",
        n_obs=6,
        random_state=11,
        background=background,
        alt_range=Angle([60, 80], "deg"),
        ontime=1800 * u.s,
    )
    result = make_models(
        ds.path,
        root / "models",
        exclusion="none",
        progress=False,
        zenith_edges=(0, 40),
        model_type="2d",
        model="groups",
    )
    return ds, root, result


def test_bkg_2d_from_simulated_data_recovers_the_truth(radial_dataset):
    ds, root, result = radial_dataset
    (group,) = result.groups
    radial = RadialBackground.read(radial_group_files(root / "models", [group.group_id])[0])
    truth = ds.true_model(group.obs_ids, time_convention=result.time_convention)
    expected_3d = compare_models(group.model, truth, min_expected=0).expected
    time = group.model.livetime_cube
    expected = radial_from_cubes(
        group.model.counts_cube.copy(data=expected_3d), time, offset_edges=radial.offset_edges
    ).counts
    reduced = radial_from_cubes(group.model.counts_cube, time, offset_edges=radial.offset_edges)
    assert_allclose(radial.data, reduced.data, rtol=1e-12)  # what make-models wrote
    observed = reduced.counts
    use = expected >= 10
    assert use.sum() >= 30
    pulls = (observed[use] - expected[use]) / np.sqrt(expected[use])
    assert abs(pulls.mean()) < 3 / np.sqrt(use.sum())
    assert 0.75 < pulls.std() < 1.25
    # the rate over the truth's rate in the same bins, within Poisson errors everywhere
    true_rate = expected / (
        reduced.exposure.to_value("s sr") * np.diff(radial.energy_edges.to_value(u.MeV))[:, None]
    )
    ratio = radial.data[use] / true_rate[use]
    assert np.all(np.abs(ratio - 1) < 4.5 / np.sqrt(expected[use]))


@pytest.mark.gammapy
def test_apply_models_2d_through_gammapy(radial_dataset, tmp_path, capsys):
    gdata = pytest.importorskip("gammapy.data")
    ds, root, result = radial_dataset
    ids = [int(i) for i in ds.obs_ids]
    status = main(
        [
            "apply-models",
            str(root / "models"),
            str(ds.path),
            str(tmp_path / "B"),
            "--model-type",
            "2d",
            "--obs-ids",
            ",".join(map(str, ids[:3])),
            "--extrapolate",
        ]
    )
    assert status == 0, capsys.readouterr().err
    source = RadialGroupModels.read(root / "models")
    rows = {int(r["OBS_ID"]): r for r in DataStore.from_dir(ds.path).obs_table}
    store = gdata.DataStore.from_dir(tmp_path / "B")
    offset = np.array([0.1, 0.7, 1.4, 2.2]) * u.deg
    energy = np.array([0.3, 1.0, 3.0, 10.0]) * u.TeV
    for obs_id in ids[:3]:
        obs = store.obs(obs_id, required_irf=[])
        assert type(obs.bkg).__name__ == "Background2D"
        ours = source.background(rows[obs_id])
        assert_array_equal(obs.bkg.data, ours.data)
        written = RadialBackground.read(tmp_path / "B" / BKG_SUBDIR / bkg_file_name(obs_id))
        assert written.meta["OBS_ID"] == obs_id
        assert np.all(np.isfinite(obs.bkg.evaluate(offset=offset, energy=energy)))


def test_apply_models_2d_needs_2d_models(tmp_path, radial_dataset):
    ds, root, result = radial_dataset
    make_models(
        ds.path,
        tmp_path / "m3",
        exclusion="none",
        progress=False,
        zenith_edges=(0, 40),
        model="groups",
    )
    with pytest.raises(DataNotFoundError, match="--model-type 2d"):
        apply_models(tmp_path / "m3", ds.path, tmp_path / "B", model_type="2d")
