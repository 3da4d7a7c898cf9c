"""The command's process ends without Python's teardown, only where that is safe
(`bgcube.cli_exit`): output and exit handlers complete, the status kept."""

import os
import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest

from bgcube.cube import FOVCube
from bgcube.describe import describe_file

ROOT = Path(__file__).resolve().parents[1]

#: Runs ``bgcube.cli.command`` as ``python -m bgcube`` does, after setting up what the
#: test observes: an exit handler that writes a file, an object whose finaliser says
#: "torn down" (it runs only in Python's teardown), optionally a tracer or a thread.
LAUNCHER = """
import atexit, os, sys, threading, time
marker, mode = sys.argv.pop(1), sys.argv.pop(1)

class Finalised:
    def __del__(self, write=os.write):
        write(2, b"torn down\\n")

keep = Finalised()
atexit.register(lambda: open(marker, "w").write("exit handlers ran"))
if mode == "traced":
    sys.settrace(lambda *args: None)
if mode == "monitored":  # a tool registered with sys.monitoring (Python 3.12+), as cProfile
    import types
    sys.monitoring = types.SimpleNamespace(get_tool=lambda i: "cProfile" if i == 2 else None)
import bgcube.cli
if mode == "thread":  # a thread still at work when the command has finished
    done = threading.Event()
    main = bgcube.cli.main
    def main_then_done(*args):
        status = main(*args)
        done.set()
        return status
    bgcube.cli.main = main_then_done
    def late():
        done.wait()
        time.sleep(0.3)
        open(marker + ".thread", "w").write("thread finished")
    threading.Thread(target=late).start()
bgcube.cli.command()
"""


def run(tmp_path, mode, *argv):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    marker = tmp_path / f"marker-{mode}"
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(marker), mode, *map(str, argv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return result, marker


@pytest.fixture(scope="module")
def cube_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("exit") / "cube.fits"
    x, e = np.linspace(-2, 2, 5) * u.deg, np.geomspace(0.1, 100, 4) * u.TeV
    data = np.arange(48.0).reshape(3, 4, 4) * u.Unit("1 / (MeV s sr)")
    FOVCube(x, x, e, data=data, scheme="bg_cube").write(path)
    return path


def test_a_command_ends_after_its_output_and_exit_handlers_without_teardown(tmp_path, cube_file):
    result, marker = run(tmp_path, "plain", "info", cube_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout == describe_file(cube_file) + "\n"  # all of it, though piped
    assert marker.read_text() == "exit handlers ran"
    assert "torn down" not in result.stderr


def test_an_error_keeps_its_status_and_message(tmp_path):
    result, marker = run(tmp_path, "plain", "info", tmp_path / "missing.fits")
    assert result.returncode == 1
    assert result.stderr.startswith("bgcube info: error:") and "missing.fits" in result.stderr
    assert marker.read_text() == "exit handlers ran"
    assert "torn down" not in result.stderr


@pytest.mark.parametrize("mode", ["traced", "monitored"])
def test_a_traced_process_ends_the_usual_way(tmp_path, cube_file, mode):
    """coverage, cProfile and debuggers report during the normal exit."""
    result, marker = run(tmp_path, mode, "info", cube_file)
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "exit handlers ran"
    assert "torn down" in result.stderr


def test_a_running_thread_is_waited_for(tmp_path, cube_file):
    result, marker = run(tmp_path, "thread", "info", cube_file)
    assert result.returncode == 0, result.stderr
    assert Path(f"{marker}.thread").read_text() == "thread finished"
    assert marker.read_text() == "exit handlers ran"
    assert "torn down" in result.stderr
