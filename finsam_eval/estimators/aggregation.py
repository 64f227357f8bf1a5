"""Aggregations of group-time effects ATT(g, t) and their influence functions.

Callaway & Sant'Anna (2021, section 3) summarise the ATT(g, t) by weighted averages

.. math::

    \\theta = \\sum_{(g,t)} \\omega(g, t)\\, ATT(g, t),

with weights built from the cohort shares :math:`p_g = \\mathbb{E}[w\\,1\\{G = g\\}]`:

* **simple**: every post-treatment cell (:math:`g \\le t \\le g + \\bar e`), weight
  :math:`\\propto p_g`;
* **dynamic** (event study): for each event time :math:`e = t - g`, cells with that
  :math:`e`, weight :math:`\\propto p_g`; the overall effect is the plain mean of the
  :math:`e \\ge 0` effects;
* **group**: for each cohort, the mean of its post-treatment cells; overall
  :math:`\\sum_g p_g \\theta(g) / \\sum_g p_g`;
* **calendar**: for each period, the post-treatment cells of that period, weight
  :math:`\\propto p_g`; overall the plain mean over periods.

The influence function of an aggregate is the same weighted sum of the cell influence
functions plus, where the weights are estimated shares, the estimation effect of the
weights (R did's ``wif``). For weights :math:`p_k / S`, :math:`S = \\sum_{k \\in K} p_k`,
that term reduces per unit to

.. math::

    \\psi^{w}_i = \\frac{w_i}{S}\\Big(a_{G_i} - c_{G_i}\\frac{A}{S}\\Big),\\qquad
    a_g = \\sum_{k \\in K: g_k = g} ATT_k,\\; c_g = \\#\\{k \\in K: g_k = g\\},\\;
    A = \\sum_{k\\in K} p_k ATT_k,

which is what R's ``wif`` matrix times the ATT vector equals, computed in O(n) per key.
Keys, filters (``balance_e``, ``min_e``, ``max_e``) and overall effects follow R's
``did::compute.aggte`` exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from finsam_eval.core import group_sums, unique_codes

__all__ = ["Aggregate", "CellInfluence", "GroupTimeEffects", "aggregate_effects"]


@dataclass
class CellInfluence:
    """Unit-level influence functions of group-time cells, stored by blocks of units.

    Cell :math:`j`'s influence function is zero outside its treated and comparison units, and
    in a balanced panel whether a unit takes part in a cell depends only on the unit's cohort.
    So the n × k matrix is kept as blocks ``(rows, cells, values)``, one per unit cohort: its
    units ``rows``, the cells they take part in, and the dense ``len(rows) × len(cells)``
    values. The blocks partition the units, so products with weight matrices, sums of squares
    and cross-products are sums over blocks, and the dense matrix is never built unless asked
    for (with never-treated comparisons it is mostly zeros: each cell involves one cohort and
    the never-treated units).

    Attributes
    ----------
    n
        Number of units (rows of the full matrix).
    n_cells
        Number of cells (columns).
    blocks
        ``(rows, cells, values)`` triples whose ``rows`` are disjoint.
    """

    n: int
    n_cells: int
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]

    @classmethod
    def from_cell_blocks(
        cls,
        n: int,
        n_cells: int,
        cell_blocks: list[tuple[np.ndarray | None, np.ndarray, np.ndarray]],
        unit_group: np.ndarray,
    ) -> CellInfluence:
        """Regroup blocks of cells (over possibly overlapping units) by ``unit_group``.

        ``cell_blocks`` holds ``(rows, cells, values)`` as estimated, each cell in one block
        (``rows`` None = all units); ``unit_group`` (e.g. the unit's cohort) must be constant
        on the units that take part in a cell together, which holds for cohort-defined
        treated and comparison groups. Columns of a group that are zero there are left out.
        """
        groups, group_of_unit = unique_codes(unit_group)
        parts: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in groups]
        for rows, cells, values in cell_blocks:
            if not len(cells):
                continue
            member = group_of_unit if rows is None else group_of_unit[rows]
            for code in np.unique(member):
                sub = values[member == code]
                if rows is None:
                    used = np.any(sub != 0.0, axis=0)
                    if not used.any():
                        continue
                    sub, kept = sub[:, used], cells[used]
                else:
                    kept = cells
                parts[code][0].append(kept)
                parts[code][1].append(sub)
        blocks = []
        for code, (cells_list, values_list) in enumerate(parts):
            if cells_list:
                rows = np.flatnonzero(group_of_unit == code)
                blocks.append((rows, np.concatenate(cells_list), np.hstack(values_list)))
        return cls(n, n_cells, blocks)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n, self.n_cells

    def __matmul__(self, weights: np.ndarray) -> np.ndarray:
        """Dense ``influence @ weights`` for a (n_cells × m) weight matrix."""
        weights = np.asarray(weights, dtype=float)
        out = np.zeros((self.n, weights.shape[1]))
        for rows, cells, values in self.blocks:
            out[rows] = values @ weights[cells]
        return out

    def columns(self, cells: np.ndarray) -> np.ndarray:
        """The dense n × len(cells) matrix of the given cells (indices), in that order."""
        cells = np.asarray(cells, dtype=np.int64)
        position = np.full(self.n_cells, -1)
        position[cells] = np.arange(len(cells))
        out = np.zeros((self.n, len(cells)), order="F")
        for rows, block_cells, values in self.blocks:
            pos = position[block_cells]
            wanted = pos >= 0
            if wanted.any():
                out[np.ix_(rows, pos[wanted])] = values[:, wanted]
        return out

    def dense(self) -> np.ndarray:
        """The full n × n_cells matrix."""
        return self.columns(np.arange(self.n_cells))

    def select(self, keep: np.ndarray) -> CellInfluence:
        """The cells where the boolean ``keep`` is True, renumbered 0..sum(keep)-1."""
        keep = np.asarray(keep, dtype=bool)
        renumber = np.cumsum(keep) - 1
        blocks = []
        for rows, cells, values in self.blocks:
            kept = keep[cells]
            if kept.any():
                blocks.append((rows, renumber[cells[kept]], values[:, kept]))
        return CellInfluence(self.n, int(keep.sum()), blocks)

    def cluster_sums(self, cells: np.ndarray, cluster: np.ndarray) -> np.ndarray:
        """:math:`S_{cj} = \\sum_{i \\in c}\\psi_{ij}` for the given cells, shape (G, len(cells))."""
        uniques, codes = np.unique(cluster, return_inverse=True)
        out = np.zeros((len(uniques), len(cells)))
        for rows, pos, part in self._restricted(cells):
            out[:, pos] += group_sums(part, codes[rows], len(uniques))
        return out

    def square_sums(self, cluster: np.ndarray | None = None) -> np.ndarray:
        """:math:`\\sum_c (\\sum_{i \\in c}\\psi_{ij})^2` for every cell (units without clusters)."""
        if cluster is not None:
            sums = self.cluster_sums(np.arange(self.n_cells), cluster)
            return np.einsum("ij,ij->j", sums, sums)
        out = np.zeros(self.n_cells)
        for _, cells, values in self.blocks:
            np.add.at(out, cells, np.einsum("ij,ij->j", values, values))
        return out

    def crossprod(self, cells: np.ndarray) -> np.ndarray:
        """:math:`\\sum_i \\psi_{iQ}\\psi_{iQ}'` over the given cells :math:`Q` (unit level)."""
        cells = np.asarray(cells, dtype=np.int64)
        out = np.zeros((len(cells), len(cells)))
        for _, pos, part in self._restricted(cells):
            out[np.ix_(pos, pos)] += part.T @ part
        return out

    def _restricted(self, cells: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Each block holding some of ``cells``: its unit rows, the positions of its columns in
        ``cells`` and those columns' values."""
        position = np.full(self.n_cells, -1)
        position[cells] = np.arange(len(cells))
        for rows, block_cells, values in self.blocks:
            pos = position[block_cells]
            wanted = pos >= 0
            if wanted.any():
                yield rows, pos[wanted], values[:, wanted]


@dataclass
class GroupTimeEffects:
    """Estimated group-time effects with what their aggregations need.

    Attributes
    ----------
    group, time
        Cohort and period of each cell, shape (k,).
    att
        Estimates, shape (k,); cells that could not be estimated are excluded beforehand.
    influence
        Unit-level influence functions, shape (n, k), R did's scale
        (covariance ``influence.T @ influence / n**2``): a dense array or a
        :class:`CellInfluence`.
    unit_cohort
        Cohort of each unit (0 = never treated), shape (n,).
    unit_weight
        Sampling weight of each unit, shape (n,) (any positive scale: aggregation weights are
        ratios of shares).
    """

    group: np.ndarray
    time: np.ndarray
    att: np.ndarray
    influence: np.ndarray | CellInfluence
    unit_cohort: np.ndarray
    unit_weight: np.ndarray

    def cohort_shares(self, cohorts: np.ndarray) -> np.ndarray:
        """:math:`p_g = n^{-1}\\sum_i w_i 1\\{G_i = g\\}` for each cohort."""
        n = len(self.unit_weight)
        return np.array([self.unit_weight[self.unit_cohort == g].sum() / n for g in cohorts])


@dataclass
class Aggregate:
    """Point estimates and influence functions of one aggregation.

    ``keys`` label the rows of ``estimate`` (event times, cohorts or periods; empty for
    "simple"); ``influence`` has one column per key; ``overall`` and ``overall_influence`` are
    the aggregation's overall effect.
    """

    kind: str
    keys: np.ndarray
    estimate: np.ndarray
    influence: np.ndarray
    overall: float
    overall_influence: np.ndarray


def _weighted(
    effects: GroupTimeEffects, sets: list[np.ndarray], pg_cell: np.ndarray, with_wif: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Estimates and influence functions of share-weighted averages over cell sets."""
    k = len(effects.att)
    member = np.zeros((k, len(sets)))
    for j, cells in enumerate(sets):
        member[cells, j] = 1.0
    share = member * pg_cell[:, None]
    total = share.sum(axis=0)
    if with_wif:
        # the small per-cohort sums first, so that the (cells × keys) temporaries are freed
        # before the (units × keys) influence functions are built (peak memory, issue 16)
        cohorts, cohort_of_unit = unique_codes(effects.unit_cohort)
        # per (unit cohort, key): a = sum of ATT over the key's cells of that cohort, c = count
        in_cohort = (effects.group[:, None] == cohorts[None, :]).astype(float)  # (k, cohorts)
        a = in_cohort.T @ (member * effects.att[:, None])
        c = in_cohort.T @ member
        weighted_att = effects.att @ share
    del member
    weights = share / total
    del share
    estimate = effects.att @ weights
    influence = effects.influence @ weights
    del weights
    if with_wif:
        m = (a - c * (weighted_att / total)) / total
        wif = m[cohort_of_unit]
        wif *= effects.unit_weight[:, None]
        # in place: ``influence`` is the new array of the product above
        influence += wif
    return estimate, influence


def aggregate_effects(
    effects: GroupTimeEffects,
    kind: str,
    balance_e: int | None = None,
    min_e: float = -np.inf,
    max_e: float = np.inf,
) -> Aggregate:
    """Aggregate group-time effects as R's ``did::aggte(type=kind)``.

    Parameters
    ----------
    effects
        Group-time estimates and influence functions.
    kind
        "simple", "dynamic", "group" or "calendar".
    balance_e
        Dynamic only: keep cohorts observed for at least ``balance_e`` periods after treatment
        and event times in ``[balance_e - (T_max - T_min), balance_e]`` (R semantics).
    min_e, max_e
        Dynamic: event-time range. ``max_e`` also caps the post-treatment cells entering
        "simple" and "group" (R: ``t <= g + max_e``).
    """
    group = effects.group.astype(float)
    time = effects.time.astype(float)
    glist = np.unique(group)
    pgg = effects.cohort_shares(glist)
    pg_cell = pgg[np.searchsorted(glist, group)]
    post = (group <= time) & (time <= group + max_e)

    if kind == "simple":
        cells = np.flatnonzero(post)
        est, inf = _weighted(effects, [cells], pg_cell, with_wif=True)
        empty = np.zeros((inf.shape[0], 0))
        return Aggregate(kind, np.array([]), np.array([]), empty, float(est[0]), inf[:, 0])

    if kind == "group":
        sets = [np.flatnonzero((group == g) & post) for g in glist]
        present = np.array([len(s) > 0 for s in sets])
        # within a cohort the shares are equal, so these are plain means (no weight estimation)
        est, inf = _weighted(effects, [s for s in sets if len(s)], pg_cell, with_wif=False)
        keys = glist[present]
        # the overall effect weights cohorts by their shares: a share-weighted average of the
        # cohort effects, whose weights are estimated, so it gets the weight term
        cohort_effects = GroupTimeEffects(
            group=keys,
            time=keys,
            att=est,
            influence=inf,
            unit_cohort=effects.unit_cohort,
            unit_weight=effects.unit_weight,
        )
        all_keys = np.arange(len(keys))
        overall, overall_inf = _weighted(cohort_effects, [all_keys], pgg[present], with_wif=True)
        return Aggregate(kind, keys, est, inf, float(overall[0]), overall_inf[:, 0])

    if kind == "dynamic":
        event = time - group
        eseq = np.unique(event)
        include = np.ones(len(group), dtype=bool)
        if balance_e is not None:
            t_max, t_min = time.max(), time.min()
            eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - t_max + t_min)]
            include = (t_max - group) >= balance_e
        eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
        sets = [np.flatnonzero((event == e) & include) for e in eseq]
        keep = np.array([len(s) > 0 for s in sets], dtype=bool)
        eseq = eseq[keep]
        sets = [s for s in sets if len(s)]
        est, inf = _weighted(effects, sets, pg_cell, with_wif=True)
        positive = eseq >= 0
        if positive.any():
            overall = float(np.mean(est[positive]))
            overall_inf = inf[:, positive].mean(axis=1)
        else:
            overall, overall_inf = np.nan, np.full(inf.shape[0], np.nan)
        return Aggregate(kind, eseq.astype(int), est, inf, overall, overall_inf)

    if kind == "calendar":
        periods = np.unique(time)
        periods = periods[periods >= group.min()]
        sets = [np.flatnonzero((time == t) & (group <= time)) for t in periods]
        keep = np.array([len(s) > 0 for s in sets], dtype=bool)
        periods = periods[keep]
        sets = [s for s in sets if len(s)]
        est, inf = _weighted(effects, sets, pg_cell, with_wif=True)
        return Aggregate(kind, periods.astype(int), est, inf, float(est.mean()), inf.mean(axis=1))

    raise ValueError(f"kind must be simple, dynamic, group or calendar, got {kind!r}")
