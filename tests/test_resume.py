"""Resumable builds: partial cubes per run, the fixed summation tree, the checkpoint."""

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from _build_helpers import ScriptedStore, assert_same_models

from bgcube.cli import main
from bgcube.data import DataStore, ExclusionRegions
from bgcube.errors import OutputExistsError
from bgcube.make import make_models
from bgcube.make.checkpoint import CHECKPOINT_DIR
from bgcube.make.partial import PairwiseSum, PartialCubes, RunTask, add_partials, compute_partial
from bgcube.make.pipeline import OUTPUT_NAMES
from bgcube.simulate import make_test_dataset

N_OBS = 7


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_test_dataset(tmp_path_factory.mktemp("resume"), n_obs=N_OBS, random_state=3)


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    """An uninterrupted serial build (exclusion 'auto': time cubes with holes)."""
    outdir = tmp_path_factory.mktemp("reference")
    result = make_models(dataset.path, outdir, progress=False, model="groups")
    assert result.reused == [] and result.messages == []
    assert not (outdir / CHECKPOINT_DIR).exists()
    return result


def _interrupted_build(dataset, outdir, k, **kwargs):
    store = ScriptedStore(DataStore.from_dir(dataset.path), interrupt_after=k)
    with pytest.raises(KeyboardInterrupt):
        make_models(store, outdir, progress=False, **kwargs, model="groups")
    return store


def test_pairwise_sum_follows_one_tree_whatever_the_count():
    def tree(n):
        s = PairwiseSum(add=lambda a, b: (a, b))
        for i in range(n):
            s.push(i)
        return s.result()

    assert tree(0) is None and tree(1) == 0
    assert tree(4) == ((0, 1), (2, 3))
    assert tree(5) == (((0, 1), (2, 3)), 4)
    assert tree(7) == (((0, 1), (2, 3)), ((4, 5), 6))

    # the same as pairing neighbours level by level, an odd one out going up unpaired
    def levels(items):
        while len(items) > 1:
            pairs = [(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
            items = pairs + ([items[-1]] if len(items) % 2 else [])
        return items[0] if items else None

    for n in range(1, 70):
        assert tree(n) == levels(list(range(n)))


def test_partial_sums_are_order_sensitive_so_the_tree_is_fixed():
    rng = np.random.default_rng(1)
    parts = [
        PartialCubes(np.ones((1, 2, 2)), rng.uniform(0, 1e4, (1, 2, 2)), (), ()) for _ in range(9)
    ]
    tree = PairwiseSum()
    for p in parts:
        tree.push(p)
    linear = parts[0]
    for p in parts[1:]:
        linear = add_partials(linear, p)
    total = tree.result()
    assert np.array_equal(total.counts, linear.counts)  # integers: exact in any order
    assert np.allclose(total.time, linear.time, rtol=1e-15, atol=0)
    # a failure record adds no cubes and keeps its OBS_ID
    failed = add_partials(PartialCubes(failed=((5, "bad file"),)), parts[0])
    assert failed.failed == ((5, "bad file"),) and failed.counts is parts[0].counts


def test_compute_partial_reports_an_unreadable_run(dataset):
    store = DataStore.from_dir(dataset.path)
    edges = (
        np.linspace(-2, 2, 5) * u.deg,
        np.linspace(-2, 2, 5) * u.deg,
        np.geomspace(0.1, 100, 4) * u.TeV,
    )
    task = RunTask.make(999999, store, edges, ExclusionRegions.empty(), "RADEC", "ONTIME")
    partial = compute_partial(task)
    assert partial.counts is None and partial.fills == ()
    assert partial.failed[0][0] == 999999 and "999999" in partial.failed[0][1]
    good = compute_partial(
        RunTask.make(
            int(store.obs_ids[0]), store, edges, ExclusionRegions.empty(), "RADEC", "ONTIME"
        )
    )
    assert good.counts.shape == (3, 4, 4) and good.counts.dtype == np.float64
    assert good.counts.sum() == good.fills[0].n_filled > 0


def test_interrupted_build_resumes_without_recomputing(dataset, reference, tmp_path):
    k = 3
    first = _interrupted_build(dataset, tmp_path, k)
    assert len(first.calls) == k
    saved = sorted(p.name for p in (tmp_path / CHECKPOINT_DIR / "runs").iterdir())
    assert saved == sorted(f"obs{i}.npz" for i in first.calls)  # each finished run, no temp files

    second = ScriptedStore(DataStore.from_dir(dataset.path))
    result = make_models(second, tmp_path, progress=False, resume=True, model="groups")
    assert sorted(result.reused) == sorted(first.calls)
    assert sorted(second.calls) == sorted(set(range(1, N_OBS + 1)) - set(first.calls))
    assert any("resuming" in m for m in result.messages)
    assert_same_models(result, reference)
    assert not (tmp_path / CHECKPOINT_DIR).exists()


def test_changed_settings_recompute_the_saved_runs_saying_why(dataset, tmp_path):
    _interrupted_build(dataset, tmp_path, 2, exclusion="none")
    store = ScriptedStore(DataStore.from_dir(dataset.path))
    result = make_models(
        store, tmp_path, progress=False, resume=True, keep_checkpoint=True, model="groups"
    )
    assert result.reused == [] and len(store.calls) == N_OBS
    message = [m for m in result.messages if "recomputed" in m]
    assert message and message[0].endswith("): other exclusion regions near it"), message
    assert len(list((tmp_path / CHECKPOINT_DIR / "runs").iterdir())) == N_OBS  # kept on request


def test_damaged_or_stale_run_files_are_recomputed(dataset, reference, tmp_path):
    first = _interrupted_build(dataset, tmp_path, 3)
    runs = tmp_path / CHECKPOINT_DIR / "runs"
    damaged, stale = (runs / f"obs{i}.npz" for i in first.calls[:2])
    damaged.write_bytes(damaged.read_bytes()[:100])
    # a run file saved under another binning (e.g. the group changed): its key differs
    with np.load(stale) as data:
        other = dict(data)
    other["info"] = np.array(str(other["info"]).replace('"settings": "', '"settings": "0'))
    np.savez_compressed(stale, **other)
    store = ScriptedStore(DataStore.from_dir(dataset.path))
    result = make_models(store, tmp_path, progress=False, resume=True, model="groups")
    assert sorted(result.reused) == [first.calls[2]]
    assert len(store.calls) == N_OBS - 1
    message = [m for m in result.messages if "recomputed" in m][0]
    assert "2 saved run(s)" in message and str(first.calls[0]) in message
    assert "cannot be read" in message and "other binning or settings (1)" in message
    assert_same_models(result, reference)


def test_a_checkpoint_is_not_ignored_silently(dataset, tmp_path):
    _interrupted_build(dataset, tmp_path, 1)
    with pytest.raises(OutputExistsError, match="resume=True"):
        make_models(dataset.path, tmp_path, progress=False, model="groups")
    # overwrite starts afresh
    store = ScriptedStore(DataStore.from_dir(dataset.path))
    result = make_models(store, tmp_path, progress=False, overwrite=True, model="groups")
    assert result.reused == [] and len(store.calls) == N_OBS
    assert not (tmp_path / CHECKPOINT_DIR).exists()


def test_resume_does_not_replace_files_the_interrupted_build_did_not_plan(
    dataset, reference, tmp_path
):
    _interrupted_build(dataset, tmp_path, 1, zenith_edges=(0, 90))
    # resumed with the default groups: another group's model file was not the earlier build's
    gid = reference.groups[-1].group_id
    assert gid != 0
    (tmp_path / OUTPUT_NAMES["model_table"].format(group_id=gid)).write_text("not mine")
    with pytest.raises(OutputExistsError, match=f"group{gid}"):
        make_models(dataset.path, tmp_path, progress=False, resume=True, model="groups")


def test_command_line_resume(dataset, reference, tmp_path, capsys, monkeypatch):
    read = DataStore.observation
    calls = []

    def interrupted_after_two(self, obs_id, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(obs_id)
        return read(self, obs_id, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(DataStore, "observation", interrupted_after_two)
        assert (
            main(
                [
                    "make-models",
                    "--model",
                    "groups",
                    str(dataset.path),
                    str(tmp_path),
                    "--no-progress",
                ]
            )
            == 130
        )
    err = capsys.readouterr().err
    assert err.rstrip().endswith(
        f"interrupted; the 2 finished run(s) are saved in "
        f"{str(tmp_path / CHECKPOINT_DIR)!r}: add --resume to continue"
    ), err
    assert (
        main(
            ["make-models", "--model", "groups", str(dataset.path), str(tmp_path), "--no-progress"]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.count("--resume") == 1 and "holds the checkpoint" in err  # the advice said once
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(dataset.path),
                str(tmp_path),
                "--no-progress",
                "--resume",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 run(s) reused from the checkpoint" in out
    assert not (tmp_path / CHECKPOINT_DIR).exists()


def test_the_command_says_each_checkpoint_message_once(dataset, tmp_path):
    """In a process of its own (as run from a shell, where a logged warning is printed too)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    )
    argv = [sys.executable, "-m", "bgcube", "make-models", "--model", "groups"]
    argv += [str(dataset.path), str(tmp_path / "out"), "--no-progress", "--keep-checkpoint"]

    def err_of(*extra):
        result = subprocess.run([*argv, *extra], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        return result.stderr

    err_of()
    err = err_of("--resume")
    assert err.count("resuming from") == 1 and "note: resuming from" in err, err
    err = err_of("--overwrite")
    assert err.count("discarded") == 1 and "note: checkpoint of an earlier build" in err, err


def test_a_failed_checkpoint_save_stops_the_build(dataset, tmp_path, monkeypatch):
    """Saves run on a background thread; a full disk there still reaches the caller."""
    from bgcube.make import checkpoint

    def full_disk(path, arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "_save_npz", full_disk)
    monkeypatch.setattr(checkpoint, "SAVE_AFTER_S", 0.0)  # save every run at once
    with pytest.raises(OSError, match="No space left"):
        make_models(dataset.path, tmp_path / "out", progress=False, model="groups")


def test_a_short_build_holds_its_runs_in_memory_and_saves_them_when_stopped(
    dataset, reference, tmp_path, monkeypatch
):
    """A build that ends within SAVE_AFTER_S writes no run file; one that stops saves them all."""
    from bgcube.make import checkpoint

    saved = []
    original = checkpoint._save_npz

    def recording(path, arrays):
        saved.append(path.name)
        return original(path, arrays)

    monkeypatch.setattr(checkpoint, "_save_npz", recording)
    monkeypatch.setattr(checkpoint, "SAVE_AFTER_S", 3600.0)
    result = make_models(dataset.path, tmp_path / "a", progress=False, model="groups")
    assert saved == [] and not (tmp_path / "a" / CHECKPOINT_DIR).exists()
    assert_same_models(result, reference)

    kept = make_models(
        dataset.path, tmp_path / "b", progress=False, keep_checkpoint=True, model="groups"
    )
    assert sorted(saved) == sorted(f"obs{i}.npz" for i in range(1, N_OBS + 1))  # kept: all saved
    assert_same_models(kept, reference)

    saved.clear()
    first = _interrupted_build(dataset, tmp_path / "c", 3)
    assert sorted(saved) == sorted(f"obs{i}.npz" for i in first.calls)  # held, then saved


def _task_and_partial(dataset, counts, time):
    """A run's task on a binning of ``counts``' shape, with a partial of these cubes."""
    from bgcube.data.fill import ObservationFill

    store = DataStore.from_dir(dataset.path)
    n_e, n_y, n_x = counts.shape
    edges = (
        np.linspace(-2, 2, n_x + 1) * u.deg,
        np.linspace(-2, 2, n_y + 1) * u.deg,
        np.geomspace(0.1, 100, n_e + 1) * u.TeV,
    )
    obs_id = int(store.obs_ids[0])
    task = RunTask.make(obs_id, store, edges, ExclusionRegions.empty(), "RADEC", "ONTIME")
    fill = ObservationFill(obs_id, 10, 1, 9, 1800.0 * u.s)
    return store, task, PartialCubes(counts, time, (fill,))


def _saved_and_loaded(store, task, partial, folder):
    """The arrays saved for ``partial`` and the partial a resumed checkpoint loads back."""
    from bgcube.make.checkpoint import Checkpoint

    checkpoint = Checkpoint.open(folder, store=store, tasks=[task], outputs=[])
    checkpoint.start()
    checkpoint.save(task, partial)
    checkpoint.wait()
    with np.load(folder / CHECKPOINT_DIR / "runs" / f"obs{task.obs_id}.npz") as data:
        saved = {k: data[k] for k in ("counts", "time")}
    resumed = Checkpoint.open(folder, store=store, tasks=[task], outputs=[], resume=True)
    return saved, resumed.load(task)


def test_runs_are_saved_compactly_and_load_back_exactly(dataset, tmp_path):
    """Whole counts as float32, a time cube the same in every energy bin as one image."""
    rng = np.random.default_rng(5)
    counts = rng.poisson(3.0, (6, 4, 5)).astype(np.float64)
    counts[0, 0, 0] = 2.0**24 - 1  # the largest whole count float32 holds exactly
    time = np.broadcast_to(rng.uniform(0, 1800, (4, 5)), (6, 4, 5)).copy()
    store, task, partial = _task_and_partial(dataset, counts, time)
    saved, loaded = _saved_and_loaded(store, task, partial, tmp_path)
    assert saved["counts"].dtype == np.float32 and saved["time"].shape == (4, 5)
    assert loaded.counts.dtype == np.float64 and loaded.time.dtype == np.float64
    assert np.array_equal(loaded.counts, counts) and np.array_equal(loaded.time, time)
    assert loaded.fills == partial.fills


@pytest.mark.parametrize("case", ["fractional counts", "huge count", "time per energy", "nan"])
def test_runs_that_cannot_be_compacted_are_saved_whole(dataset, tmp_path, case):
    rng = np.random.default_rng(6)
    counts = rng.poisson(3.0, (3, 4, 5)).astype(np.float64)
    time = np.broadcast_to(rng.uniform(0, 1800, (4, 5)), (3, 4, 5)).copy()
    if case == "fractional counts":
        counts[1, 2, 3] = 0.1  # float32 would round it
    elif case == "huge count":
        counts[2, 0, 1] = 2.0**24 + 1  # float32 would round it
    elif case == "time per energy":
        time[2] *= 0.5  # e.g. a threshold that depends on the energy
    else:
        counts[0, 0, 0] = np.nan
    store, task, partial = _task_and_partial(dataset, counts, time)
    saved, loaded = _saved_and_loaded(store, task, partial, tmp_path)
    whole_counts = case != "time per energy"
    assert (saved["counts"].dtype == np.float64) == whole_counts
    assert (saved["time"].ndim == 3) == (case == "time per energy")
    assert np.array_equal(loaded.counts, counts, equal_nan=True)
    assert np.array_equal(loaded.time, time)


def test_a_checkpoint_of_the_earlier_format_is_discarded(dataset, tmp_path):
    """Format 1 saved two float64 cubes per run: its runs are not reused, and a message says so."""
    import json

    first = _interrupted_build(dataset, tmp_path, 2)
    manifest = tmp_path / CHECKPOINT_DIR / "manifest.json"
    old = json.loads(manifest.read_text())
    manifest.write_text(json.dumps(dict(old, format=1)))
    store = ScriptedStore(DataStore.from_dir(dataset.path))
    result = make_models(store, tmp_path, progress=False, resume=True, model="groups")
    assert result.reused == [] and len(store.calls) == N_OBS and len(first.calls) == 2
    assert any("discarded" in m and "checkpoint format" in m for m in result.messages)


def test_cubes_on_another_backend_stay_there_until_saved(dataset, tmp_path, monkeypatch):
    """Held runs on a device are not copied to the host early; their files are compact."""
    import array_api_strict as xps

    from bgcube.make import checkpoint as ck

    rng = np.random.default_rng(7)
    counts = rng.poisson(3.0, (3, 4, 5)).astype(np.float64)
    time = np.broadcast_to(rng.uniform(0, 1800, (4, 5)), (3, 4, 5)).copy()
    store, task, partial = _task_and_partial(dataset, counts, time)
    on_device = PartialCubes(xps.asarray(counts), xps.asarray(time), partial.fills)
    checkpoint = ck.Checkpoint.open(tmp_path, store=store, tasks=[task], outputs=[], keep=False)
    checkpoint.start()
    monkeypatch.setattr(ck, "SAVE_AFTER_S", 3600.0)
    checkpoint.save(task, on_device)
    assert checkpoint._held[0][1] is on_device  # held as it is
    checkpoint.wait()  # saved: compact, on the host
    with np.load(tmp_path / CHECKPOINT_DIR / "runs" / f"obs{task.obs_id}.npz") as data:
        assert data["counts"].dtype == np.float32 and data["time"].shape == (4, 5)
        assert np.array_equal(data["counts"], counts)


def test_resume_reuses_runs_whatever_the_spelling_of_indir(dataset, tmp_path, monkeypatch):
    """The same files through a relative path or a symbolic link: every saved run reused."""
    monkeypatch.chdir(dataset.path.parent)
    outdir = tmp_path / "out"
    store = ScriptedStore(DataStore.from_dir(dataset.path.name), interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        make_models(store, outdir, progress=False, model="groups")
    link = tmp_path / "link"
    link.symlink_to(dataset.path.resolve(), target_is_directory=True)
    second = ScriptedStore(DataStore.from_dir(link))
    result = make_models(second, outdir, progress=False, resume=True, model="groups")
    assert sorted(result.reused) == sorted(store.calls)
    assert not any("recomputed" in m or "discarded" in m for m in result.messages)


def test_a_joint_build_resumed_as_group_models_leaves_no_joint_files(dataset, tmp_path):
    """The interrupted build's planned files this build does not write are removed, no other."""
    from bgcube.make.earlier_outputs import JOINT_MODEL_FILE

    # a joint build stopped after writing its files: its checkpoint is still there
    make_models(dataset.path, tmp_path, progress=False, keep_checkpoint=True, fit_glat_min=0)
    assert (tmp_path / JOINT_MODEL_FILE).is_file() and (tmp_path / CHECKPOINT_DIR).is_dir()
    joint_runs = sorted((tmp_path / "bkg").glob("bkg_obs_*.fits.gz"))
    assert joint_runs
    (tmp_path / "bkg" / "notes.txt").write_text("mine")
    (tmp_path / "bg_joint_model.fits.gz.bak").write_text("mine")
    result = make_models(dataset.path, tmp_path, progress=False, resume=True, model="groups")
    note = [m for m in result.messages if m.startswith("removed")]
    assert note and "of the interrupted build that this build does not write" in note[0]
    assert not (tmp_path / JOINT_MODEL_FILE).exists()
    assert not any(p.exists() for p in joint_runs)
    assert not (tmp_path / "hdu-index.fits.gz").exists()
    assert (tmp_path / "bkg" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "bg_joint_model.fits.gz.bak").read_text() == "mine"
    assert all(Path(f).is_file() for f in result.files)


def test_another_run_selection_reuses_the_saved_runs_still_selected(dataset, tmp_path):
    """A run's saved cubes depend on nothing of the other runs (exclusion 'auto' included)."""
    first = _interrupted_build(dataset, tmp_path / "out", 4)
    left_out = min(set(range(1, N_OBS + 1)) - set(first.calls))
    second = ScriptedStore(DataStore.from_dir(dataset.path))
    result = make_models(
        second,
        tmp_path / "out",
        progress=False,
        resume=True,
        exclude_obs_ids=[left_out],
        model="groups",
    )
    assert sorted(result.reused) == sorted(first.calls)
    assert sorted(second.calls) == sorted(set(range(1, N_OBS + 1)) - set(first.calls) - {left_out})
    assert any("the run selection changed" in m and "1 left out" in m for m in result.messages)
    assert not any("recomputed" in m or "discarded" in m for m in result.messages)
    fresh = make_models(
        dataset.path, tmp_path / "fresh", progress=False, exclude_obs_ids=[left_out], model="groups"
    )
    assert_same_models(result, fresh)


def test_a_joint_build_with_another_run_selection_reuses_the_saved_runs(dataset, tmp_path):
    from astropy.io import fits

    from bgcube.make.earlier_outputs import JOINT_MODEL_FILE

    store = ScriptedStore(DataStore.from_dir(dataset.path), interrupt_after=4)
    with pytest.raises(KeyboardInterrupt):
        make_models(store, tmp_path / "out", progress=False, fit_glat_min=0)
    second = ScriptedStore(DataStore.from_dir(dataset.path))
    options = dict(progress=False, fit_glat_min=0, exclude_obs_ids=[N_OBS])
    result = make_models(second, tmp_path / "out", resume=True, **options)
    assert sorted(second.calls) == sorted(set(range(1, N_OBS)) - set(store.calls))
    assert not any("recomputed" in m or "discarded" in m for m in result.messages)
    make_models(dataset.path, tmp_path / "fresh", **options)
    resumed, fresh = (fits.getdata(tmp_path / d / JOINT_MODEL_FILE, 1) for d in ("out", "fresh"))
    assert all(np.array_equal(resumed[c], fresh[c]) for c in fresh.columns.names)


def test_only_the_runs_near_a_changed_exclusion_circle_are_recomputed(dataset, tmp_path):
    store = DataStore.from_dir(dataset.path)
    far = ExclusionRegions([0.0], [89.0], [0.5])  # far from every simulated pointing
    first = _interrupted_build(dataset, tmp_path / "out", 4, exclusion=far)
    target = first.calls[0]
    row = store.obs_table[np.asarray(store.obs_table["OBS_ID"]) == target][0]
    near = ExclusionRegions(
        [0.0, float(row["RA_PNT"]) + 0.5], [89.0, float(row["DEC_PNT"])], [0.5, 0.3]
    )
    second = ScriptedStore(store)
    result = make_models(
        second, tmp_path / "out", progress=False, resume=True, exclusion=near, model="groups"
    )
    assert sorted(result.reused) == sorted(set(first.calls) - {target})
    assert [m for m in result.messages if "recomputed" in m] == [
        f"1 saved run(s) recomputed (OBS_ID {target}): other exclusion regions near it"
    ]
    fresh = make_models(
        dataset.path, tmp_path / "fresh", progress=False, exclusion=near, model="groups"
    )
    assert_same_models(result, fresh)


def test_resume_without_a_checkpoint_says_it_builds_from_the_start(dataset, tmp_path):
    result = make_models(dataset.path, tmp_path, progress=False, resume=True, model="groups")
    assert f"no checkpoint in {str(tmp_path)!r}: building from the start" in result.messages
    assert result.reused == []
