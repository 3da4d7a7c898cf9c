"""The joint fit's problem: expected counts, objective and Newton system, run by run in chunks.

`Problem` precomputes the products one fit needs from its `JointData` and
`JointDesign`, and evaluates, for given coefficients and group and run
effects, the expected counts (for a chunk of runs at a time), the
penalised negative log-likelihood and its gradient and Hessian blocks; its
`Problem.solve` eliminates the run and group effects by Schur complements.
On JAX the objective and the Newton system run as compiled programs
(`bgcube.fit.joint_compiled`). `bgcube.fit.joint_solver.fit_joint` iterates.
"""

from __future__ import annotations

import copy
import dataclasses
import math

from ..array.namespace import array_namespace, is_jax
from .joint_compiled import jax_program
from .joint_data import DATA_ARRAYS, DESIGN_ARRAYS, JointData, JointDesign

__all__ = ["Problem", "CHUNK_BYTES", "runs_per_chunk"]

#: Bytes of one (runs, energy, pixels) array of expected counts, which sets how
#: many runs are computed at once (a handful of such arrays are alive at a time).
CHUNK_BYTES = 32 * 2**20


def runs_per_chunk(bins_per_run: int) -> int:
    """Runs whose float64 arrays of ``bins_per_run`` values fill about `CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // max(8 * int(bins_per_run), 1))


def _outer_rows(x, y, xp):
    """Row-wise outer products: shape (n, a * b) from (n, a) and (n, b)."""
    n = x.shape[0]
    return xp.reshape(x[:, :, None] * y[:, None, :], (n, x.shape[1] * y.shape[1]))


class Problem:
    """Precomputed products of one fit (shapes, one-hot groups, penalties)."""

    def __init__(self, data: JointData, design: JointDesign, chunk: int | None = None):
        xp = array_namespace(data.exposure)
        self.xp = xp
        self.d, self.g = data, design
        self.n_runs, self.n_pixels = data.exposure.shape
        self.n_energy = data.energy_width.shape[0]
        if chunk is None:
            chunk = runs_per_chunk(self.n_energy * self.n_pixels)
        self.chunk = max(int(chunk), 1)
        self.q, self.k = data.features.shape[1], design.energy_basis.shape[1]
        self.m = data.spatial_features.shape[1]
        self.l, self.j = design.spatial_energy_basis.shape[1], design.spatial_basis.shape[1]
        self.n_a, self.n_s = self.q * self.k, self.m * self.l * self.j
        self.mask = data.fit_mask > 0
        self.de = data.energy_width
        dtype = data.exposure.dtype
        if data.groups is not None and data.groups.shape[1] > 0:
            self.onehot = xp.astype(data.groups, dtype)
            self.precision = 1.0 / xp.astype(data.group_sigma, dtype) ** 2
            self.n_groups = data.groups.shape[1]
        else:
            self.n_groups, self.onehot = 0, None
        sigma = float(data.run_sigma or 0.0)
        if not sigma >= 0:
            raise ValueError(f"run_sigma must be >= 0, got {sigma}")
        self.run_precision = 1.0 / sigma**2 if sigma > 0 else None
        tail = float(data.run_tail)
        if not tail > 0:
            raise ValueError(f"run_tail must be > 0, got {tail}")
        self.run_edge = tail * sigma if sigma > 0 else 0.0  # Huber: exponential beyond
        zeros_as = xp.zeros((self.n_a, self.n_s), dtype=dtype)
        self.penalty = xp.concat(
            [
                xp.concat([design.penalty_a, zeros_as], axis=1),
                xp.concat([zeros_as.T, design.penalty_s], axis=1),
            ],
            axis=0,
        )
        u = data.spatial_features
        self.uu = _outer_rows(u, u, xp)  # (R, M*M)
        self.fu = _outer_rows(data.features, u, xp)  # (R, Q*M)
        self.ff = _outer_rows(data.features, data.features, xp)
        self.bb = _outer_rows(design.energy_basis, design.energy_basis, xp)
        self.ss = _outer_rows(design.spatial_energy_basis, design.spatial_energy_basis, xp)
        self.gg = _outer_rows(design.spatial_basis, design.spatial_basis, xp)
        self.bs = xp.reshape(
            design.energy_basis[:, :, None] * design.spatial_energy_basis[:, None, :],
            (self.n_energy, self.k * self.l),
        )

    def run_prior(self, eps):
        """Huber prior of the run effects: value, gradient and (reweighted) curvature per run."""
        xp, prec, edge = self.xp, self.run_precision, self.run_edge
        if not math.isfinite(edge):
            return 0.5 * prec * eps * eps, prec * eps, xp.full_like(eps, prec)
        size = xp.abs(eps)
        inside = size <= edge
        value = xp.where(inside, 0.5 * prec * eps * eps, prec * edge * (size - 0.5 * edge))
        # curvature beyond the edge: the secant slope / eps (iteratively reweighted,
        # a majoriser of the prior), positive even for a run with few expected counts
        curvature = prec * xp.where(inside, 1.0, edge / xp.where(inside, 1.0, size))
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
        if self.onehot is not None and delta is not None:
            a = a + (self.onehot @ delta)[:, None]
        if eps is not None:
            a = a + eps[:, None]
        s = xp.stack(
            [g.spatial_energy_basis @ coef_s[i, ...] @ g.spatial_basis.T for i in range(self.m)]
        )
        return a, xp.reshape(s, (self.m, self.n_energy * self.n_pixels))

    def chunks(self):
        for lo in range(0, self.n_runs, self.chunk):
            yield lo, min(lo + self.chunk, self.n_runs)

    def expected(self, a, s, lo, hi):
        """Expected counts of runs lo:hi, shape (n, E, P)."""
        xp, d = self.xp, self.d
        mask = self.mask[lo:hi, :]
        w = xp.where(mask, xp.exp(xp.where(mask, a[lo:hi, :], 0.0)), 0.0) * self.de[None, :]
        eta = xp.reshape(d.spatial_features[lo:hi, :] @ s, (hi - lo, self.n_energy, self.n_pixels))
        return (
            w[:, :, None]
            * (d.exposure[lo:hi, :] * d.solid_angle[None, :])[:, None, :]
            * xp.exp(eta)
        )

    def run_energy_sums(self, a, s):
        """Expected counts per (run, energy), shape (R, E)."""
        xp = self.xp
        return xp.concat(
            [xp.sum(self.expected(a, s, lo, hi), axis=2) for lo, hi in self.chunks()], axis=0
        )

    def objective(self, theta, delta, eps=None) -> float:
        """Penalised negative log-likelihood (up to a constant)."""
        return float(self.call("objective_array", theta, delta, eps))

    def objective_array(self, theta, delta, eps=None):
        xp, d = self.xp, self.d
        a, s = self.terms(theta, delta, eps)
        a_masked = xp.where(self.mask, a, 0.0)
        counts_s = xp.reshape(d.counts_pixel, (self.m, -1))
        value = (
            xp.sum(self.run_energy_sums(a, s))
            - xp.sum(d.counts_run * a_masked)
            - xp.sum(counts_s * s)
            + 0.5 * xp.sum(theta * (self.penalty @ theta))
        )
        if self.onehot is not None:
            value = value + 0.5 * xp.sum(self.precision * delta * delta)
        if eps is not None:
            value = value + xp.sum(self.run_prior(eps)[0])
        return value

    # ------------------------------------------------------------------
    # on JAX: the objective and the Newton system each one compiled program
    _ARRAYS = (
        "mask",
        "de",
        "onehot",
        "precision",
        "penalty",
        "uu",
        "fu",
        "ff",
        "bb",
        "ss",
        "gg",
        "bs",
    )

    def call(self, name: str, *args):
        """``self.<name>(*args)``; on JAX through one ``jax.jit`` per method and shapes."""
        if not is_jax(self.xp):
            return getattr(self, name)(*args)
        return jax_program(self, name)(self.arrays(), *args)

    def arrays(self) -> tuple[dict, dict, dict]:
        """This problem's arrays: its own, its data's and its design's, by name."""
        return (
            {k: getattr(self, k) for k in self._ARRAYS},
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
        own, data, design = arrays
        clone = copy.copy(self)
        for k, v in own.items():
            setattr(clone, k, v)
        clone.d = dataclasses.replace(self.d, **data)
        clone.g = dataclasses.replace(self.g, **design)
        return clone

    def newton_system(self, theta, delta, eps=None):
        """Gradient (of the log-posterior) and Hessian blocks at ``(theta, delta, eps)``.

        Returns ``grad, hess`` of the globals, ``groups = (grad_d, block,
        cross)`` or None and ``runs = (grad_e, diagonal, rows)`` or None:
        the group and run effects' gradients, their Hessian blocks (the run
        block is diagonal) and their cross terms with the globals.
        """
        xp, d, g = self.xp, self.d, self.g
        q, k, m, l, j = self.q, self.k, self.m, self.l, self.j  # noqa: E741 (l: spline index)
        n_e, n_p = self.n_energy, self.n_pixels
        per_run_rows = self.onehot is not None or eps is not None
        a, s = self.terms(theta, delta, eps)
        m_run_parts, u_mu, uu_mu, fu_mu, group_s = [], 0.0, 0.0, 0.0, []
        for lo, hi in self.chunks():
            mu = self.expected(a, s, lo, hi)
            flat = xp.reshape(mu, (hi - lo, n_e * n_p))
            m_run_parts.append(xp.sum(mu, axis=2))
            u_mu = u_mu + d.spatial_features[lo:hi, :].T @ flat
            uu_mu = uu_mu + self.uu[lo:hi, :].T @ flat
            fu_mu = fu_mu + self.fu[lo:hi, :].T @ flat
            if per_run_rows:
                # per run: sum_ep mu BS_el G_pj, times u_rm
                mg = xp.reshape(flat, ((hi - lo) * n_e, n_p)) @ g.spatial_basis
                mg = xp.permute_dims(xp.reshape(mg, (hi - lo, n_e, j)), (0, 2, 1))
                lj = xp.permute_dims(mg @ g.spatial_energy_basis, (0, 2, 1))  # (n, L, J)
                per = d.spatial_features[lo:hi, :][:, :, None] * xp.reshape(lj, (hi - lo, 1, l * j))
                group_s.append(xp.reshape(per, (hi - lo, m * l * j)))
        m_run = xp.concat(m_run_parts, axis=0)
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
        grad = grad - self.penalty @ theta
        h_aa = xp.reshape(self.ff.T @ m_run @ self.bb, (q, q, k, k))
        h_aa = xp.reshape(xp.permute_dims(h_aa, (0, 2, 1, 3)), (q * k, q * k))
        # H_SS[(m,l,j),(m',l',j')] = sum_ep uu_mu[mm', e, p] BS_el BS_el' G_pj G_pj'
        x = xp.reshape(uu_mu, (m * m * n_e, n_p)) @ self.gg  # (M*M*E, J*J)
        x = xp.permute_dims(xp.reshape(x, (m * m, n_e, j * j)), (0, 2, 1)) @ self.ss
        x = xp.reshape(x, (m, m, j, j, l, l))
        h_ss = xp.reshape(xp.permute_dims(x, (0, 4, 2, 1, 5, 3)), (m * l * j, m * l * j))
        # H_AS[(q,k),(m,l,j)] = sum_ep fu_mu[qm, e, p] B_ek BS_el G_pj
        y = xp.reshape(fu_mu, (q * m * n_e, n_p)) @ g.spatial_basis  # (Q*M*E, J)
        y = xp.permute_dims(xp.reshape(y, (q * m, n_e, j)), (0, 2, 1)) @ self.bs
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
            + self.penalty
        )
        if not per_run_rows:
            return grad, hess, None, None, m_run
        u_a = _outer_rows(d.features, m_run @ g.energy_basis, xp)  # (R, Q*K)
        rows = xp.concat([u_a, xp.concat(group_s, axis=0)], axis=1)  # (R, n_globals)
        m_tot = xp.sum(m_run, axis=1)
        r_tot = xp.sum(r_run, axis=1)
        groups = runs = None
        if self.onehot is not None:
            oh = self.onehot
            grad_d = oh.T @ r_tot - self.precision * delta
            block = oh.T @ (m_tot[:, None] * oh)
            block = block + xp.eye(self.n_groups, dtype=oh.dtype) * self.precision[None, :]
            groups = (grad_d, block, oh.T @ rows)
        if eps is not None:
            _, slope, curvature = self.run_prior(eps)
            runs = (r_tot - slope, m_tot + curvature, rows, m_tot)
        return grad, hess, groups, runs, m_run

    def solve(self, grad, hess, groups, runs=None):
        """Newton step and the globals' covariance (group and run effects marginalised).

        The run effects are eliminated first (their block is diagonal), then
        the group effects, each by a Schur complement.
        """
        xp = self.xp
        full_grad, full_groups = grad, groups
        if runs is not None:
            grad_e, diagonal, rows, m_tot = runs
            scaled = rows / diagonal[:, None]
            hess = hess - rows.T @ scaled
            grad = grad - scaled.T @ grad_e
            if groups is not None:
                grad_d, block, cross = groups
                oh = self.onehot
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
                shift = shift + m_tot * (self.onehot @ step_d)
            step_e = (grad_e - shift) / diagonal
        decrement = float(xp.sum(full_grad * step))
        if full_groups is not None:
            decrement += float(xp.sum(full_groups[0] * step_d))
        if runs is not None:
            decrement += float(xp.sum(grad_e * step_e))
        return step, step_d, step_e, cov, decrement
