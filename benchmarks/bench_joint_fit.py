"""Time and memory of the joint-model fit: H.E.S.S. DR1 and simulated archives of many runs.

    python benchmarks/bench_joint_fit.py            # DR1 (if present), 100, 1000, 5000 runs
    python benchmarks/bench_joint_fit.py --runs 100,1000 --no-write

Each fit runs in a fresh subprocess, so that its peak resident memory
(``ru_maxrss``) is its own. The simulated archives are per-run counts cubes
drawn directly from a known joint model (the fit binning of the default
spec: 101 energy bins x 25 x 25 pixels), with conditions like the DR1 runs'
(zenith 0-55 deg, MUONEFF 0.8-1.2, an effective area that follows both with
a 5 % scatter, a few runs a night), so the time is the
fit's alone; for DR1 the counts and exposure cubes are read first (that time
is reported apart). The fit's cost per Newton iteration is linear in the
number of runs (the expected-counts cubes are computed a chunk of runs at a
time, `bgcube.fit.joint_problem.CHUNK_BYTES`), so the time per run and
iteration should stay flat.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_average, machine_description, publish  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "joint_fit.md"


def _simulated(n_runs, seed=0):
    from astropy.table import Table

    from bgcube.binning import EFFECTIVE_AREA_COLUMN
    from bgcube.fit.joint import (
        DEFAULT_CONDITIONS,
        DEFAULT_SPATIAL_CONDITIONS,
        JointBackgroundModel,
        JointModelSpec,
    )

    rng = np.random.default_rng(seed)
    spec = JointModelSpec()
    table = Table(
        {
            "OBS_ID": np.arange(n_runs),
            "ZEN_PNT": rng.uniform(0.0, 55.0, n_runs),
            "MUONEFF": rng.uniform(0.8, 1.2, n_runs),
            "TSTART": np.sort(rng.uniform(0, n_runs / 4 * 86400.0, n_runs)),
        }
    )
    zenith = np.radians(np.asarray(table["ZEN_PNT"]))
    table[EFFECTIVE_AREA_COLUMN] = (
        2.5e5 * np.cos(zenith) * np.asarray(table["MUONEFF"]) * rng.lognormal(0, 0.05, n_runs)
    )
    conditions = tuple(c.fitted_to(table) for c in DEFAULT_CONDITIONS)
    spatial = tuple(c.fitted_to(table) for c in DEFAULT_SPATIAL_CONDITIONS)
    x = np.linspace(-1, 2, spec.n_energy_basis)
    coef_a = np.zeros((1 + sum(c.degree for c in conditions), spec.n_energy_basis))
    coef_a[0] = 9.0 - 2.7 * np.log(10) * x - 1.5 * (x < -0.4)
    coef_a[1], coef_a[3] = 0.2, 0.1
    j = spec.n_radial_basis - 1 + 2
    r = np.linspace(0.5, spec.radial_max, spec.n_radial_basis - 1)
    coef_s = np.zeros((2, spec.n_spatial_energy_basis, j))
    coef_s[0, :, :-2] = -(r**2) / 2.0
    truth = JointBackgroundModel(spec, conditions, spatial, coef_a, coef_s, np.zeros((1, 1)))
    e = spec.energy_edges()
    xy = spec.fov_edges(spec.fit_pixel)
    c = 0.5 * (xy[1:] + xy[:-1])
    gx, gy = np.meshgrid(c, c)
    log_e = 0.5 * (np.log10(e[1:]) + np.log10(e[:-1]))
    volume = np.diff(e)[:, None] * np.radians(spec.fit_pixel) ** 2 * 1800.0
    counts = np.empty((n_runs, e.size - 1, gx.size), dtype=np.float32)
    for k, row in enumerate(table):
        mu = np.exp(truth.log_rate(row, log_e, gx.ravel(), gy.ravel())) * volume
        counts[k] = rng.poisson(mu)
    exposure = np.full((n_runs, gx.size), 1800.0)
    thresholds = 0.3 / np.cos(np.radians(np.asarray(table["ZEN_PNT"]))) ** 2
    return counts, exposure, thresholds, table


def dr1_inputs():
    """The H.E.S.S. DR1's fit inputs as the default build makes them: counts, exposure,
    thresholds (TeV), the runs' table and the fitted runs (|b| >= 10 deg)."""
    from bgcube.data import DataStore
    from bgcube.datasets import get_path
    from bgcube.fit.joint import JointModelSpec
    from bgcube.make.joint import condition_table, fit_run_mask, read_run_cubes, run_tasks
    from bgcube.make.per_observation import energy_threshold
    from bgcube.make.pipeline import resolve_exclusion

    store = DataStore.from_dir(get_path("hess-dl3-dr1"))
    spec = JointModelSpec()
    regions = resolve_exclusion("auto", store.obs_table)
    cubes = read_run_cubes(run_tasks(store, store.obs_ids, spec, regions), spec, progress=False)
    table = condition_table(store, store.obs_table)
    thresholds = [energy_threshold(table, i) or 0.0 for i in cubes.obs_ids]
    fitted, _ = fit_run_mask(table, 10.0)
    return cubes.counts, cubes.exposure, thresholds, table, fitted


def _one(kind):
    """Run one fit in this process; print a JSON line."""
    from bgcube.blas_threads import limit_command_blas
    from bgcube.fit.joint_fitting import fit_joint_model

    blas = limit_command_blas()  # as the bgcube command does

    read = 0.0
    if kind == "dr1":
        start = time.perf_counter()
        counts, exposure, thresholds, table, fitted = dr1_inputs()
        read = time.perf_counter() - start
    else:
        counts, exposure, thresholds, table = _simulated(int(kind))
        fitted = None
    start = time.perf_counter()
    model = fit_joint_model(counts, exposure, thresholds, table, fitted=fitted)
    fit = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        json.dumps(
            {
                "kind": kind,
                "runs": int(counts.shape[0]),
                "fitted": int(np.sum(model.runs["FITTED"])),
                "read_s": read,
                "fit_s": fit,
                "iterations": int(model.meta["NITER"]),
                "peak_rss_mib": rss,
                "input_mib": (counts.nbytes + exposure.nbytes) / 2**20,
                "blas_threads": blas,
            }
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        default="dr1,100,1000,5000",
        help="comma-separated: dr1 and/or numbers of simulated runs",
    )
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        _one(args.one)
        return 0
    rows = []
    for kind in args.runs.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--one", kind], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            print(f"{kind}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    lines = [
        "# Joint-model fit: time and memory",
        "",
        f"`python benchmarks/bench_joint_fit.py`; {machine_description()}; "
        f"load average {load_average()} at the end. Each fit in its own process, with NumPy's "
        "BLAS limited as the `bgcube` command limits it (`bgcube.blas_threads`).",
        "",
        "| data | runs (fitted) | input cubes MiB | read s | fit s | Newton iterations "
        "| fit ms per run and iteration | peak RSS MiB | BLAS threads |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        per = 1e3 * r["fit_s"] / max(r["fitted"], 1) / max(r["iterations"], 1)
        name = "H.E.S.S. DR1" if r["kind"] == "dr1" else "simulated"
        lines.append(
            f"| {name} | {r['runs']} ({r['fitted']}) | {r['input_mib']:.0f} | "
            f"{r['read_s']:.1f} | {r['fit_s']:.1f} | {r['iterations']} | {per:.1f} | "
            f"{r['peak_rss_mib']:.0f} | {r.get('blas_threads') or 'default'} |"
        )
    publish("\n".join(lines), RESULTS, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
