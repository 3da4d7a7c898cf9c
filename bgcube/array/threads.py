"""How many threads bgcube's own compute loops run: ``$BGCUBE_NUM_THREADS``, else the CPUs.

The compiled fill (`bgcube.array.histogram`, with numba) and the joint fit's
loop over chunks of runs (`bgcube.fit.joint_compiled`) share their work
among this many threads. Inside a Dask worker that runs several tasks at
once, or next to other busy processes, set ``BGCUBE_NUM_THREADS=1``.
"""

from __future__ import annotations

import os

__all__ = ["ENV_VAR", "n_threads"]

#: Environment variable choosing the number of threads (at least 1).
ENV_VAR = "BGCUBE_NUM_THREADS"


def n_threads() -> int:
    """Threads for bgcube's compute loops: ``$BGCUBE_NUM_THREADS`` if set, else the CPUs.

    Returns
    -------
    threads : int
        At least 1: the variable's value, or the CPUs this process may run
        on (its affinity on Linux, else ``os.cpu_count()``).
    """
    if os.environ.get(ENV_VAR):
        return max(1, int(os.environ[ENV_VAR]))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
