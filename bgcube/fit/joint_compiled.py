"""The joint fit as compiled JAX programs, and its loop over chunks of runs.

On JAX, `bgcube.fit.joint_problem.Problem.call` runs each method (the
Newton system, the objective, the Newton step, ...) through one ``jax.jit``
per method and problem shapes, kept for later fits of the same shapes (the
folds of a cross-validation), instead of operation by operation: XLA would
otherwise compile each eager operation on its own.

`over_chunks` is the loop over chunks of runs that bounds the fit's memory.
On NumPy it computes the chunks in `bgcube.array.threads.n_threads`
threads (NumPy and BLAS release the GIL) and adds their sums in the
chunks' order; on the other eager backends it is a Python loop. Inside a
JAX program it is one ``jax.lax.fori_loop`` over chunks of equal size (the
last one padded with runs of zero exposure, which add exactly zero), so the
program is compiled once whatever the number of runs, instead of once per
chunk.
"""

from __future__ import annotations

import collections
from concurrent.futures import ThreadPoolExecutor

from ..array.namespace import backend_name, is_jax
from ..array.threads import n_threads

__all__ = ["jax_program", "over_chunks", "fit_threads"]


_PROGRAMS: dict = {}


def jax_program(problem, name: str):
    """One ``jax.jit`` of ``Problem.<name>`` per static key, kept for later fits."""
    key = (name, problem.static_key())
    program = _PROGRAMS.get(key)
    if program is None:
        import jax

        # the static numbers only: no array of this fit stays alive in the cache
        template = problem.with_arrays(tuple(dict.fromkeys(a) for a in problem.arrays()))

        def run(arrays, *args):
            return getattr(template.with_arrays(arrays), name)(*args)

        if len(_PROGRAMS) >= 32:
            _PROGRAMS.clear()
        program = jax.jit(run)
        from .joint_stored import StoredProgram, program_folder

        folder = program_folder()  # the command's: traced programs kept on disk
        if folder is not None:
            program = StoredProgram(program, name, key, folder)
        _PROGRAMS[key] = program
    return program


def over_chunks(xp, chunk: int, inputs: tuple, body, threads: int = 1) -> tuple[tuple, tuple]:
    """Apply ``body`` to chunks of rows of ``inputs``: its sums added, its rows concatenated.

    Parameters
    ----------
    xp : namespace
        The arrays' namespace.
    chunk : int
        Rows per chunk.
    inputs : tuple of arrays
        Per-run arrays, all with the same number of rows (first axis).
    body : callable
        ``body(rows) -> (sums, per_row)``, with ``rows`` the chunk's rows of
        each input; ``sums`` a tuple of arrays summed over the chunks,
        ``per_row`` a tuple of arrays with one row per input row. A row of
        zeros in every input must give zero sums (the padding on JAX).
    threads : int
        Threads computing chunks at once on an eager backend (`fit_threads`);
        the sums are added in the chunks' order whatever their number.

    Returns
    -------
    sums, per_row : tuple of arrays
    """
    n = inputs[0].shape[0]
    if n <= chunk or not is_jax(xp) or not _tracing(inputs):
        total, parts = None, []
        for sums, rows in _chunk_results(n, chunk, inputs, body, threads):
            total = (
                sums if total is None else tuple(t + s for t, s in zip(total, sums, strict=True))
            )
            parts.append(rows)
        return total, tuple(
            p[0] if len(p) == 1 else xp.concat(p, axis=0) for p in zip(*parts, strict=True)
        )
    import jax

    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n
    padded = tuple(
        xp.concat([x, xp.zeros((pad, *x.shape[1:]), dtype=x.dtype)], axis=0) if pad else x
        for x in inputs
    )

    def rows_of(i):
        return tuple(jax.lax.dynamic_slice_in_dim(x, i * chunk, chunk) for x in padded)

    shapes = jax.eval_shape(body, rows_of(0))
    sums0 = tuple(xp.zeros(s.shape, dtype=s.dtype) for s in shapes[0])
    rows0 = tuple(xp.zeros((n_chunks * chunk, *s.shape[1:]), dtype=s.dtype) for s in shapes[1])

    def step(i, carry):
        total, rows = carry
        sums, part = body(rows_of(i))
        total = tuple(t + s for t, s in zip(total, sums, strict=True))
        rows = tuple(
            jax.lax.dynamic_update_slice_in_dim(r, p, i * chunk, 0)
            for r, p in zip(rows, part, strict=True)
        )
        return total, rows

    total, rows = jax.lax.fori_loop(0, n_chunks, step, (sums0, rows0))
    return total, tuple(r[:n, ...] for r in rows)


def _tracing(arrays) -> bool:
    """Whether JAX is tracing these arrays (inside a compiled program)."""
    import jax

    return any(isinstance(x, jax.core.Tracer) for x in arrays)


def fit_threads(xp) -> int:
    """Threads that compute chunks of runs at once: on NumPy, the cores BLAS leaves; else 1.

    That is `n_threads` divided by the threads of NumPy's BLAS (as
    ``threadpoolctl`` finds them): two chunks each running a multi-threaded
    matrix product at once would slow both (on 2 cores, two fit threads with
    two BLAS threads fitted 1000 simulated runs in 6.95 s, against 4.36 s with
    one BLAS thread: ``benchmarks/results/fit_threads.md``). The ``bgcube``
    command runs BLAS on one thread
    (`bgcube.blas_threads`), so its fit has a thread per core.
    """
    if backend_name(xp) != "numpy":
        return 1
    try:
        from threadpoolctl import threadpool_info

        blas = max(
            (i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1
        )
    except Exception:  # pragma: no cover - threadpoolctl is a dependency; without it, one thread
        return 1
    return max(1, n_threads() // max(int(blas), 1))


def _chunk_results(n: int, chunk: int, inputs: tuple, body, threads: int):
    """``body`` of each chunk of rows, in the chunks' order.

    With ``threads`` > 1 and several chunks, the chunks are computed in that
    many threads, at most two chunks per thread at a time (memory stays
    bounded); the results are those of one thread.
    """
    bounds = [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
    threads = min(len(bounds), int(threads))
    if threads <= 1:
        for lo, hi in bounds:
            yield body(tuple(x[lo:hi, ...] for x in inputs))
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="bgcube-fit") as pool:
        pending = collections.deque()
        for lo, hi in bounds:
            pending.append(pool.submit(body, tuple(x[lo:hi, ...] for x in inputs)))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
