"""benchmarks/gpu_check.sh in its dry mode: it checks, prints its plan and looks for a GPU."""

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def _cuda_gpus():
    if shutil.which("nvidia-smi") is None:
        return 0
    result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return sum(line.startswith("GPU ") for line in result.stdout.splitlines())


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_dry_run_gets_as_far_as_the_gpu_and_says_what_it_found(tmp_path):
    out = tmp_path / "results"
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--out", str(out), "--wheels", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    text = result.stdout
    assert result.returncode == 0, result.stderr
    assert "wheels: no folder" in text and "--prepare-wheels" in text
    assert f"--target {out}/site" in text  # the plan: nothing installed outside the results
    assert "BGCUBE_BACKENDS=cupy" in text and "BGCUBE_BACKENDS=jax JAX_PLATFORMS=cuda" in text
    assert text.count("BGCUBE_HYPOTHESIS_PROFILE=quick") == 2  # fewer shapes to compile
    assert "GPUs: nvidia-smi" in text
    if _cuda_gpus():
        assert "GPU found; dry run stops here" in text
    else:
        assert "no CUDA GPU found; dry run stops here" in text
    assert not out.exists()  # a dry run writes nothing


def test_unknown_option_is_refused():
    result = subprocess.run(
        ["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 64 and "unknown option --bogus" in result.stderr


def test_the_quick_profile_explores_fewer_fixed_examples():
    """The profile gpu_check.sh runs the tests with: fewer examples than CI's, the same each run."""
    from hypothesis import settings

    quick, ci = settings.get_profile("quick"), settings.get_profile("ci")
    assert quick.max_examples < ci.max_examples
    assert quick.derandomize and quick.deadline is None
