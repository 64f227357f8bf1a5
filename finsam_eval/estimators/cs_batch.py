"""Callaway–Sant'Anna event study for many outcome draws on one fixed design, as array products.

Used by the Monte Carlo power simulations (:mod:`finsam_eval.inference.power`) and randomization
inference (:mod:`finsam_eval.inference.randomization`), where the same design is fitted to
hundreds of outcome draws or permuted cohort vectors; tests check it equals
``estimate(method="cs")`` to 1e-8 on the designs :func:`cs_batch_applies` accepts.

References
----------
Callaway, B. and Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time
periods. *Journal of Econometrics* 225(2), 200–230.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["CSBatch", "cs_batch_applies"]


class CSBatch:
    """Callaway–Sant'Anna dynamic event study for a batch of outcomes on one fixed design.

    The design is a balanced unit × period panel with unit cohorts ``cohort`` (0 = never),
    never-treated comparison units, no covariates, no sampling weights, no anticipation, the
    varying base period and unit clusters: ``estimate(method="cs")`` with its defaults (and
    ``window``). Every group-time effect is then the unconditional 2×2 DiD

    .. math::

        ATT(g, t) = \\bar{\\Delta Y}_{g} - \\bar{\\Delta Y}_{\\infty},\\qquad
        \\Delta Y_i = Y_{it} - Y_{i b(g,t)},

    with :math:`b(g,t) = t - 1` before joining and :math:`g - 1` after (Callaway & Sant'Anna
    2021, Theorem 1), and the event study is the cohort-share-weighted average
    :math:`\\theta(e) = \\sum_g p_g ATT(g, g+e)/\\sum_g p_g` whose influence function includes the
    estimation effect of the shares (``finsam_eval.estimators.aggregation``). Everything is
    linear in :math:`Y`, so for outcomes of shape (R, n, T) all replications are computed with
    array products; the weights depend only on the (fixed) cohort sizes.

    Parameters
    ----------
    cohort
        Unit cohorts, shape (n,).
    times
        Sorted periods, shape (T,).
    window
        Event-time range (lo, hi) of the event study, as ``estimate``'s ``window``.
    control
        "never" (the design above) or "notyet": a cell's comparison units are the
        never-treated and the units first treated after :math:`\\max(t, b)` other than its
        cohort, as ``estimate(method="cs", control="notyet")``; the cell's units then differ
        by period, so those cells are computed one at a time.
    cohorts
        Evaluated cohorts (``estimate``'s CS option ``cohorts``): only their cells enter the
        event study; None = every cohort with a pre-treatment period.
    """

    def __init__(
        self,
        cohort: np.ndarray,
        times: np.ndarray,
        window: tuple[int, int] | None = None,
        control: str = "never",
        cohorts: Sequence[int] | None = None,
    ) -> None:
        cohort = np.asarray(cohort, dtype=int)
        times = np.asarray(times, dtype=int)
        if control not in ("never", "notyet"):
            raise ValueError(f"control must be 'never' or 'notyet', got {control!r}")
        self.n = len(cohort)
        self.control = control
        self.never = cohort == 0
        if not self.never.any():
            raise ValueError("CSBatch needs never-treated units")
        present = np.unique(cohort[cohort > 0])
        present = present[present > times[0]]
        if cohorts is None:
            cohorts = present
        else:
            cohorts = np.unique(np.asarray(list(cohorts), dtype=int))
            unknown = sorted(set(cohorts.tolist()) - set(present.tolist()))
            if unknown:
                raise ValueError(f"cohorts {unknown} are not treated cohorts of the design")
        lo, hi = (-np.inf, np.inf) if window is None else window
        groups, cur, pre = [], [], []
        for g in cohorts:
            base = int(np.flatnonzero(times < g)[-1])
            for j in range(1, len(times)):
                groups.append(g)
                cur.append(j)
                pre.append(j - 1 if times[j] < g else base)
        self.group = np.array(groups, dtype=int)
        self.cur = np.array(cur, dtype=int)
        self.pre = np.array(pre, dtype=int)
        # comparison units per cell: never-treated, or (notyet) first treated after
        # max(t, b) other than the cell's cohort (R did 2.x, anticipation 0)
        cutoff = times[np.maximum(self.cur, self.pre)]
        self.ctrl = np.broadcast_to(self.never, (len(self.group), self.n))
        if control == "notyet":
            later = (cohort[None, :] > cutoff[:, None]) & (cohort[None, :] != self.group[:, None])
            self.ctrl = self.ctrl | later
        self.n_ctrl = self.ctrl.sum(axis=1)
        n_never = int(self.never.sum())
        sizes = {int(g): int((cohort == g).sum()) for g in cohorts}
        n_g = np.array([sizes[int(g)] for g in self.group])
        # DRDID trims when the treated share of a 2×2 reaches 0.995: R returns NA there
        if np.any(n_g / (n_g + self.n_ctrl) >= 0.995):
            raise ValueError("a cohort is too large relative to its comparison group")
        event = times[self.cur] - self.group
        keys = np.unique(event)
        self.event_times = keys[(keys >= lo) & (keys <= hi)].astype(int)
        pg = n_g.astype(float) / self.n
        member = (event[:, None] == self.event_times[None, :]).astype(float)  # (K, E)
        # last column: all post-treatment cells, the simple ATT that CS reports as ``overall``
        member = np.column_stack([member, (event >= 0).astype(float)])  # (K, E + 1)
        share = member * pg[:, None]
        self.total = share.sum(axis=0)
        self.share = share
        self.weights = share / self.total  # (K, E)
        self.member = member
        unit_cohorts, self.cohort_of_unit = np.unique(cohort, return_inverse=True)
        self.in_cohort = (self.group[:, None] == unit_cohorts[None, :]).astype(float)  # (K, G')
        self.count = self.in_cohort.T @ member  # (G', E)
        self.blocks = [
            (np.flatnonzero(self.group == g), np.flatnonzero(cohort == g)) for g in cohorts
        ]
        self.n_never = n_never
        self.positive = self.event_times >= 0

    def fit(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Event-study estimates and analytic standard errors for outcomes ``y`` (R, n, T).

        Returns
        -------
        dict
            ``estimate`` and ``se`` of shape (R, E) (columns ``event_times``), ``overall`` and
            ``overall_se`` of shape (R,): the simple ATT (all post-treatment cells weighted by
            cohort shares), as CS's ``overall``.
        """
        y = np.asarray(y, dtype=float)
        n_rep = y.shape[0]
        n_e = len(self.event_times) + 1  # the event times and the simple ATT
        att = np.empty((n_rep, len(self.group)))
        influence = np.zeros((n_rep, self.n, n_e))
        never = self.never
        for cells, units in self.blocks:
            dy = y[:, :, self.cur[cells]] - y[:, :, self.pre[cells]]  # (R, n, K_g)
            treated_dy = dy[:, units]
            m_d = treated_dy.mean(axis=1)
            w = self.weights[cells]  # (K_g, E)
            # influence of ATT(g,t) in R's scale: n (ΔY - mean)/n_group, signed by arm
            influence[:, units] += (self.n / len(units)) * ((treated_dy - m_d[:, None]) @ w)
            if self.control == "never":
                control_dy = dy[:, never]
                m_c = control_dy.mean(axis=1)
                influence[:, never] -= (self.n / self.n_never) * ((control_dy - m_c[:, None]) @ w)
                att[:, cells] = m_d - m_c
                continue
            # not-yet-treated comparisons change with the period: one cell at a time
            for i, k in enumerate(cells):
                ctrl = self.ctrl[k]
                control_dy = dy[:, ctrl, i]  # (R, n_c)
                m_c = control_dy.mean(axis=1)
                att[:, k] = m_d[:, i] - m_c
                if w[i].any():
                    dev = (self.n / self.n_ctrl[k]) * (control_dy - m_c[:, None])
                    influence[:, ctrl] -= dev[:, :, None] * w[i][None, None, :]
        estimate_ = att @ self.weights
        # estimation effect of the cohort shares (R did's wif), per unit cohort
        a = np.einsum("kg,ke,rk->rge", self.in_cohort, self.member, att)
        weighted = att @ self.share
        m = (a - self.count[None] * (weighted / self.total)[:, None, :]) / self.total
        influence += m[:, self.cohort_of_unit]
        se = np.sqrt(np.einsum("rie,rie->re", influence, influence)) / self.n
        return {
            "estimate": estimate_[:, :-1],
            "se": se[:, :-1],
            "overall": estimate_[:, -1],
            "overall_se": se[:, -1],
        }

    def point_estimates(self, y: np.ndarray, cohorts: np.ndarray) -> np.ndarray:
        """Event-study estimates and overall effect for permuted cohort vectors (no SEs).

        ``y`` is one outcome matrix (n, T); ``cohorts`` has shape (P, n), each row a
        permutation of the design's cohort vector (cohort sizes, hence the aggregation
        weights, are unchanged). Returns shape (P, E + 1), the last column the overall effect.
        """
        if self.control != "never":
            raise ValueError("point_estimates needs the never-treated comparison design")
        cohorts = np.asarray(cohorts)
        n_perm = cohorts.shape[0]
        est = np.zeros((n_perm, len(self.event_times) + 1))  # last column: the simple ATT
        never = (cohorts == 0).astype(float) / self.n_never  # (P, n)
        for cells, units in self.blocks:
            g = int(self.group[cells[0]])
            dy = y[:, self.cur[cells]] - y[:, self.pre[cells]]  # (n, K_g)
            treated = (cohorts == g).astype(float) / len(units)
            est += ((treated - never) @ dy) @ self.weights[cells]
        return est


def cs_batch_applies(method: str, options: Mapping[str, Any]) -> bool:
    """Whether ``estimate(method, **options)`` is CSBatch's design (CS with its defaults).

    ``window``, ``est_method`` (without covariates every ``est_method`` is the
    unconditional DiD), ``control`` ("never" or "notyet") and ``cohorts`` are free; every other
    option must keep its default.
    """
    if method != "cs":
        return False
    required = {"weights": None, "cluster": None, "anticipation": 0,
                "base_period": "varying", "reps": 0, "bootstrap": 0}  # fmt: skip
    for key, value in options.items():
        if key in ("window", "est_method", "cohorts") or (key == "covariates" and not value):
            continue
        if key == "control" and value in ("never", "notyet"):
            continue
        if key not in required or value != required[key]:
            return False
    return True
