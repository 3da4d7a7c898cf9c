"""Faults during a build: a full disk, a read-only folder, two builds into one folder, a killed build.

Each gives a one-line error, leaves no partial or temporary file and can be
resumed. A full disk and a read-only folder are injected at the point where
bgcube publishes a finished temporary file (tests run as root here, where
file permissions do not stop writes); the chmod test runs where they do.
"""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bgcube.io.atomic as atomic
from bgcube import FOVCubeBackgroundModel
from bgcube.cli import main
from bgcube.io.atomic import TEMP_MARKER
from bgcube.make.checkpoint import CHECKPOINT_DIR
from bgcube.make.guard import LOCK_NAME, BuildLock, OutputLockedError
from bgcube.make.pipeline import make_models
from bgcube.simulate.dataset import make_test_dataset

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_test_dataset(tmp_path_factory.mktemp("faults") / "data", n_obs=4, random_state=8)


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("reference")
    make_models(dataset.path, outdir, progress=False, model="groups")
    return outdir


def model_files(folder):
    return sorted(p.name for p in Path(folder).glob("bg_cube_model_group*_table.fits.gz"))


def assert_same_models(folder, reference):
    assert model_files(folder) == model_files(reference)
    for name in model_files(reference):
        a = FOVCubeBackgroundModel.read(Path(folder) / name)
        b = FOVCubeBackgroundModel.read(Path(reference) / name)
        for cube in ("counts_cube", "livetime_cube", "background_cube"):
            np.testing.assert_array_equal(getattr(a, cube).quantity, getattr(b, cube).quantity)


def no_temporaries(folder):
    return not [p for p in Path(folder).rglob(f"{TEMP_MARKER}*")]


def failing_publish(error_number, when=lambda path: "bg_cube_model_group" in path.name):
    """A ``_publish`` that fails like a full disk / read-only folder for the chosen files."""
    real = atomic._publish

    def publish(tmp, path, overwrite):
        if when(Path(path)):
            raise OSError(error_number, os.strerror(error_number), str(tmp))
        return real(tmp, path, overwrite)

    return publish


@pytest.mark.parametrize(
    "error_number, text",
    [
        (errno.ENOSPC, "No space left on device (ENOSPC)"),
        (errno.EROFS, "Read-only file system (EROFS)"),
        (errno.EACCES, "Permission denied (EACCES)"),
    ],
)
def test_write_failure_is_one_line_leaves_no_partial_file_and_resumes(
    dataset, reference, tmp_path, capsys, monkeypatch, error_number, text
):
    outdir = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(atomic, "_publish", failing_publish(error_number))
        status = main(
            ["make-models", "--model", "groups", str(dataset.path), str(outdir), "--no-progress"]
        )
    err = capsys.readouterr().err
    assert status == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert text in err
    assert "add --resume to continue" in err  # the finished runs are kept
    assert model_files(outdir) == []  # no partial model file
    assert no_temporaries(outdir)
    assert not (outdir / LOCK_NAME).exists()
    # once the disk has room again, the build resumes without reading the runs again
    assert (
        main(
            [
                "make-models",
                "--model",
                "groups",
                str(dataset.path),
                str(outdir),
                "--no-progress",
                "--resume",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "4 run(s) reused from the checkpoint" in out
    assert_same_models(outdir, reference)
    assert not (outdir / CHECKPOINT_DIR).exists()


def test_an_error_the_same_build_would_hit_again_leaves_nothing_behind(
    dataset, reference, tmp_path, capsys, monkeypatch
):
    """A failure of the build itself (not of the system) removes its checkpoint and the
    files it had written: the corrected build then runs without --resume or --overwrite."""
    import bgcube.make.group_build as group_build
    from bgcube.errors import FitError

    def broken(*args, **kwargs):
        raise FitError("the group model cannot be made")

    outdir = tmp_path / "out"
    argv = ["make-models", "--model", "groups", str(dataset.path), str(outdir), "--no-progress"]
    for existed in (False, True):
        if existed:
            outdir.mkdir()
            (outdir / "notes.txt").write_text("kept")
        with monkeypatch.context() as patch:
            patch.setattr(group_build, "_group_model", broken)
            patch.setattr("bgcube.make.checkpoint.SAVE_AFTER_S", 0.0)  # runs saved at once
            assert main(argv) == 1
        err = capsys.readouterr().err
        assert "the group model cannot be made" in err and "--resume" not in err
        if existed:
            assert sorted(p.name for p in outdir.iterdir()) == ["notes.txt"]
        else:
            assert not outdir.exists()
    assert main(argv) == 0, capsys.readouterr().err
    assert_same_models(outdir, reference)
    assert (outdir / "notes.txt").read_text() == "kept"


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root ignores file permissions, so chmod cannot make a folder "
    "read-only here (the injected EROFS/EACCES tests cover this case)",
)
def test_read_only_output_folder(dataset, tmp_path, capsys):
    outdir = tmp_path / "out"
    outdir.mkdir()
    outdir.chmod(0o555)
    try:
        status = main(
            ["make-models", "--model", "groups", str(dataset.path), str(outdir), "--no-progress"]
        )
    finally:
        outdir.chmod(0o755)
    err = capsys.readouterr().err
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert "Permission denied" in err
    assert list(outdir.iterdir()) == []


# --- the lock: a second build refuses, a stale lock is recognised ---------------------

HOLDER = (
    "import sys, time; from bgcube.make.guard import BuildLock; "
    "BuildLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)"
)


def env():
    return dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )


def test_second_build_refuses_while_the_first_runs_and_a_stale_lock_is_replaced(
    dataset, reference, tmp_path
):
    outdir = tmp_path / "out"
    outdir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(outdir)], stdout=subprocess.PIPE, text=True, env=env()
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        command = [
            sys.executable,
            "-m",
            "bgcube",
            "make-models",
            "--model",
            "groups",
            str(dataset.path),
            str(outdir),
            "--no-progress",
        ]
        second = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=300)
        assert second.returncode == 1
        assert (
            f"another bgcube build is writing into {str(outdir)!r} (PID {holder.pid}"
            in second.stderr
        )
        assert len(second.stderr.strip().splitlines()) == 1
        assert model_files(outdir) == []
    finally:
        holder.send_signal(signal.SIGKILL)  # the holder dies without removing its lock
        holder.communicate()
    assert (outdir / LOCK_NAME).exists()
    third = subprocess.run(command, capture_output=True, text=True, env=env(), timeout=300)
    assert third.returncode == 0, third.stderr
    assert (
        f"replaced the stale lock of a build that no longer runs (PID {holder.pid}" in third.stderr
    )
    assert not (outdir / LOCK_NAME).exists()
    assert_same_models(outdir, reference)


def test_lock_in_process(tmp_path):
    with BuildLock(tmp_path) as lock:
        assert (tmp_path / LOCK_NAME).exists()
        with pytest.raises(OutputLockedError, match=f"PID {os.getpid()}"):
            BuildLock(tmp_path).acquire()
        assert lock.stale is None
    assert not (tmp_path / LOCK_NAME).exists()


#: The bgcube command with each run's fill slowed down by 50 ms: a DR1 group build
#: (about 1 s) is then still reading its runs half a second after taking its lock.
SLOW_BUILD = """
import sys, time
import bgcube.make.partial as partial
fill = partial.fill_observation
def slow(*args, **kwargs):
    time.sleep(0.05)
    return fill(*args, **kwargs)
partial.fill_observation = slow
from bgcube.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_build_resumes(shared_data, tmp_path):
    """SIGKILL a real build on the H.E.S.S. DR1 runs mid-way; --resume then completes it."""
    indir = shared_data / "hess-dl3-dr1"
    outdir = tmp_path / "out"
    arguments = [
        "make-models",
        "--model",
        "groups",
        str(indir),
        str(outdir),
        "--no-progress",
        "--exclusion",
        "none",
    ]
    command = [sys.executable, "-m", "bgcube", *arguments]
    slow = [sys.executable, "-c", SLOW_BUILD, *arguments]
    build = subprocess.Popen(slow, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    for _ in range(3000):  # until the build holds its lock (at most 5 min)
        if (outdir / LOCK_NAME).exists() or build.poll() is not None:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    build.send_signal(signal.SIGKILL)
    build.communicate()
    if build.returncode == 0:
        pytest.skip("the build finished before it could be killed")
    assert (outdir / LOCK_NAME).exists()  # the killed build could not remove it
    resumed = subprocess.run(
        command + ["--resume"], capture_output=True, text=True, env=env(), timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "replaced the stale lock" in resumed.stderr
    assert no_temporaries(outdir)
    assert not (outdir / LOCK_NAME).exists() and not (outdir / CHECKPOINT_DIR).exists()
    assert len(model_files(outdir)) >= 1
