"""The README's commands and Python snippets run as written.

The fenced blocks are read from README.md each time, so the test follows
edits of the README:

* ```` ```python ```` blocks run, each in a fresh namespace, in a folder
  holding copies of the original Gammapy test files (so that
  ``FOVCube.read("bg_cube_model_test1.fits")`` finds its file);
* in ```` ```bash ```` / ```` ```sh ```` blocks each command (lines, and
  parts joined by ``&&``) is handled by `classify`: ``bgcube ...`` runs (as
  ``python -m bgcube``, in order, in one folder, with ``path/to/<name>``
  replaced by the reference data folder ``<name>``) and must exit with 0;
  ``pip install`` is not run, but the extras it names must exist; the test
  suite, nox and the benchmarks are not run from here (they are the suite
  itself, a tool, and timings). Any other command fails the test, so that a
  new kind of command in the README gets a rule here.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: Commands not run here, and why.
NOT_RUN = {
    "python -m pytest": "the test suite itself",
    "nox": "a development tool; its sessions are the test suite",
    "python benchmarks/": "benchmarks measure time, they are not tests",
    "python examples/": "examples run in tests/test_examples.py",
}


def fenced_blocks(text):
    """``(language, code)`` of every fenced block of a Markdown text."""
    return [
        (m.group(1).strip().lower(), m.group(2))
        for m in re.finditer(r"^```([^\n`]*)\n(.*?)^```", text, flags=re.M | re.S)
    ]


def shell_commands(code):
    """The commands of a shell block: one per line and per ``&&`` part, comments removed."""
    commands = []
    for line in code.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def classify(command):
    """``('run' | 'pip' | 'skip', detail)`` for one README command."""
    if command.startswith("bgcube ") or command == "bgcube":
        return "run", command
    if command.startswith("pip install"):
        return "pip", command
    for prefix, reason in NOT_RUN.items():
        if command.startswith(prefix):
            return "skip", reason
    return "unknown", command


def readme_blocks():
    return fenced_blocks(README.read_text())


def test_readme_has_commands_and_snippets():
    languages = [language for language, _ in readme_blocks()]
    assert "python" in languages and "bash" in languages
    commands = [
        c for lang, code in readme_blocks() if lang in ("bash", "sh") for c in shell_commands(code)
    ]
    assert sum(classify(c)[0] == "run" for c in commands) >= 3


def test_every_readme_command_is_understood():
    unknown = [
        c
        for lang, code in readme_blocks()
        if lang in ("bash", "sh", "shell")
        for c in shell_commands(code)
        if classify(c)[0] == "unknown"
    ]
    assert not unknown, (
        f"README commands with no rule in tests/test_readme.py: {unknown}; "
        "add a rule to classify() (run it, or say why it is not run)"
    )


def test_pip_install_names_existing_extras():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for _, code in readme_blocks():
        for command in shell_commands(code):
            if classify(command)[0] != "pip":
                continue
            for group in re.findall(r"\.\[([^\]]*)\]", command):
                for extra in group.split(","):
                    assert extra.strip() in extras, f"{command!r}: no extra {extra!r}"
            assert "bgcube[" not in command, f"{command!r}: bgcube is not on a package index"


def substitute(command, data):
    """``bgcube ...`` -> argv for ``python -m bgcube``, ``path/to/<name>`` -> data/<name>."""
    argv = shlex.split(command)[1:]
    out = []
    for arg in argv:
        if arg.startswith("path/to/"):
            name = arg.removeprefix("path/to/").strip("/")
            if not (data / name).exists():
                pytest.skip(f"README names path/to/{name}, not in the reference data {data}")
            arg = str(data / name)
        out.append(arg)
    return [sys.executable, "-m", "bgcube", *out]


@pytest.mark.slow
def test_readme_commands_run(shared_data, tmp_path):
    env = dict(
        os.environ,
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    ran = 0
    for lang, code in readme_blocks():
        if lang not in ("bash", "sh", "shell"):
            continue
        for command in shell_commands(code):
            if classify(command)[0] != "run":
                continue
            result = subprocess.run(
                substitute(command, shared_data),
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert result.returncode == 0, f"{command!r} failed:\n{result.stderr}"
            assert "Traceback" not in result.stderr
            ran += 1
    assert ran >= 3


def test_readme_python_snippets_run(shared_data, tmp_path, monkeypatch):
    plt = pytest.importorskip("matplotlib.pyplot")
    for path in (shared_data / "gammapy-extra-background").iterdir():
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.chdir(tmp_path)
    snippets = [code for lang, code in readme_blocks() if lang == "python"]
    assert snippets
    for code in snippets:
        # the README installs bgcube alone (pip install -e .): its snippets run without JAX
        assert 'backend="jax"' not in code and "backend='jax'" not in code, code
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            exec(compile(code, str(README), "exec"), {"__name__": "readme"})
        plt.close("all")
