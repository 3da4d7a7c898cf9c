"""apply-models on group model folders: each run gets the group and the model make-models gives it.

Applied to the runs a folder was built from, apply-models writes the same
per-run files as make-models did, to the byte; a new run gets the group of
its zenith and azimuth and the build's per-run model (its group's model, or
the group models interpolated in cos(zenith)); a folder that lacks the model
of a group with runs is refused.
"""

import shutil

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.table import Table

from bgcube import FOVCube
from bgcube.cli import main
from bgcube.data import DataStore
from bgcube.errors import DataNotFoundError
from bgcube.make import make_models
from bgcube.make.apply import apply_models
from bgcube.make.gammapy_index import BKG_SUBDIR, bkg_file_name
from bgcube.make.group_source import PER_OBSERVATION_KEYWORD
from bgcube.make.grouping import ObservationGroups
from bgcube.make.model_source import load_model_source
from bgcube.simulate import make_test_background, make_test_dataset

ZENITH_EDGES = (0, 22, 30, 38, 60)
NORTH_SOUTH = (-90, 90, 270)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """24 runs at zenith 10-50 deg, all azimuths."""
    background = make_test_background(
        Angle(4, "deg"),
        2.0,
        8 * u.Hz,
        fov_range=Angle([-3, 3], "deg"),
        n_fov_bins=8,
        energy_band=[0.1, 100] * u.TeV,
        n_energy_bins=4,
    )
    return make_test_dataset(
        tmp_path_factory.mktemp("apply_groups") / "ds",
        n_obs=24,
        random_state=11,
        background=background,
        az_range=Angle([0, 360], "deg"),
        alt_range=Angle([40, 80], "deg"),
        ontime=200 * u.s,
    )


def _build(dataset, outdir, **options):
    options = dict(
        exclusion="none",
        progress=False,
        smooth=1,
        model="groups",
        zenith_edges=ZENITH_EDGES,
        **options,
    )
    return make_models(dataset.path, outdir, **options)


def _bkg_files(folder):
    return {p.name: p.read_bytes() for p in sorted((folder / BKG_SUBDIR).glob("*.fits.gz"))}


def _group_of(path):
    with fits.open(path) as hdus:
        return int(hdus[1].header["BKG_GRP"])


@pytest.mark.parametrize(
    "options",
    [
        dict(per_observation="group", azimuth_edges=NORTH_SOUTH),
        dict(per_observation="interpolate", azimuth_edges=NORTH_SOUTH),
        dict(per_observation="interpolate", min_observations=5),
        dict(per_observation="interpolate", time_convention="LIVETIME"),
    ],
    ids=["group-north-south", "interpolate-north-south", "interpolate-merged", "livetime"],
)
def test_applied_to_its_own_runs_it_writes_the_files_of_make_models(dataset, tmp_path, options):
    result = _build(dataset, tmp_path / "models", **options)
    made = _bkg_files(tmp_path / "models")
    assert len(made) == len(dataset.obs_ids) == len(result.observations)
    applied = apply_models(tmp_path / "models", dataset.path, tmp_path / "applied", progress=False)
    assert sorted(applied.applied) == sorted(int(i) for i in dataset.obs_ids)
    written = _bkg_files(tmp_path / "applied")
    assert sorted(written) == sorted(made)
    differ = [name for name in made if written[name] != made[name]]
    assert not differ, f"{len(differ)} of {len(made)} files differ: {differ[:5]}"


def test_a_new_run_takes_the_group_of_its_zenith_and_azimuth(dataset, tmp_path):
    ids = [int(i) for i in dataset.obs_ids]
    built, new = ids[::2], ids[1::2]
    _build(
        dataset,
        tmp_path / "models",
        obs_ids=built,
        per_observation="group",
        azimuth_edges=NORTH_SOUTH,
    )
    groups = ObservationGroups.read(tmp_path / "models" / "bg_observation_groups.ecsv")
    source = load_model_source(tmp_path / "models")
    result = apply_models(tmp_path / "models", dataset.path, tmp_path / "applied", obs_ids=new)
    table = DataStore.from_dir(dataset.path).obs_table
    rows = {int(r["OBS_ID"]): r for r in table}
    south = 0
    for obs_id in result.applied:
        row = rows[obs_id]
        expected = int(groups.group_id_of(row["ZEN_PNT"], row["AZ_PNT"])[0])
        south += 90 <= float(row["AZ_PNT"]) < 270
        path = tmp_path / "applied" / BKG_SUBDIR / bkg_file_name(obs_id)
        assert _group_of(path) == expected, obs_id
        # 'group': the group's model itself (ONTIME, no norm: the rate as it is)
        model = source.cubes[source.group_ids.index(expected)]
        assert np.array_equal(np.asarray(FOVCube.read(path).data), np.asarray(model.data))
    assert 0 < south < len(result.applied)  # both azimuth halves were tried
    assert source.method == "group"


def test_a_run_whose_group_has_no_model_is_left_out_with_the_reason(dataset, tmp_path):
    ids = [int(i) for i in dataset.obs_ids]
    table = DataStore.from_dir(dataset.path).obs_table
    north = [int(r["OBS_ID"]) for r in table if not 90 <= float(r["AZ_PNT"]) < 270]
    south = sorted(set(ids) - set(north))
    _build(
        dataset,
        tmp_path / "models",
        obs_ids=north,
        azimuth_edges=NORTH_SOUTH,
        per_observation="interpolate",
    )
    result = apply_models(tmp_path / "models", dataset.path, tmp_path / "applied", obs_ids=ids)
    assert sorted(result.applied) == sorted(north)
    assert sorted(i for i, _ in result.left_out) == south
    assert all(
        "has no model: no run of the model's build lay in it" in r for _, r in result.left_out
    )


def test_folders_without_the_keyword_follow_their_config_file(dataset, tmp_path):
    """A folder written before the grouped table recorded its per-run models: the method comes
    from bgcube-config.yaml, else the group models are interpolated."""
    ids = ",".join(str(i) for i in dataset.obs_ids[:12])
    argv = ["make-models", "--model", "groups", str(dataset.path), str(tmp_path / "models")]
    argv += ["--per-observation", "group", "--exclusion", "none", "--no-progress"]
    argv += ["--azimuth-edges=-90,90,270", "--zenith-edges", "0,30,60", "--obs-ids", ids]
    assert main(argv) == 0
    grouped = tmp_path / "models" / "bg_observation_table_grouped.fits.gz"
    with fits.open(grouped) as hdus:
        assert hdus[1].header[PER_OBSERVATION_KEYWORD] == "group"
        hdus[1].header.remove(PER_OBSERVATION_KEYWORD)
        hdus.writeto(tmp_path / "grouped.fits.gz")
    shutil.move(tmp_path / "grouped.fits.gz", grouped)
    assert load_model_source(tmp_path / "models").method == "group"
    apply_models(tmp_path / "models", dataset.path, tmp_path / "applied", obs_ids=ids)
    assert _bkg_files(tmp_path / "applied") == _bkg_files(tmp_path / "models")
    (tmp_path / "models" / "bgcube-config.yaml").unlink()
    assert load_model_source(tmp_path / "models").method == "interpolate"


def test_a_missing_group_model_is_an_error_naming_it(dataset, tmp_path, capsys):
    _build(dataset, tmp_path / "models")
    for kind in ("table", "image"):
        (tmp_path / "models" / f"bg_cube_model_group2_{kind}.fits.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"has no bg_cube_model_group2_table\.fits\.gz"):
        apply_models(tmp_path / "models", dataset.path, tmp_path / "api")
    assert not (tmp_path / "api").exists()
    argv = ["apply-models", str(tmp_path / "models"), str(dataset.path), str(tmp_path / "cli")]
    assert main([*argv, "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert "written" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "bg_cube_model_group2_table.fits.gz" in lines[0]
    assert "bg_observation_groups.ecsv" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "cli").exists()


def test_2d_from_folders_without_2d_models_says_how_to_make_them(dataset, tmp_path, capsys):
    _build(dataset, tmp_path / "groups")
    argv = ["apply-models", str(tmp_path / "groups"), str(dataset.path), str(tmp_path / "a")]
    assert main([*argv, "--model-type", "2d"]) == 1
    err = capsys.readouterr().err
    assert "{group_id}" not in err and "bg_2d_model_group<ID>.fits.gz" in err
    assert "make-models --model groups --model-type 2d" in err
    make_models(dataset.path, tmp_path / "joint", exclusion="none", progress=False)
    argv = ["apply-models", str(tmp_path / "joint"), str(dataset.path), str(tmp_path / "b")]
    assert main([*argv, "--model-type", "2d"]) == 1
    err = capsys.readouterr().err
    assert "bg_observation_groups.ecsv" not in err
    assert "joint model" in err and "come from group models" in err
    assert "make-models --model groups --model-type 2d" in err
    argv = ["apply-models", str(tmp_path / "none"), str(dataset.path), str(tmp_path / "c")]
    assert main([*argv, "--model-type", "2d"]) == 1
    assert "does not exist: give the folder of a group build" in capsys.readouterr().err
    _build(dataset, tmp_path / "radial", model_type="2d")
    (tmp_path / "radial" / "bg_2d_model_group1.fits.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"has no bg_2d_model_group1\.fits\.gz, the model"):
        apply_models(tmp_path / "radial", dataset.path, tmp_path / "c", model_type="2d")


# ---------------------------------------------------------------- H.E.S.S. DR1
@pytest.fixture(scope="module")
def dr1(shared_data):
    indir = shared_data / "hess-dl3-dr1"
    if not indir.is_dir():
        pytest.skip(f"no H.E.S.S. DL3 DR1 under {shared_data}")
    return indir


@pytest.mark.parametrize(
    "extra",
    [
        ["--azimuth-edges=-90,90,270", "--per-observation", "group"],
        ["--per-observation", "interpolate"],
        ["--model", "joint"],
    ],
    ids=["north-south-group", "interpolate", "joint"],
)
def test_dr1_apply_writes_what_make_models_wrote(dr1, tmp_path, extra):
    """The runs pointing north (azimuth 16-22 deg) in the north groups, and the runs near a
    group edge (e.g. 23523, zenith 48.6 deg) on their own group's binning."""
    models, applied = tmp_path / "models", tmp_path / "applied"
    model = [] if "--model" in extra else ["--model", "groups"]
    assert main(["make-models", str(dr1), str(models), *model, "--no-progress", *extra]) == 0
    assert main(["apply-models", str(models), str(dr1), str(applied), "--no-progress"]) == 0
    made, written = _bkg_files(models), _bkg_files(applied)
    assert len(made) == 105 and sorted(written) == sorted(made)
    differ = [name for name in made if written[name] != made[name]]
    assert not differ, f"{len(differ)} of 105 files differ: {differ[:5]}"
    if "joint" in extra:  # BKG_GRP: the run's night; 7 runs flagged extrapolated (BKG_EXTR)
        headers = [fits.getheader(applied / BKG_SUBDIR / name, 1) for name in sorted(made)]
        assert [h["BKG_GRP"] for h in headers][-2:] == [59, 59]
        assert sum(bool(h.get("BKG_EXTR")) for h in headers) == 7
        assert {h["SOLIDANG"] for h in headers} == {"FLAT"}
    if "group" in extra:
        groups = [_group_of(applied / BKG_SUBDIR / bkg_file_name(i)) for i in (22997, 28341, 23523)]
        assert groups == [3, 3, 7]
    for name in ("hdu-index.fits.gz", "obs-index.fits.gz"):
        a, b = Table.read(models / name), Table.read(applied / name)
        assert a.colnames == b.colnames and len(a) == len(b)
        for column in a.colnames:
            assert np.array_equal(a[column], b[column], equal_nan=a[column].dtype.kind == "f")
