"""BLAS threads of the ``bgcube`` command's own process: the cores nothing else uses.

NumPy's BLAS (OpenBLAS) starts one thread per core for each matrix product
large enough, and those threads keep a core busy waiting for the next
product for a while after each one. The products of a bgcube build (the
joint fit's sums over runs, the models' rate cubes) have small inner
dimensions and gain little from threads, while bgcube's own threads (reading
the next run ahead, compressing and writing the per-run files in two threads)
need the cores those waiting threads take:

* on a shared 2-core machine at a load of 3, the default DR1 build took 15 s
  with two BLAS threads and 7-9 s with one;
* on the same machine at a load of about 1, writing DR1's 105 per-run files
  took 0.68-0.72 s with one BLAS thread and 0.80-0.91 s with two, and 1.0 s
  of CPU instead of 1.6-1.8 s; the fit alone is 0.1 s faster on two
  (0.34 s against 0.43 s), for twice its CPU time; the whole command used
  3.2-3.7 s of CPU instead of 4.5-4.9 s, and no more wall time.

The ``bgcube`` command therefore gives BLAS, in its own process, the cores
that neither the 1-minute load average nor bgcube's two writer threads take
(at least one): one on a 2-core machine. Where the user chose a number of
threads for BLAS (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS``) it is kept; ``$BGCUBE_BLAS_THREADS`` sets the number
for bgcube's command alone (``0`` or ``off``: BLAS's own default). The
library never does this: a Python session's threads stay the user's.
"""

from __future__ import annotations

import os

__all__ = ["ENV_VAR", "USER_VARIABLES", "OWN_THREADS", "command_blas_threads", "limit_command_blas"]

#: Environment variable setting the command's BLAS threads (``0``/``off``: BLAS's default).
ENV_VAR = "BGCUBE_BLAS_THREADS"
#: Variables by which a user chooses BLAS threads; any of them set, the command keeps it.
USER_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_OFF = ("0", "off", "no", "false", "none")

_LIMIT = None  # the command's limit, alive as long as the process
#: Threads of bgcube's own beside its main thread (the per-run files' writers).
OWN_THREADS = 2


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
        load and bgcube's `OWN_THREADS` leave free, at least 1.

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
    return max(1, int(cpu_count) - int(round(float(load))) - OWN_THREADS)


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
