"""BLAS threads of the ``bgcube`` command's own process: the cores the machine leaves free.

NumPy's BLAS (OpenBLAS) starts one thread per core for each matrix product
large enough. On a machine whose cores other processes keep busy, those
threads wait on each other: on a shared 2-core machine at a load of 3, the
default DR1 build took 15 s with two BLAS threads and 7-9 s with one, and
used twice the CPU time. The products of a bgcube build (the joint fit's
sums over runs, the models' rate cubes) have small inner dimensions and
gain little from threads even on an idle machine.

The ``bgcube`` command therefore limits BLAS, in its own process, to the
cores the 1-minute load average leaves free (at least one). Where the user
chose a number of threads for BLAS (``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) it is kept; ``$BGCUBE_BLAS_THREADS``
sets the number for bgcube's command alone (``0`` or ``off``: BLAS's own
default). The library never does this: a Python session's threads stay the
user's.
"""

from __future__ import annotations

import os

__all__ = ["ENV_VAR", "USER_VARIABLES", "command_blas_threads", "limit_command_blas"]

#: Environment variable setting the command's BLAS threads (``0``/``off``: BLAS's default).
ENV_VAR = "BGCUBE_BLAS_THREADS"
#: Variables by which a user chooses BLAS threads; any of them set, the command keeps it.
USER_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_OFF = ("0", "off", "no", "false", "none")

_LIMIT = None  # the command's limit, alive as long as the process


def command_blas_threads(environ=None, cpu_count=None, load=None) -> int | None:
    """The BLAS threads the command uses, or None to leave BLAS as it is.

    Parameters
    ----------
    environ : mapping, optional
        Environment variables (default ``os.environ``).
    cpu_count : int, optional
        Cores this process may use (default: its CPU affinity).
    load : float, optional
        1-minute load average (default ``os.getloadavg()``).

    Returns
    -------
    threads : int or None
        ``$BGCUBE_BLAS_THREADS`` when set to a number; None when it is
        ``off`` or the user set one of `USER_VARIABLES`; else the cores the
        load leaves free, at least 1.

    Raises
    ------
    ValueError
        ``$BGCUBE_BLAS_THREADS`` is neither a whole number nor ``off``.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(ENV_VAR, "").strip()
    if value:
        if value.lower() in _OFF:
            return None
        try:
            threads = int(value)
        except ValueError:
            threads = -1
        if threads < 0:
            raise ValueError(
                f"${ENV_VAR} must be a whole number of threads or 'off', got {value!r}"
            )
        return threads or None
    if any(environ.get(name, "").strip() for name in USER_VARIABLES):
        return None
    if cpu_count is None:
        try:
            cpu_count = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not Linux
            cpu_count = os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average (Windows): all cores
            load = 0.0
    return max(1, int(cpu_count) - int(round(float(load))))


def limit_command_blas(environ=None) -> int | None:
    """Limit BLAS in this process (the command's only) to `command_blas_threads`.

    Returns
    -------
    threads : int or None
        The limit set, or None when BLAS was left as it is (see
        `command_blas_threads`, or ``threadpoolctl`` not installed).
    """
    global _LIMIT
    threads = command_blas_threads(environ)
    if threads is None:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; without it BLAS keeps its default
        return None
    _LIMIT = threadpool_limits(limits=threads, user_api="blas")
    return threads
