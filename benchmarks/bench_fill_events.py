"""The public fill path against the core fill and other histogram libraries.

Run from the repository root::

    python benchmarks/bench_fill_events.py             # writes benchmarks/results/fill_events.md
    python benchmarks/bench_fill_events.py --n 1e6 --no-write

In one run, on the same 1e7 events (see ``_common.EVENTS_DESCRIPTION``) in
float32 and in float64, it times:

* ``FOVCubeBackgroundModel.fill_events([table])`` with an astropy ``Table``
  whose columns are Quantities in TeV and deg (the path users call);
* the same with a dict of plain arrays, with the energy in GeV, and with a
  Table as astropy reads it from a FITS file (big-endian columns in rows,
  energy in GeV; rows of the three columns, and rows like a DL3 EVENTS row
  with EVENT_ID, TIME, RA and DEC besides): converted inside the compiled
  fill;
* the events of that FITS file read with ``iter_event_chunks`` in chunks of
  1M rows and filled chunk by chunk, as stored (``dtype=None``: converted in
  the fill) and as the reader converts them (``dtype`` of the events);
* the core fill (`bgcube.array.fill_histogram`, NumPy default method) on
  the same arrays;
* fast-histogram (uniform bins on log10 of the energy, the log10 timed
  too) and boost-histogram with 2 threads.

The contenders are timed in interleaved rounds (see :func:`run`), so that
the ratios compare runs made at about the same time.

The acceptance ratios: the Table paths (TeV, GeV, read from FITS) and the
chunk reader within 1.2x of the core, and at least 2x both fast-histogram
and boost-histogram 2 threads. ``bench_fill_strided.py`` measures what
merely reading a Table read from FITS costs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import astropy.units as u  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    ENERGY_EDGES,
    EVENTS_DESCRIPTION,
    FOV_EDGES,
    best_of_rounds,
    load_average,
    machine_description,
    make_events,
    publish,
    versions,
)
from astropy.coordinates import Angle  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.table import Table  # noqa: E402
from bench_fill import _boost, _fast_histogram  # noqa: E402

from bgcube import FOVCubeBackgroundModel  # noqa: E402
from bgcube.array import Binning, fill_histogram  # noqa: E402
from bgcube.data.chunks import iter_event_chunks  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "fill_events.md"
BINNINGS = (
    Binning.from_edges(ENERGY_EDGES),
    Binning.from_edges(FOV_EDGES),
    Binning.from_edges(FOV_EDGES),
)
TABLE = "fill_events([Table]) TeV/deg"
GEV = "fill_events([Table]) energy in GeV"
FITS = "fill_events([Table read from FITS]) GeV, big-endian rows"
FITS_WIDE = "fill_events([Table read from FITS]) GeV, DL3-like rows"
CHUNKS = "iter_event_chunks(dtype=None) + fill_events"
CORE = "core fill_histogram"
FAST = "fast-histogram (log10 E)"
BOOST = "boost-histogram 2 threads"
CORE_1 = "core fill_histogram, 1 thread"
#: Rounds over all contenders, and the least time of each contender's runs in a round.
ROUNDS, ROUND_SECONDS = 3, 0.4


def _one_thread(call):
    """``call`` with bgcube's fill limited to one thread (``BGCUBE_NUM_THREADS=1``)."""

    def one():
        before = os.environ.get("BGCUBE_NUM_THREADS")
        os.environ["BGCUBE_NUM_THREADS"] = "1"
        try:
            return call()
        finally:
            if before is None:
                del os.environ["BGCUBE_NUM_THREADS"]
            else:
                os.environ["BGCUBE_NUM_THREADS"] = before

    return one


def _model():
    return FOVCubeBackgroundModel.set_cube_binning(
        Angle(FOV_EDGES, u.deg), Angle(FOV_EDGES, u.deg), ENERGY_EDGES * u.TeV
    )


def fits_table(energy, dety, detx, folder, wide=False):
    """The events written to ``folder``/events[_wide].fits (energy in GeV), read back by astropy.

    ``wide``: rows like a DL3 EVENTS row, with EVENT_ID, TIME, RA and DEC
    besides the three columns the fill reads (36 bytes a row in float32, 56
    in float64, against 12 and 24). Returns the path and the Table (its
    columns big-endian views of the rows).
    """
    columns = {}
    if wide:
        columns["EVENT_ID"] = np.arange(len(energy), dtype=np.int64)
        columns["TIME"] = np.linspace(0.0, 1800.0, len(energy))
        columns["RA"] = (dety + 83.6).astype(energy.dtype) * u.deg
        columns["DEC"] = (detx + 22.0).astype(energy.dtype) * u.deg
    columns["ENERGY"] = (energy.astype(np.float64) * 1e3).astype(energy.dtype) * u.GeV
    columns["DETY"] = dety * u.deg
    columns["DETX"] = detx * u.deg
    path = Path(folder) / f"events{'_wide' if wide else ''}.fits"
    Table(columns, copy=False).write(path, format="fits")
    fits.setval(path, "EXTNAME", value="EVENTS", ext=1)
    return path, Table.read(path)


def contenders(energy, dety, detx, folder):
    """(name, timed call, counts call or None) on the same events (FITS files in ``folder``)."""
    table = Table(
        {"ENERGY": energy * u.TeV, "DETY": dety * u.deg, "DETX": detx * u.deg}, copy=False
    )
    gev = Table(
        {
            "ENERGY": (energy.astype(np.float64) * 1e3).astype(energy.dtype) * u.GeV,
            "DETY": dety * u.deg,
            "DETX": detx * u.deg,
        },
        copy=False,
    )
    columns = {"ENERGY": energy, "DETY": dety, "DETX": detx}
    path, from_fits = fits_table(energy, dety, detx, folder)  # big-endian, strided rows
    wide = fits_table(energy, dety, detx, folder, wide=True)[1]
    model = _model()

    def public(events):
        def call():
            model.counts_cube.data = model.counts_cube.data * 0.0
            model.fill_events([events])
            return model.counts_cube.data

        return call

    def chunks(dtype):
        def call():
            model.counts_cube.data = model.counts_cube.data * 0.0
            for chunk in iter_event_chunks(path, 1 << 20, dtype=dtype):
                model.fill_events([chunk])
            return model.counts_cube.data

        return call

    out = [
        (TABLE, public(table), public(table)),
        ("fill_events([dict of arrays])", public(columns), None),
        (GEV, public(gev), public(gev)),
        (FITS, public(from_fits), public(from_fits)),
        (FITS_WIDE, public(wide), public(wide)),
        (CHUNKS, chunks(None), chunks(None)),
        ("iter_event_chunks(dtype) + fill_events", chunks(energy.dtype), None),
        (CORE, lambda: fill_histogram(energy, dety, detx, BINNINGS), None),
        (CORE_1, _one_thread(lambda: fill_histogram(energy, dety, detx, BINNINGS)), None),
    ]
    for name, prepare in ((FAST, _fast_histogram), (BOOST, _boost(2))):
        try:
            call, _ = prepare(energy, dety, detx)
        except ImportError:
            continue
        out.append((name, call, None))
    return out


def run(n, dtypes, rounds=ROUNDS):
    """Each contender's best time over ``rounds`` rounds that take every contender in turn.

    Interleaved rounds: a few seconds of other work on the machine slow down
    one round of every contender rather than all the runs of one.
    """
    rows = []
    for dtype in dtypes:
        energy, dety, detx = make_events(n, dtype=dtype)
        reference = np.asarray(fill_histogram(energy, dety, detx, BINNINGS))
        # the GeV energies converted back as the public path always has: float64, rounded once
        gev = (energy.astype(np.float64) * 1e3).astype(dtype)
        gev_reference = np.asarray(
            fill_histogram((gev.astype(np.float64) * 1e-3).astype(dtype), dety, detx, BINNINGS)
        )
        with tempfile.TemporaryDirectory() as folder:
            entries = contenders(energy, dety, detx, folder)
            calls = {name: call for name, call, _counts in entries}
            best = best_of_rounds(calls, rounds, min_total=ROUND_SECONDS)
            counted = {name: None if c is None else np.asarray(c()) for name, _, c in entries}
        for name, _call, _counts in entries:
            expected = reference if name == TABLE else gev_reference
            counts = counted[name]
            same = "" if counts is None else ("yes" if np.array_equal(counts, expected) else "NO")
            rows.append((np.dtype(dtype).name, name, best[name], same))
            print(
                f"{np.dtype(dtype).name:8s} {name:40s} {n / best[name] / 1e6:8.1f} M/s", flush=True
            )
    return rows


def report_tables(rows, n):
    lines = [
        "| dtype | method | M events/s | time / core | counts = core's (converted first) |",
        "|---|---|---:|---:|:---:|",
    ]
    for dtype, name, seconds, same in rows:
        core = next(r[2] for r in rows if r[0] == dtype and r[1] == CORE)
        lines.append(
            f"| {dtype} | {name} | {n / seconds / 1e6:.1f} | {seconds / core:.2f} | {same} |"
        )
    lines += ["", "| acceptance | dtype | measured | met |", "|---|---|---:|:---:|"]
    for dtype in sorted({r[0] for r in rows}):
        t = {r[1]: r[2] for r in rows if r[0] == dtype}
        checks = [
            (f"{path} within 1.2x of the core", t[path] / t[CORE], "<=", 1.2)
            for path in (TABLE, GEV, FITS, FITS_WIDE, CHUNKS)
        ]
        for other in (FAST, BOOST):
            if other in t:
                checks.append((f"Table path >= 2x {other}", t[other] / t[TABLE], ">=", 2.0))
        for label, value, op, goal in checks:
            met = value <= goal if op == "<=" else value >= goal
            lines.append(f"| {label} | {dtype} | {value:.2f}x | {'yes' if met else 'no'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e7, help="events (default 1e7)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    n = int(args.n)
    load_before = load_average()
    rows = run(n, [np.dtype(d).type for d in args.dtypes.split(",")])
    report = "\n".join(
        [
            "# The public fill path (fill_events) against the core and other libraries",
            "",
            f"Written by `python benchmarks/bench_fill_events.py`; {n:.0e} events, 20x60x60 bins; "
            f"best of {ROUNDS} rounds that take every contender in turn, each >= 5 runs (and >= "
            f"{ROUND_SECONDS} s) after a warm-up, all contenders on the same events in one run.",
            "",
            f"- machine: {machine_description()}",
            f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()}",
            f"- events: {EVENTS_DESCRIPTION}",
            f"- versions: {versions('numpy', 'numba', 'astropy', 'fast-histogram', 'boost-histogram')}",
            "",
            report_tables(rows, n),
        ]
    )
    print()
    publish(report, args.output, write=not args.no_write)


if __name__ == "__main__":
    main()
