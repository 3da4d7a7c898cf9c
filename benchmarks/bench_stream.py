"""Streaming fill: 3e8 events in chunks of 1e7, with peak memory measured.

    python benchmarks/bench_stream.py                 # writes benchmarks/results/stream.md
    python benchmarks/bench_stream.py --backend jax   # chunks on JAX, counts stay on the device

Events are simulated chunk by chunk (never all in memory) and fed to
``bgcube.array.HistogramFiller``. Reported: fill time (simulation time
excluded), events per second, the peak of memory allocated through Python
and NumPy (tracemalloc) and the process's peak resident memory (maxrss, as
``/usr/bin/time -v`` reports it), against the size of the whole stream.
With ``--fits N`` it also writes N events to a FITS file and streams it
back with ``bgcube.data.chunks.iter_event_chunks``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    ENERGY_EDGES,
    EVENTS_DESCRIPTION,
    FOV_EDGES,
    load_average,
    machine_description,
    make_events,
    publish,
)

from bgcube.array import Binning, HistogramFiller  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "stream.md"
BINNINGS = (
    Binning.from_edges(ENERGY_EDGES),
    Binning.from_edges(FOV_EDGES),
    Binning.from_edges(FOV_EDGES),
)
MB = 1024 * 1024


def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def stream_simulated(n_events, chunk, dtype, backend):
    """Fill ``n_events`` simulated in chunks; return (fill seconds, total counts)."""
    put, sync = (lambda a: a), (lambda c: c)
    if backend == "jax":
        import jax.numpy as jnp

        put, sync = jnp.asarray, (lambda c: c.block_until_ready())
    filler = HistogramFiller(BINNINGS)
    fill_seconds = 0.0
    for i, start in enumerate(range(0, n_events, chunk)):
        events = tuple(put(a) for a in make_events(min(chunk, n_events - start), dtype, seed=i))
        t0 = time.perf_counter()
        filler.fill(*events)
        sync(filler.counts)
        fill_seconds += time.perf_counter() - t0
        del events
    return fill_seconds, float(np.asarray(filler.counts).sum()), filler.n_chunks


def stream_fits(n_events, chunk, dtype):
    """Write ``n_events`` to a FITS file, then stream it back in chunks."""
    from astropy.io import fits

    from bgcube.data.chunks import iter_event_chunks

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.fits"
        energy, dety, detx = make_events(n_events, np.float32)
        cols = [
            fits.Column(name=name, format="E", unit=unit, array=a)
            for name, unit, a in (
                ("ENERGY", "TeV", energy),
                ("DETY", "deg", dety),
                ("DETX", "deg", detx),
            )
        ]
        del energy, dety, detx
        hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
        del cols, hdu
        tracemalloc.reset_peak()
        t0 = time.perf_counter()
        filler = HistogramFiller(BINNINGS)
        for columns in iter_event_chunks(path, chunk, dtype=dtype):
            filler.fill(*columns)
        seconds = time.perf_counter() - t0
        return seconds, float(filler.counts.sum()), filler.n_chunks, path.stat().st_size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", default="3e8")
    parser.add_argument("--chunk", default="1e7")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--backend", default="numpy", choices=["numpy", "jax"])
    parser.add_argument("--fits", default="0", help="also stream a FITS file of this many events")
    parser.add_argument("--fits-chunk", default="1e6", help="chunk size for the FITS file")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    n_events, chunk = int(float(args.events)), int(float(args.chunk))
    dtype = np.dtype(args.dtype).type
    if args.backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    load_before = load_average()
    # warm-up: compile the fill outside the measurement
    stream_simulated(2 * 10**5, 10**5, dtype, args.backend)
    rss_before = _maxrss_mb()
    tracemalloc.start()
    seconds, total, n_chunks = stream_simulated(n_events, chunk, dtype, args.backend)
    traced_peak = tracemalloc.get_traced_memory()[1] / MB
    rss_peak = _maxrss_mb()
    itemsize = np.dtype(dtype).itemsize
    lines = [
        "# Streaming fill",
        "",
        "Written by `python benchmarks/bench_stream.py`; events simulated chunk by chunk "
        "(simulation time excluded) and added with `HistogramFiller.fill`.",
        "",
        f"- machine: {machine_description()}; load average before: {load_before}, "
        f"after: {load_average()}",
        f"- events: {EVENTS_DESCRIPTION}",
        "",
        "| what | value |",
        "|---|---:|",
        f"| backend, dtype | {args.backend}, {np.dtype(dtype).name} |",
        f"| events, chunks | {n_events:.1e} in {n_chunks} chunks of {chunk:.0e} |",
        f"| events counted (inside the cube) | {total:.4e} |",
        f"| fill time | {seconds:.2f} s ({n_events / seconds / 1e6:.0f} M events/s) |",
        f"| size of the whole stream (3 columns) | {3 * itemsize * n_events / MB:.0f} MiB |",
        f"| size of one chunk (3 columns) | {3 * itemsize * chunk / MB:.0f} MiB |",
        f"| peak traced allocations (tracemalloc) | {traced_peak:.0f} MiB |",
        f"| peak resident memory of the process (maxrss) | {rss_peak:.0f} MiB "
        f"(before streaming: {rss_before:.0f} MiB) |",
    ]
    n_fits = int(float(args.fits))
    if n_fits:
        fits_chunk = int(float(args.fits_chunk))
        fits_seconds, fits_total, fits_chunks, _ = stream_fits(n_fits, fits_chunk, dtype)
        lines += [
            f"| FITS file streamed with iter_event_chunks | {n_fits:.1e} events (float32 columns, "
            f"{3 * 4 * n_fits / MB:.0f} MiB) in {fits_chunks} chunks of {fits_chunk:.0e}, "
            f"{fits_seconds:.2f} s read + fill |",
            f"| peak traced allocations while streaming the file | "
            f"{tracemalloc.get_traced_memory()[1] / MB:.0f} MiB |",
        ]
    tracemalloc.stop()
    report = "\n".join(lines)
    publish(report, args.output, write=not args.no_write)


if __name__ == "__main__":
    main()
