"""End-to-end make-models on the H.E.S.S. DL3 DR1 against the bare read of its events.

Run from the repository root::

    python benchmarks/bench_make_models.py             # writes benchmarks/results/make_models.md
    python benchmarks/bench_make_models.py --no-write  # print only

In one run, on the 105 runs of ``hess-dl3-dr1`` (found as
`bgcube.datasets.get_path` does), with the files in the page cache after a
warm-up:

* **bare read**: astropy.io.fits opens each events file and copies the
  columns make-models needs (ENERGY, RA, DEC, TIME) to NumPy arrays,
  nothing else, in one thread: the yardstick of the make-models target
  (no longer than it);
* **make_models()**: the Python call, ``model='groups'`` (one model per
  zenith group, the original's build) and ``model='joint'`` (the default:
  the joint fit and 105 per-run BKG_3D files), default exclusion and
  smoothing, all files written, in this process, timed after a first call;
  this is the cost per build for a session or a pipeline that builds several;
* **bare read, fresh interpreter** and **bgcube make-models**: the same
  bare read as a script, and the command, each in a fresh interpreter from
  start to exit (interpreter start and imports included, module bytecode
  cached as after an installation): what a user waits for at the prompt;
* **--alignment ALTAZ**: the group build in the ALTAZ frame (the field
  rotation of every run and the exclusion averaged over it), against RADEC;
* **--backend jax** (unless ``--no-jax``): the command on JAX against the
  same command on NumPy (target: no slower than 1.5x). Groups: as a user
  runs it (on a JAX without accelerator the per-run chain runs on the
  host, `bgcube.make.chain_backend`), and with the chain on XLA
  (``BGCUBE_RUN_CHAIN=device``) without the compilation cache
  (``BGCUBE_JAX_CACHE=off``: every program compiled, as on a first run) and
  with one (a fresh folder, filled by the first repeat); joint: as a user
  runs it (on a JAX without accelerator the fit runs on NumPy), and with
  the fit on XLA (``BGCUBE_RUN_CHAIN=device``, as on a GPU) without and with
  the cache (with it, the command also keeps the fit's traced programs,
  `bgcube.fit.joint_stored`).

* **--before FOLDER** (optional): the default command run from the
  source folder of an earlier bgcube (e.g. ``git worktree add ../old
  <commit>``), side by side with this one: what a change gained.
* **--one-core** (optional): every fresh interpreter runs on one core
  (Linux), so its wall time is the work it does, whatever the second
  core's scheduling: how much work a change saved, on a noisy machine.

The steps take turns ``--repeat`` times (so a busy spell of the machine
slows all of them alike); each time is the best of its runs (and the
median is given too), wall clock and CPU (of this process, plus that of
the child process for the fresh-interpreter steps). A command's CPU time
divided by the cores is the least wall time it could take without doing
less work; the report compares that bound with the bare-read script.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    bare_read,
    hess_event_files,
    load_average,
    machine_description,
    publish,
    versions,
)

RESULTS = Path(__file__).resolve().parent / "results" / "make_models.md"
#: Fresh interpreters run as after an installation: with the bytecode of every
#: module cached (an environment that sets PYTHONDONTWRITEBYTECODE would otherwise
#: compile bgcube's sources anew in each command, about 0.2 s, and not the
#: installed astropy's).
FRESH_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
BARE = "bare astropy read (ENERGY, RA, DEC, TIME)"
BARE_FRESH = "bare read (fresh interpreter)"
ALTAZ = "bgcube make-models --model groups --alignment ALTAZ"
JAX_GROUPS = "bgcube make-models --model groups --backend jax"
JAX_JOINT = "bgcube make-models --model joint --backend jax"
BARE_SCRIPT = """
import sys
sys.path.insert(0, {folder!r})
from _common import bare_read
bare_read({files!r})
"""


def _revision(folder) -> str:
    """The short commit of a source folder (a git checkout), or its name."""
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return Path(folder).name


def _children_cpu() -> float:
    """User and system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-jax", dest="jax", action="store_false", help="leave out JAX")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--one-core", action="store_true", help="run each fresh interpreter on one core"
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="FOLDER",
        help="also run the default command from this source folder of an earlier bgcube",
    )
    args = parser.parse_args(argv)

    from bgcube.datasets import get_path
    from bgcube.make.pipeline import make_models

    indir = get_path("hess-dl3-dr1")
    files = hess_event_files()
    core = min(os.sched_getaffinity(0)) if args.one_core else None

    def pin():  # in the child, before it starts: one core (--one-core)
        if core is not None:
            os.sched_setaffinity(0, {core})

    def bare():
        return bare_read(files)

    load_before = load_average()
    bare()  # warm-up: files into the page cache
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "models"

        def build(model):
            return lambda: make_models(indir, out, overwrite=True, progress=False, model=model)

        build("groups")()  # first calls: one-time costs (compilation caches, imports)
        build("joint")()
        script = BARE_SCRIPT.format(
            folder=str(Path(__file__).resolve().parent), files=[str(f) for f in files]
        )

        def command(model, backend="numpy", cache="off", chain="auto", extra=(), source=None):
            args = [sys.executable, "-m", "bgcube", "make-models", "--model", model, *extra]
            args += ["--backend", backend, str(indir), str(out), "--overwrite", "--no-progress"]
            env = dict(FRESH_ENV, BGCUBE_JAX_CACHE=cache, BGCUBE_RUN_CHAIN=chain)
            if source is not None:  # an earlier bgcube's source folder, ahead of this one
                env["PYTHONPATH"] = str(Path(source).resolve())
            return lambda: subprocess.run(
                args, check=True, capture_output=True, env=env, preexec_fn=pin
            )

        command("groups")()  # writes the modules' bytecode, as an installation does
        cache = str(Path(tmp) / "jax-cache")
        steps = {
            BARE: bare,
            "make_models(model='groups') in this process": build("groups"),
            "make_models(model='joint') in this process": build("joint"),
            BARE_FRESH: lambda: subprocess.run(
                [sys.executable, "-c", script],
                check=True,
                capture_output=True,
                env=FRESH_ENV,
                preexec_fn=pin,
            ),
            "bgcube make-models --model groups": command("groups"),
            "bgcube make-models --model joint": command("joint"),
            ALTAZ: command("groups", extra=("--alignment", "ALTAZ")),
        }
        before = None
        if args.before is not None:
            before = f"bgcube make-models --model joint, before ({_revision(args.before)})"
            steps[before] = command("joint", source=args.before)
            steps[before]()  # its bytecode written
        if args.jax:
            steps.update(
                {
                    JAX_GROUPS: command("groups", "jax"),
                    f"{JAX_GROUPS}, chain on XLA (no compile cache)": command(
                        "groups", "jax", chain="device"
                    ),
                    f"{JAX_GROUPS}, chain on XLA (compile cache)": command(
                        "groups", "jax", cache, chain="device"
                    ),
                    JAX_JOINT: command("joint", "jax"),
                    f"{JAX_JOINT}, fit on XLA (no compile cache)": command(
                        "joint", "jax", chain="device"
                    ),
                    f"{JAX_JOINT}, fit on XLA (compile cache)": command(
                        "joint", "jax", cache, chain="device"
                    ),
                }
            )
        # the steps take turns, so that a busy spell of the machine slows all of them
        times = {label: [] for label in steps}
        results = {}
        for _ in range(args.repeat):
            for label, func in steps.items():
                w0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
                results[label] = func()
                cpu = time.process_time() - c0 + _children_cpu() - k0
                times[label].append((time.perf_counter() - w0, cpu))
    n_events, result = results[BARE], results["make_models(model='groups') in this process"]
    rows, medians = [], {}
    for label, pairs in times.items():
        wall = min(w for w, _ in pairs)
        medians[label] = float(np.median([w for w, _ in pairs]))
        rows.append((label, wall, min(c for _, c in pairs)))

    bare_wall, bare_cpu = rows[0][1], rows[0][2]
    lines = [
        "# make-models against the bare read of the events",
        "",
        "Written by `python benchmarks/bench_make_models.py`; best of "
        f"{args.repeat} runs, files in the page cache"
        + ("; every fresh interpreter on one core (--one-core)." if args.one_core else "."),
        "",
        f"- machine: {machine_description()}",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()}",
        f"- data: hess-dl3-dr1, {len(files)} runs, {n_events} events; "
        f"{len(result.groups)} groups, {len(result.files)} files written",
        f"- versions: {versions('numpy', 'astropy', 'numba')}",
        "",
        "| step | wall, best [s] | wall, median [s] | CPU [s] | wall / bare read | "
        "CPU / bare read |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, wall, cpu in rows:
        cpu_text = "" if np.isnan(cpu) else f"{cpu:.3f}"
        cpu_ratio = "" if np.isnan(cpu) else f"{cpu / bare_cpu:.2f}"
        lines.append(
            f"| {label} | {wall:.3f} | {medians[label]:.3f} | {cpu_text} | "
            f"{wall / bare_wall:.2f} | {cpu_ratio} |"
        )
    wall = {label: w for label, w, _ in rows}
    lines += [
        "",
        "Targets (wall clock, measured side by side in this run; best of the runs, and in",
        "brackets the ratio of the medians):",
        "",
    ]

    def target(text, label, reference, goal):
        ratio, median = wall[label] / wall[reference], medians[label] / medians[reference]
        lines.append(
            f"- {text}: {ratio:.2f}x ({median:.2f}x) "
            f"(target <= {goal:g}: {'met' if ratio <= goal else 'not met'});"
        )

    for model in ("groups", "joint"):
        here = f"make_models(model='{model}') in this process"
        target(f"{here} / bare read, both in this process", here, BARE, 1)
        label = f"bgcube make-models --model {model}"
        target(f"{label} / bare-read script, both fresh interpreters", label, BARE_FRESH, 1)
        jax_labels = [k for k in wall if k.startswith(f"{label} --backend jax")]
        for jax_label in jax_labels:
            target(f"{jax_label[len(label) + 1 :]} / numpy, --model {model}", jax_label, label, 1.5)
    if before is not None:
        joint = "bgcube make-models --model joint"
        lines.append(
            f"- {joint} / the same {before[len(joint) + 2 :]}: {wall[joint] / wall[before]:.2f}x "
            f"({medians[joint] / medians[before]:.2f}x) (the change's gain; no target);"
        )
    groups = "bgcube make-models --model groups"
    lines.append(
        f"- {ALTAZ[len(groups) + 1 :]} / RADEC, --model groups: "
        f"{wall[ALTAZ] / wall[groups]:.2f}x ({medians[ALTAZ] / medians[groups]:.2f}x) "
        "(the field rotation and the time-averaged exclusion; no target)."
    )
    cpus = {label: c for label, _, c in rows}
    cores = os.cpu_count() or 1
    lines += [
        "",
        "Lower bound on this machine: a command's CPU time (its own and its threads') spread",
        f"perfectly over the {cores} cores, against the bare-read script's wall time:",
        "",
    ]
    for model in ("groups", "joint"):
        label = f"bgcube make-models --model {model}"
        bound = cpus[label] / cores / wall[BARE_FRESH]
        lines.append(
            f"- {label}: CPU {cpus[label]:.2f} s, / {cores} cores = {bound:.2f}x the bare-read "
            f"script's wall ({'reachable' if bound <= 1 else 'not reachable'} at <= 1 "
            "without less work);"
        )
    publish("\n".join(lines), args.output, write=not args.no_write)


if __name__ == "__main__":
    main()
