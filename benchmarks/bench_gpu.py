"""Fill and make-models on every available backend, for a machine with a GPU (run by gpu_check.sh).

Run from the repository root::

    python benchmarks/bench_gpu.py --out RESULTS_DIR            # what gpu_check.sh runs
    python benchmarks/bench_gpu.py --sizes 1e6 --runs 4 --out /tmp/x   # quick look (CPU too)

It writes ``RESULTS_DIR/bench_gpu.md`` with:

* **fill**: `bgcube.array.fill_histogram` on events already on the device
  (CuPy, JAX on its default device) and on NumPy (numba), float32 and
  float64, events/s (each timed call waits for the result), counts checked
  against NumPy's;
* **make-models**: a simulated GADF data set (``bgcube.simulate``, written
  once to a temporary folder) built with ``backend='numpy'``, ``'jax'`` and
  ``'cupy'``: wall time of a first (compiling) and a second call, and
  whether the cubes equal NumPy's (counts exactly, times to 1e-12);
* **joint fit**: the joint model fitted to a simulated archive of per-run
  cubes (``bench_joint_fit``'s, default 300 runs) on each backend: wall
  time of a first (compiling) and a second fit, Newton iterations, and the
  largest difference of the coefficients from NumPy's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import ENERGY_EDGES, FOV_EDGES, best_time, machine_description, make_events  # noqa: E402

from bgcube.array import BackendUnavailableError, Binning, fill_histogram, get_namespace  # noqa: E402
from bgcube.backend import to_numpy  # noqa: E402

BINNINGS = (
    Binning.from_edges(ENERGY_EDGES),
    Binning.from_edges(FOV_EDGES),
    Binning.from_edges(FOV_EDGES),
)


def available_backends():
    """(name, namespace, device description) of each backend that works here."""
    out = []
    for name in ("numpy", "jax", "cupy"):
        try:
            xp = get_namespace(name)
        except BackendUnavailableError as exc:
            print(f"{name}: unavailable ({exc})", flush=True)
            continue
        if name == "jax":
            import jax

            where = str(jax.devices()[0])
        elif name == "cupy":
            import cupy

            where = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        else:
            where = "host"
        out.append((name, xp, where))
    return out


def _sync(name):
    if name == "jax":
        return lambda c: c.block_until_ready()
    if name == "cupy":
        import cupy

        return lambda c: (cupy.cuda.Device().synchronize(), c)[1]
    return lambda c: c


def bench_fill(backends, sizes, dtypes):
    rows = []
    for dtype in dtypes:
        for n in sizes:
            events = make_events(n, dtype=dtype)
            reference = np.asarray(fill_histogram(*events, BINNINGS, method="bincount"))
            for name, xp, _ in backends:
                arrays = tuple(xp.asarray(a) for a in events)
                sync = _sync(name)

                def call(arrays=arrays, sync=sync):
                    return sync(fill_histogram(*arrays, BINNINGS))

                seconds = best_time(call, min_repeats=3, min_total=0.3)
                same = np.array_equal(to_numpy(call()), reference)
                rows.append((np.dtype(dtype).name, n, name, seconds, same))
                print(
                    f"fill {np.dtype(dtype).name} {n:.0e} {name:6s} "
                    f"{n / seconds / 1e6:9.1f} M/s same={same}",
                    flush=True,
                )
    return rows


def bench_make_models(backends, n_runs, rate_hz):
    import astropy.units as u

    from bgcube.make.pipeline import make_models
    from bgcube.simulate.dataset import make_test_dataset

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "dataset"
        make_test_dataset(
            data, n_obs=n_runs, random_state=1, background_rate=rate_hz * u.Hz, write_bkg=False
        )
        results = {}
        for name, _, _ in backends:
            times = []
            for k in range(2):
                start = time.perf_counter()
                result = make_models(
                    data,
                    Path(tmp) / f"out_{name}_{k}",
                    backend=name,
                    model="groups",
                    progress=False,
                )
                times.append(time.perf_counter() - start)
            results[name] = result
            rows.append([name, times[0], times[1], sum(g.n_events for g in result.groups)])
            print(
                f"make-models {name:6s} first {times[0]:.2f} s, second {times[1]:.2f} s", flush=True
            )
        reference = results["numpy"]
        for row in rows:
            row.append(_same_cubes(results[row[0]], reference))
    return rows


def bench_joint_fit(backends, n_runs):
    from bench_joint_fit import _simulated

    from bgcube.fit.joint_fitting import fit_joint_model

    counts, exposure, thresholds, table = _simulated(n_runs)
    rows, reference = [], None
    for name, _, _ in backends:
        times = []
        for _ in range(2):
            start = time.perf_counter()
            model = fit_joint_model(counts, exposure, thresholds, table, backend=name)
            times.append(time.perf_counter() - start)
        coef = np.concatenate([model.coef_a.ravel(), model.coef_s.ravel()])
        reference = coef if reference is None else reference
        diff = float(np.max(np.abs(coef - reference)))
        rows.append([name, times[0], times[1], int(model.meta["NITER"]), diff])
        print(f"joint fit {name:6s} first {times[0]:.2f} s, second {times[1]:.2f} s", flush=True)
    return rows


def _same_cubes(result, reference):
    for a, b in zip(result.groups, reference.groups, strict=True):
        if (a.model is None) != (b.model is None):
            return False
        if a.model is None:
            continue
        if not np.array_equal(
            to_numpy(a.model.counts_cube.data), to_numpy(b.model.counts_cube.data)
        ):
            return False
        ta, tb = to_numpy(a.model.livetime_cube.data), to_numpy(b.model.livetime_cube.data)
        if not np.allclose(ta, tb, rtol=1e-12, atol=0):
            return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7,1e8")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--runs", type=int, default=20, help="simulated runs for make-models")
    parser.add_argument("--rate", type=float, default=60.0, help="background rate per run, Hz")
    parser.add_argument("--joint-runs", type=int, default=300, help="runs for the joint fit")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    backends = available_backends()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    dtypes = [np.dtype(d).type for d in args.dtypes.split(",")]
    fill_rows = bench_fill(backends, sizes, dtypes)
    mm_rows = bench_make_models(backends, args.runs, args.rate) if args.runs > 0 else []
    joint_rows = bench_joint_fit(backends, args.joint_runs) if args.joint_runs > 0 else []
    lines = [
        "# bgcube on the GPU machine",
        "",
        f"- machine: {machine_description()}",
        "- devices: " + ", ".join(f"{n}: {w}" for n, _, w in backends),
        "",
        "## Fill (events already on the device)",
        "",
        "| dtype | events | backend | M events/s | counts = NumPy's |",
        "|---|---:|---|---:|:---:|",
    ]
    lines += [
        f"| {d} | {n:.0e} | {b} | {n / s / 1e6:.1f} | {'yes' if ok else 'NO'} |"
        for d, n, b, s, ok in fill_rows
    ]
    lines += [
        "",
        f"## make-models, {args.runs} simulated runs",
        "",
        "| backend | first call [s] | second call [s] | events | cubes = NumPy's |",
        "|---|---:|---:|---:|:---:|",
    ]
    lines += [
        f"| {b} | {t0:.2f} | {t1:.2f} | {n} | {'yes' if ok else 'NO'} |"
        for b, t0, t1, n, ok in mm_rows
    ]
    lines += [
        "",
        f"## Joint fit, {args.joint_runs} simulated runs",
        "",
        "| backend | first fit [s] | second fit [s] | Newton iterations | max coefficient "
        "difference from NumPy |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {b} | {t0:.2f} | {t1:.2f} | {it} | {d:.1e} |" for b, t0, t1, it, d in joint_rows]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    bad = [r for r in fill_rows if not r[4]] + [r for r in mm_rows if not r[4]]
    bad += [r for r in joint_rows if not r[4] < 1e-6]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
