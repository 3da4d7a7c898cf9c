"""How the ``bgcube`` command ends its process: without Python's teardown when nothing needs it.

When a Python program ends, the interpreter waits for its threads, runs
the exit handlers (`atexit`), then tears itself down: it clears every
module and frees every object one by one. With NumPy, astropy and bgcube
loaded, that last step takes about 0.1 s (``bgcube info`` on a DR1 file:
0.48 s instead of 0.58 s, best of 20 side by side; see
``benchmarks/results/make_models.md``) and does nothing a finished command
needs: its files are written and closed, and the operating system reclaims
the memory.

`exit_process` therefore ends the process right after flushing the output
and running the exit handlers, and does so only when that is safe:

* no other non-daemon thread is running (a thread still writing would be
  cut off);
* no tracer or profiler is installed (``coverage``, ``cProfile``, a
  debugger, through `sys.settrace`, `sys.setprofile` or, from Python 3.12,
  `sys.monitoring`: they report after the program, during the normal exit).

Otherwise it exits the usual way (`sys.exit`). `bgcube.cli.main`, which
returns the status, is unchanged for callers from Python.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import NoReturn

__all__ = ["exit_process", "teardown_needed"]


def teardown_needed() -> bool:
    """Whether this process must end through Python's normal exit.

    True when another non-daemon thread runs, when a tracer or profiler is
    installed, when this is not the main thread, or when this Python has no
    way to run the exit handlers by themselves.
    """
    here = threading.current_thread()
    if here is not threading.main_thread():
        return True
    if any(t is not here and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return True
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12+: coverage, cProfile, pdb
    if monitoring is not None and any(monitoring.get_tool(i) is not None for i in range(6)):
        return True
    return not callable(getattr(atexit, "_run_exitfuncs", None))


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a reader gone, a closed stream: nothing left to say
            pass


def exit_process(status: int) -> NoReturn:
    """End the process with ``status``, skipping Python's teardown where that is safe.

    Parameters
    ----------
    status : int
        The exit status (0-255).
    """
    if teardown_needed():
        sys.exit(status)
    try:  # the command is done: a Ctrl-C now would only print a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    _flush_output()
    atexit._run_exitfuncs()  # what the normal exit runs: logging, temporary folders, Dask
    _flush_output()
    os._exit(status)
