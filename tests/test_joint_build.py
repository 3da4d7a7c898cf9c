"""make-models' default build, the joint model: files, Gammapy outputs, errors, apply-models."""

import hashlib
import re

import numpy as np
import pytest

from bgcube import FOVCube
from bgcube.cli import main
from bgcube.data import DataStore
from bgcube.errors import ConditionError, FitError
from bgcube.fit.joint import JOINT_MODEL_FILE, JointBackgroundModel
from bgcube.make import make_models
from bgcube.make.apply import apply_models
from bgcube.simulate import make_test_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_test_dataset(
        tmp_path_factory.mktemp("joint") / "data", n_obs=12, random_state=3, efficiency_index=1.5
    )


@pytest.fixture(scope="module")
def built(dataset, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("joint_out") / "models"
    result = make_models(dataset.path, outdir, exclusion="none", progress=False, fit_glat_min=0.0)
    return outdir, result


def _digest(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_default_build_is_the_joint_model(built, dataset):
    outdir, result = built
    assert result.joint is not None and result.groups == []
    model = JointBackgroundModel.read(outdir / JOINT_MODEL_FILE)
    assert model.meta["CONVERGE"] is True
    # the simulated runs have no effective area: that default condition is left out, and said
    assert [c.column for c in model.conditions] == ["ZEN_PNT", "MUONEFF"]
    assert any("AEFF_1TEV" in m for m in result.joint.messages)
    assert len(model.runs) == 12 and all(model.runs["FITTED"])
    for name in (
        "hdu-index.fits.gz",
        "obs-index.fits.gz",
        "bg_observation_table.fits.gz",
        "bg_exclusion_regions.ecsv",
    ):
        assert (outdir / name).is_file(), name
    assert len(list((outdir / "bkg").glob("bkg_obs_*.fits.gz"))) == 12
    summary = result.summary_table()
    assert list(summary["OBS_ID"]) == sorted(dataset.obs_ids.tolist())
    assert np.all(np.isfinite(summary["OBS/PRED"]))


def test_per_run_files_hold_the_model_of_each_run(built, dataset):
    outdir, result = built
    model = result.joint.model
    store = DataStore.from_dir(outdir)
    for k, row in enumerate(dataset.obs_table[:3]):
        path, hdu = store.hdu_location(int(row["OBS_ID"]), "bkg")
        written = FOVCube.read(path, hdu=hdu)
        expected = model.background(row, night_effect=float(model.runs["NIGHT_EFFECT"][k]))
        np.testing.assert_allclose(np.asarray(written.data), np.asarray(expected.data), rtol=1e-6)
        assert written.meta["BKG_TIME"] == "ONTIME"


def test_efficiency_dependence_recovered(built):
    """The simulated background scales as MUONEFF**1.5: the fit finds it within its error."""
    model = built[1].joint.model
    lo, hi = {"ZEN_PNT": 20.0, "MUONEFF": 0.7}, {"ZEN_PNT": 20.0, "MUONEFF": 0.95}
    diff = model.log_rate(hi, [0.0], [0.3], [0.2]) - model.log_rate(lo, [0.0], [0.3], [0.2])
    error = model.log_rate_difference_error(hi, lo, 0.0, 0.3, 0.2)
    truth = 1.5 * np.log(0.95 / 0.7)
    assert abs(float(diff[0, 0]) - truth) < 4 * error + 0.02, (diff, truth, error)


def test_apply_models_uses_the_joint_model(built, dataset, tmp_path):
    outdir, result = built
    applied = apply_models(outdir, dataset.path, tmp_path / "applied")
    assert sorted(applied.applied) == sorted(dataset.obs_ids.tolist())
    row = dataset.obs_table[0]
    store = DataStore.from_dir(tmp_path / "applied")
    path, hdu = store.hdu_location(int(row["OBS_ID"]), "bkg")
    written = FOVCube.read(path, hdu=hdu)
    np.testing.assert_allclose(
        np.asarray(written.data), np.asarray(result.joint.model.background(row).data), rtol=1e-6
    )


def test_a_run_without_a_condition_value_is_left_out_before_any_cube(built, dataset, tmp_path):
    """The joint model's ``check`` finds a run whose MUONEFF is missing without evaluating the
    model; apply-models leaves that run out with the reason and writes the others."""
    import shutil

    from astropy.table import Table

    from bgcube.make.model_source import JointModelSource

    source = JointModelSource.read(built[0])
    row = {k: dataset.obs_table[0][k] for k in dataset.obs_table.colnames}
    assert source.check(row) is None
    with pytest.raises(ConditionError, match="MUONEFF"):
        source.check({**row, "MUONEFF": np.nan})
    with pytest.raises(ConditionError, match="MUONEFF"):
        source.check({k: v for k, v in row.items() if k != "MUONEFF"})

    copy = tmp_path / "data"
    shutil.copytree(dataset.path, copy)
    index = Table.read(copy / "obs-index.fits.gz")
    index["MUONEFF"][1] = np.nan
    index.write(copy / "obs-index.fits.gz", overwrite=True)
    lost = int(index["OBS_ID"][1])
    result = apply_models(built[0], copy, tmp_path / "applied")
    assert [i for i, _ in result.left_out] == [lost]
    assert "MUONEFF" in result.left_out[0][1]
    assert lost not in result.applied and len(result.applied) == len(index) - 1
    assert not (tmp_path / "applied" / "bkg" / f"bkg_obs_{lost:06d}.fits.gz").exists()


def test_missing_or_constant_condition_fails_before_writing(dataset, tmp_path):
    before = _digest(dataset.path)
    with pytest.raises(ConditionError, match="'NOPE' is not in the observation index"):
        make_models(
            dataset.path, tmp_path / "a", conditions=["NOPE"], progress=False, fit_glat_min=0.0
        )
    constant = next(
        c
        for c in dataset.obs_table.colnames
        if dataset.obs_table[c].dtype.kind in "if"
        and len(set(np.asarray(dataset.obs_table[c]).tolist())) == 1
    )
    with pytest.raises(ConditionError, match="same value for all"):
        make_models(
            dataset.path, tmp_path / "b", conditions=[constant], progress=False, fit_glat_min=0.0
        )
    assert not list((tmp_path / "a").rglob("*.fits.gz")) if (tmp_path / "a").exists() else True
    assert not list((tmp_path / "b").rglob("*.fits.gz")) if (tmp_path / "b").exists() else True
    assert _digest(dataset.path) == before


def test_too_few_runs_is_an_error(dataset, tmp_path):
    ids = dataset.obs_ids.tolist()[:4]
    with pytest.raises(FitError, match="needs at least"):
        make_models(dataset.path, tmp_path / "few", obs_ids=ids, progress=False, fit_glat_min=0.0)
    assert not (tmp_path / "few" / JOINT_MODEL_FILE).exists()


WIDTH_RULE = "expected 0 (none) or a number between 0.001 and 10"


@pytest.mark.parametrize(
    "option, value",
    [
        ("--night-sigma", "inf"),
        ("--run-sigma", "inf"),
        ("--night-sigma", "nan"),
        ("--run-sigma", "1e-300"),
        ("--night-sigma", "1e-300"),
        ("--run-sigma", "1e4"),
    ],
)
def test_effect_widths_the_fit_cannot_take_are_refused_before_any_work(
    dataset, tmp_path, capsys, option, value
):
    out = tmp_path / "out"
    status = main(["make-models", str(dataset.path), str(out), "--no-progress", option, value])
    err = capsys.readouterr().err
    assert status == 2, err
    assert f"{option}: {WIDTH_RULE}, got " in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()


def test_effect_widths_are_checked_in_python_too(dataset, tmp_path):
    from bgcube.fit.joint import JointModelSpec

    rule = re.escape(WIDTH_RULE)
    with pytest.raises(ValueError, match=f"night_sigma: {rule}, got inf"):
        make_models(dataset.path, tmp_path / "o", night_sigma=float("inf"), progress=False)
    with pytest.raises(ValueError, match=f"run_sigma: {rule}, got 1e-300"):
        JointModelSpec(run_sigma=1e-300)
    assert not (tmp_path / "o").exists()
    assert JointModelSpec(night_sigma=0.0, run_sigma=10.0).run_sigma == 10.0


def test_a_fit_ending_non_finite_fails_before_writing(dataset, tmp_path, monkeypatch):
    import bgcube.fit.joint_fitting as fitting

    real = fitting.group_effects

    def broken(*args, **kwargs):
        delta, left_out = real(*args, **kwargs)
        return delta, left_out * np.nan

    monkeypatch.setattr(fitting, "group_effects", broken)
    out = tmp_path / "out"
    with pytest.raises(FitError, match="ended with non-finite night effects; no model"):
        make_models(dataset.path, out, exclusion="none", progress=False, fit_glat_min=0.0)
    assert not list(out.rglob("*.fits.gz")) if out.exists() else True


def test_a_failed_fit_leaves_nothing_that_blocks_the_corrected_build(
    dataset, tmp_path, monkeypatch, capsys
):
    """An error the same build would hit again removes its checkpoint and the files it
    created: the corrected build runs without --resume or --overwrite."""
    import bgcube.fit.joint_fitting as fitting
    from bgcube.make.checkpoint import CHECKPOINT_DIR

    real = fitting.group_effects

    def broken(*args, **kwargs):
        delta, left_out = real(*args, **kwargs)
        return delta, left_out * np.nan

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["make-models", str(dataset.path), str(out), "--no-progress", "--fit-glat-min", "0"]
    with monkeypatch.context() as patch:
        patch.setattr(fitting, "group_effects", broken)
        patch.setattr("bgcube.make.checkpoint.SAVE_AFTER_S", 0.0)  # runs saved at once
        assert main([*argv, "--exclusion", "none"]) == 1
    err = capsys.readouterr().err
    assert "non-finite night effects" in err and "--resume" not in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main([*argv, "--exclusion", "none"]) == 0, capsys.readouterr().err
    assert (out / JOINT_MODEL_FILE).is_file() and not (out / CHECKPOINT_DIR).exists()


def test_group_options_need_the_groups_model(dataset, tmp_path):
    with pytest.raises(ValueError, match="group models"):
        make_models(dataset.path, tmp_path / "x", smooth=1, progress=False)


def test_command_line(dataset, tmp_path, capsys):
    assert (
        main(
            [
                "make-models",
                str(dataset.path),
                str(tmp_path / "m"),
                "--no-progress",
                "--exclusion",
                "none",
                "--fit-glat-min",
                "0",
                "--conditions",
                "ZEN_PNT:cos:2",
                "--spatial-conditions",
                "none",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "joint model fitted to 12 of 12 run(s)" in out
    assert "field-of-view shape on none" in out
    model = JointBackgroundModel.read(tmp_path / "m" / JOINT_MODEL_FILE)
    assert model.spatial_conditions == () and len(model.conditions) == 1
    assert (
        main(
            [
                "make-models",
                str(dataset.path),
                str(tmp_path / "n"),
                "--no-progress",
                "--smooth-passes",
                "1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--smooth-passes only applies to the group models: add --model groups" in err
    assert main(["make-models", str(dataset.path), str(tmp_path / "o"), "--night-sigma", "-1"]) == 2
    assert main(["make-models", str(dataset.path), str(tmp_path / "o"), "--run-sigma", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--run-sigma: expected 0 (none) or a number between 0.001 and 10, got -1" in err
    # a joint-model option with the group models is an error, not silently ignored
    argv = ["make-models", str(dataset.path), str(tmp_path / "p"), "--no-progress"]
    assert main([*argv, "--model", "groups", "--run-sigma", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "--run-sigma only applies to the joint model" in err
    assert not (tmp_path / "p").exists()
    assert (
        main(
            ["make-models", str(dataset.path), str(tmp_path / "o"), "--conditions", "ZEN_PNT:sqrt"]
        )
        == 2
    )


def test_info_describes_a_joint_model(built, capsys):
    outdir, _ = built
    assert main(["info", str(outdir / JOINT_MODEL_FILE)]) == 0
    out = capsys.readouterr().out
    assert "joint background model" in out
    assert "spectrum depends on: ZEN_PNT:cos:2" in out
    assert "12 (12 fitted)" in out


def test_build_on_array_api_strict_moves_nothing_to_the_host(built, dataset, tmp_path, monkeypatch):
    """The default build with the fit on a strict Array API backend (as on CuPy, which
    refuses implicit conversions): no array goes to the host through ``__array__``, and
    the files hold the NumPy build's numbers."""
    array_api_strict = pytest.importorskip("array_api_strict")
    refused = []

    def refuse(self, *args, **kwargs):
        refused.append(self.shape)
        raise TypeError("implicit conversion of a device array to NumPy")

    monkeypatch.setattr(type(array_api_strict.asarray(0.0)), "__array__", refuse)
    outdir = tmp_path / "models"
    result = make_models(
        dataset.path,
        outdir,
        exclusion="none",
        progress=False,
        fit_glat_min=0.0,
        backend="array_api_strict",
    )
    assert refused == []
    assert result.joint.model.meta["BACKEND"] == "array_api_strict"
    reference = built[1].joint.model
    for name in ("coef_a", "coef_s", "covariance"):
        np.testing.assert_allclose(
            getattr(result.joint.model, name), getattr(reference, name), rtol=1e-9, atol=1e-12
        )
    files = sorted((built[0] / "bkg").glob("*.fits.gz"))
    assert len(files) == len(dataset.obs_ids)
    for path in files:  # the same numbers, to the rounding of BLAS's sums
        ours, theirs = FOVCube.read(outdir / "bkg" / path.name), FOVCube.read(path)
        np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-9, err_msg=path.name)


def test_a_build_shows_a_bar_for_each_long_step(dataset, tmp_path, capsys):
    """Reading the runs, the fit's Newton steps and the per-run files (the effective areas'
    bar, where runs have one: tests/test_unreadable_irf.py)."""
    make_models(dataset.path, tmp_path / "m", exclusion="none", progress=True, fit_glat_min=0.0)
    err = capsys.readouterr().err
    assert "effective areas:" not in err  # these runs have none: nothing is read
    for label in ("runs", "joint fit", "per-run files"):
        assert f"{label}:" in err, label
    assert "expected decrease" in err
    make_models(dataset.path, tmp_path / "n", exclusion="none", progress=False, fit_glat_min=0.0)
    assert capsys.readouterr().err == ""


def test_run_cubes_go_to_a_scratch_file_and_skip_unreadable_runs(dataset, tmp_path):
    """Each run's counts are stored as read (memory-mapped float32); a missing run is left out."""
    import shutil

    from bgcube.fit.joint import JointModelSpec
    from bgcube.make.joint import read_run_cubes, run_tasks
    from bgcube.make.partial import compute_partial
    from bgcube.make.pipeline import resolve_exclusion

    copy = tmp_path / "data"
    shutil.copytree(dataset.path, copy)
    store = DataStore.from_dir(copy)
    ids = sorted(int(i) for i in store.obs_ids)[:4]
    damaged = ids[1]
    path, _ = store.hdu_location(damaged, "events")
    path.unlink()
    spec = JointModelSpec(energy_step_dex=0.1)
    tasks = run_tasks(store, ids, spec, resolve_exclusion("none", store.obs_table))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cubes = read_run_cubes(tasks, spec, progress=False, scratch=scratch)
    assert cubes.obs_ids == [i for i in ids if i != damaged]
    assert [i for i, _ in cubes.failed] == [damaged]
    assert isinstance(cubes.counts, np.memmap) and cubes.counts.dtype == np.float32
    assert list(scratch.iterdir()) == []  # an unnamed file: nothing left behind
    for k, task in enumerate(t for t in tasks if t.obs_id != damaged):
        partial = compute_partial(task)
        np.testing.assert_array_equal(
            cubes.counts[k], partial.counts.reshape(cubes.counts.shape[1:])
        )
        np.testing.assert_array_equal(cubes.exposure[k], partial.time[0].ravel())
