"""The make-models pipeline and the bgcube command, on small simulated data sets."""

import shutil

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from bgcube import FOVCube, FOVCubeBackgroundModel
from bgcube.cli import main
from bgcube.data import DataStore, ExclusionRegions
from bgcube.errors import ObservationError
from bgcube.make import cube_shape, define_cube_binning, make_models
from bgcube.make.pipeline import OUTPUT_NAMES
from bgcube.simulate import make_test_dataset


@pytest.mark.parametrize(
    "n_obs, shape",
    [
        (105, (20, 60, 60)),
        (100, (20, 60, 60)),
        (99, (19, 56, 56)),
        (28, (12, 28, 28)),
        (5, (10, 20, 20)),
    ],
)
def test_cube_shape_follows_the_original(n_obs, shape):
    assert cube_shape(n_obs) == shape


def test_define_cube_binning_default_and_michi():
    table = Table({"OBS_ID": np.arange(120), "SAFE_ENERGY_LO": np.linspace(0.3, 2, 120) * u.TeV})
    detx, dety, energy = define_cube_binning(table)
    assert len(energy) == 21 and len(detx) == 61
    assert energy[0].to_value("TeV") == pytest.approx(0.1) and energy[-1].to_value(
        "TeV"
    ) == pytest.approx(100)
    assert detx[-1].to_value("rad") == pytest.approx(0.07)
    _, _, energy = define_cube_binning(table, method="michi")
    assert energy[0].to_value("TeV") == pytest.approx(0.3)
    model = FOVCubeBackgroundModel.define_cube_binning(table, "michi")
    assert model.counts_cube.shape == (20, 60, 60)
    with pytest.raises(ObservationError, match="energy threshold"):
        define_cube_binning(Table({"OBS_ID": [1]}), method="michi")


def _flat_truth(n_obs):
    """A background flat in the field of view with an E^-2 rate, on the pipeline's binning."""
    detx, dety, energy = define_cube_binning(Table({"OBS_ID": np.arange(n_obs)}))
    e_center = np.sqrt(energy[:-1] * energy[1:]).to_value("TeV")
    rate = np.broadcast_to(
        (1e-4 * e_center**-2)[:, None, None], (len(energy) - 1, len(dety) - 1, len(detx) - 1)
    )
    return FOVCube(
        detx, dety, energy, data=rate.copy() * u.Unit("1 / (MeV s sr)"), scheme="bg_cube"
    )


@pytest.fixture(scope="module")
def flat_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("flat")
    dataset = make_test_dataset(
        path,
        n_obs=6,
        random_state=42,
        background=_flat_truth(6),
        zenith_dependence=lambda alt: 1.0,
        alt_range=(70, 80) * u.deg,
    )
    return dataset


def test_exclusion_keeps_a_flat_background_flat(flat_dataset, tmp_path):
    store = DataStore.from_dir(flat_dataset.path)
    table = store.obs_table
    # a 1.5 deg circle 1 deg north of each pointing: a large bite out of every field
    circles = [
        (float(r["RA_PNT"]), float(r["DEC_PNT"]) + 1.0, 1.5, f"hole {r['OBS_ID']}") for r in table
    ]
    regions = ExclusionRegions.from_list(circles)
    result = make_models(
        store, tmp_path, exclusion=regions, smooth=False, progress=False, model="groups"
    )
    assert len(result.groups) == 1 and result.failed == []
    group = result.groups[0]
    assert group.n_excluded > 0
    model = group.model
    truth = flat_dataset.background.quantity
    time = model.livetime_cube.quantity
    counts = model.counts_cube.quantity.value
    expected = (truth * time * model.counts_cube.bin_volume).to_value("")
    # pixels partly or fully excluded have less time, never more
    full_time = float(u.Quantity(table["ONTIME"]).to_value("s").sum())
    assert time.to_value("s").max() == pytest.approx(full_time)
    partial = time.to_value("s")[0] < full_time * 0.999
    assert partial.sum() > 10
    # energy-summed counts per pixel against the truth: Poisson pulls ~ N(0, 1),
    # in the partly excluded pixels too (no dip at the exclusion)
    n_pix, mu_pix = counts.sum(axis=0), expected.sum(axis=0)
    good = mu_pix > 20
    pulls = (n_pix[good] - mu_pix[good]) / np.sqrt(mu_pix[good])
    assert abs(pulls.mean()) < 0.3 and 0.7 < pulls.std() < 1.3
    part = good & partial & (time.to_value("s")[0] > 0)
    part_pulls = (n_pix[part] - mu_pix[part]) / np.sqrt(mu_pix[part])
    assert abs(part_pulls.mean()) < 3 / np.sqrt(part.sum())


def test_excluded_events_never_reach_the_counts(flat_dataset, tmp_path):
    store = DataStore.from_dir(flat_dataset.path)
    row = store.obs_table[0]
    # exclude everything within 10 deg of the first pointing: that run adds no counts
    regions = ExclusionRegions.from_list(
        [(float(row["RA_PNT"]), float(row["DEC_PNT"]), 10.0, "all")]
    )
    model = FOVCubeBackgroundModel.define_cube_binning(store.obs_table[:1])
    filled, failed = model.fill_obs(store.obs_table[:1], store, regions)
    assert failed == [] and filled[0].n_excluded == filled[0].n_events > 0
    assert float(model.counts_cube.data.sum()) == 0
    assert float(model.livetime_cube.data.max()) == 0


def test_pipeline_writes_the_original_files_and_groups_every_run_once(flat_dataset, tmp_path):
    result = make_models(
        flat_dataset.path,
        tmp_path,
        zenith_edges=(0, 15, 60),
        exclusion="none",
        progress=False,
        model="groups",
    )
    names = {p.name for p in tmp_path.iterdir()}
    for key in ("observations", "grouped", "groups", "exclusion"):
        assert OUTPUT_NAMES[key] in names
    grouped = Table.read(tmp_path / OUTPUT_NAMES["grouped"])
    assert sorted(grouped["OBS_ID"]) == sorted(flat_dataset.obs_ids)
    for g in result.groups:
        assert f"bg_cube_model_group{g.group_id}_table.fits.gz" in names
        assert f"bg_cube_model_group{g.group_id}_image.fits.gz" in names
        model = FOVCubeBackgroundModel.read(
            tmp_path / f"bg_cube_model_group{g.group_id}_table.fits.gz"
        )
        assert model.time_convention == "ONTIME"
        assert model.background_cube.meta.get("FOVALIGN") == "RADEC"
    assert sum(len(g.obs_ids) for g in result.groups) == len(flat_dataset.obs_ids)
    # nothing is overwritten without asking, and the check comes before any work
    before = (tmp_path / OUTPUT_NAMES["observations"]).stat().st_mtime_ns
    with pytest.raises(FileExistsError):
        make_models(flat_dataset.path, tmp_path, exclusion="none", progress=False, model="groups")
    assert (tmp_path / OUTPUT_NAMES["observations"]).stat().st_mtime_ns == before


def test_unreadable_run_is_named_and_left_out(flat_dataset, tmp_path):
    store = DataStore.from_dir(flat_dataset.path)
    broken = tmp_path / "broken"
    shutil.copytree(flat_dataset.path, broken)
    events_file = store.hdu_location(int(store.obs_ids[0]), "events")[0]
    victim = events_file.name
    (broken / events_file.relative_to(flat_dataset.path)).write_bytes(b"not a FITS file")
    result = make_models(broken, tmp_path / "out", exclusion="none", progress=False, model="groups")
    assert [obs_id for obs_id, _ in result.failed] == [int(store.obs_ids[0])]
    assert victim in result.failed[0][1]
    with pytest.raises(ObservationError, match=str(int(store.obs_ids[0]))):
        make_models(
            broken,
            tmp_path / "out2",
            exclusion="none",
            progress=False,
            fail_fast=True,
            model="groups",
        )


def test_command_line(flat_dataset, tmp_path, capsys):
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(flat_dataset.path),
                str(tmp_path),
                "--test",
                "--no-progress",
                "--exclusion",
                "none",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "GROUP_ID" in out and "file(s) written" in out
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(flat_dataset.path),
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 1
    )
    assert "use --overwrite" in capsys.readouterr().err
    assert (
        main(["make-models", "--model", "groups", str(tmp_path / "missing"), str(tmp_path / "x")])
        == 1
    )
    assert "does not exist" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "bg_cube_model_group0_table.fits.gz")]) == 0
    assert "BACKGROUND" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["make-models", "--model", "groups", "--help"])
    assert exc.value.code == 0
    assert "--exclusion" in capsys.readouterr().out


def test_smooth_passes_option(flat_dataset, tmp_path):
    raw = make_models(
        flat_dataset.path,
        tmp_path / "raw",
        exclusion="none",
        smooth=False,
        progress=False,
        model="groups",
    )
    once = make_models(
        flat_dataset.path,
        tmp_path / "once",
        exclusion="none",
        smooth=1,
        progress=False,
        model="groups",
    )
    model = raw.groups[0].model
    model.smooth(n_passes=1)
    np.testing.assert_allclose(
        once.groups[0].model.background_cube.quantity, model.background_cube.quantity, rtol=1e-12
    )
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(flat_dataset.path),
                str(tmp_path / "cli"),
                "--smooth-passes",
                "1",
                "--exclusion",
                "none",
                "--no-progress",
            ]
        )
        == 0
    )
