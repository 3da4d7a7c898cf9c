"""End-to-end make-models on the H.E.S.S. DL3 DR1 against the bare read of its events.

Run from the repository root::

    python benchmarks/bench_make_models.py             # writes benchmarks/results/make_models.md
    python benchmarks/bench_make_models.py --no-write  # print only

In one run, on the 105 runs of ``hess-dl3-dr1`` (found as
`bgcube.datasets.get_path` does), with the files in the page cache after a
warm-up:

* **bare read**: astropy.io.fits opens each events file and copies the
  columns make-models needs (ENERGY, RA, DEC, TIME) to NumPy arrays,
  nothing else: the yardstick of issue 7 (make-models < 3x of it);
* **make_models()**: the Python call with the command's defaults (groups in
  zenith, default exclusion, smoothing, all files written), in this process,
  timed after a first call; this is the cost per build for a session or a
  pipeline that builds several;
* **bgcube make-models**: the command in a fresh interpreter, from start to
  exit (interpreter start and imports included).

Times are the best of ``--repeat`` runs, wall clock and process CPU.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import load_average, machine_description, versions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "make_models.md"
COLUMNS = ("ENERGY", "RA", "DEC", "TIME")


def best_of(repeat, func):
    """Best wall and CPU time (s) of ``repeat`` calls, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = func()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    from astropy.io import fits

    from bgcube.data import DataStore
    from bgcube.datasets import get_path
    from bgcube.make.pipeline import make_models

    indir = get_path("hess-dl3-dr1")
    store = DataStore.from_dir(indir)
    files = [store.hdu_location(i, "events")[0] for i in store.obs_ids]

    def bare():
        n = 0
        for path in files:
            with fits.open(path) as hdus:
                data = hdus["EVENTS"].data
                n += sum(np.array(data[c]).size for c in COLUMNS) // len(COLUMNS)
        return n

    load_before = load_average()
    bare()  # warm-up: files into the page cache
    rows = []
    wall, cpu, n_events = best_of(args.repeat, bare)
    rows.append(("bare astropy read (ENERGY, RA, DEC, TIME)", wall, cpu))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "models"

        def build():
            return make_models(indir, out, overwrite=True, progress=False)

        build()  # first call: one-time costs (compilation caches, imports)
        wall, cpu, result = best_of(args.repeat, build)
        rows.append(("make_models() in this process", wall, cpu))

        command = [sys.executable, "-m", "bgcube", "make-models", str(indir), str(out),
                   "--overwrite", "--no-progress"]

        def cli():
            subprocess.run(command, check=True, capture_output=True)

        wall, _, _ = best_of(args.repeat, cli)
        rows.append(("bgcube make-models (fresh interpreter, wall)", wall, float("nan")))

    bare_wall, bare_cpu = rows[0][1], rows[0][2]
    lines = [
        "# make-models against the bare read of the events",
        "",
        "Written by `python benchmarks/bench_make_models.py`; best of "
        f"{args.repeat} runs, files in the page cache.",
        "",
        f"- machine: {machine_description()}",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()}",
        f"- data: hess-dl3-dr1, {len(files)} runs, {n_events} events; "
        f"{len(result.groups)} groups, {len(result.files)} files written",
        f"- versions: {versions('numpy', 'astropy', 'numba')}",
        "",
        "| step | wall [s] | CPU [s] | wall / bare read | CPU / bare read |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, wall, cpu in rows:
        cpu_text = "" if np.isnan(cpu) else f"{cpu:.3f}"
        cpu_ratio = "" if np.isnan(cpu) else f"{cpu / bare_cpu:.2f}"
        lines.append(f"| {label} | {wall:.3f} | {cpu_text} | {wall / bare_wall:.2f} | {cpu_ratio} |")
    target = rows[1][1] / bare_wall
    lines += ["", f"Issue 7 target, make_models() < 3x the bare read (wall): {target:.2f}x, "
              f"{'met' if target < 3 else 'not met'}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"written to {args.output}")


if __name__ == "__main__":
    main()
