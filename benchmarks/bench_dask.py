"""make-models serial and on Dask (1 and 2 workers): build time and peak memory per worker.

Run ``python benchmarks/bench_dask.py [--heavy-runs 12] [--out benchmarks/results/dask.md]``.

Data sets:

* the 105 runs of H.E.S.S. DL3 DR1 (found as `bgcube.datasets.get_path`
  does): small runs, 1e4 events each;
* ``--heavy-runs`` simulated runs of about 8e5 events each
  (`bgcube.simulate.make_test_dataset`, background rate 500 Hz, 1800 s),
  the size of a CTA run, written to a temporary folder (0 skips them).

Every build is the command's default (exclusion 'auto', ONTIME, RADEC,
smoothing, checkpoint saves) into a fresh temporary folder. The serial builds
run in a fresh child process; each Dask configuration gets a fresh
``LocalCluster`` (one thread per worker process), started before the clock
(start-up is reported apart). For each configuration:

* wall time of ``make_models``, twice: "cold" is the first build in a fresh
  process or cluster (imports, numba kernels loaded per process), "warm"
  the second;
* CPU time of the warm build: the driver process (with the Dask scheduler,
  which a LocalCluster runs there) and all workers;
* peak RSS (VmHWM) of the serial process and of each worker, next to a worker's RSS
  once bgcube is imported (before the first task). Builds on fewer runs
  show that a worker's peak does not grow with the number of runs.

The machine's two cores are shared with other processes; the load average
is printed with the results.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_average, machine_description  # noqa: E402


def _peak_rss_mb():
    """Peak RSS of this process, MiB: VmHWM (getrusage's ru_maxrss would include the
    parent's peak, as it survives fork and exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_after_import():
    import psutil

    import bgcube.make.partial  # noqa: F401

    return psutil.Process().memory_info().rss / 2**20


def _timed_builds(path, obs_ids, client=None):
    """A cold and a warm build: ([s, s], (driver CPU s, workers CPU s) of the warm one, cubes)."""
    from bgcube.make import make_models

    def workers_cpu():
        return 0.0 if client is None else sum(client.run(_cpu_seconds).values())

    seconds = []
    for _ in range(2):
        with tempfile.TemporaryDirectory() as outdir:
            cpu0, workers0 = _cpu_seconds(), workers_cpu()
            start = time.perf_counter()
            result = make_models(
                path, outdir, obs_ids=obs_ids, progress=False, scheduler=client, model="groups"
            )
            seconds.append(time.perf_counter() - start)
            cpu = (_cpu_seconds() - cpu0, workers_cpu() - workers0)
    cubes = [
        np.asarray(c.data)
        for g in result.groups
        for c in (g.model.counts_cube, g.model.livetime_cube, g.model.background_cube)
    ]
    return seconds, cpu, cubes


def _serial_in_child(path, obs_ids):
    seconds, cpu, cubes = _timed_builds(path, obs_ids)
    return seconds, cpu, {"serial process": (None, _peak_rss_mb())}, cubes


def build(path, workers, obs_ids):
    """Time a cold and a warm build: (seconds, cpu, start-up s, memory rows, cubes)."""
    if workers is None:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            seconds, cpu, memory, cubes = pool.submit(_serial_in_child, path, obs_ids).result()
        return seconds, cpu, 0.0, memory, cubes
    from bgcube.make.distributed import dask_client

    t0 = time.perf_counter()
    with dask_client(workers=workers) as client:
        before = client.run(_rss_after_import)
        startup = time.perf_counter() - t0
        seconds, cpu, cubes = _timed_builds(path, obs_ids, client)
        peaks = client.run(_peak_rss_mb)
    memory = {f"worker {i + 1}": (before[a], peaks[a]) for i, a in enumerate(sorted(peaks))}
    return seconds, cpu, startup, memory, cubes


def describe(path):
    """(number of runs, OBS_IDs, events, MiB of event files, largest run's events and MiB)."""
    from astropy.io import fits

    from bgcube.data import DataStore

    store = DataStore.from_dir(path)
    ids = sorted(int(i) for i in store.obs_ids)
    files = {i: store.hdu_location(i, "events") for i in ids}
    n_events = {i: fits.getheader(f, hdu)["NAXIS2"] for i, (f, hdu) in files.items()}
    largest = max(n_events, key=n_events.get)
    size = {i: f.stat().st_size / 2**20 for i, (f, _) in files.items()}
    return ids, sum(n_events.values()), sum(size.values()), n_events[largest], size[largest]


def section(title, path, subset):
    """Run the configurations on one data set; return markdown lines."""
    ids, n_events, size, largest_events, largest_size = describe(path)
    part = ids[:subset]
    configs = [
        ("serial", None, None),
        ("Dask, 1 worker", 1, None),
        ("Dask, 2 workers", 2, None),
        (f"Dask, 1 worker, first {subset} runs", 1, part),
        (f"Dask, 2 workers, first {subset} runs", 2, part),
    ]
    rows, reference = [], None
    for label, workers, obs_ids in configs:
        seconds, cpu, startup, memory, cubes = build(path, workers, obs_ids)
        same = None
        if obs_ids is None:
            reference = cubes if reference is None else reference
            same = all(np.array_equal(a, b) for a, b in zip(reference, cubes, strict=True))
        rows.append(
            (label, len(ids if obs_ids is None else obs_ids), seconds, cpu, startup, memory, same)
        )
        print(
            f"{title} | {label}: wall {seconds[0]:.1f} / {seconds[1]:.1f} s, CPU driver "
            f"{cpu[0]:.1f} s, workers {cpu[1]:.1f} s, start-up {startup:.1f} s, "
            f"memory {memory}, equal to serial: {same}",
            flush=True,
        )

    lines = [
        f"## {title}",
        "",
        f"{len(ids)} runs, {n_events} events, {size:.0f} MiB of event files; the largest run "
        f"has {largest_events} events ({largest_size:.1f} MiB file).",
        "",
        "| configuration | runs | cold build (s) | warm build (s) | warm CPU, driver + "
        "scheduler (s) | warm CPU, all workers (s) | cluster start-up (s) "
        "| equal to serial (bitwise) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, n_runs, seconds, cpu, startup, _, same in rows:
        flag = "-" if same is None else ("yes" if same else "NO")
        lines.append(
            f"| {label} | {n_runs} | {seconds[0]:.1f} | {seconds[1]:.1f} | {cpu[0]:.1f} "
            f"| {cpu[1]:.1f} | {startup:.1f} | {flag} |"
        )
    lines += [
        "",
        "| configuration | process | RSS after importing bgcube (MiB) | peak RSS (MiB) |",
        "|---|---|---|---|",
    ]
    for label, _, _, _, _, memory, _ in rows:
        for name, (before, peak) in memory.items():
            text = "-" if before is None else f"{before:.0f}"
            lines.append(f"| {label} | {name} | {text} | {peak:.0f} |")
    return lines + [""]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--heavy-runs",
        type=int,
        default=12,
        help="simulated runs of ~8e5 events (0: none; default %(default)s)",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "dask.md"))
    args = parser.parse_args(argv)

    import astropy.units as u

    from bgcube.datasets import get_path
    from bgcube.simulate import make_test_dataset

    lines = section("H.E.S.S. DL3 DR1", get_path("hess-dl3-dr1"), 20)
    if args.heavy_runs:
        with tempfile.TemporaryDirectory() as folder:
            dataset = make_test_dataset(
                folder, n_obs=args.heavy_runs, random_state=0, background_rate=500 * u.Hz
            )
            lines += section(
                "Simulated runs of ~8e5 events", dataset.path, max(1, args.heavy_runs // 3)
            )
    header = [
        "# make-models on Dask: build time and memory per worker",
        "",
        f"`python benchmarks/bench_dask.py` on {machine_description()}; load average after "
        f"the runs: {load_average()} (the 2 cores are shared with other processes: wall times "
        "are indicative, CPU times steadier). Build: the command's defaults (exclusion "
        "'auto', ONTIME, RADEC, smoothing, checkpoint saves). Serial: a fresh child process. "
        "Dask: a fresh `LocalCluster` per configuration, one thread per worker process, "
        "started before the clock. Cold: first build in the process or cluster; warm: second.",
        "",
        "Worker memory: the growth from 'after importing bgcube' to the peak is mostly "
        "libraries the first task loads (astropy coordinates, numba kernels) plus one run's "
        "events; compare the peaks of builds on all runs and on a third of them.",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(header + lines))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
