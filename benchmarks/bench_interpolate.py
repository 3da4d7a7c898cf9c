"""Time evaluating a background cube at many points, next to Gammapy.

Run ``python benchmarks/bench_interpolate.py [--points N] [--repeat R]``. It reads
the BKG of one H.E.S.S. DL3 DR1 run (found as `bgcube.datasets.get_path` does)
and prints, for N random points inside the cube (default 1e6):

* `bgcube.array.interpolate_cube` on NumPy and array_api_strict, and on JAX
  eagerly and under ``jax.jit`` (compiled once before timing);
* Gammapy 2.x ``Background3D.evaluate`` on the same points, when importable;
* `bgcube.array.integrate_energy_log_log` over a one-decade band at N/10
  points on NumPy and jitted JAX.

Each line gives the best of ``--repeat`` wall-clock and process CPU times.
Other processes on the machine inflate wall time; CPU time is steadier.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def best_of(repeat, func):
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        func()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def report(name, n, times):
    wall, cpu = times
    print(f"{name:<44s} {wall:8.3f} s wall {cpu:8.3f} s CPU  {n / wall:12.3g} points/s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("JAX_ENABLE_X64", "1")

    import astropy.units as u

    from bgcube import FOVCube, get_namespace
    from bgcube.array import integrate_energy_log_log, interpolate_cube
    from bgcube.backend import from_numpy
    from bgcube.datasets import get_path

    path = get_path("hess-dl3-dr1/data/hess_dl3_dr1_obs_id_020136.fits.gz")
    cube = FOVCube.read(path, hdu="BKG")
    binnings = cube.binnings
    rng = np.random.default_rng(0)
    n = args.points
    e_lo, e_hi = cube.energy_axis.binning.lo, cube.energy_axis.binning.hi
    energy = np.exp(rng.uniform(np.log(e_lo), np.log(e_hi), n))
    dety = rng.uniform(cube.dety_axis.binning.lo, cube.dety_axis.binning.hi, n)
    detx = rng.uniform(cube.detx_axis.binning.lo, cube.detx_axis.binning.hi, n)
    print(f"cube {cube.shape} float32 from {path.name}; {n} points")

    for backend in ("numpy", "array_api_strict", "jax"):
        xp = get_namespace(backend)
        data, e, y, x = (from_numpy(a, xp) for a in (cube.data, energy, dety, detx))

        def eager(data=data, e=e, y=y, x=x):
            result = interpolate_cube(data, binnings, e, y, x)
            if hasattr(result, "block_until_ready"):
                result.block_until_ready()

        report(f"interpolate_cube, {backend}", n, best_of(args.repeat, eager))

    import jax

    jnp = get_namespace("jax")
    data, e, y, x = (jnp.asarray(a) for a in (cube.data, energy, dety, detx))
    jitted = jax.jit(lambda d, e, y, x: interpolate_cube(d, binnings, e, y, x))
    jitted(data, e, y, x).block_until_ready()
    report(
        "interpolate_cube, jax.jit",
        n,
        best_of(args.repeat, lambda: jitted(data, e, y, x).block_until_ready()),
    )

    try:
        from gammapy.irf import Background3D
    except ImportError as exc:
        print(f"gammapy not importable ({exc}); no comparison")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bkg = Background3D.read(path, hdu="BKG")
        q = (energy * u.TeV, detx * u.deg, dety * u.deg)
        report(
            "gammapy Background3D.evaluate",
            n,
            best_of(args.repeat, lambda: bkg.evaluate(energy=q[0], fov_lon=q[1], fov_lat=q[2])),
        )

    m = max(n // 10, 1)
    band = (energy[:m], 10 * energy[:m], dety[:m], detx[:m])
    report(
        "integrate_energy_log_log, numpy",
        m,
        best_of(args.repeat, lambda: integrate_energy_log_log(cube.data, binnings, *band)),
    )
    jband = [jnp.asarray(a) for a in band]
    jint = jax.jit(lambda d, a, b, y, x: integrate_energy_log_log(d, binnings, a, b, y, x))
    jint(data, *jband).block_until_ready()
    report(
        "integrate_energy_log_log, jax.jit",
        m,
        best_of(args.repeat, lambda: jint(data, *jband).block_until_ready()),
    )


if __name__ == "__main__":
    main()
