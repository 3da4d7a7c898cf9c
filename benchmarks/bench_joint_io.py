"""The joint build's file I/O on the H.E.S.S. DL3 DR1: astropy's path and bgcube's, side by side.

Run from the repository root::

    python benchmarks/bench_joint_io.py             # writes benchmarks/results/joint_io.md
    python benchmarks/bench_joint_io.py --no-write  # print only

The joint build (``make-models``, default ``--model joint``) reads each
run's effective area, decides from each run's EVENTS header whether
Gammapy mirrors its model, and writes one gzipped BKG_3D file per run.
Each step is timed two ways in one run, the two taking turns
``--repeat`` times (best and median), on the 105 runs of
``hess-dl3-dr1`` with the files in the page cache:

* **effective areas** (`bgcube.data.irf.with_effective_area`): astropy's
  ``Table.read`` of each AEFF_2D HDU (the file inflated whole with zlib)
  against the lean reader (`bgcube.io.lean_fits`, vector columns, the
  file inflated with ISA-L only through the HDU); the values must be equal
  bit for bit;
* **EVENTS headers** (`bgcube.make.gammapy_alignment.events_forced_alignment`):
  astropy opening each file against `bgcube.io.lean_fits.read_header`;
* **per-run file bytes**: astropy's ``BinTableHDU`` objects
  (`bgcube.io.files.cube_to_hdulist` and ``hdulist_bytes``) against
  `bgcube.io.lean_write.cube_file_bytes`, for the 105 per-run cubes (read
  back from a joint build of the data); the bytes must be equal;
* **gzip**: ISA-L's level 1 (what `bgcube.io.files.gzip_bytes` did for
  them before) against `gzip_bytes`, which stores such nearly incompressible
  float64 rates in deflate's uncompressed blocks: time and size;
* **reading them back**: Python's ``gzip`` (which astropy, and so Gammapy,
  reads ``.gz`` files with) inflating the files of either kind.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _common import load_average, machine_description, publish, versions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "joint_io.md"


def _isal_level_1(data):
    """What gzip_bytes wrote for float64 rates before it stored them uncompressed."""
    from isal import isal_zlib

    deflate = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
    return deflate.compress(data) + deflate.flush()


def _inflate(packed):
    """Python's gzip reading a file's bytes, as astropy reads a ``.gz`` file."""
    return gzip.GzipFile(fileobj=io.BytesIO(packed)).read()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    from bgcube import FOVCube
    from bgcube.data import DataStore, irf
    from bgcube.datasets import get_path
    from bgcube.io.files import cube_to_hdulist, gzip_bytes, hdulist_bytes
    from bgcube.io.fits import open_fits
    from bgcube.io.lean_fits import read_header
    from bgcube.io.lean_write import cube_file_bytes
    from bgcube.make.gammapy_alignment import gammapy_forced_alignment
    from bgcube.make.pipeline import make_models

    indir = get_path("hess-dl3-dr1")
    store = DataStore.from_dir(indir)
    events = [store.hdu_location(int(i), "events") for i in store.obs_ids]
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        result = make_models(indir, Path(tmp) / "out", progress=False)
        cubes = [FOVCube.read(f) for f in sorted((Path(tmp) / "out" / "bkg").glob("*.fits.gz"))]
    assert len(cubes) == len(store.obs_ids), (len(cubes), result.files[:3])

    def areas(lean):
        if lean:
            return lambda: np.asarray(irf.with_effective_area(store, store.obs_table)["AEFF_1TEV"])
        original = irf.read_table_hdu

        def astropy_path():
            irf.read_table_hdu = lambda *a, **k: None
            try:
                return np.asarray(irf.with_effective_area(store, store.obs_table)["AEFF_1TEV"])
            finally:
                irf.read_table_hdu = original

        return astropy_path

    def headers_astropy():
        out = []
        for path, hdu in events:
            with open_fits(path, memmap=False) as hdulist:
                out.append(gammapy_forced_alignment(hdulist[hdu].header))
        return out

    def headers_lean():
        return [gammapy_forced_alignment(read_header(path, hdu)) for path, hdu in events]

    raw = [bytes(cube_file_bytes(c)) for c in cubes]
    packed = ([_isal_level_1(r) for r in raw], [gzip_bytes(r) for r in raw])
    steps = {
        ("effective areas (105 runs)", "astropy Table.read"): areas(False),
        ("effective areas (105 runs)", "lean reader"): areas(True),
        ("EVENTS headers (105 runs)", "astropy open"): headers_astropy,
        ("EVENTS headers (105 runs)", "lean read_header"): headers_lean,
        ("per-run file bytes (105 files)", "astropy HDU objects"): lambda: [
            hdulist_bytes(cube_to_hdulist(c, "table")) for c in cubes
        ],
        ("per-run file bytes (105 files)", "lean cube_file_bytes"): lambda: [
            bytes(cube_file_bytes(c)) for c in cubes
        ],
        ("gzip of the per-run files", "ISA-L level 1"): lambda: [_isal_level_1(r) for r in raw],
        ("gzip of the per-run files", "gzip_bytes (stored blocks)"): lambda: [
            gzip_bytes(r) for r in raw
        ],
        ("reading them back (Python gzip)", "ISA-L level 1 files"): lambda: [
            _inflate(x) for x in packed[0]
        ],
        ("reading them back (Python gzip)", "gzip_bytes files"): lambda: [
            _inflate(x) for x in packed[1]
        ],
    }
    times = {key: [] for key in steps}
    results = {}
    for _ in range(args.repeat):
        for key, func in steps.items():
            t0 = time.perf_counter()
            results[key] = func()
            times[key].append(time.perf_counter() - t0)

    keys = list(steps)
    checks = []
    for old, new in zip(keys[::2], keys[1::2], strict=True):
        a, b = results[old], results[new]
        if old[0].startswith("reading"):
            same = all(x == r and y == r for x, y, r in zip(a, b, raw, strict=True))
            checks.append(f"- {old[0]}: both give the files' bytes: {same}")
        elif old[0].startswith("gzip"):
            same = all(gzip.decompress(x) == r for x, r in zip(b, raw, strict=True))
            size_old = sum(map(len, a)) / len(a) / 1e6
            size_new = sum(map(len, b)) / len(b) / 1e6
            checks.append(
                f"- {old[0]}: unpacked bytes equal the input: {same}; mean size "
                f"{size_old:.4f} MB ({old[1]}) vs {size_new:.4f} MB ({new[1]}), "
                f"raw {sum(map(len, raw)) / len(raw) / 1e6:.4f} MB"
            )
        else:
            same = all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
            checks.append(f"- {old[0]}: {new[1]} equal to {old[1]}: {same}")
    lines = [
        "# The joint build's file I/O: astropy's path and bgcube's",
        "",
        f"Written by `python benchmarks/bench_joint_io.py`; best and median of {args.repeat} "
        "runs, the two paths taking turns, files in the page cache.",
        "",
        f"- machine: {machine_description()}",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()}",
        f"- data: hess-dl3-dr1, {len(store.obs_ids)} runs",
        f"- versions: {versions('numpy', 'astropy', 'isal')}",
        "",
        "| step | path | wall, best [s] | wall, median [s] | speed-up (best) |",
        "|---|---|---:|---:|---:|",
    ]
    for old, new in zip(keys[::2], keys[1::2], strict=True):
        for key in (old, new):
            best, median = min(times[key]), float(np.median(times[key]))
            ratio = min(times[old]) / best
            lines.append(f"| {key[0]} | {key[1]} | {best:.3f} | {median:.3f} | {ratio:.1f}x |")
    lines += ["", "Checks:", "", *checks]
    publish("\n".join(lines), args.output, write=not args.no_write)


if __name__ == "__main__":
    main()
