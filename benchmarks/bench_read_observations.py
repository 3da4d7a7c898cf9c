"""Time reading the H.E.S.S. DL3 DR1 runs and the per-run observation work.

Run ``python benchmarks/bench_read_observations.py [--repeat N]``. It prints,
for all runs of ``hess-dl3-dr1`` (found as `bgcube.datasets.get_path` does):

* bare read: astropy.io.fits, the ENERGY, RA, DEC, TIME columns, nothing else
  (the yardstick of make-models: make-models should stay within 3x of it);
* `DataStore.observations` without DETX/DETY, with RADEC DETX/DETY, and with
  ALTAZ DETX/DETY (field rotation interpolated every 10 s);
* exclusion: the event mask and the 60 x 60 kept-fraction map of every run
  for `default_exclusion_regions` (46 circles).

Each line gives the best of ``--repeat`` wall-clock and process CPU times.
Other processes on the machine inflate wall time; CPU time is steadier.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bare_read, hess_event_files  # noqa: E402


def best_of(repeat, func):
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = func()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from bgcube.data import (
        DataStore,
        default_exclusion_regions,
        excluded_events,
        observation_kept_fraction,
    )
    from bgcube.datasets import get_path

    store = DataStore.from_dir(get_path("hess-dl3-dr1"))
    files = hess_event_files()

    def bare():
        return bare_read(files)

    def observations(alignment):
        return lambda: sum(len(o.events) for o in store.observations(fov_alignment=alignment))

    rows = []
    wall, cpu, n_events = best_of(args.repeat, bare)
    rows.append(("bare astropy read (4 columns)", wall, cpu))
    for label, alignment in (
        ("observations, no DETX/DETY", None),
        ("observations + DETX/DETY (RADEC)", "RADEC"),
        ("observations + DETX/DETY (ALTAZ)", "ALTAZ"),
    ):
        wall, cpu, _ = best_of(args.repeat, observations(alignment))
        rows.append((label, wall, cpu))

    regions = default_exclusion_regions(store.obs_table)
    obs = list(store.observations(fov_alignment="RADEC"))
    edges = np.linspace(-0.07, 0.07, 61) * 180 / np.pi

    def exclusion():
        dropped = 0
        for o in obs:
            dropped += int(excluded_events(o, regions).sum())
            observation_kept_fraction(o, regions, edges, edges)
        return dropped

    wall, cpu, dropped = best_of(args.repeat, exclusion)
    rows.append((f"exclusion ({len(regions)} circles, 60x60 kept fraction)", wall, cpu))

    print(f"{len(files)} runs, {n_events} events; {dropped} events inside exclusion circles")
    print(f"{'step':50s} {'wall [s]':>9s} {'CPU [s]':>9s} {'x bare':>7s}")
    for label, wall, cpu in rows:
        print(f"{label:50s} {wall:9.3f} {cpu:9.3f} {cpu / rows[0][2]:7.2f}")


if __name__ == "__main__":
    main()
