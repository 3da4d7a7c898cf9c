"""UT1 without astropy's IERS tables (`bgcube.data.ut1`): the times of ``Time.ut1`` to the
last bit, the tables left unloaded, astropy's own path outside the IERS-B era.

Each check runs in a fresh interpreter: once astropy has loaded its table (as other tests
do), `ut1` hands over to it, so only a fresh process shows the path taken.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.time import Time

from bgcube.data.ut1 import iers_b_ut1_utc, ut1

ROOT = Path(__file__).resolve().parents[1]

#: Computes UT1 with bgcube, says whether astropy's table got loaded, then compares with
#: astropy's own ``Time.ut1`` of the same times (a fresh object, so nothing is shared).
SCRIPT = """
import json, sys
import numpy as np
from astropy.time import Time
from astropy.utils import iers
from bgcube.data.ut1 import ut1
scale, values = sys.argv[1], np.array(json.loads(sys.argv[2]))
shape = tuple(json.loads(sys.argv[3]))
times = Time(values.reshape(shape), format="mjd", scale=scale)
ours = ut1(times)
loaded = iers.IERS_Auto.iers_table is not None
untouched = getattr(times, "_delta_ut1_utc", None) is None
reference = Time(values.reshape(shape), format="mjd", scale=scale).ut1
print(json.dumps({
    "loaded": loaded,
    "untouched": untouched,
    "shape": list(ours.shape),
    "same": bool(np.array_equal(ours.jd1, reference.jd1) and np.array_equal(ours.jd2, reference.jd2)),
    "max_ns": float(np.max(np.abs((ours.jd1 - reference.jd1) + (ours.jd2 - reference.jd2))) * 86400e9),
}))
"""


def run(scale, mjd, shape=None):
    mjd = np.asarray(mjd, dtype=np.float64)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    argv = [sys.executable, "-c", SCRIPT, scale, json.dumps(mjd.ravel().tolist())]
    argv.append(json.dumps(list(mjd.shape if shape is None else shape)))
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _era():
    mjd, _ = iers_b_ut1_utc()
    return 41684.0, float(mjd[-1]) - 61.0


def _leap_second_days():
    """UTC MJDs just before and after the leap seconds of 1973-2016."""
    dates = ["1979-12-31", "1990-12-31", "1998-12-31", "2005-12-31", "2008-12-31"]
    dates += ["2012-06-30", "2015-06-30", "2016-12-31"]
    ends = Time([f"{d}T23:59:59.5" for d in dates], scale="utc").mjd
    return np.concatenate([ends - 0.3, ends, ends + 1e-5, ends + 0.7])


def test_the_iers_b_file_is_read_as_consecutive_days():
    mjd, delta = iers_b_ut1_utc()
    assert mjd[0] <= 41684.0 and np.all(np.diff(mjd) == 1.0)
    assert np.all(np.abs(delta) < 0.95)  # UT1-UTC is kept within 0.9 s


@pytest.mark.parametrize("scale", ["tt", "utc"])
def test_times_of_the_iers_b_era_are_those_of_astropy_without_its_tables(scale):
    lo, hi = _era()
    rng = np.random.default_rng(7)
    mjd = np.concatenate([rng.uniform(lo + 1, hi, 3000), _leap_second_days(), [lo + 0.5]])
    out = run(scale, mjd)
    assert out["same"], f"differs by up to {out['max_ns']} ns"
    assert not out["loaded"] and out["untouched"]


def test_a_grid_of_times_keeps_its_shape():
    mjd = np.linspace(53000.1, 53001.9, 12).reshape(3, 4)  # 2004: DR1's first runs
    out = run("tt", mjd)
    assert out["same"] and not out["loaded"] and out["shape"] == [3, 4]


def test_times_beyond_the_iers_b_era_take_astropys_path():
    _, hi = _era()
    out = run("tt", [53000.5, hi + 30.0])  # the last days: astropy's IERS-A values
    assert out["same"] and out["loaded"]
    out = run("utc", [41000.5])  # before its table
    assert out["loaded"]


def test_in_process_the_result_is_astropys():
    times = Time(np.array([53000.25, 54321.75]), format="mjd", scale="tt")
    ours = ut1(times)
    reference = Time(times.mjd, format="mjd", scale="tt").ut1
    np.testing.assert_array_equal(ours.jd1, reference.jd1)
    np.testing.assert_array_equal(ours.jd2, reference.jd2)
    assert getattr(times, "_delta_ut1_utc", None) is None


def test_times_that_are_not_finite_are_left_to_astropy():
    from bgcube.data.ut1 import _delta_ut1_utc

    jd1 = np.array([2453000.5, np.nan])
    assert _delta_ut1_utc(jd1, np.zeros(2)) is None
    assert _delta_ut1_utc(jd1[:1], np.zeros(1)).shape == (1,)
