"""A CTAO-scale archive on disk: make-models end to end against a bare read, memory, scaling.

Run from the repository root::

    python benchmarks/bench_archive.py                        # 1000 runs x 1e5 events, both variants
    python benchmarks/bench_archive.py --runs 200 --events-per-run 2e4 --no-write   # quick look

What it does, in one run:

1. simulates ``--templates`` runs with `bgcube.simulate.dataset.make_test_dataset`
   (``--events-per-run`` background events each, no sources), then writes an
   archive of ``--runs`` GADF DL3 runs in two variants, uncompressed and gzipped,
   each run a copy of a template with its own OBS_ID (patched in the headers;
   in the gzipped variant the events data of a template are compressed once and
   each file is a multi-member gzip of its own headers and that data, which
   readers see as one stream), with its obs-index and hdu-index;
2. for each variant and for the first ``--small-runs`` runs and all runs, in a
   fresh interpreter each: ``bgcube make-models --model MODEL`` (``--model``:
   ``groups`` by default, ``joint`` for the default build; otherwise defaults:
   exclusion 'auto', smoothing, files written) and a bare astropy read of the
   columns it needs (ENERGY, RA, DEC, TIME); wall time and the process's peak
   resident memory;
3. ``bgcube apply-models`` of those models to the same runs (a fresh
   interpreter): wall time, time per run and peak RSS (does memory grow with
   the number of runs?);
4. writes a table: events/s end to end, time against the bare read, peak RSS,
   and time per event for the small and the full archive (does it grow with
   the number of runs?).

The archive is written under ``--folder`` (default: a temporary folder, removed
at the end unless ``--keep``); it needs about 45 bytes per event per variant.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import load_average, machine_description, publish, versions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "archive.md"
#: runs a child process and prints its wall time and peak RSS (KiB) as JSON
MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
if result.returncode:
    sys.exit(result.stderr[-2000:])
print(json.dumps({"wall": wall, "rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "stdout": result.stdout[-500:]}))
"""
BARE = """
import sys
from astropy.io import fits
import numpy as np
n = 0
for path in open(sys.argv[1]).read().split():
    with fits.open(path) as hdus:
        data = hdus["EVENTS"].data
        n += min(np.array(data[c]).size for c in ("ENERGY", "RA", "DEC", "TIME"))
print(n)
"""


def simulate_templates(folder, n_templates, events_per_run, seed=7):
    """Template runs (uncompressed) from bgcube's simulator; returns their data-store folder."""
    import astropy.units as u

    from bgcube.simulate.dataset import make_test_dataset

    ontime = 1800.0
    make_test_dataset(
        folder,
        n_obs=n_templates,
        random_state=seed,
        background_rate=events_per_run / ontime * u.Hz,
        ontime=ontime * u.s,
        write_bkg=False,
        compress_events=False,
        point_at_sources=False,
    )
    return folder


_CARD = re.compile(rb"OBS_ID  = {0,20}-?\d+")


def _patch_obs_id(header_bytes, obs_id):
    """Header blocks with every ``OBS_ID = n`` card set to ``obs_id`` (same width)."""

    def card(match):
        return b"OBS_ID  = " + f"{obs_id:>20d}".encode()

    return _CARD.sub(card, header_bytes)


def write_archive(templates, out, n_runs, *, compress):
    """``n_runs`` copies of the template runs (own OBS_IDs) with their index files."""
    from astropy.io import fits
    from astropy.table import Table, vstack

    (out / "data").mkdir(parents=True)
    hdu_t = Table.read(templates / "hdu-index.fits.gz")
    obs_t = Table.read(templates / "obs-index.fits.gz")
    parts = {}
    for row in obs_t:
        tid = int(row["OBS_ID"])
        name = hdu_t[(hdu_t["OBS_ID"] == tid) & (hdu_t["HDU_TYPE"] == "events")][0]
        raw = (templates / name["FILE_DIR"] / name["FILE_NAME"]).read_bytes()
        with fits.open(templates / name["FILE_DIR"] / name["FILE_NAME"]) as hdus:
            info = hdus.fileinfo(1)
        head, data_end = info["datLoc"], info["datLoc"] + info["datSpan"]
        body = raw[head:data_end]
        parts[tid] = (
            raw[:head],
            body,
            raw[data_end:],
            gzip.compress(body, compresslevel=6) if compress else None,
        )
    ids = [int(i) for i in obs_t["OBS_ID"]]
    obs_rows, hdu_rows = [], []
    for k in range(n_runs):
        tid, obs_id = ids[k % len(ids)], 100000 + k
        head, body, tail, body_gz = parts[tid]
        fname = f"run_{obs_id:06d}.fits" + (".gz" if compress else "")
        head, tail = _patch_obs_id(head, obs_id), _patch_obs_id(tail, obs_id)
        with open(out / "data" / fname, "wb") as f:
            if compress:  # members: own headers, the template's data compressed once, own tail
                f.write(gzip.compress(head, compresslevel=6))
                f.write(body_gz)
                f.write(gzip.compress(tail, compresslevel=6))
            else:
                f.write(head + body + tail)
        orow = obs_t[obs_t["OBS_ID"] == tid].copy()
        orow["OBS_ID"] = obs_id
        obs_rows.append(orow)
        hrows = hdu_t[hdu_t["OBS_ID"] == tid].copy()
        hrows["OBS_ID"] = obs_id
        hrows["FILE_NAME"] = hrows["FILE_NAME"].astype(f"U{len(fname) + 2}")
        hrows["FILE_NAME"] = fname
        hdu_rows.append(hrows)
    obs_all, hdu_all = vstack(obs_rows), vstack(hdu_rows)
    obs_all.meta, hdu_all.meta = obs_t.meta, hdu_t.meta
    obs_all.write(out / "obs-index.fits.gz")
    hdu_all.write(out / "hdu-index.fits.gz")
    return out


def _measure(args):
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *args], capture_output=True, text=True, check=True, cwd=REPO
    )
    return json.loads(result.stdout)


def build_and_read(archive, n_runs, workdir, model="groups"):
    """make-models (first ``n_runs`` runs) and the bare read of the same runs, fresh processes."""
    from astropy.table import Table

    hdu_t = Table.read(archive / "hdu-index.fits.gz")
    obs_ids = sorted({int(i) for i in hdu_t["OBS_ID"]})[:n_runs]
    runs_file = workdir / f"runs_{archive.name}_{n_runs}.txt"
    runs_file.write_text("\n".join(str(i) for i in obs_ids))
    files_file = workdir / f"files_{archive.name}_{n_runs}.txt"
    events = hdu_t[(hdu_t["HDU_TYPE"] == "events") & np.isin(hdu_t["OBS_ID"], obs_ids)]
    files_file.write_text("\n".join(str(archive / r["FILE_DIR"] / r["FILE_NAME"]) for r in events))
    out = workdir / f"models_{archive.name}_{n_runs}"
    make = _measure(
        [
            sys.executable,
            "-m",
            "bgcube",
            "make-models",
            "--model",
            model,
            str(archive),
            str(out),
            "--obs-ids",
            f"@{runs_file}",
            "--no-progress",
            "--overwrite",
        ]
    )
    applied = workdir / f"applied_{archive.name}_{n_runs}"
    apply = _measure(
        [
            sys.executable,
            "-m",
            "bgcube",
            "apply-models",
            str(out),
            str(archive),
            str(applied),
            "--obs-ids",
            f"@{runs_file}",
            "--no-progress",
            "--overwrite",
        ]
    )
    bare = _measure([sys.executable, "-c", BARE, str(files_file)])
    n_events = int(bare["stdout"].split()[-1])
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(applied, ignore_errors=True)
    return {"runs": n_runs, "events": n_events, "make": make, "bare": bare, "apply": apply}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--small-runs", type=int, default=100)
    parser.add_argument("--events-per-run", type=float, default=1e5)
    parser.add_argument("--templates", type=int, default=8)
    parser.add_argument("--variants", default="plain,gzip")
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--model",
        choices=("groups", "joint"),
        default="groups",
        help="make-models --model (joint: the default build, per-run files and the fit)",
    )
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bgcube_archive_", dir=args.folder))
    rows, timings = [], {}
    load_before = load_average()
    try:
        start = time.perf_counter()
        templates = simulate_templates(base / "templates", args.templates, int(args.events_per_run))
        timings["simulate templates"] = time.perf_counter() - start
        for variant in args.variants.split(","):
            start = time.perf_counter()
            archive = write_archive(
                templates, base / variant, args.runs, compress=variant == "gzip"
            )
            size = sum(f.stat().st_size for f in archive.rglob("*") if f.is_file())
            timings[f"write {variant}"] = time.perf_counter() - start
            for n in sorted({min(args.small_runs, args.runs), args.runs}):
                row = build_and_read(archive, n, base, args.model)
                row.update(variant=variant, size=size * n / args.runs)
                rows.append(row)
                m, b = row["make"], row["bare"]
                print(
                    f"{variant:5s} {n:5d} runs {row['events']:.3e} events: make-models "
                    f"{m['wall']:.1f} s ({row['events'] / m['wall'] / 1e6:.2f} M/s, "
                    f"{m['rss_kib'] / 1024:.0f} MiB), bare read {b['wall']:.1f} s "
                    f"({b['rss_kib'] / 1024:.0f} MiB), apply-models {row['apply']['wall']:.1f} s "
                    f"({row['apply']['rss_kib'] / 1024:.0f} MiB)",
                    flush=True,
                )
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"archive kept in {base}")
    lines = [
        f"# make-models --model {args.model} on a simulated archive",
        "",
        "Written by `python benchmarks/bench_archive.py "
        f"--runs {args.runs} --events-per-run {args.events_per_run:.3g} --model {args.model}`; "
        "each step in a fresh "
        "interpreter (start-up and imports included), files in the page cache as written.",
        "",
        f"- machine: {machine_description()}",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()}",
        f"- archive: {args.runs} runs copied from {args.templates} simulated templates "
        f"({args.events_per_run:.3g} background events each); setup: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()),
        f"- versions: {versions('numpy', 'astropy', 'numba')}",
        "",
        "| variant | runs | events | size [MB] | make-models [s] | M events/s | bare read [s] "
        "| make / bare | ns per event | peak RSS make [MiB] | peak RSS bare [MiB] "
        "| apply-models [s] | ms per run | peak RSS apply [MiB] |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m, b = r["make"], r["bare"]
        lines.append(
            f"| {r['variant']} | {r['runs']} | {r['events']:.3e} | {r['size'] / 1e6:.0f} | "
            f"{m['wall']:.1f} | {r['events'] / m['wall'] / 1e6:.2f} | {b['wall']:.1f} | "
            f"{m['wall'] / b['wall']:.2f} | {m['wall'] / r['events'] * 1e9:.0f} | "
            f"{m['rss_kib'] / 1024:.0f} | {b['rss_kib'] / 1024:.0f} | "
            f"{r['apply']['wall']:.1f} | {r['apply']['wall'] / r['runs'] * 1e3:.1f} | "
            f"{r['apply']['rss_kib'] / 1024:.0f} |"
        )
    print()
    publish("\n".join(lines), args.output, write=not args.no_write)


if __name__ == "__main__":
    main()
