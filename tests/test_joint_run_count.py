"""Too few runs for the joint model: found before any run is read where it can be, said with
what to do, and never with advice to resume (which would hit the same error)."""

import argparse
import shutil

import pytest

from bgcube.cli import build_parser, main
from bgcube.cli_support import UsageError, _checkpoint_hint
from bgcube.cli_usage import command_line_text
from bgcube.data import DataStore
from bgcube.errors import ConditionError, FitError, ObservationError, OutputExistsError
from bgcube.fit.joint import parse_condition
from bgcube.make import make_models
from bgcube.make.checkpoint import CHECKPOINT_DIR
from bgcube.make.joint_run_count import check_enough_runs
from bgcube.simulate import make_test_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_test_dataset(tmp_path_factory.mktemp("few") / "data", n_obs=8, random_state=4)


def test_too_few_selected_runs_fail_before_any_work_and_say_what_to_do(
    dataset, tmp_path, capsys, monkeypatch
):
    ids = ",".join(str(i) for i in sorted(dataset.obs_ids)[:4])
    read = []
    monkeypatch.setattr(
        DataStore, "observation", lambda self, obs_id, **k: read.append(obs_id) or 1 / 0
    )
    args = ["make-models", str(dataset.path), str(tmp_path / "out"), "--obs-ids", ids]
    assert main([*args, "--no-progress", "--exclusion", "none"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--resume" not in err
    assert "needs at least 6 runs to fit its 2 condition term(s) (ZEN_PNT:cos:2) and has 4" in err
    # fewer conditions cannot help below 5 runs: not suggested
    assert err.rstrip().endswith(": select more runs or use the group models (--model groups)")
    assert read == [] and not (tmp_path / "out").exists()


def test_runs_left_out_as_unreadable_are_counted(dataset, tmp_path, capsys):
    copy = tmp_path / "data"
    shutil.copytree(dataset.path, copy)
    store = DataStore.from_dir(copy)
    ids = sorted(int(i) for i in store.obs_ids)[:7]
    for obs_id in ids[1:3]:
        store.hdu_location(obs_id, "events")[0].unlink()
    outdir = tmp_path / "out"
    options = dict(conditions="ZEN_PNT:cos:2", fit_glat_min=0.0, exclusion="none")
    with pytest.raises(FitError) as info:
        make_models(copy, outdir, obs_ids=ids, progress=False, **options)
    message = str(info.value)
    assert (
        "needs at least 6 runs to fit its 2 condition term(s) (ZEN_PNT:cos:2) and has 5" in message
    )
    assert (
        f"2 of the 7 selected run(s) could not be read and were left out (OBS_ID {ids[1]}, {ids[2]};"
        in message
    )
    assert "does not exist" in message  # the first one's reason
    assert "use fewer conditions or lower degrees (conditions)" in message  # Python's names
    # the same build would fail again: nothing is kept for resuming, nothing blocks a new build
    assert not (outdir / CHECKPOINT_DIR).exists()
    args = ["make-models", str(copy), str(tmp_path / "cli"), "--obs-ids", ",".join(map(str, ids))]
    options = ["--conditions", "ZEN_PNT:cos:2", "--fit-glat-min", "0", "--exclusion", "none"]
    assert main([*args, *options, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "could not be read" in err and "--resume" not in err
    assert "use fewer conditions or lower degrees (--conditions)" in err  # the command's
    assert not (tmp_path / "cli").exists()  # a failed start leaves nothing behind


def test_runs_not_fitted_for_their_latitude_are_said():
    conditions = [parse_condition("ZEN_PNT:cos:2"), parse_condition("MUONEFF:log:1")]
    with pytest.raises(FitError) as info:
        check_enough_runs(5, conditions, n_selected=9)
    message = str(info.value)
    assert "needs at least 8 runs to fit its 3 condition term(s)" in message
    assert "4 run(s) near the Galactic plane are not fitted" in message
    assert "(fit_glat_min=0)" in message and "(conditions)" in message
    assert "use the group models (model='groups')" in message
    parser = build_parser()
    args = parser.parse_args(["make-models", "in", "out"])
    text = command_line_text(info.value.args[0], parser, args)
    assert "not fitted (--fit-glat-min)" in text and "(--fit-glat-min 0)" in text
    assert "(--conditions)" in text and "(--model groups)" in text
    check_enough_runs(8, conditions, n_selected=8)  # enough: no error


@pytest.mark.parametrize(
    "error, resumable",
    [
        (KeyboardInterrupt(), True),
        (OSError(28, "No space left on device"), True),
        (MemoryError(), True),
        (FitError("the fit did not converge"), False),
        (ConditionError("constant"), False),
        (ObservationError("OBS_ID 1: unreadable"), False),
        (OutputExistsError("holds the checkpoint; use --resume"), False),
        (UsageError("--seed"), False),
    ],
)
def test_resume_is_advised_only_where_it_can_succeed(tmp_path, error, resumable):
    runs = tmp_path / CHECKPOINT_DIR / "runs"
    runs.mkdir(parents=True)
    (runs / "obs1.npz").write_bytes(b"")
    hint = _checkpoint_hint(argparse.Namespace(outdir=str(tmp_path)), error)
    assert ("add --resume to continue" in hint) is resumable
