"""bgcube never changes a user's global configuration: JAX's x64 mode stays as it was.

Each check runs in a fresh interpreter with ``JAX_ENABLE_X64`` unset (the
test suite itself runs with x64 on, see ``conftest.py``).
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("jax", reason="the JAX configuration checks need JAX")


def _run(code):
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["MPLBACKEND"] = "Agg"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()


def test_importing_every_module_leaves_x64_off():
    out = _run(
        """
        import importlib, pkgutil
        import jax
        import bgcube

        before = jax.config.x64_enabled
        names = [m.name for m in pkgutil.walk_packages(bgcube.__path__, "bgcube.")
                 if not m.name.endswith("__main__")]
        for name in names:
            importlib.import_module(name)
        bgcube.get_namespace("jax")
        print(before, jax.config.x64_enabled, len(names))
        """
    )
    assert out[:2] == ["False", "False"]
    assert int(out[2]) > 40


def test_fill_and_fit_leave_x64_as_it_was():
    out = _run(
        """
        import jax
        import numpy as np
        from bgcube.array import Binning, fill_histogram
        from bgcube.array.namespace import BackendUnavailableError, get_namespace
        from bgcube.fit import fit_norm_tilt

        jnp = get_namespace("jax")
        axes = (Binning.from_edges([0.1, 1.0, 10.0]), Binning.from_edges([-1.0, 0.0, 1.0]),
                Binning.from_edges([-1.0, 0.0, 1.0]))
        try:  # without x64: a clear error, no silent 32-bit counts
            fill_histogram(jnp.asarray([0.5]), jnp.asarray([0.5]), jnp.asarray([0.5]), axes)
        except BackendUnavailableError as exc:
            print("refused", "enable_x64" in str(exc))
        with jax.enable_x64(True):  # the user's own choice, for this block
            e = jnp.asarray([0.5, 5.0, 5.0], dtype=jnp.float64)
            c = fill_histogram(e, jnp.zeros(3, dtype=jnp.float64) - 0.5,
                               jnp.zeros(3, dtype=jnp.float64) + 0.5, axes)
            print(int(c.sum()), c.dtype)
        print(jax.config.x64_enabled)

        # a fit runs in float64 inside its own context and leaves x64 off
        rng = np.random.default_rng(1)
        template = np.full((2, 2, 2), 50.0)
        counts = rng.poisson(2.0 * template)
        result = fit_norm_tilt(counts, template, np.array([0.1, 1.0, 10.0]), fit_tilt=False)
        print(round(float(result.values[0]), 1), jax.config.x64_enabled)
        """
    )
    assert out[0:2] == ["refused", "True"]
    assert out[2:4] == ["3", "float64"]
    assert out[4] == "False"
    assert 1.8 < float(out[5]) < 2.2 and out[6] == "False"


def test_data_put_on_jax_without_x64_is_refused():
    """Without x64, JAX would make every float64 cube float32: bgcube refuses, never truncates."""
    out = _run(
        """
        import warnings
        import astropy.units as u
        import numpy as np
        from bgcube import FOVCube, FOVCubeBackgroundModel
        from bgcube import BackendUnavailableError

        warnings.simplefilter("error")  # not even JAX's own float32 warning may come first
        edges = np.linspace(-2, 2, 5) * u.deg
        cube = FOVCube(edges, edges, np.geomspace(1, 100, 3) * u.TeV, scheme="bg_counts_cube")
        attempts = {
            "to_backend": lambda: cube.to_backend("jax"),
            "FOVCube": lambda: FOVCube(edges, edges, [1, 10, 100] * u.TeV, backend="jax"),
            "set_cube_binning": lambda: FOVCubeBackgroundModel.set_cube_binning(
                detx_edges=edges, dety_edges=edges,
                energy_edges=[1, 10, 100] * u.TeV, backend="jax",
            ),
        }
        for name, attempt in attempts.items():
            try:
                attempt()
            except BackendUnavailableError as error:
                assert "64-bit" in str(error), error
                print(name, "refused")
            else:
                print(name, "accepted")
        """
    )
    assert out == ["to_backend", "refused", "FOVCube", "refused", "set_cube_binning", "refused"]
