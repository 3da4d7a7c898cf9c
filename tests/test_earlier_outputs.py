"""A build with overwrite leaves its output folder holding its own outputs only.

The files an earlier bgcube build wrote there and this one does not are
removed once the new build is written (never a user's other files, nothing
when the build fails), and a model folder holding two builds' models is
refused instead of one being picked.
"""

import warnings

import numpy as np
import pytest
from astropy.table import Table

from bgcube.cli import main
from bgcube.data import DataStore
from bgcube.errors import BuildNoteWarning, FileFormatError, OutputExistsError
from bgcube.fit.joint import JOINT_MODEL_FILE
from bgcube.make import make_models
from bgcube.make.apply import apply_models
from bgcube.make.earlier_outputs import JOINT_MODEL_FILE as KNOWN_JOINT_NAME
from bgcube.make.earlier_outputs import EarlierOutputs, is_bgcube_output
from bgcube.make.model_source import GroupModels, load_model_source


@pytest.fixture(scope="module")
def dr1(shared_data):
    indir = shared_data / "hess-dl3-dr1"
    if not indir.is_dir():
        pytest.skip(f"no H.E.S.S. DL3 DR1 under {shared_data}")
    return indir, sorted(DataStore.from_dir(indir).obs_ids.tolist())


def bkg_files(folder):
    return sorted(p.name for p in (folder / "bkg").glob("*.fits.gz"))


def bkg_rows(folder):
    index = Table.read(folder / "hdu-index.fits.gz")
    bkg = np.char.lower(np.char.strip(np.asarray(index["HDU_TYPE"]).astype(str))) == "bkg"
    return sorted(str(n).strip() for n in index["FILE_NAME"][bkg])


def user_files(folder):
    """Files a user keeps in an output folder, some with names close to bgcube's."""
    files = {
        folder / "notes.txt": "mine",
        folder / "bkg" / "my_background.fits.gz": "mine",
        folder / "bg_joint_model.fits.gz.bak": "mine",
        folder / "plots" / "hdu-index.fits.gz": "mine",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def test_the_joint_model_name_is_the_fit_s():
    assert KNOWN_JOINT_NAME == JOINT_MODEL_FILE


def test_only_bgcube_names_count(tmp_path):
    names = [
        "hdu-index.fits.gz",
        "bg_joint_model.fits.gz",
        "bg_cube_model_group12_table.fits.gz",
        "bg_2d_model_group3.fits.gz",
        "bg_observation_groups.ecsv",
        "bkg/bkg_obs_023523.fits.gz",
    ]
    assert all(is_bgcube_output(tmp_path / n, tmp_path) for n in names)
    others = [
        "bkg/my_background.fits.gz",
        "bg_joint_model.fits.gz.bak",
        "plots/hdu-index.fits.gz",
        "bg_cube_model_groupX_table.fits.gz",
        "bgcube-config.yaml",
    ]
    assert not any(is_bgcube_output(tmp_path / n, tmp_path) for n in others)
    assert is_bgcube_output(tmp_path / "bgcube-config.yaml", tmp_path, config=True)


def test_test_build_over_a_full_one_keeps_only_its_runs(dr1, tmp_path, capsys):
    indir, ids = dr1
    out = tmp_path / "models"
    first = ",".join(map(str, ids[:16]))
    assert main(["make-models", str(indir), str(out), "--obs-ids", first, "--no-progress"]) == 0
    assert len(bkg_files(out)) == 16
    mine = user_files(out)
    capsys.readouterr()
    assert (
        main(["make-models", str(indir), str(out), "--test", "--overwrite", "--no-progress"]) == 0
    )
    err = capsys.readouterr().err
    assert "note: removed 6 file(s) of an earlier build that this build does not write" in err
    runs = [f"bkg_obs_{i:06d}.fits.gz" for i in ids[:10]]
    assert bkg_rows(out) == runs  # the hdu-index lists the runs of the bkg folder, no other
    assert bkg_files(out) == sorted([*runs, "my_background.fits.gz"])
    assert all(p.read_text() == "mine" for p in mine)  # the user's files are all there


def test_group_build_over_a_joint_one_leaves_no_joint_files(dr1, tmp_path, capsys):
    """The audit's case: after --model groups --overwrite, the folder's model is the group
    models, and apply-models uses them (no joint model, no old hdu-index left)."""
    indir, ids = dr1
    out = tmp_path / "models"
    assert main(["make-models", str(indir), str(out), "--test", "--no-progress"]) == 0
    config = str(out / "bgcube-config.yaml")
    mine = user_files(out)
    args = ["make-models", "--config", config, "--overwrite", "--model", "groups"]
    assert main([*args, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert (  # the joint model, the two indices and the 10 runs' files
        "note: removed 13 file(s) of an earlier build that this build does not write "
        "(3 in the folder itself, 10 in bkg/)"
    ) in err
    left = sorted(p.name for p in out.iterdir() if p.is_file())
    assert JOINT_MODEL_FILE not in left and "hdu-index.fits.gz" not in left
    assert "bgcube-config.yaml" in left and "bg_observation_groups.ecsv" in left
    assert bkg_files(out) == ["my_background.fits.gz"]  # the user's file kept, the folder too
    assert all(p.read_text() == "mine" for p in mine)
    assert isinstance(load_model_source(out), GroupModels)
    result = apply_models(out, indir, tmp_path / "applied", obs_ids=ids[:2], progress=False)
    assert result.applied == ids[:2] and isinstance(result.source, GroupModels)


def test_apply_overwrite_keeps_only_its_runs_and_copies(dr1, tmp_path, capsys):
    indir, ids = dr1
    models, out = tmp_path / "models", tmp_path / "applied"
    assert main(["make-models", str(indir), str(models), "--test", "--no-progress"]) == 0
    some = ",".join(map(str, ids[:3]))
    args = ["apply-models", str(models), str(indir), str(out), "--extrapolate"]
    assert main([*args, "--obs-ids", some, "--copy-events"]) == 0
    copies = sorted(p for p in (out / "data").rglob("*") if p.is_file())
    assert len(copies) >= 3
    (out / "data" / "my_notes.txt").write_text("mine")
    capsys.readouterr()
    assert main([*args, "--obs-ids", str(ids[0]), "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert f"note: removed {2 + len(copies)} file(s) of an earlier build" in err
    assert bkg_files(out) == bkg_rows(out) == [f"bkg_obs_{ids[0]:06d}.fits.gz"]
    assert [p.name for p in (out / "data").rglob("*") if p.is_file()] == ["my_notes.txt"]


def test_a_data_stores_own_indexes_are_kept(dr1, tmp_path):
    # an output folder that holds another data store's indexes (not written by bgcube:
    # no BGPATHS): a group build writes no index and must not remove them
    import shutil

    indir, obs_ids = dr1
    out = tmp_path / "out"
    out.mkdir()
    for name in ("hdu-index.fits.gz", "obs-index.fits.gz"):
        shutil.copy(indir / name, out / name)
    before = {
        name: (out / name).read_bytes() for name in ("hdu-index.fits.gz", "obs-index.fits.gz")
    }
    assert EarlierOutputs(out, True).found == set()
    make_models(indir, out, model="groups", obs_ids=obs_ids[:6], overwrite=True, progress=False)
    for name, data in before.items():
        assert (out / name).read_bytes() == data


def test_a_failed_build_removes_nothing(dr1, tmp_path, monkeypatch):
    indir, ids = dr1
    models, out = tmp_path / "models", tmp_path / "applied"
    make_models(indir, models, test=True, progress=False)
    apply_models(models, indir, out, obs_ids=ids[:4], extrapolate=True, progress=False)
    before = bkg_files(out)
    import bgcube.make.apply as apply_module

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(apply_module, "write_table", full_disk)
    with pytest.raises(OSError, match="No space"):
        apply_models(models, indir, out, obs_ids=ids[:1], overwrite=True, extrapolate=True)
    assert bkg_files(out) == before  # the earlier build's files are all there


def test_without_overwrite_another_kind_is_refused(dr1, tmp_path):
    indir, _ = dr1
    out = tmp_path / "models"
    make_models(indir, out, test=True, progress=False)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(OutputExistsError):
        make_models(indir, out, test=True, model="groups", progress=False)
    assert sorted(p.name for p in out.iterdir()) == before


def test_earlier_outputs_without_overwrite_finds_nothing(tmp_path):
    (tmp_path / "hdu-index.fits.gz").write_text("x")
    assert EarlierOutputs(tmp_path, False).remove([]) == ([], None)
    assert (tmp_path / "hdu-index.fits.gz").exists()


def test_a_folder_with_both_kinds_of_models_is_refused(dr1, tmp_path):
    indir, ids = dr1
    joint, groups = tmp_path / "joint", tmp_path / "groups"
    make_models(indir, joint, test=True, progress=False)
    make_models(indir, groups, test=True, model="groups", progress=False)
    (groups / JOINT_MODEL_FILE).write_bytes((joint / JOINT_MODEL_FILE).read_bytes())
    with pytest.raises(FileFormatError, match="holds both a joint model") as info:
        load_model_source(groups)
    assert "\n" not in str(info.value)
    assert main(["apply-models", str(groups), str(indir), str(tmp_path / "out")]) == 1


def test_python_callers_get_the_notes_as_warnings_the_command_prints_them_once(
    dr1, tmp_path, capsys
):
    """make_models and apply_models warn each note (BuildNoteWarning, at the caller's line);
    the command prints it as one note line and no warning line."""
    indir, ids = dr1
    out, applied = tmp_path / "models", tmp_path / "applied"
    make_models(indir, out, obs_ids=ids[:12], progress=False)
    with pytest.warns(BuildNoteWarning, match="removed 2 file") as caught:
        result = make_models(indir, out, test=True, overwrite=True, progress=False)
    assert [str(w.message) for w in caught] == result.messages
    assert caught[0].filename == __file__  # the warning points at the caller's line
    apply_models(out, indir, applied, obs_ids=ids[:3], progress=False)
    with pytest.warns(BuildNoteWarning, match="removed 2 file") as caught:
        apply_models(out, indir, applied, obs_ids=ids[:1], overwrite=True, progress=False)
    assert caught[0].filename == __file__
    capsys.readouterr()
    args = ["make-models", str(indir), str(out), "--obs-ids", ",".join(map(str, ids[:11]))]
    with warnings.catch_warnings():
        warnings.simplefilter("error", BuildNoteWarning)  # one escaping would fail the command
        assert main([*args, "--overwrite", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("removed") == 0  # 10 runs before, 11 now: nothing to remove
    assert main([*args[:-1], ",".join(map(str, ids[:10])), "--overwrite", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("removed 1 file") == 1 and "warning" not in err, err
