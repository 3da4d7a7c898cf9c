"""Night (group) effects of the joint model, each run's estimated without its own counts.

Runs taken close in time share the atmosphere: the joint model scales a
run's prediction by an effect shared by the runs of its night
(`bgcube.fit.joint_fitting.night_labels`), with a Gaussian prior. The
effect a run's own prediction uses is estimated from the *other* runs of
its night only (`group_effects`). Where the model also has run effects (the
scatter of single runs that no condition explains), each other run of the
night weighs as much as that scatter allows: one neighbour says less about
a night than ten.
"""

from __future__ import annotations

from ..array.namespace import array_namespace

__all__ = ["group_effects"]


def group_effects(
    counts, predicted, groups, group_sigma, *, run_sigma: float = 0.0, max_iterations: int = 50
):
    """Each run's group effect estimated from the *other* runs of its group.

    With the model's predictions ``m_i`` of the runs (without group effect)
    fixed, the effect of a group estimated from a set of its runs maximises

        sum_i (n_i delta - m_i exp(delta)) - delta**2 / (2 sigma**2)

    A run's *left-out* effect is this maximum over the other runs of its
    group: a run's own counts never enter its own prediction. Solved
    exactly, for all runs at once, by Newton's method in one dimension.

    With run effects of width ``run_sigma`` > 0 (each run's rate scattered
    by ``exp(eps)``, ``eps ~ N(0, run_sigma**2)``), each run ``i`` of a
    group tells ``log(n_i / m_i)`` with variance ``1 / n_i + run_sigma**2``
    (the normal approximation, good for the thousands of counts of a run)
    and the effect is the precision-weighted mean of the runs, shrunk to 0
    by the prior.

    Parameters
    ----------
    counts, predicted : array, shape (n_runs,)
        Observed counts and predicted counts without group effects.
    groups : array, shape (n_runs, n_groups)
        Group memberships (1 or 0); a run belongs to one group at most.
    group_sigma : array, shape (n_groups,)
        Prior widths (natural log of the rate).
    run_sigma : float
        Width of the run effects (natural log of the rate); 0 for none.
    max_iterations : int

    Returns
    -------
    delta : array, shape (n_groups,)
        Each group's effect from all its runs.
    left_out : array, shape (n_runs,)
        Each run's effect without its own counts (0 for a run alone in its
        group or in none).

    Raises
    ------
    ValueError
        A run belongs to several groups.
    """
    xp = array_namespace(counts)
    g = xp.astype(groups, counts.dtype)
    if g.shape[1] == 0:
        return xp.zeros((0,), dtype=counts.dtype), xp.zeros_like(counts)
    if float(xp.max(xp.sum(g, axis=1))) > 1:
        raise ValueError("group_effects needs each run in one group at most")
    precision = 1.0 / xp.astype(group_sigma, counts.dtype) ** 2
    member = xp.sum(g, axis=1) > 0
    if run_sigma > 0:
        n = xp.maximum(counts, 1.0)
        valid = predicted > 0  # a run without fitted bins tells nothing
        log_ratio = xp.where(valid, xp.log(n / xp.where(valid, predicted, 1.0)), 0.0)
        weight = xp.where(valid, 1.0 / (1.0 / n + run_sigma**2), 0.0)
        w_group, wr_group = g.T @ weight, g.T @ (weight * log_ratio)
        delta = wr_group / (w_group + precision)
        left_out = (g @ wr_group - weight * log_ratio) / (g @ (w_group + precision) - weight)
        return delta, xp.where(member, left_out, 0.0)
    c_group, m_group = g.T @ counts, g.T @ predicted

    def solve(c, m, prec):
        d = xp.zeros_like(c)
        for _ in range(max_iterations):
            e = m * xp.exp(d)
            d = d + (c - e - prec * d) / (e + prec)
        return d

    delta = solve(c_group, m_group, precision)
    run_precision = g @ precision
    left_out = solve(
        g @ c_group - counts, g @ m_group - predicted, xp.where(member, run_precision, 1.0)
    )
    return delta, xp.where(member, left_out, 0.0)
