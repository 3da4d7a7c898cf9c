"""nox sessions: the test suite per backend, lint, and a quick benchmark run.

    nox -l                       # list the sessions
    nox -s tests-numpy           # one backend (BGCUBE_BACKENDS narrows tests/conftest.py)
    nox -s lint
    nox -s benchmarks            # reduced sizes; the full run is python benchmarks/bench_fill.py

Each session installs bgcube into its own virtualenv with the extras it
needs; virtualenvs are reused between runs. Extra arguments after ``--`` go
to pytest (``nox -s tests-jax -- -x -k fill``).
"""

import shutil
import subprocess

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests-numpy", "tests-array_api_strict", "tests-jax"]

#: backend -> extras its test session installs
BACKEND_EXTRAS = {
    "numpy": "test",
    "array_api_strict": "test",
    "jax": "test,jax",
    "cupy": "test,cupy",
}


def _run_tests(session, backend):
    session.install("-e", f".[{BACKEND_EXTRAS[backend]}]")
    session.run("python", "-m", "pytest", *session.posargs, env={"BGCUBE_BACKENDS": backend})


def _cuda_devices():
    """Number of CUDA devices nvidia-smi lists (0 when there is no driver)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return 0
    return sum(line.startswith("GPU ") for line in result.stdout.splitlines())


@nox.session(name="tests-numpy")
def tests_numpy(session):
    """Tests on NumPy (numba kernel, bincount and portable fill paths)."""
    _run_tests(session, "numpy")


@nox.session(name="tests-array_api_strict")
def tests_array_api_strict(session):
    """Tests on array_api_strict: proves the portable paths use only the standard."""
    _run_tests(session, "array_api_strict")


@nox.session(name="tests-jax")
def tests_jax(session):
    """Tests on JAX (CPU here; jitted fill)."""
    _run_tests(session, "jax")


#: no virtualenv is even created for the CuPy session without a GPU
_HAVE_CUDA = _cuda_devices() > 0


@nox.session(name="tests-cupy", venv_backend=None if _HAVE_CUDA else "none")
def tests_cupy(session):
    """Tests on CuPy; skipped, before installing anything, where there is no CUDA device."""
    if not _HAVE_CUDA:
        session.skip("no CUDA device (nvidia-smi lists no GPU): the CuPy tests need one")
    _run_tests(session, "cupy")


@nox.session
def lint(session):
    """ruff on the package and the tests."""
    session.install("ruff")
    session.run("ruff", "check", "bgcube", "tests", "benchmarks", "examples", "noxfile.py")
    session.run(
        "ruff", "format", "--check", "bgcube", "tests", "benchmarks", "examples", "noxfile.py"
    )


@nox.session
def benchmarks(session):
    """The benchmark scripts at reduced sizes (prints tables, writes nothing)."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/bench_fill.py", "--sizes", "1e5,1e6", "--no-write")
    session.run("python", "benchmarks/bench_smooth.py", "--no-write")
    session.run(
        "python", "benchmarks/bench_stream.py", "--events", "3e7", "--chunk", "1e6", "--no-write"
    )
    session.run("python", "benchmarks/bench_make_models.py", "--repeat", "2", "--no-write")


#: the documentation build: nitpicky, warnings as errors, every problem reported, and a
#: fresh environment (-E: the API pages are regenerated from __all__ at every build)
SPHINX_OPTIONS = ("-W", "--keep-going", "-n", "-E", "-b", "html")


@nox.session
def docs(session):
    """Build the documentation site into docs/_build/html (warnings are errors)."""
    session.install("-e", ".[docs]")
    session.run(
        "python", "-m", "sphinx", *SPHINX_OPTIONS, "docs", "docs/_build/html", *session.posargs
    )


@nox.session(name="docs-screenshots")
def docs_screenshots(session):
    """Build the site and take headless-Chromium screenshots of three pages.

    The PNGs go to docs/_build/screenshots/: the home page, one API page and
    one gallery page. Skipped, with the reason, where no Chromium is installed
    (``apt-get install chromium``).
    """
    browser = next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    if browser is None:
        session.skip(
            "no Chromium found (chromium, chromium-browser or google-chrome on PATH); "
            "install it with 'apt-get install chromium'"
        )
    session.install("-e", ".[docs]")
    session.run("python", "-m", "sphinx", *SPHINX_OPTIONS, "docs", "docs/_build/html")
    session.run(
        "python",
        "docs/screenshots.py",
        "docs/_build/html",
        "docs/_build/screenshots",
        "--browser",
        browser,
    )
