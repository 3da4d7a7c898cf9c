"""Fill throughput: bgcube on every backend and method against other histogram libraries.

Run from the repository root::

    python benchmarks/bench_fill.py                    # full run, writes benchmarks/results/fill.md
    python benchmarks/bench_fill.py --sizes 1e5,1e6 --no-write   # quick look

In one run, on the same events (see ``_common.EVENTS_DESCRIPTION``), for
each dtype and event count it times: bgcube's numba kernel, its NumPy
``bincount`` path (what runs without numba), its portable Array API path on
NumPy arrays and on ``array_api_strict``, its JAX path; ``numpy.histogramdd``
with the bin edges; fast-histogram (uniform bins, on log10 of the energy,
the log10 timed too); boost-histogram with 1 and 2 threads; and the memory
floor, the time to read the three input arrays once (``numpy.sum``). It
prints a table of events per second with the ratios to histogramdd and to
the floor, and checks bgcube's counts against histogramdd's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    ENERGY_EDGES,
    EVENTS_DESCRIPTION,
    FOV_DEG,
    FOV_EDGES,
    best_time,
    load_average,
    machine_description,
    make_events,
    publish,
    versions,
)

from bgcube.array import Binning, fill_histogram  # noqa: E402
from bgcube.array.histogram import default_fill_method  # noqa: E402

BINNINGS = (
    Binning.from_edges(ENERGY_EDGES),
    Binning.from_edges(FOV_EDGES),
    Binning.from_edges(FOV_EDGES),
)
RESULTS = Path(__file__).resolve().parent / "results" / "fill.md"


def _bgcube(method, backend="numpy"):
    """Factory: events -> (call, counts-as-numpy) for one bgcube backend and method."""

    def prepare(energy, dety, detx):
        if backend == "numpy":
            arrays, sync, host = (energy, dety, detx), (lambda c: c), np.asarray
        elif backend == "array_api_strict":
            import array_api_strict as xp

            arrays = tuple(xp.asarray(a) for a in (energy, dety, detx))
            sync, host = (lambda c: c), np.from_dlpack
        else:  # jax
            import jax.numpy as jnp

            arrays = tuple(jnp.asarray(a) for a in (energy, dety, detx))
            sync, host = (lambda c: c.block_until_ready()), np.asarray

        def call():
            return sync(fill_histogram(*arrays, BINNINGS, method=method))

        return call, lambda: host(call())

    return prepare


def _histogramdd(energy, dety, detx):
    def call():
        return np.histogramdd((energy, dety, detx), bins=(ENERGY_EDGES, FOV_EDGES, FOV_EDGES))[0]

    return call, call


def _fast_histogram(energy, dety, detx):
    import fast_histogram

    ranges = [(-1.0, 2.0), (-FOV_DEG, FOV_DEG), (-FOV_DEG, FOV_DEG)]

    def call():
        return fast_histogram.histogramdd(
            (np.log10(energy), dety, detx), bins=(20, 60, 60), range=ranges
        )

    return call, call


def _boost(threads):
    def prepare(energy, dety, detx):
        import boost_histogram as bh

        axes = (
            bh.axis.Regular(20, 0.1, 100.0, transform=bh.axis.transform.log),
            bh.axis.Regular(60, -FOV_DEG, FOV_DEG),
            bh.axis.Regular(60, -FOV_DEG, FOV_DEG),
        )

        def call():
            h = bh.Histogram(*axes, storage=bh.storage.Double())
            h.fill(energy, dety, detx, threads=threads)
            return h.values()

        return call, call

    return prepare


def _floor(energy, dety, detx):
    def call():
        return float(np.sum(energy)) + float(np.sum(dety)) + float(np.sum(detx))

    return call, None


def contenders():
    """(name, prepare) pairs; prepare(events) -> (timed call, counts call or None)."""
    out = []
    if default_fill_method(np) == "numba":
        out.append(("bgcube numba (NumPy default)", _bgcube("numba")))
    out.append(("bgcube bincount (NumPy, no numba)", _bgcube("bincount")))
    out.append(("bgcube portable on NumPy", _bgcube("portable")))
    try:
        import array_api_strict  # noqa: F401

        out.append(("bgcube portable on array_api_strict", _bgcube("portable", "array_api_strict")))
    except ImportError:
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        out.append(("bgcube jax (CPU, jit)", _bgcube("jax", "jax")))
    except ImportError:
        pass
    out.append(("numpy.histogramdd", _histogramdd))
    try:
        import fast_histogram  # noqa: F401

        out.append(("fast-histogram (log10 E)", _fast_histogram))
    except ImportError:
        pass
    try:
        import boost_histogram  # noqa: F401

        out.append(("boost-histogram 1 thread", _boost(1)))
        out.append(("boost-histogram 2 threads", _boost(2)))
    except ImportError:
        pass
    out.append(("memory floor (read 3 arrays)", _floor))
    return out


def run(sizes, dtypes, *, max_size_slow=None):
    """Time every contender; return rows (dtype, n, name, seconds, agrees-with-histogramdd)."""
    rows = []
    for dtype in dtypes:
        all_events = make_events(max(sizes), dtype=dtype)
        for n in sizes:
            events = tuple(a[:n] for a in all_events)
            reference = _histogramdd(*events)[1]()
            for name, prepare in contenders():
                call, counts = prepare(*events)
                seconds = best_time(call)
                agrees = ""
                if name.startswith("bgcube"):
                    agrees = "yes" if np.array_equal(counts(), reference) else "NO"
                rows.append((np.dtype(dtype).name, n, name, seconds, agrees))
                print(
                    f"{np.dtype(dtype).name:8s} {n:>10.0e} {name:40s} {n / seconds / 1e6:9.1f} M/s",
                    flush=True,
                )
    return rows


def table(rows):
    """Markdown tables, one per (dtype, n), with ratios to histogramdd and the floor."""
    lines = []
    keys = sorted({(r[0], r[1]) for r in rows}, key=lambda k: (k[1], k[0]))
    for dtype, n in keys:
        group = [r for r in rows if r[0] == dtype and r[1] == n]
        t_hdd = next(r[3] for r in group if r[2] == "numpy.histogramdd")
        t_floor = next(r[3] for r in group if r[2].startswith("memory floor"))
        lines += [
            f"### {n:.0e} events, {dtype}",
            "",
            "| method | M events/s | x histogramdd | time / floor | counts = histogramdd's |",
            "|---|---:|---:|---:|:---:|",
        ]
        for _, _, name, seconds, agrees in group:
            lines.append(
                f"| {name} | {n / seconds / 1e6:.1f} | {t_hdd / seconds:.1f} | "
                f"{seconds / t_floor:.1f} | {agrees} |"
            )
        lines.append("")
    return "\n".join(lines)


def targets(rows):
    """The fill targets' ratios at the largest size <= 1e7, per dtype."""
    lines = ["| target (at 1e7 events) | dtype | measured | met |", "|---|---|---:|:---:|"]
    for dtype in sorted({r[0] for r in rows}):
        n = max(r[1] for r in rows if r[0] == dtype and r[1] <= 1e7)
        t = {r[2]: r[3] for r in rows if r[0] == dtype and r[1] == n}
        hdd = t["numpy.histogramdd"]
        checks = []
        best_numpy = min(
            t.get("bgcube numba (NumPy default)", np.inf), t["bgcube bincount (NumPy, no numba)"]
        )
        checks.append(("NumPy default >= 20x histogramdd", hdd / best_numpy, 20))
        for other in ("fast-histogram (log10 E)", "boost-histogram 2 threads"):
            if other in t:
                checks.append((f"NumPy default >= 2x {other}", t[other] / best_numpy, 2))
        if "bgcube jax (CPU, jit)" in t:
            checks.append(("JAX CPU >= 10x histogramdd", hdd / t["bgcube jax (CPU, jit)"], 10))
        checks.append(
            ("portable (on NumPy) >= 2x histogramdd", hdd / t["bgcube portable on NumPy"], 2)
        )
        for label, ratio, goal in checks:
            lines.append(
                f"| {label} | {dtype} | {ratio:.1f}x | {'yes' if ratio >= goal else 'no'} |"
            )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default="1e5,1e6,1e7,3e7",
        help="comma-separated event counts (default 1e5,1e6,1e7,3e7)",
    )
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    dtypes = [np.dtype(d).type for d in args.dtypes.split(",")]
    load_before = load_average()
    rows = run(sizes, dtypes)
    load_after = load_average()
    report = "\n".join(
        [
            "# Fill throughput",
            "",
            "Written by `python benchmarks/bench_fill.py`; 20x60x60 bins (energy log 0.1-100 TeV, "
            "DETX/DETY linear +-0.07 rad in deg); best of >= 5 runs (and >= 1 s) after a warm-up.",
            "",
            f"- machine: {machine_description()}",
            f"- load average (1, 5, 15 min) before: {load_before}; after: {load_after}",
            f"- events: {EVENTS_DESCRIPTION}",
            f"- versions: {versions('numpy', 'numba', 'jax', 'fast-histogram', 'boost-histogram', 'array-api-strict')}",
            "",
            "## Targets",
            "",
            targets(rows),
            "",
            "## All measurements",
            "",
            table(rows),
        ]
    )
    print()
    publish(report, args.output, write=not args.no_write)


if __name__ == "__main__":
    main()
