"""Time the simulation of a demo-sized data set and its comparison with the truth.

Run ``python benchmarks/bench_simulate.py [--n-obs 20] [--rate 60] [--repeat 3]``.
It prints the best wall-clock and process CPU times of:

* the first observation table (astropy loads its IERS tables once per process);
* `make_test_dataset` with the default background (60 x 60 x 20 truth) and the
  three example sources, with and without the per-run BKG HDUs;
* filling the runs into a model on the truth's binning and `compare_models`;
* the comparison figure.

Other processes on the machine inflate wall time; CPU time is steadier.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import astropy.units as u


def best_of(repeat, func):
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = func()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-obs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=60.0, help="background rate at zenith, Hz")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from bgcube.model import FOVCubeBackgroundModel
    from bgcube.simulate import (
        compare_models,
        example_sources,
        make_test_dataset,
        make_test_observation_table,
    )

    def line(label, wall, cpu):
        print(f"{label:<44s} wall {wall:7.2f} s   cpu {cpu:7.2f} s")

    w0, c0 = time.perf_counter(), time.process_time()
    make_test_observation_table(2, random_state=0)
    line("first observation table (IERS load)", time.perf_counter() - w0, time.process_time() - c0)

    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10**6))

        def simulate(write_bkg):
            return make_test_dataset(
                Path(tmp) / f"ds{next(counter)}",
                n_obs=args.n_obs,
                random_state=1,
                sources=example_sources(),
                spectral_index=2.0,
                background_rate=args.rate * u.Hz,
                write_bkg=write_bkg,
            )

        wall, cpu, dataset = best_of(args.repeat, lambda: simulate(True))
        n_events = int(dataset.n_background.sum() + dataset.n_source.sum())
        line(f"make_test_dataset, {args.n_obs} runs, {n_events} events", wall, cpu)
        wall, cpu, _ = best_of(args.repeat, lambda: simulate(False))
        line("make_test_dataset without BKG HDUs", wall, cpu)

        def reconstruct():
            b = dataset.background
            model = FOVCubeBackgroundModel.set_cube_binning(
                b.coordx_edges, b.coordy_edges, b.energy_edges
            )
            store = dataset.data_store()
            for obs_id in dataset.obs_ids:
                obs = store.observation(obs_id)
                model.fill_events(obs.events)
                model.add_observation_time(obs.ontime)
            return compare_models(model.compute_rate(), dataset.true_model())

        wall, cpu, comparison = best_of(args.repeat, reconstruct)
        line("fill + compare_models", wall, cpu)
        summary = comparison.summary()
        print(
            f"  pulls: mean {summary['pull_mean']:.4f} +- {summary['pull_mean_error']:.4f}, "
            f"width {summary['pull_width']:.4f} +- {summary['pull_width_error']:.4f}, "
            f"{summary['n_bins']} bins (sources not excluded)"
        )
        wall, cpu, _ = best_of(
            args.repeat, lambda: comparison.plot(Path(tmp) / "cmp.png", overwrite=True)
        )
        line("comparison figure", wall, cpu)


if __name__ == "__main__":
    main()
