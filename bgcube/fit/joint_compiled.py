"""The joint fit's objective and Newton system as compiled JAX programs.

On JAX, `bgcube.fit.joint_solver` evaluates each of them through one
``jax.jit`` per method and problem shapes (kept for later fits of the same
shapes, e.g. the folds of a cross-validation) instead of operation by
operation, each of which XLA would otherwise compile on its own.
"""

from __future__ import annotations

__all__ = ["jax_program"]


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
        program = _PROGRAMS[key] = jax.jit(run)
    return program
