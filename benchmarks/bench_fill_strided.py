"""The floor of filling from a Table read from FITS: what merely reading its columns costs.

Run from the repository root::

    python benchmarks/bench_fill_strided.py --heading "### Run 13"  # appended to results/fill_events.md
    python benchmarks/bench_fill_strided.py --n 1e6 --no-write

A Table as astropy reads it from a FITS file holds its columns as big-endian
views of the rows (interleaved, strided). On the same 1e7 events (see
``_common.EVENTS_DESCRIPTION``), float32 and float64, written to FITS with
the energy in GeV, in rows of the three columns the fill reads and in wider
rows like a DL3 EVENTS row (EVENT_ID, TIME, RA, DEC besides), this times in
interleaved rounds:

* the core fill of native contiguous columns, 2 threads and 1;
* ``fill_events([table read from FITS])``, the public path;
* compiled loops that only read: the sum of the byte-swapped values of the
  three strided columns, of every word of the rows (the bytes the rows
  bring from memory, as integers), and of the native contiguous columns
  (the core's traffic);
* the passes a fill that de-interleaves the rows before its vector loop
  adds: the three columns copied block by block into buffers in one pass
  (no conversion), and converted into float buffers one column at a time
  (``_convert``, as the compiled fill does now);

each on 2 threads and 1. The rows' words are read from a packed copy of the
rows (``Table.as_array``): the same bytes per event.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    EVENTS_DESCRIPTION,
    best_of_rounds,
    load_average,
    machine_description,
    make_events,
    versions,
)
from bench_fill_events import BINNINGS, _model, fits_table  # noqa: E402

from bgcube.array import _numba_fill, fill_histogram  # noqa: E402
from bgcube.array._numba_kernel import BLOCK, _convert, _stored_value  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "fill_events.md"
ROUNDS, ROUND_SECONDS = 3, 0.4
CORE = "core fill_histogram (native contiguous columns)"


@numba.njit(nogil=True, fastmath=True)
def _sum_columns(e, y, x, start, stop):
    """Sum of three columns' values (byte-swapped where they are uint views)."""
    s = 0.0
    for i in range(start, stop):
        j = np.uint64(i)  # unsigned: no wraparound test in the loop
        s += np.float64(_stored_value(e[j])) + np.float64(_stored_value(y[j]))
        s += np.float64(_stored_value(x[j]))
    return s


@numba.njit(nogil=True)
def _sum_words(words, start, stop):
    """Integer sum of the words ``start:stop`` (contiguous; as integers: no denormals)."""
    s = np.uint64(0)
    for i in range(start, stop):
        s += words[np.uint64(i)]
    return s


@numba.njit(nogil=True)
def _copy_rows(e, y, x, start, stop):
    """The three strided columns copied block by block into buffers, one pass over the rows.

    No conversion: the least a fill that de-interleaves the rows before its
    vector loop adds (unsigned indices: no wraparound test in the loop).
    """
    b_e = np.empty(BLOCK, dtype=e.dtype)
    b_y = np.empty(BLOCK, dtype=y.dtype)
    b_x = np.empty(BLOCK, dtype=x.dtype)
    s = 0
    for block in range(start, stop, BLOCK):
        n = min(BLOCK, stop - block)
        for j in range(n):
            k = np.uint64(block + j)
            b_e[j] = e[k]
            b_y[j] = y[k]
            b_x[j] = x[k]
        s += b_e[0] + b_y[n - 1] + b_x[n // 2]
    return s


@numba.njit(nogil=True)
def _convert_blocks(e, y, x, factors, start, stop):
    """The three columns converted block by block into buffers, as the fill does now."""
    b_e = np.empty(BLOCK, dtype=np.float64)
    b_y = np.empty(BLOCK, dtype=np.float64)
    b_x = np.empty(BLOCK, dtype=np.float64)
    s = 0.0
    for block in range(start, stop, BLOCK):
        end = min(block + BLOCK, stop)
        _convert(e[block:end], factors[0], b_e)
        _convert(y[block:end], factors[1], b_y)
        _convert(x[block:end], factors[2], b_x)
        s += b_e[0] + b_y[0] + b_x[0]
    return s


def _threaded(kernel, n, threads, arrays):
    """``kernel(*arrays, start, stop)`` over ``0:n`` split in ``threads`` parts."""
    bounds = [n * i // threads for i in range(threads + 1)]
    if threads == 1:
        return lambda: kernel(*arrays, 0, n)
    pool = ThreadPoolExecutor(threads - 1)

    def call():
        parts = zip(bounds[1:-1], bounds[2:], strict=True)
        futures = [pool.submit(kernel, *arrays, a, b) for a, b in parts]
        s = kernel(*arrays, bounds[0], bounds[1])
        return s + sum(f.result() for f in futures)

    return call


def contenders(energy, dety, detx, folder):
    """(name, timed call, row bytes or None) on the same events (FITS files in ``folder``)."""
    n = len(energy)
    out = [
        (CORE, lambda: fill_histogram(energy, dety, detx, BINNINGS), None),
        (f"{CORE}, 1 thr", lambda: _numba_fill.fill(energy, dety, detx, BINNINGS, threads=1), None),
    ]
    for threads in (2, 1):
        call = _threaded(_sum_columns, n, threads, (energy, dety, detx))
        out.append((f"read: sum of native contiguous columns, {threads} thr", call, None))
    model = _model()
    for wide in (False, True):
        table = fits_table(energy, dety, detx, folder, wide)[1]
        columns = [table[c].value for c in ("ENERGY", "DETY", "DETX")]
        row = columns[0].strides[0]
        kind = f"{row}-byte rows"
        views = [c.view(np.uint32 if c.itemsize == 4 else np.uint64) for c in columns]

        def public(table=table):
            model.counts_cube.data = model.counts_cube.data * 0.0
            model.fill_events([table])

        out.append((f"fill_events([Table read from FITS]), {kind}", public, row))
        for threads in (2, 1):
            call = _threaded(_sum_columns, n, threads, views)
            out.append((f"read: sum of the 3 strided big-endian columns, {kind}, {threads} thr", call, row))  # fmt: skip
        for threads in (2, 1):
            call = _threaded(_copy_rows, n, threads, views)
            out.append((f"copy: the 3 columns into block buffers, one pass, {kind}, {threads} thr", call, row))  # fmt: skip
        factors = np.array([1e-3, 1.0, 1.0])
        for threads in (2, 1):
            call = _threaded(_convert_blocks, n, threads, (*views, factors))
            out.append((f"convert: the 3 columns into block buffers as now, {kind}, {threads} thr", call, row))  # fmt: skip
        base = table.as_array()
        raw = base.view(np.uint8).reshape(-1)
        words = raw[: (raw.size // 8) * 8].view(np.uint64)
        for threads in (2, 1):
            call = _threaded(_sum_words, words.size, threads, (words,))
            out.append((f"read: sum of every 8-byte word of the rows, {kind}, {threads} thr", call, row))  # fmt: skip
    return out


def run(n, dtypes, rounds=ROUNDS):
    rows = []
    for dtype in dtypes:
        energy, dety, detx = make_events(n, dtype=dtype)
        with tempfile.TemporaryDirectory() as folder:
            entries = contenders(energy, dety, detx, folder)
            calls = {name: call for name, call, _row in entries}
            best = best_of_rounds(calls, rounds, min_total=ROUND_SECONDS)
        for name, _call, _row in entries:
            rows.append((np.dtype(dtype).name, name, best[name]))
            print(f"{np.dtype(dtype).name:8s} {name:70s} {n / best[name] / 1e6:8.1f} M/s", flush=True)  # fmt: skip
    return rows


def report_table(rows, n):
    lines = ["| dtype | what | M events/s | time / core |", "|---|---|---:|---:|"]
    for dtype, name, seconds in rows:
        core = next(r[2] for r in rows if r[0] == dtype and r[1] == CORE)
        lines.append(f"| {dtype} | {name} | {n / seconds / 1e6:.1f} | {seconds / core:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e7, help="events (default 1e7)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--heading", default="### Run", help="heading of the appended section")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    n = int(args.n)
    load_before = load_average()
    rows = run(n, [np.dtype(d).type for d in args.dtypes.split(",")])
    report = "\n".join(
        [
            f"Written by `python benchmarks/bench_fill_strided.py`; {n:.0e} events, 20x60x60 "
            f"bins; best of {ROUNDS} interleaved rounds.",
            "",
            f"- machine: {machine_description()}",
            f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()}",
            f"- events: {EVENTS_DESCRIPTION}",
            f"- versions: {versions('numpy', 'numba', 'astropy')}",
            "",
            report_table(rows, n),
        ]
    )
    print()
    print(report)
    if not args.no_write:
        with open(args.output, "a") as f:
            f.write(f"\n{args.heading}\n\n{report}\n")
        print(f"\nappended to {args.output}")


if __name__ == "__main__":
    main()
