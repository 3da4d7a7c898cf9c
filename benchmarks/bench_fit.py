"""Time the JAX background fits: compilation and run separately.

Run ``python benchmarks/bench_fit.py [--repeat 3] [--output benchmarks/results/fit.md]``.

Cases (CPU, float64):

* one fit of a 20 x 60 x 60 cube (the original binning: 20 log energy bins
  0.1-100 TeV, 60 x 60 bins over +-0.07 rad) with the `GaussianModel`
  (4 parameters) and the `FlexibleModel` (6 spline knots, 14 parameters),
  with one and with 2 x 2 spatial nodes per pixel;
* 50 fits of small 8 x 16 x 16 cubes in one vmapped call (the pull test);
* the norm and tilt fit of one 20 x 60 x 60 run.

"compile" is tracing, lowering and XLA compilation of the jitted fit
(``jax.jit(f).lower(...).compile()``), paid once per model and cube shape in
a process; "run" is the best wall time of the compiled fit over the repeats.
Counts are Poisson draws of the fitted family itself, about 5e6 events per
cube. Wall times depend on the machine's load, which is printed; process
CPU time is given beside the compile wall time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import ENERGY_EDGES, FOV_EDGES, load_average, machine_description, versions

from bgcube import get_namespace

jnp = get_namespace("jax")

import jax  # noqa: E402

from bgcube.fit import (  # noqa: E402
    BinGeometry,
    FitData,
    FlexibleModel,
    GaussianModel,
    expected_counts,
    make_fitter,
    make_norm_tilt_fitter,
    start_values,
)
from bgcube.fit.normalisation import NORM_TILT_PARAMETERS, NormTiltData  # noqa: E402
from bgcube.fit.parameters import to_internal  # noqa: E402

HOURS = 50.0


def gaussian_truth(model):
    return np.array([60.0, 3.7, 2.0, 0.1])


def flexible_truth(model):
    spline = np.log(60.0) - 3.7 * np.asarray(model.knots)
    return np.concatenate([spline, [2.2, 0.1, 2.4, 0.1, 0.15, -0.05, 0.03, -0.02]])


def simulate(model, truth, geometry, seed):
    time_s = HOURS * 3600.0
    mu = np.asarray(expected_counts(model, jnp.asarray(truth), geometry, time_s))
    counts = np.random.default_rng(seed).poisson(mu).astype(float)
    return FitData.from_arrays(counts, np.full(mu.shape, time_s), geometry)


def time_compile(jitted, *args):
    w0, c0 = time.perf_counter(), time.process_time()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - w0, time.process_time() - c0


def time_run(compiled, args, repeat):
    best = np.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - t0)
    return out, best


def single_fit_case(label, model, truth_fn, geometry, repeat):
    data = simulate(model, truth_fn(model), geometry, seed=1)
    start = jnp.asarray(start_values(model, data))
    compiled, c_wall, c_cpu = time_compile(make_fitter(model), start, data)
    out, run = time_run(compiled, (start, data), repeat)
    return dict(
        case=label,
        params=len(model.names),
        compile_wall=c_wall,
        compile_cpu=c_cpu,
        run=run,
        iterations=str(int(out.n_iter)),
        status=str(int(out.status)),
        counts=float(np.asarray(data.counts).sum()),
    )


def batch_case(label, model, truth_fn, repeat, n=50):
    geometry = BinGeometry.from_edges(
        np.geomspace(0.3, 30, 9), np.linspace(-3, 3, 17), np.linspace(-3, 3, 17)
    )
    truth = truth_fn(model)
    datas = [simulate(model, truth, geometry, seed) for seed in range(n)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *datas)
    starts = jnp.stack([jnp.asarray(start_values(model, d)) for d in datas])
    fitter = jax.jit(jax.vmap(make_fitter(model)))
    compiled, c_wall, c_cpu = time_compile(fitter, starts, stacked)
    out, run = time_run(compiled, (starts, stacked), repeat)
    iters = np.asarray(out.n_iter)
    return dict(
        case=label,
        params=len(model.names),
        compile_wall=c_wall,
        compile_cpu=c_cpu,
        run=run,
        iterations=f"{iters.min()}-{iters.max()}",
        status=f"{int(np.sum(np.asarray(out.status) == 0))}/{n} converged",
        counts=float(np.asarray(stacked.counts).sum() / n),
    )


def norm_tilt_case(geometry, repeat):
    model = GaussianModel()
    truth = gaussian_truth(model)
    data = simulate(model, truth, geometry, seed=2)
    e = np.asarray(geometry.energy_centers)
    template = np.asarray(expected_counts(model, jnp.asarray(truth), geometry, data.time))
    nt = NormTiltData(
        data.counts * 1.0, jnp.asarray(template) / 1.2, data.mask, jnp.asarray(np.log(e))
    )
    start = jnp.asarray(to_internal(NORM_TILT_PARAMETERS, [1.0, 0.0]))
    compiled, c_wall, c_cpu = time_compile(make_norm_tilt_fitter(), start, nt)
    out, run = time_run(compiled, (start, nt), repeat)
    return dict(
        case="norm + tilt of one run, 20x60x60",
        params=2,
        compile_wall=c_wall,
        compile_cpu=c_cpu,
        run=run,
        iterations=str(int(out.n_iter)),
        status=str(int(out.status)),
        counts=float(np.asarray(nt.counts).sum()),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "fit.md"))
    args = parser.parse_args(argv)

    load_before = load_average()
    big = BinGeometry.from_edges(ENERGY_EDGES, FOV_EDGES, FOV_EDGES)
    big2 = BinGeometry.from_edges(ENERGY_EDGES, FOV_EDGES, FOV_EDGES, spatial_nodes=2)
    flexible = FlexibleModel.from_energy_range(0.15, 60.0, 6)
    rows = [
        single_fit_case("gaussian, 20x60x60", GaussianModel(), gaussian_truth, big, args.repeat),
        single_fit_case("flexible, 20x60x60", flexible, flexible_truth, big, args.repeat),
        single_fit_case(
            "flexible, 20x60x60, 2x2 spatial nodes", flexible, flexible_truth, big2, args.repeat
        ),
        batch_case("50 x gaussian, 8x16x16, vmapped", GaussianModel(), gaussian_truth, args.repeat),
        batch_case(
            "50 x flexible (4 knots), 8x16x16, vmapped",
            FlexibleModel.from_energy_range(0.4, 25.0, 4),
            flexible_truth,
            args.repeat,
        ),
        norm_tilt_case(big, args.repeat),
    ]

    header = (
        "| case | parameters | counts per cube | compile wall (s) | compile CPU (s) | "
        "run (s) | iterations | status |"
    )
    lines = [
        "# Fit times (bgcube.fit, JAX on CPU, float64)",
        "",
        f"Machine: {machine_description()}; {versions('jax', 'jaxlib', 'numpy')}.",
        f"Load average before: {load_before}; after: {load_average()}.",
        f"Energy quadrature: 3 Gauss-Legendre nodes per bin; best of {args.repeat} runs.",
        "Produced by `python benchmarks/bench_fit.py`.",
        "",
        header,
        "|" + "---|" * 8,
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['params']} | {r['counts']:.3g} | {r['compile_wall']:.1f} | "
            f"{r['compile_cpu']:.1f} | {r['run']:.3f} | {r['iterations']} | {r['status']} |"
        )
    lines += [
        "",
        "Status 0 is converged (Newton decrement below 1e-8). Compilation is paid once per",
        "model and cube shape in a process; the run time is what every further fit of that",
        "shape costs. The vmapped rows fit all 50 cubes in one call.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(output)


if __name__ == "__main__":
    main()
