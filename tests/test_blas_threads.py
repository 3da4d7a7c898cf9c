"""The bgcube command's BLAS threads: the cores nothing else uses, the user's choice kept,
the library untouched."""

import subprocess
import sys

import pytest

from bgcube.blas_threads import ENV_VAR, OWN_THREADS, command_blas_threads

pytest.importorskip("threadpoolctl")


@pytest.mark.parametrize(
    ("cpus", "load", "expected"),
    [(2, 0.0, 1), (2, 3.5, 1), (1, 0.0, 1), (4, 0.0, 2), (16, 4.2, 10), (16, 0.4, 14)],
)
def test_the_cores_neither_the_load_nor_bgcubes_writers_take(cpus, load, expected):
    assert command_blas_threads({}, cpu_count=cpus, load=load) == expected
    blank = {"PATH": "/bin", "OPENBLAS_NUM_THREADS": " "}  # set but empty: not a choice
    assert command_blas_threads(blank, cpu_count=cpus, load=load) == expected


def test_the_users_choice_is_kept():
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        assert command_blas_threads({name: "4"}, cpu_count=8, load=7.0) is None
    assert command_blas_threads({ENV_VAR: "3"}, cpu_count=2, load=9.0) == 3
    assert command_blas_threads({ENV_VAR: "3", "OMP_NUM_THREADS": "1"}) == 3
    for off in ("off", "0", "No"):
        assert command_blas_threads({ENV_VAR: off}, cpu_count=2, load=9.0) is None


@pytest.mark.parametrize("bad", ["two", "-1", "1.5"])
def test_a_bad_setting_is_an_error_naming_the_variable(bad):
    with pytest.raises(ValueError, match=ENV_VAR):
        command_blas_threads({ENV_VAR: bad})


_PROBE = """
import sys
from threadpoolctl import threadpool_info
def blas():
    return sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
import numpy, bgcube, bgcube.cli
before = blas()
if sys.argv[1] == "limit":
    from bgcube.blas_threads import limit_command_blas
    print(limit_command_blas())
print(before, blas())
"""


def _probe(mode, **env):
    import os

    environ = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", ENV_VAR)}
    environ.update(env)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, env=environ
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split("\n")


def test_the_command_limits_blas_in_its_own_process():
    lines = _probe("limit", **{ENV_VAR: "1", "OPENBLAS_NUM_THREADS": "2"})
    assert lines[0] == "1"
    assert lines[1] == "[2] [1]"  # the process's BLAS had 2 threads, then 1


def test_the_command_gives_blas_the_free_cores_by_default():
    import os

    lines = _probe("limit")
    threads = int(lines[0])  # by this machine's cores and load: on CI's 2 cores, 1
    assert 1 <= threads <= max(1, len(os.sched_getaffinity(0)) - OWN_THREADS)
    assert lines[1].endswith(f" [{threads}]")


def test_importing_bgcube_leaves_blas_alone():
    lines = _probe("import", OPENBLAS_NUM_THREADS="2")
    assert lines[0] == "[2] [2]"


def test_the_command_refuses_a_bad_setting(tmp_path):
    import os

    env = dict(os.environ, **{ENV_VAR: "many"})
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bgcube.cli",
            "make-models",
            str(tmp_path / "in"),
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode != 0
    assert ENV_VAR in out.stderr and "Traceback" not in out.stderr
