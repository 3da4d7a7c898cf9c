"""What the ``bgcube`` command imports: nothing it does not use (start-up is most of a short build).

Each check runs a fresh interpreter and lists the heavy modules it loaded;
no clock is read. The command's help and the import of what ``make-models``
needs load none of the optional libraries (JAX, Dask, SciPy, matplotlib,
numba), no joint-fit code, neither ``astropy.coordinates`` (about 0.1 s;
bgcube's angles become `~astropy.coordinates.Angle` only when asked for)
nor ``array_api_compat.numpy`` (which clones all of NumPy, ``numpy.f2py``
and ``numpy.testing`` included). A group build on the H.E.S.S. DR1 runs
stays that lean to the end: its ECSV files are written without astropy's
YAML dumper, which imports astropy.coordinates. The default (joint) build
loads the joint fit and nothing else heavy.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bgcube.array.namespace import _numpy_is_namespace

#: Modules the command must not load to start (or, below, to build group models).
HEAVY = (
    "jax",
    "dask",
    "distributed",
    "scipy",
    "matplotlib",
    "numba",
    "astropy.coordinates",
    "numpy.f2py",
    "numpy.testing",
    "bgcube.fit",
    "bgcube.simulate",
    "bgcube.plotting",
)


def _heavy_modules_after(code, *, extra=(), env=None):
    """The heavy modules loaded by the end of ``code`` (run in a fresh interpreter)."""
    watched = HEAVY + tuple(extra)
    if _numpy_is_namespace():
        watched += ("array_api_compat.numpy",)
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import sys
        print(sorted(m for m in {watched!r} if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=dict(os.environ, **(env or {})),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_command_help_loads_nothing_heavy():
    code = """
        import sys
        from bgcube.cli import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        try:
            main(["make-models", "--help"])
        except SystemExit:
            pass
    """
    assert _heavy_modules_after(code, extra=("astropy.table", "astropy.units")) == "[]"


def test_make_models_imports_load_nothing_heavy():
    code = """
        import bgcube.cli
        import bgcube.make
        from bgcube.make.pipeline import make_models
        from bgcube.make.group_build import build_group_models
    """
    assert _heavy_modules_after(code) == "[]"


def test_public_names_still_resolve_to_angles():
    """The laziness keeps the API: DETX/DETY edges are Angles when asked for."""
    code = """
        from astropy.coordinates import Angle
        from astropy.table import Table
        import bgcube
        from bgcube import binning
        from bgcube.make import define_cube_binning

        detx, dety, energy = define_cube_binning(Table({"OBS_ID": [1, 2]}))
        assert type(detx) is Angle and type(dety) is Angle and type(energy) is not Angle
        model = bgcube.FOVCubeBackgroundModel.set_cube_binning(detx, dety, energy)
        assert type(model.counts_cube.coordx_edges) is Angle
        assert type(model.counts_cube.detx_axis.centers) is Angle
        assert type(binning.DEFAULT_FOV_HALF_WIDTH) is Angle
        edges = binning.cube_edges(Table({"OBS_ID": [1, 2]}))
        assert all(type(e) is not Angle for e in edges)
        for a, b in zip(edges, (detx, dety, energy)):
            assert a.unit == b.unit and a.value.tobytes() == b.value.tobytes()
    """
    assert _heavy_modules_after(code) == "['astropy.coordinates']"


def test_dr1_group_build_stays_lean(shared_data, tmp_path):
    indir = shared_data / "hess-dl3-dr1"
    if not indir.is_dir():
        pytest.skip(f"no H.E.S.S. DL3 DR1 under {shared_data}")
    code = f"""
        from bgcube.cli import main
        assert main(["make-models", "--model", "groups", "--test", "--no-progress",
                     {str(indir)!r}, {str(tmp_path / "out")!r}]) == 0
    """
    assert _heavy_modules_after(code, extra=("dask", "bgcube.make.joint")) == "[]"
    assert (tmp_path / "out" / "bg_observation_groups.ecsv").is_file()
    assert np.all([p.stat().st_size > 0 for p in (tmp_path / "out").iterdir() if p.is_file()])


def test_dr1_joint_build_stays_lean(shared_data, tmp_path):
    """The default build needs the joint fit, and nothing else heavy: its SASH runs' models
    are mirrored for Gammapy without making Angles (astropy.coordinates)."""
    indir = shared_data / "hess-dl3-dr1"
    if not indir.is_dir():
        pytest.skip(f"no H.E.S.S. DL3 DR1 under {shared_data}")
    code = f"""
        from bgcube.cli import main
        assert main(["make-models", "--no-progress",
                     {str(indir)!r}, {str(tmp_path / "out")!r}]) == 0
    """
    heavy = [m for m in HEAVY if m != "bgcube.fit"]
    watched = _heavy_modules_after(code, extra=("dask",)).strip("[]").replace("'", "")
    loaded = [m.strip() for m in watched.split(",") if m.strip()]
    assert [m for m in loaded if m in heavy] == []
    assert "bgcube.fit" in loaded  # the build did fit
    files = sorted((tmp_path / "out" / "bkg").glob("bkg_obs_*.fits.gz"))
    assert len(files) == 105
