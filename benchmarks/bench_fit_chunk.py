"""The joint fit's time against its chunks of runs and its threads, side by side in one process.

    python benchmarks/bench_fit_chunk.py --output benchmarks/results/fit_threads.md
    python benchmarks/bench_fit_chunk.py --sizes 32,16,8 --fit-threads 1  # results/fit_chunk.md
    python benchmarks/bench_fit_chunk.py --no-write --rounds 2

The joint fit computes the expected counts of a chunk of runs at a time
(`bgcube.fit.joint_problem.CHUNK_BYTES`: the bytes of one such float64
array), so that its memory is bounded whatever the number of runs, and on
NumPy it computes several chunks at once in threads
(`bgcube.fit.joint_compiled.fit_threads`: the cores BLAS's threads leave).
How large a chunk should be is a matter of the machine's caches and of its
memory allocator, and how many threads pay, of its cores and memory
bandwidth: this script fits the same cubes with each chunk size, number of
fit threads (``--fit-threads``; forced, whatever the library would choose)
and number of BLAS threads (1 and 2), taking turns ``--rounds`` times (a busy
spell of the machine slows every setting alike), and reports each setting's
best wall and CPU time and how far its coefficients are from those of the
first setting. What the library chooses with each number of BLAS threads
is given in the heading.

Data: the H.E.S.S. DL3 DR1 (105 runs read into the fit binning first, if
the dataset is found) and a simulated archive of ``--runs`` runs (the
counts drawn from a known joint model, `bench_joint_fit._simulated`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import load_average, machine_description, publish  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "fit_chunk.md"
SIZES_MIB = (16,)


def _dr1():
    """DR1's fit inputs (`bench_joint_fit.dr1_inputs`), or None if the dataset is not found."""
    from bench_joint_fit import dr1_inputs

    from bgcube.errors import DataNotFoundError

    try:
        counts, *rest = dr1_inputs()
    except DataNotFoundError as exc:  # the dataset is optional here
        print(f"DR1 left out: {exc}", file=sys.stderr)
        return None
    return (np.asarray(counts), *rest)


def _fit(inputs):
    from bgcube.fit.joint_fitting import fit_joint_model

    counts, exposure, thresholds, table, fitted = inputs
    return fit_joint_model(counts, exposure, thresholds, table, fitted=fitted)


def _coefficients(model):
    return np.concatenate([np.ravel(model.coef_a), np.ravel(model.coef_s)])


def _compare(inputs, settings, rounds):
    """``{(BLAS threads, fit threads, MiB): (best wall, its CPU, max |coef. difference|, iter.)}``."""
    from threadpoolctl import threadpool_limits

    from bgcube.fit import joint_problem

    chosen = joint_problem.fit_threads
    best, reference = {}, None
    try:
        for _ in range(rounds):
            for blas, fit_threads, size in settings:
                joint_problem.CHUNK_BYTES = int(size * 2**20)
                joint_problem.fit_threads = lambda xp, n=fit_threads: n
                with threadpool_limits(blas, user_api="blas"):
                    wall, cpu = time.perf_counter(), time.process_time()
                    model = _fit(inputs)
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                coef = _coefficients(model)
                if reference is None:
                    reference = coef
                diff = float(np.max(np.abs(coef - reference)))
                key = (blas, fit_threads, size)
                if key not in best or wall < best[key][0]:
                    best[key] = (wall, cpu, diff, int(model.meta["NITER"]))
    finally:
        joint_problem.fit_threads = chosen
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="simulated runs (0: none)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sizes", default=",".join(str(s) for s in SIZES_MIB), help="chunk sizes, MiB"
    )
    parser.add_argument(
        "--fit-threads", default=None, help="fit threads to try (default: 1 and the cores)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from bgcube.array.threads import n_threads
    from bgcube.blas_threads import command_blas_threads
    from bgcube.fit import joint_problem
    from bgcube.fit.joint_compiled import fit_threads

    default_mib = joint_problem.CHUNK_BYTES / 2**20
    sizes = [float(s) for s in args.sizes.split(",")]
    command = command_blas_threads()
    fit_counts = sorted({1, n_threads()})
    if args.fit_threads:
        fit_counts = [int(n) for n in args.fit_threads.split(",")]
    chosen = {}
    for blas in (1, 2):
        with threadpool_limits(blas, user_api="blas"):
            chosen[blas] = fit_threads(np)
    settings = [(b, f, s) for b in (1, 2) for f in fit_counts for s in sizes]
    datasets = []
    dr1 = _dr1()
    if dr1 is not None:
        datasets.append(("H.E.S.S. DR1", dr1))
    if args.runs:
        from bench_joint_fit import _simulated

        counts, exposure, thresholds, table = _simulated(args.runs)
        datasets.append(
            (f"simulated, {args.runs} runs", (counts, exposure, thresholds, table, None))
        )
    load_before = load_average()
    lines = [
        "# The joint fit against its chunks of runs and its threads",
        "",
        f"`python benchmarks/bench_fit_chunk.py --runs {args.runs} --rounds {args.rounds} "
        f"--sizes {args.sizes} --fit-threads {','.join(str(n) for n in fit_counts)}`; "
        f"{machine_description()}; load average before {load_before}, after "
        "{after}. bgcube's chunk size when this ran: "
        f"{default_mib:g} MiB. Each size's best of {args.rounds} turns, in one process. "
        f"The bgcube command would give BLAS {command or 'its default number of'} thread(s) "
        "at this load; with 1 BLAS thread the library computes chunks in "
        f"{chosen[1]} thread(s), with 2 in {chosen[2]}.",
        "",
        "| data | runs | BLAS threads | fit threads | chunk MiB | runs per chunk | fit wall s "
        "| fit CPU s | Newton iterations | max abs coefficient difference to the first setting |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, inputs in datasets:
        n_runs = inputs[0].shape[0]
        bins = int(np.prod(inputs[0].shape[1:]))
        best = _compare(inputs, settings, args.rounds)
        for (blas, threads, size), (wall, cpu, diff, niter) in best.items():
            per_chunk = max(1, int(size * 2**20) // (8 * bins))
            per_chunk = min(per_chunk, -(-n_runs // threads))  # a chunk per thread at least
            n_chunks = -(-n_runs // per_chunk)  # chunks of equal size, as the fit makes them
            per_chunk = -(-n_runs // n_chunks)
            lines.append(
                f"| {name} | {n_runs} | {blas} | {threads} | {size:g} | {per_chunk} | "
                f"{wall:.3f} | {cpu:.3f} | {niter} | {diff:.1e} |"
            )
    joint_problem.CHUNK_BYTES = int(default_mib * 2**20)
    report = "\n".join(lines).replace("{after}", load_average())
    publish(report, args.output, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
