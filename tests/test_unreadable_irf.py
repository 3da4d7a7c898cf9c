"""A run whose effective area (AEFF_2D) cannot be read is left out like a run whose events
cannot be: make-models and apply-models go on without it, and --fail-fast stops there."""

import shutil

import numpy as np
import pytest
from _irf_helpers import CONDITIONS, aeff_hdu
from astropy.io import fits
from astropy.table import Table, vstack

from bgcube.binning import EFFECTIVE_AREA_COLUMN
from bgcube.cli import main
from bgcube.data import DataStore
from bgcube.data.irf import with_effective_area
from bgcube.errors import FileFormatError, ObservationError
from bgcube.fit.joint import JOINT_MODEL_FILE, JointBackgroundModel
from bgcube.make import make_models
from bgcube.make.apply import apply_models
from bgcube.make.gammapy_index import BKG_SUBDIR, bkg_file_name
from bgcube.simulate import make_test_dataset


def _with_effective_areas(source, folder):
    """A copy of a simulated data set with an AEFF_2D file per run in its HDU index."""
    shutil.copytree(source, folder)
    hdu_index = Table.read(folder / "hdu-index.fits.gz")
    rows = []
    for k, obs_id in enumerate(sorted(set(int(i) for i in hdu_index["OBS_ID"]))):
        name = f"aeff_{obs_id:06d}.fits.gz"
        fits.HDUList([fits.PrimaryHDU(), aeff_hdu(1e5 * (1.0 + 0.13 * k))]).writeto(
            folder / "data" / name
        )
        rows.append((obs_id, "aeff", "aeff_2d", "data", name, "AEFF", 0))
    added = Table(
        rows=rows, names=hdu_index.colnames, dtype=[c.dtype for c in hdu_index.columns.values()]
    )
    vstack([hdu_index, added]).write(folder / "hdu-index.fits.gz", overwrite=True)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(intact, damaged, OBS_ID of the run whose effective-area file is truncated)."""
    root = tmp_path_factory.mktemp("aeff")
    dataset = make_test_dataset(root / "sim", n_obs=12, random_state=5)
    intact = _with_effective_areas(dataset.path, root / "intact")
    damaged = root / "damaged"
    shutil.copytree(intact, damaged)
    victim = int(sorted(dataset.obs_ids)[4])
    path = damaged / "data" / f"aeff_{victim:06d}.fits.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return intact, damaged, victim


def _build(indir, outdir, progress=False, **kwargs):
    return make_models(
        indir,
        outdir,
        exclusion="none",
        progress=progress,
        fit_glat_min=0.0,
        conditions=CONDITIONS,
        **kwargs,
    )


def test_a_run_with_an_unreadable_effective_area_is_left_out_of_the_joint_build(folders, tmp_path):
    intact, damaged, victim = folders
    result = _build(damaged, tmp_path / "out")
    assert [i for i, _ in result.failed] == [victim]
    reason = result.failed[0][1]
    assert f"aeff_{victim:06d}.fits.gz" in reason and "effective area" in reason
    model = JointBackgroundModel.read(tmp_path / "out" / JOINT_MODEL_FILE)
    assert EFFECTIVE_AREA_COLUMN in [c.column for c in model.conditions]
    assert victim not in model.runs["OBS_ID"] and len(model.runs) == 11
    assert victim not in result.summary_table()["OBS_ID"]
    assert not (tmp_path / "out" / BKG_SUBDIR / bkg_file_name(victim)).exists()
    assert len(list((tmp_path / "out" / BKG_SUBDIR).iterdir())) == 11
    out = DataStore.from_dir(tmp_path / "out")
    assert victim not in out.obs_ids and len(out.obs_ids) == 11
    # the other runs' areas were read: the same fit as without the damaged run
    others = [i for i in DataStore.from_dir(intact).obs_ids.tolist() if i != victim]
    alone = _build(intact, tmp_path / "alone", obs_ids=others)
    np.testing.assert_allclose(
        np.asarray(result.joint.model.runs["N_PREDICTED"]),
        np.asarray(alone.joint.model.runs["N_PREDICTED"]),
        rtol=1e-9,
    )


def test_fail_fast_stops_at_the_unreadable_effective_area(folders, tmp_path):
    # read with the run's events (one pass over the files): stops as an unreadable event
    # file does, before any model is written, the runs read before kept for --resume
    _, damaged, victim = folders
    match = f"OBS_ID {victim}: file .*aeff_{victim:06d}.fits.gz', HDU 'AEFF'"
    with pytest.raises(ObservationError, match=match):
        _build(damaged, tmp_path / "out", fail_fast=True)
    assert not (tmp_path / "out" / JOINT_MODEL_FILE).exists()
    assert not (tmp_path / "out" / BKG_SUBDIR).exists()


def test_the_default_command_reports_the_run_and_goes_on(folders, tmp_path, capsys):
    _, damaged, victim = folders
    args = ["make-models", str(damaged), str(tmp_path / "out"), "--no-progress"]
    assert main([*args, "--exclusion", "none"]) == 0
    captured = capsys.readouterr()
    assert f"left out OBS_ID {victim}: file " in captured.err
    assert "truncated" in captured.err and "1 run(s) left out" in captured.out
    assert main([*args[:2], str(tmp_path / "ff"), "--fail-fast", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"aeff_{victim:06d}" in err
    # nothing but the runs read before it, kept for --resume once the run is repaired
    assert [p.name for p in (tmp_path / "ff").iterdir()] == [".bgcube-checkpoint"]
    assert err.rstrip().endswith("add --resume to continue")


def test_apply_models_leaves_the_run_out(folders, tmp_path, capsys):
    intact, damaged, victim = folders
    _build(intact, tmp_path / "models")
    result = apply_models(tmp_path / "models", damaged, tmp_path / "out", progress=False)
    assert victim not in result.applied and len(result.applied) == 11
    assert [i for i, _ in result.left_out] == [victim]
    assert "effective area" in result.left_out[0][1]
    assert not (tmp_path / "out" / BKG_SUBDIR / bkg_file_name(victim)).exists()
    assert victim not in DataStore.from_dir(tmp_path / "out").obs_ids
    with pytest.raises(FileFormatError, match=f"aeff_{victim:06d}"):
        apply_models(tmp_path / "models", damaged, tmp_path / "ff", progress=False, fail_fast=True)
    assert not (tmp_path / "ff").exists()
    args = ["apply-models", str(tmp_path / "models"), str(damaged), str(tmp_path / "cli")]
    assert main([*args, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert f"left out OBS_ID {victim}: file " in captured.err
    assert "11 run(s) written" in captured.out and "1 left out" in captured.out


def test_a_missing_effective_area_file_is_a_run_left_out_not_a_condition(folders, tmp_path):
    """A listed AEFF_2D file that is missing leaves its run out; the others keep the column."""

    intact, _, victim = folders
    copy = tmp_path / "data"
    shutil.copytree(intact, copy)
    (copy / "data" / f"aeff_{victim:06d}.fits.gz").unlink()
    store = DataStore.from_dir(copy)
    failed, messages = [], []
    table = with_effective_area(store, store.obs_table, messages, failed=failed)
    assert messages == [] and [i for i, _ in failed] == [victim]
    assert "does not exist" in failed[0][1]
    values = np.asarray(table[EFFECTIVE_AREA_COLUMN])
    assert np.isnan(values[store.obs_ids == victim]).all()
    assert np.isfinite(values[store.obs_ids != victim]).all()
    assert EFFECTIVE_AREA_COLUMN not in store.obs_table.colnames


def test_reading_the_effective_areas_shows_a_bar(folders, capsys):
    intact, _, _ = folders
    store = DataStore.from_dir(intact)
    with_effective_area(store, store.obs_table, progress=True)
    assert "effective areas:" in capsys.readouterr().err


def test_a_build_reads_the_effective_areas_with_the_runs(folders, tmp_path, capsys):
    intact, _, _ = folders
    store = DataStore.from_dir(intact)
    result = _build(intact, tmp_path / "out", progress=True)
    err = capsys.readouterr().err
    assert "runs:" in err and "effective areas:" not in err  # no pass of their own
    expected = with_effective_area(store, store.obs_table)[EFFECTIVE_AREA_COLUMN]
    runs = result.joint.model.runs
    assert np.array_equal(np.asarray(runs["OBS_ID"]), np.asarray(store.obs_ids))
    written = Table.read(tmp_path / "out" / "bg_observation_table.fits.gz")
    assert np.array_equal(np.asarray(written[EFFECTIVE_AREA_COLUMN]), np.asarray(expected))


def test_leaving_the_run_out_after_a_fail_fast_stop_resumes(folders, tmp_path, capsys):
    """The runs read before the stop are reused by the build that excludes the failed run."""
    _, damaged, victim = folders
    args = ["make-models", str(damaged), str(tmp_path / "ff"), "--no-progress", "--fail-fast"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "repair the run's file or leave it out (--exclude-obs-ids), and add --resume" in err
    saved = len(list((tmp_path / "ff" / ".bgcube-checkpoint" / "runs").iterdir()))
    assert saved == 4  # the runs before the victim, the fifth
    assert main([*args, "--resume", "--exclude-obs-ids", str(victim)]) == 0
    err = capsys.readouterr().err
    assert f"resuming from '{tmp_path / 'ff' / '.bgcube-checkpoint'}': 4 run(s) saved" in err
    assert "the run selection changed (--obs-ids/--exclude-obs-ids/--select: 1 left out)" in err
    assert "recomputed" not in err and "discarded" not in err
