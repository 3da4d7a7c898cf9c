"""Shared fixtures: the ``xp`` backend matrix and the reference data folder."""

import os

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from bgcube.array.namespace import BackendUnavailableError, get_namespace  # noqa: E402
from bgcube.datasets import data_dir  # noqa: E402
from bgcube.errors import DataNotFoundError  # noqa: E402

# "ci" (the default) explores the same examples on every run, so a red CI is
# reproducible; "long" (BGCUBE_HYPOTHESIS_PROFILE=long) explores new ones each time
settings.register_profile(
    "ci", max_examples=40, deadline=None, print_blob=True, derandomize=True, database=None
)
settings.register_profile("long", max_examples=1000, deadline=None, print_blob=True)
# "quick": the same fixed examples, fewer of them, for a one-shot check under a time limit
# (benchmarks/gpu_check.sh: every new array shape is a new program to compile on a GPU)
settings.register_profile(
    "quick", max_examples=10, deadline=None, print_blob=True, derandomize=True, database=None
)
settings.load_profile(os.environ.get("BGCUBE_HYPOTHESIS_PROFILE", "ci"))

#: Backends of the test matrix; BGCUBE_BACKENDS=numpy,jax narrows it (nox does).
ALL_BACKENDS = ("numpy", "array_api_strict", "jax", "cupy")
SELECTED = tuple(
    b for b in os.environ.get("BGCUBE_BACKENDS", ",".join(ALL_BACKENDS)).split(",") if b
)


def _namespace_or_skip(name):
    if name not in SELECTED:
        pytest.skip(f"backend {name} not selected (BGCUBE_BACKENDS={','.join(SELECTED)})")
    try:
        return get_namespace(name)
    except BackendUnavailableError as exc:
        pytest.skip(f"backend {name} unavailable: {exc}")


@pytest.fixture(params=ALL_BACKENDS, scope="session")
def xp(request):
    """Array API namespace of each backend (skipped with its reason where unavailable)."""
    return _namespace_or_skip(request.param)


@pytest.fixture(params=[b for b in ALL_BACKENDS if b != "cupy"], scope="session")
def xp_nocupy(request):
    """Like ``xp`` but without CuPy, for comparisons between CPU backends."""
    return _namespace_or_skip(request.param)


@pytest.fixture(scope="session")
def shared_data():
    """The reference data folder (``$BGCUBE_DATA`` or ../shared/data); skip if absent."""
    try:
        return data_dir()
    except DataNotFoundError as exc:
        pytest.skip(str(exc))


# --- fuzz tests (tests/test_fuzz_readers.py): how many cases each one tried ---
def pytest_terminal_summary(terminalreporter):
    """Print the ``fuzz_cases`` property each fuzz test records, one line per test."""
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == "fuzz_cases"
    ]
    if lines:
        terminalreporter.write_sep(
            "-",
            "fuzz cases tried (hypothesis profile "
            f"{os.environ.get('BGCUBE_HYPOTHESIS_PROFILE', 'ci')})",
        )
        for line in sorted(lines):
            terminalreporter.write_line(line)
