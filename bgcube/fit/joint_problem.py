"""The joint fit's problem: expected counts, objective and Newton system, run by run in chunks.

`Problem` holds one fit's `JointData`, `JointDesign` and shapes, and
evaluates, for given coefficients and group and run effects, the expected
counts (for a chunk of runs at a time), the penalised negative
log-likelihood with its gradient and Hessian blocks (`Problem.newton_system`)
and the Newton step (`Problem.solve` eliminates the run and group effects by
Schur complements), both at once in `Problem.newton`. On JAX each method
called through `Problem.call` runs as one compiled program
(`bgcube.fit.joint_compiled`). `bgcube.fit.joint_solver.fit_joint` iterates.
"""

from __future__ import annotations

import copy
import dataclasses
import math

from ..array.namespace import array_namespace, is_jax
from .joint_compiled import fit_threads, jax_program, over_chunks
from .joint_data import DATA_ARRAYS, DESIGN_ARRAYS, JointData, JointDesign

__all__ = ["Problem", "CHUNK_BYTES", "runs_per_chunk"]

#: Bytes of one (runs, energy, pixels) array of expected counts, which sets how
#: many runs are computed at once (a handful of such arrays are alive at a time).
#: Below the C library's largest threshold for mapping an allocation fresh from
#: the kernel (glibc: 32 MiB), freed arrays are reused instead of mapped and
#: zero-filled page by page again: the DR1 fit took 26 000 page faults with
#: 32 MiB, 400 with 16 MiB, and 15-30% less time
#: (``benchmarks/bench_fit_chunk.py``).
CHUNK_BYTES = 16 * 2**20


def runs_per_chunk(bins_per_run: int) -> int:
    """Runs whose float64 arrays of ``bins_per_run`` values fill about `CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // max(8 * int(bins_per_run), 1))


def _outer_rows(x, y, xp):
    """Row-wise outer products: shape (n, a * b) from (n, a) and (n, b)."""
    n = x.shape[0]
    return xp.reshape(x[:, :, None] * y[:, None, :], (n, x.shape[1] * y.shape[1]))


class Problem:
    """One fit's shapes and numbers; its methods compute from the data and design arrays.

    Every product of the arrays is computed inside the methods (none is
    held), so that on JAX each method is one compiled program and nothing
    runs operation by operation (XLA compiles each eager operation apart).
    """

    def __init__(self, data: JointData, design: JointDesign, chunk: int | None = None):
        self.xp = array_namespace(data.exposure)
        self.d, self.g = data, design
        self.n_runs, self.n_pixels = data.exposure.shape
        self.n_energy = data.energy_width.shape[0]
        self.threads = fit_threads(self.xp)
        if chunk is None:  # within CHUNK_BYTES, and a chunk for each thread at least
            chunk = runs_per_chunk(self.n_energy * self.n_pixels)
            chunk = min(chunk, -(-self.n_runs // self.threads))
        # chunks of equal size (the last one padded on JAX): at most one run of padding each
        n_chunks = -(-self.n_runs // max(int(chunk), 1))
        self.chunk = max(-(-self.n_runs // max(n_chunks, 1)), 1)
        self.q, self.k = data.features.shape[1], design.energy_basis.shape[1]
        self.m = data.spatial_features.shape[1]
        self.l, self.j = design.spatial_energy_basis.shape[1], design.spatial_basis.shape[1]
        self.n_a, self.n_s = self.q * self.k, self.m * self.l * self.j
        self.n_groups = 0 if data.groups is None else int(data.groups.shape[1])
        sigma = float(data.run_sigma or 0.0)
        if not sigma >= 0:
            raise ValueError(f"run_sigma must be >= 0, got {sigma}")
        self.run_precision = 1.0 / sigma**2 if sigma > 0 else None
        tail = float(data.run_tail)
        if not tail > 0:
            raise ValueError(f"run_tail must be > 0, got {tail}")
        self.run_edge = tail * sigma if sigma > 0 else 0.0  # Huber: exponential beyond

    # products of the arrays, computed where they are used
    def _onehot(self):
        if self.n_groups == 0:
            return None
        return self.xp.astype(self.d.groups, self.d.exposure.dtype)

    def _group_precision(self):
        return 1.0 / self.xp.astype(self.d.group_sigma, self.d.exposure.dtype) ** 2

    def _penalty(self):
        xp, g = self.xp, self.g
        zeros_as = xp.zeros((self.n_a, self.n_s), dtype=self.d.exposure.dtype)
        return xp.concat(
            [
                xp.concat([g.penalty_a, zeros_as], axis=1),
                xp.concat([zeros_as.T, g.penalty_s], axis=1),
            ],
            axis=0,
        )

    def start(self):
        """Initial ``(theta, delta, eps)``: the pooled spectrum of all runs, flat elsewhere."""
        xp, d, g = self.xp, self.d, self.g
        dtype = d.exposure.dtype
        de = d.energy_width
        per_run = xp.sum(d.exposure * d.solid_angle[None, :], axis=1)
        exposure = xp.sum(d.fit_mask * per_run[:, None], axis=0) * de
        counts = xp.sum(d.counts_run, axis=0)
        weight = xp.where(exposure > 0, counts + 1.0, 0.0)
        safe = xp.where(exposure > 0, exposure, 1.0)
        y = xp.where(exposure > 0, xp.log((counts + 0.5) / safe), 0.0)
        b = g.energy_basis
        k = b.shape[1]
        penalty = g.penalty_a[:k, :k] + 1e-3 * xp.eye(k, dtype=dtype)
        lhs = b.T @ (weight[:, None] * b) + penalty
        intercept = xp.linalg.solve(lhs, b.T @ (weight * y))
        rest = xp.zeros(self.n_a + self.n_s - k, dtype=dtype)
        theta = xp.concat([intercept, rest])
        delta = xp.zeros(self.n_groups, dtype=dtype)
        eps = None if self.run_precision is None else xp.zeros(self.n_runs, dtype=dtype)
        return theta, delta, eps

    def advance(self, theta, delta, eps, step, step_d, step_e, t):
        """The point ``t`` of the way along a Newton step."""
        return (
            theta + t * step,
            delta if step_d is None else delta + t * step_d,
            eps if step_e is None else eps + t * step_e,
        )

    def run_prior(self, eps, expected=None, exact=0.0):
        """Huber prior of the run effects: value, gradient and Newton curvature per run.

        Inside the edge the curvature is the prior's precision. Beyond it
        the prior is linear (curvature 0); the Newton curvature there is its
        secant slope / eps ``c``, a majoriser of the prior, which keeps the
        first steps from throwing runs far across the edge. With ``exact``
        1 and each run's ``expected`` counts (its likelihood's own
        curvature), ``c`` is shrunk to ``c * c / (c + expected)``: close to
        the exact 0 where the counts dominate, and still ``c`` for a run
        with few expected counts. The fit switches to it near the optimum:
        the secant alone made the common level of all runs converge linearly
        (21 Newton iterations on the H.E.S.S. DR1 instead of 9).
        """
        xp, prec, edge = self.xp, self.run_precision, self.run_edge
        if not math.isfinite(edge):
            return 0.5 * prec * eps * eps, prec * eps, xp.full_like(eps, prec)
        size = xp.abs(eps)
        inside = size <= edge
        value = xp.where(inside, 0.5 * prec * eps * eps, prec * edge * (size - 0.5 * edge))
        secant = prec * edge / xp.where(inside, 1.0, size)
        if expected is not None:
            secant = secant * (1.0 - exact) + exact * secant * secant / (secant + expected)
        curvature = xp.where(inside, prec, secant)
        return value, prec * xp.clip(eps, -edge, edge), curvature

    def split(self, theta):
        xp = self.xp
        a = xp.reshape(theta[: self.n_a], (self.q, self.k))
        s = xp.reshape(theta[self.n_a :], (self.m, self.l, self.j))
        return a, s

    def terms(self, theta, delta, eps=None):
        """Spectral terms a (R, E) and field-of-view terms s (M, E*P)."""
        xp, d, g = self.xp, self.d, self.g
        coef_a, coef_s = self.split(theta)
        a = d.features @ coef_a @ g.energy_basis.T
        if self.n_groups and delta is not None:
            a = a + (self._onehot() @ delta)[:, None]
        if eps is not None:
            a = a + eps[:, None]
        s = xp.stack(
            [g.spatial_energy_basis @ coef_s[i, ...] @ g.spatial_basis.T for i in range(self.m)]
        )
        return a, xp.reshape(s, (self.m, self.n_energy * self.n_pixels))

    def chunks(self):
        for lo in range(0, self.n_runs, self.chunk):
            yield lo, min(lo + self.chunk, self.n_runs)

    def _mu(self, a, s, fit_mask, exposure, spatial_features):
        """Expected counts, shape (n, E, P), of the runs whose rows are given."""
        xp, d = self.xp, self.d
        mask = fit_mask > 0
        w = xp.where(mask, xp.exp(xp.where(mask, a, 0.0)), 0.0) * d.energy_width[None, :]
        n = a.shape[0]
        mu = xp.exp(xp.reshape(spatial_features @ s, (n, self.n_energy, self.n_pixels)))
        # in place where arrays are mutable (NumPy: no fresh (n, E, P) array per factor,
        # 3x faster on DR1's chunks); on JAX each line makes a new array, as traced ops do
        mu *= w[:, :, None]
        mu *= (exposure * d.solid_angle[None, :])[:, None, :]
        return mu

    def expected(self, a, s, lo, hi):
        """Expected counts of runs lo:hi, shape (n, E, P)."""
        d = self.d
        return self._mu(
            a[lo:hi, :], s, d.fit_mask[lo:hi, :], d.exposure[lo:hi, :], d.spatial_features[lo:hi, :]
        )

    def _over_runs(self, a, s, body, *more):
        """``body(mu, rows)`` chunk by chunk of runs: its sums added, its rows concatenated.

        ``rows`` are the chunk's rows of ``more`` (per-run arrays) and
        ``mu`` its expected counts; see `bgcube.fit.joint_compiled.over_chunks`.
        """
        d = self.d

        def chunk_body(rows):
            a_r, mask_r, exposure_r, spatial_r, *rest = rows
            return body(self._mu(a_r, s, mask_r, exposure_r, spatial_r), rest)

        inputs = (a, d.fit_mask, d.exposure, d.spatial_features, *more)
        return over_chunks(self.xp, self.chunk, inputs, chunk_body, self.threads)

    def _value(self, theta, delta, eps, a, s, total):
        """The objective from the terms and the total expected counts ``total``."""
        xp, d = self.xp, self.d
        a_masked = xp.where(d.fit_mask > 0, a, 0.0)
        counts_s = xp.reshape(d.counts_pixel, (self.m, -1))
        value = (
            total
            - xp.sum(d.counts_run * a_masked)
            - xp.sum(counts_s * s)
            + 0.5 * xp.sum(theta * (self._penalty() @ theta))
        )
        if self.n_groups:
            value = value + 0.5 * xp.sum(self._group_precision() * delta * delta)
        if eps is not None:
            value = value + xp.sum(self.run_prior(eps)[0])
        return value

    # ------------------------------------------------------------------
    # on JAX: each method called through `call` is one compiled program
    def call(self, name: str, *args):
        """``self.<name>(*args)``; on JAX through one ``jax.jit`` per method and shapes."""
        if not is_jax(self.xp):
            return getattr(self, name)(*args)
        return jax_program(self, name)(self.arrays(), *args)

    def arrays(self) -> tuple[dict, dict]:
        """This problem's arrays: its data's and its design's, by name."""
        return (
            {f: getattr(self.d, f) for f in DATA_ARRAYS},
            {f: getattr(self.g, f) for f in DESIGN_ARRAYS},
        )

    def static_key(self) -> tuple:
        """What a compiled program depends on besides its array arguments' values."""
        shapes = tuple(
            None if v is None else tuple(v.shape) for part in self.arrays() for v in part.values()
        )
        return (shapes, self.chunk, self.run_precision, self.run_edge)

    def with_arrays(self, arrays) -> Problem:
        """A copy of this problem holding ``arrays`` (e.g. JAX tracers) instead of its own."""
        data, design = arrays
        clone = copy.copy(self)
        clone.d = dataclasses.replace(self.d, **data)
        clone.g = dataclasses.replace(self.g, **design)
        return clone

    def newton_system(self, theta, delta, eps=None, exact=0.0):
        """Objective, gradient (of the log-posterior) and Hessian blocks at ``(theta, delta, eps)``.

        Returns ``grad, hess`` of the globals, ``groups = (grad_d, block,
        cross)`` or None and ``runs = (grad_e, diagonal, rows, m_tot)`` or
        None: the group and run effects' gradients, their Hessian blocks
        (the run block is diagonal) and their cross terms with the globals;
        then the expected counts per (run, energy) and the objective, from
        the same expected counts (one pass over the runs for all of them).
        ``exact`` (0 or 1) chooses the run effects' curvature beyond the
        Huber edge (see `run_prior`).
        """
        xp, d, g = self.xp, self.d, self.g
        q, k, m, l, j = self.q, self.k, self.m, self.l, self.j  # noqa: E741 (l: spline index)
        n_e, n_p = self.n_energy, self.n_pixels
        per_run_rows = self.n_groups > 0 or eps is not None
        a, s = self.terms(theta, delta, eps)

        if per_run_rows:  # the sums over pixels come with the spatial basis, in one product
            ones = xp.ones((n_p, 1), dtype=g.spatial_basis.dtype)
            pixel_basis = xp.concat([ones, g.spatial_basis], axis=1)  # (P, 1 + J)

        def body(mu, rows):
            # each product reads mu once: its memory traffic, not arithmetic, is the cost
            spatial, features = rows
            n = mu.shape[0]
            flat = xp.reshape(mu, (n, n_e * n_p))
            weights = xp.concat(
                [spatial, _outer_rows(spatial, spatial, xp), _outer_rows(features, spatial, xp)],
                axis=1,
            )
            stacked = weights.T @ flat  # rows: M, then M*M, then Q*M; columns E*P
            sums = (stacked[:m, :], stacked[m : m + m * m, :], stacked[m + m * m :, :])
            if not per_run_rows:
                return sums, (xp.sum(mu, axis=2),)
            # per run: sum_p mu, and sum_ep mu BS_el G_pj (times u_rm below)
            both = xp.reshape(flat, (n * n_e, n_p)) @ pixel_basis
            mg = xp.permute_dims(xp.reshape(both[:, 1:], (n, n_e, j)), (0, 2, 1))
            lj = xp.permute_dims(mg @ g.spatial_energy_basis, (0, 2, 1))  # (n, L, J)
            per = spatial[:, :, None] * xp.reshape(lj, (n, 1, l * j))
            return sums, (xp.reshape(both[:, 0], (n, n_e)), xp.reshape(per, (n, m * l * j)))

        (u_mu, uu_mu, fu_mu), per_run = self._over_runs(a, s, body, d.spatial_features, d.features)
        m_run = per_run[0]
        penalty = self._penalty()
        r_run = d.counts_run - m_run
        grad_a = d.features.T @ r_run @ g.energy_basis
        r_pix = xp.reshape(d.counts_pixel, (m, n_e * n_p)) - u_mu
        grad_s = xp.stack(
            [
                g.spatial_energy_basis.T @ xp.reshape(r_pix[i, :], (n_e, n_p)) @ g.spatial_basis
                for i in range(m)
            ]
        )
        grad = xp.concat([xp.reshape(grad_a, (-1,)), xp.reshape(grad_s, (-1,))])
        grad = grad - penalty @ theta
        ff = _outer_rows(d.features, d.features, xp)
        bb = _outer_rows(g.energy_basis, g.energy_basis, xp)
        h_aa = xp.reshape(ff.T @ m_run @ bb, (q, q, k, k))
        h_aa = xp.reshape(xp.permute_dims(h_aa, (0, 2, 1, 3)), (q * k, q * k))
        # H_SS[(m,l,j),(m',l',j')] = sum_ep uu_mu[mm', e, p] BS_el BS_el' G_pj G_pj'
        gg = _outer_rows(g.spatial_basis, g.spatial_basis, xp)
        ss = _outer_rows(g.spatial_energy_basis, g.spatial_energy_basis, xp)
        x = xp.reshape(uu_mu, (m * m * n_e, n_p)) @ gg  # (M*M*E, J*J)
        x = xp.permute_dims(xp.reshape(x, (m * m, n_e, j * j)), (0, 2, 1)) @ ss
        x = xp.reshape(x, (m, m, j, j, l, l))
        h_ss = xp.reshape(xp.permute_dims(x, (0, 4, 2, 1, 5, 3)), (m * l * j, m * l * j))
        # H_AS[(q,k),(m,l,j)] = sum_ep fu_mu[qm, e, p] B_ek BS_el G_pj
        bs = xp.reshape(
            g.energy_basis[:, :, None] * g.spatial_energy_basis[:, None, :], (n_e, k * l)
        )
        y = xp.reshape(fu_mu, (q * m * n_e, n_p)) @ g.spatial_basis  # (Q*M*E, J)
        y = xp.permute_dims(xp.reshape(y, (q * m, n_e, j)), (0, 2, 1)) @ bs
        y = xp.reshape(y, (q, m, j, k, l))
        h_as = xp.reshape(xp.permute_dims(y, (0, 3, 1, 4, 2)), (q * k, m * l * j))
        hess = (
            xp.concat(
                [
                    xp.concat([h_aa, h_as], axis=1),
                    xp.concat([h_as.T, h_ss], axis=1),
                ],
                axis=0,
            )
            + penalty
        )
        value = self._value(theta, delta, eps, a, s, xp.sum(m_run))
        if not per_run_rows:
            return grad, hess, None, None, m_run, value
        u_a = _outer_rows(d.features, m_run @ g.energy_basis, xp)  # (R, Q*K)
        rows = xp.concat([u_a, per_run[1]], axis=1)  # (R, n_globals)
        m_tot = xp.sum(m_run, axis=1)
        r_tot = xp.sum(r_run, axis=1)
        groups = runs = None
        if self.n_groups:
            oh, precision = self._onehot(), self._group_precision()
            grad_d = oh.T @ r_tot - precision * delta
            block = oh.T @ (m_tot[:, None] * oh)
            block = block + xp.eye(self.n_groups, dtype=oh.dtype) * precision[None, :]
            groups = (grad_d, block, oh.T @ rows)
        if eps is not None:
            _, slope, curvature = self.run_prior(eps, m_tot, exact)
            runs = (r_tot - slope, m_tot + curvature, rows, m_tot)
        return grad, hess, groups, runs, m_run, value

    def newton(self, theta, delta, eps=None, exact=0.0):
        """The Newton step at ``(theta, delta, eps)``, with what the fit needs there.

        Returns ``value, decrement, steps, cov, m_run``: the objective, the
        Newton decrement (both 0-d arrays), the steps ``(step, step_d,
        step_e)`` of the globals, group and run effects (None where absent),
        the globals' covariance and the expected counts per (run, energy).
        One program on JAX: the line search evaluates it at each trial point.
        """
        grad, hess, groups, runs, m_run, value = self.newton_system(theta, delta, eps, exact)
        step, step_d, step_e, cov, decrement = self.solve(grad, hess, groups, runs)
        return value, decrement, (step, step_d, step_e), cov, m_run

    def solve(self, grad, hess, groups, runs=None):
        """Newton step and the globals' covariance (group and run effects marginalised).

        Returns ``step, step_d, step_e, cov, decrement`` (the Newton
        decrement a 0-d array). The run effects are eliminated first (their
        block is diagonal), then the group effects, each by a Schur complement.
        """
        xp = self.xp
        full_grad, full_groups = grad, groups
        oh = self._onehot()
        if runs is not None:
            grad_e, diagonal, rows, m_tot = runs
            scaled = rows / diagonal[:, None]
            hess = hess - rows.T @ scaled
            grad = grad - scaled.T @ grad_e
            if groups is not None:
                grad_d, block, cross = groups
                block = block - oh.T @ ((m_tot * m_tot / diagonal)[:, None] * oh)
                cross = cross - oh.T @ (m_tot[:, None] * scaled)
                grad_d = grad_d - oh.T @ (m_tot * grad_e / diagonal)
                groups = (grad_d, block, cross)
        step_d = None
        if groups is None:
            cov = xp.linalg.inv(hess)
            step = cov @ grad
        else:
            grad_d, block, cross = groups
            inv_block = xp.linalg.inv(block)
            schur = hess - cross.T @ (inv_block @ cross)
            cov = xp.linalg.inv(schur)
            step = cov @ (grad - cross.T @ (inv_block @ grad_d))
            step_d = inv_block @ (grad_d - cross @ step)
        step_e = None
        if runs is not None:
            shift = rows @ step
            if step_d is not None:
                shift = shift + m_tot * (oh @ step_d)
            step_e = (grad_e - shift) / diagonal
        decrement = xp.sum(full_grad * step)
        if full_groups is not None:
            decrement = decrement + xp.sum(full_groups[0] * step_d)
        if runs is not None:
            decrement = decrement + xp.sum(grad_e * step_e)
        return step, step_d, step_e, cov, decrement
