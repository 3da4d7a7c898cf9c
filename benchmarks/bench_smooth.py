"""k5a smoothing of a 20x60x60 cube: bgcube against scipy.ndimage.convolve.

    python benchmarks/bench_smooth.py        # writes benchmarks/results/smooth.md

Times one k5a pass over all 20 energy images (bgcube's ``convolve_k5a`` on
each available backend, scipy's ``convolve`` image by image with the same
normalised kernel and its default 'reflect' boundary) and the full
integral-preserving smoothing (``smooth_images`` with 3 passes). Checks that
bgcube's pass equals scipy's to 1e-12.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import best_time, load_average, machine_description, publish, versions  # noqa: E402

from bgcube.array import K5A, convolve_k5a, smooth_images  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "smooth.md"
SHAPE = (20, 60, 60)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    import scipy.ndimage

    cube = np.random.default_rng(1).poisson(50.0, SHAPE).astype(np.float64)
    kernel = np.asarray(K5A, dtype=np.float64) / np.sum(K5A)

    def scipy_pass():
        return np.stack([scipy.ndimage.convolve(image, kernel) for image in cube])

    def scipy_3d():
        return scipy.ndimage.convolve(cube, kernel[None])

    reference = scipy_pass()
    rows = [
        ("scipy.ndimage.convolve, image by image", best_time(scipy_pass), ""),
        ("scipy.ndimage.convolve, one 3-D call", best_time(scipy_3d), ""),
    ]
    backends = [("numpy", lambda a: a, lambda c: c, np.asarray)]
    try:
        import array_api_strict as xps

        backends.append(("array_api_strict", xps.asarray, lambda c: c, np.from_dlpack))
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        smooth_jit = jax.jit(lambda c: convolve_k5a(c, xp=jnp))
        smooth3_jit = jax.jit(lambda c: smooth_images(c, 3, xp=jnp))
        backends.append(("jax (jit)", jnp.asarray, lambda c: c.block_until_ready(), np.asarray))
    except ImportError:
        smooth_jit = smooth3_jit = None
    for name, put, sync, host in backends:
        data = put(cube)
        if name == "jax (jit)":

            def one_pass(data=data, sync=sync):
                return sync(smooth_jit(data))

            def three_passes(data=data, sync=sync):
                return sync(smooth3_jit(data))
        else:

            def one_pass(data=data, sync=sync):
                return sync(convolve_k5a(data))

            def three_passes(data=data, sync=sync):
                return sync(smooth_images(data, 3))

        agrees = np.allclose(host(one_pass()), reference, rtol=1e-12, atol=0)
        rows.append(
            (f"bgcube convolve_k5a, {name}", best_time(one_pass), "yes" if agrees else "NO")
        )
        rows.append(
            (f"bgcube smooth_images (3 passes + rescale), {name}", best_time(three_passes), "")
        )

    t_scipy = min(rows[0][1], rows[1][1])
    lines = [
        "# k5a smoothing of a 20x60x60 cube",
        "",
        "Written by `python benchmarks/bench_smooth.py`; best of >= 5 runs (and >= 1 s) after a warm-up.",
        "",
        f"- machine: {machine_description()}; load average: {load_average()}",
        f"- versions: {versions('numpy', 'scipy', 'jax', 'array-api-strict')}",
        "",
        "| what | ms | best scipy time / this | = scipy (1e-12) |",
        "|---|---:|---:|:---:|",
    ]
    for name, seconds, agrees in rows:
        lines.append(f"| {name} | {seconds * 1e3:.2f} | {t_scipy / seconds:.2f} | {agrees} |")
    report = "\n".join(lines)
    publish(report, args.output, write=not args.no_write)


if __name__ == "__main__":
    main()
