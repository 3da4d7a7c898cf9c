"""Helpers shared by the benchmark scripts: events, timing, machine description."""

from __future__ import annotations

import os
import platform
import time

import numpy as np

#: Cube of the benchmarks: 20 log energy bins 0.1-100 TeV, 60x60 DETX/DETY bins
#: over +-0.07 rad (+-4.01 deg).
FOV_DEG = float(np.rad2deg(0.07))
ENERGY_EDGES = np.geomspace(0.1, 100.0, 21)
FOV_EDGES = np.linspace(-FOV_DEG, FOV_DEG, 61)

EVENTS_DESCRIPTION = (
    "energy: power law dN/dE ~ E^-2.5 above 0.1 TeV; DETX, DETY: normal, sigma 1.5 deg "
    "(about 98.5% of the events fall inside the cube)"
)


def make_events(n, dtype=np.float64, seed=42):
    """Simulated events (TeV, deg, deg) like a Cherenkov telescope's, see EVENTS_DESCRIPTION."""
    rng = np.random.default_rng(seed)
    energy = (0.1 * (1.0 - rng.random(n)) ** (-1.0 / 1.5)).astype(dtype)
    dety = rng.normal(0.0, 1.5, n).astype(dtype)
    detx = rng.normal(0.0, 1.5, n).astype(dtype)
    return energy, dety, detx


def best_time(func, *, min_repeats=5, min_total=1.0, max_repeats=50):
    """Best wall time of ``func()`` (seconds), after one untimed warm-up call."""
    func()
    times = []
    while len(times) < max_repeats and (len(times) < min_repeats or sum(times) < min_total):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def best_of_rounds(calls, rounds, min_total=1.0):
    """Best wall time of each call (seconds), the calls taking turns ``rounds`` times.

    ``calls`` maps a name to a function; taking turns, a busy spell of the
    machine slows every contender alike (see `best_time`).
    """
    best = {}
    for _ in range(rounds):
        for name, func in calls.items():
            seconds = best_time(func, min_total=min_total)
            best[name] = min(best.get(name, seconds), seconds)
    return best


def machine_description():
    """One line about the machine, and the load average now."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def load_average():
    """The 1, 5 and 15 minute load averages as a string."""
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def versions(*names):
    """``name version`` of each importable package."""
    import importlib.metadata

    out = []
    for name in names:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


#: The event columns make-models reads: what the bare read copies.
EVENT_COLUMNS = ("ENERGY", "RA", "DEC", "TIME")


def hess_event_files():
    """The event files of ``hess-dl3-dr1`` (as `bgcube.datasets.get_path` finds it), by OBS_ID."""
    from bgcube.data import DataStore
    from bgcube.datasets import get_path

    store = DataStore.from_dir(get_path("hess-dl3-dr1"))
    return [store.hdu_location(i, "events")[0] for i in store.obs_ids]


def bare_read(files, columns=EVENT_COLUMNS):
    """Open each file with astropy.io.fits and copy its EVENTS columns: the yardstick.

    Returns the number of events read.
    """
    from astropy.io import fits

    n = 0
    for path in files:
        with fits.open(path) as hdus:
            data = hdus["EVENTS"].data
            n += min(np.array(data[c]).size for c in columns)
    return n


def publish(report, output, write=True):
    """Print a benchmark's report and, unless ``write`` is false, save it to ``output``."""
    print(report)
    if write:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report.rstrip("\n") + "\n")
        print(f"\nwritten to {output}")
