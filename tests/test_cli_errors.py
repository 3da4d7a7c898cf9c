"""The command never writes into its input, checks options first and fails in one line.

Every refused or failed command leaves the input data set byte-identical
(`tree_digest`), prints one line on stderr without a traceback and exits
with 1 (2 for a usage error, 130 when interrupted).
"""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bgcube.cli import main
from bgcube.simulate.dataset import make_test_dataset

ROOT = Path(__file__).resolve().parent.parent


def tree_digest(folder) -> dict:
    """Every file under ``folder`` (relative path) -> SHA-256 of its bytes."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_test_dataset(tmp_path_factory.mktemp("cli") / "data", n_obs=4, random_state=5)


@pytest.fixture
def indir(dataset):
    """The data set folder; the test fails if anything under it changed."""
    before = tree_digest(dataset.path)
    yield Path(dataset.path)
    assert tree_digest(dataset.path) == before, "the input data set was modified"


def run_main(capsys, *argv):
    """``main(argv)`` -> (status, stdout, stderr); usage errors raise SystemExit in argparse."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line(err):
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


# --- output folder and input data set -------------------------------------------


@pytest.mark.parametrize(
    "extra", [[], ["--overwrite"], ["--per-observation", "group", "--overwrite"]]
)
def test_output_equal_to_input_is_refused(indir, capsys, extra):
    status, _, err = run_main(
        capsys, "make-models", "--model", "groups", indir, indir, "--no-progress", *extra
    )
    assert status == 1
    assert_one_line(err)
    assert "is the input data folder" in err and "never writes into its input" in err
    assert "--overwrite" not in err


def test_output_inside_or_containing_input_is_refused(indir, tmp_path, capsys):
    status, _, err = run_main(capsys, "make-models", "--model", "groups", indir, indir / "models")
    assert status == 1 and "lies inside the input data folder" in err
    assert not (indir / "models").exists()
    status, _, err = run_main(capsys, "make-models", "--model", "groups", indir, indir.parent)
    assert status == 1 and "contains the input data folder" in err
    assert_one_line(err)


def test_output_through_a_symbolic_link_is_refused(indir, tmp_path, capsys):
    link = tmp_path / "link"
    link.symlink_to(indir, target_is_directory=True)
    status, _, err = run_main(
        capsys, "make-models", "--model", "groups", indir, link, "--overwrite"
    )
    assert status == 1 and "is the input data folder" in err
    status, _, err = run_main(capsys, "make-models", "--model", "groups", link, indir / "x")
    assert status == 1 and "lies inside" in err


def test_library_refuses_too(indir):
    from bgcube.make import make_models
    from bgcube.make.guard import OutputInsideInputError

    with pytest.raises(OutputInsideInputError, match="never writes into its input"):
        make_models(indir, indir / "sub", progress=False, overwrite=True, model="groups")
    assert not (indir / "sub").exists()


# --- options checked before any work -----------------------------------------------


@pytest.mark.parametrize(
    "options, status, text",
    [
        (["--smooth-passes", "-1"], 2, "--smooth-passes must be >= 1"),
        (["--smooth-passes", "0"], 2, "use --no-smooth"),
        (["--zenith-edges", "80,90"], 1, "hold no run (the runs' zenith angles span"),
        (["--zenith-edges", "50,40"], 2, "increasing"),
        (["--efficiency-norm", "NOPE"], 1, "no column 'NOPE'"),
        (["--min-observations", "0"], 2, "--min-observations must be >= 1"),
        (["--exclusion", "no-such-file.ecsv"], 1, "--exclusion: no such file"),
    ],
)
def test_bad_options_fail_before_any_work(indir, tmp_path, capsys, options, status, text):
    out = tmp_path / "out"
    got, _, err = run_main(
        capsys, "make-models", "--model", "groups", indir, out, "--no-progress", *options
    )
    assert got == status, err
    assert text in err
    assert_one_line(err)
    assert not out.exists(), "a refused command left its output folder behind"


def test_demo_with_no_runs_is_refused_and_leaves_nothing(tmp_path, capsys):
    status, _, err = run_main(capsys, "demo", tmp_path / "demo", "--n-obs", "0")
    assert status == 2 and "--n-obs must be >= 10" in err
    assert_one_line(err)
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(
    "options, text",
    [
        (["--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
        (["--n-obs", "9"], "--n-obs must be >= 10"),
    ],
)
def test_demo_options_are_refused_before_anything_is_done(
    tmp_path, capsys, monkeypatch, options, text
):
    import bgcube.simulate.demo as demo

    def simulate(*args, **kwargs):
        raise AssertionError("the demo started")

    monkeypatch.setattr(demo, "make_test_dataset", simulate)
    status, out, err = run_main(capsys, "demo", tmp_path / "demo", *options)
    assert (status, out) == (2, "") and text in err
    assert_one_line(err)
    assert not (tmp_path / "demo").exists()
    with pytest.raises(ValueError, match="must be .*>= "):  # the library refuses too, silently
        demo.run_demo(
            tmp_path / "demo",
            n_obs=9 if "--n-obs" in options else 10,
            seed=-1 if "--seed" in options else 0,
            echo=lambda *a, **k: pytest.fail("printed"),
        )
    assert not (tmp_path / "demo").exists()


def test_demo_help_says_the_limits():
    import argparse

    from bgcube.cli_parser import build_parser

    parser = build_parser()
    demo = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        "demo"
    ]
    helps = {a.dest: a.help for a in demo._actions}
    assert "at least 10" in helps["n_obs"] and ">= 0" in helps["seed"]


def test_a_failed_demo_removes_what_it_started(tmp_path, capsys, monkeypatch):
    import bgcube.simulate.demo as demo

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "demo" / "models" / "x"))

    monkeypatch.setattr(demo, "make_models", broken)
    status, _, err = run_main(capsys, "demo", tmp_path / "demo", "--n-obs", "10")
    assert status == 1 and "No space left on device (ENOSPC)" in err
    assert_one_line(err)
    assert not (tmp_path / "demo").exists()
    monkeypatch.undo()
    assert main(["demo", str(tmp_path / "demo"), "--n-obs", "10"]) == 0  # nothing blocks a rerun


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_demo_never_writes_into_a_data_store(indir, capsys, monkeypatch, overwrite):
    import bgcube.simulate.demo as demo

    monkeypatch.setattr(demo, "make_test_dataset", lambda *a, **k: pytest.fail("started"))
    for outdir, text in ((indir, "is a data store"), (indir / "new", "lies inside the data store")):
        status, out, err = run_main(capsys, "demo", outdir, "--n-obs", "10", *overwrite)
        assert (status, out) == (1, ""), err
        assert text in err and "choose a new or empty folder outside any data store" in err
        assert_one_line(err)
    assert not (indir / "new").exists()


def test_demo_refuses_a_folder_holding_files_without_overwrite(tmp_path, capsys, monkeypatch):
    import bgcube.simulate.demo as demo

    monkeypatch.setattr(demo, "make_test_dataset", lambda *a, **k: pytest.fail("started"))
    outdir = tmp_path / "mine"
    outdir.mkdir()
    (outdir / "notes.txt").write_text("mine")
    status, _, err = run_main(capsys, "demo", outdir, "--n-obs", "10")
    assert status == 1 and "is not empty" in err and "use --overwrite" in err, err
    assert_one_line(err)
    assert [p.name for p in outdir.iterdir()] == ["notes.txt"]
    with pytest.raises(FileExistsError, match="pass overwrite=True"):  # the library refuses too
        demo.run_demo(outdir, echo=None)
    assert [p.name for p in outdir.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("command", ["make-models", "demo", "apply-models"])
def test_an_outdir_that_is_a_file_is_said_so(indir, tmp_path, capsys, command):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    argv = {
        "make-models": ["make-models", indir, afile],
        "demo": ["demo", afile],
        "apply-models": ["apply-models", tmp_path, indir, afile],
    }[command]
    status, _, err = run_main(capsys, *argv)
    assert status == 1 and f"OUTDIR {str(afile)!r} is a file, not a folder" in err, err
    assert_one_line(err)
    assert afile.read_text() == "mine"


def test_workers_without_dask(indir, tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("dask", "distributed") else find_spec(name, *a),
    )
    status, _, err = run_main(
        capsys, "make-models", "--model", "groups", indir, tmp_path / "o", "--workers", "2"
    )
    assert status == 1
    assert "--workers" in err and 'pip install -e ".[dask]"' in err
    assert_one_line(err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "backend, modules", [("jax", ("jax", "jax.numpy")), ("cupy", ("cupy", "array_api_compat.cupy"))]
)
def test_backend_without_its_package(indir, tmp_path, capsys, monkeypatch, backend, modules):
    for name in modules:  # an import of a module set to None raises ImportError
        monkeypatch.setitem(sys.modules, name, None)
    status, _, err = run_main(
        capsys, "make-models", "--model", "groups", indir, tmp_path / "o", "--backend", backend
    )
    assert status == 1
    assert f"--backend {backend}" in err and f'pip install -e ".[{backend}]"' in err
    assert_one_line(err)


def test_every_named_extra_exists():
    """Install hints name extras of pyproject.toml, installable from a source checkout."""
    import tomllib

    from bgcube.array.namespace import BACKENDS

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for name in set(BACKENDS) - {"numpy"}:
        assert name in extras, f"the install hint of backend {name!r} names a missing extra"
    assert "dask" in extras


# --- one line, --debug, internal errors ---------------------------------------------


def test_internal_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    import bgcube.cli as cli

    def broken(args):
        raise RuntimeError("something unexpected\non two lines")

    monkeypatch.setitem(cli._COMMANDS, "info", broken)
    status, _, err = run_main(capsys, "info", tmp_path / "x.fits")
    assert status == 1
    assert_one_line(err)
    assert "internal error (RuntimeError: something unexpected on two lines)" in err
    assert "--debug" in err
    status, _, err = run_main(capsys, "info", tmp_path / "x.fits", "--debug")
    assert status == 1 and "Traceback (most recent call last)" in err


def test_repeated_prefixes_are_said_once():
    from bgcube.cli_support import one_line

    text = one_line(ValueError("OBS_ID 20136: OBS_ID 20136: file 'x': cannot read"))
    assert text == "OBS_ID 20136: file 'x': cannot read"


def command(*argv):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return [sys.executable, "-m", "bgcube", *map(str, argv)], env


def test_a_real_command_line_error_has_no_traceback(indir):
    argv, env = command("make-models", "--model", "groups", indir, indir)
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1
    assert_one_line(result.stderr)
    argv, env = command("--debug", "make-models", "--model", "groups", indir, indir)
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1 and "Traceback" in result.stderr


def closed_stdout_run(*argv):
    """Run the command with stdout a pipe whose reader is gone (``| head`` that has quit)."""
    argv, env = command(*argv)
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    process.stdout.close()  # before the command writes: every write meets EPIPE
    _, err = process.communicate(timeout=300)
    return process.returncode, err


def test_a_closed_pipe_ends_the_command_silently(indir, tmp_path):
    """``bgcube ... | head``: status 141 as for SIGPIPE, nothing on stderr, the work done."""
    from bgcube import FOVCube

    out = tmp_path / "out"
    status, err = closed_stdout_run("make-models", "--model", "groups", indir, out, "--no-progress")
    assert (status, err) == (141, "")
    assert FOVCube.read(out / "bg_cube_model_group0_table.fits.gz").shape[0] > 0
    status, err = closed_stdout_run("info", out / "bg_cube_model_group0_table.fits.gz")
    assert (status, err) == (141, "")


def test_a_broken_pipe_elsewhere_is_an_error(tmp_path, capsys, monkeypatch):
    """A BrokenPipeError while stdout is fine (a socket, a subprocess) is reported."""
    import bgcube.cli as cli

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setitem(cli._COMMANDS, "info", broken)
    status, _, err = run_main(capsys, "info", tmp_path / "x.fits")
    assert status == 1 and "bgcube info: error: Broken pipe (EPIPE)" in err


# --- Ctrl-C at any moment ------------------------------------------------------------


#: Runs the command as its entry point does, after marking that Python has started.
LAUNCHER = (
    "import pathlib, sys; import bgcube.cli; pathlib.Path(sys.argv.pop(1)).touch(); "
    "sys.exit(bgcube.cli.main())"
)


def _launch(indir, tmp_path, name):
    """Start the group build as its entry point does; return it once bgcube's code runs."""
    out, started = tmp_path / f"out-{name}", tmp_path / f"started-{name}"
    argv, env = command("make-models", "--model", "groups", indir, out, "--no-progress")
    argv = [sys.executable, "-c", LAUNCHER, str(started), *argv[3:]]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 60  # wait (at most 60 s) until bgcube's code runs
    while not started.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return process


def test_ctrl_c_at_any_moment_gives_one_line_and_130(indir, tmp_path):
    """SIGINT at moments spread over start-up, reading, writing: one line, status 130.

    The signal is sent once the interpreter has started (Python's own
    start-up, before any bgcube code runs, is out of bgcube's hands), then
    after delays spread over the command's own duration, measured first on
    this machine: the imports, the reading of runs and the writing.
    """
    process = _launch(indir, tmp_path, "whole")
    start = time.monotonic()
    process.communicate(timeout=300)
    duration = time.monotonic() - start
    assert process.returncode == 0
    interrupted = 0
    for k in range(10):
        process = _launch(indir, tmp_path, str(k))
        time.sleep(duration * k / 10)
        if process.poll() is not None:
            process.communicate()
            continue
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=300)
        if process.returncode == 0:  # the signal came while the finished command exited
            continue
        assert process.returncode == 130, err
        assert_one_line(err)
        assert "interrupted" in err
        interrupted += 1
    assert interrupted >= 5
