"""Multiplier bootstrap on influence functions, with sup-t simultaneous bands.

For estimators :math:`\\hat\\theta_j` with unit-level influence functions :math:`\\psi_{ij}`
(R did's scale: :math:`\\hat\\theta - \\theta \\approx n^{-1}\\sum_i \\psi_{i}`), cluster sums
:math:`S_{cj} = \\sum_{i \\in c}\\psi_{ij}` and i.i.d. mean-zero, unit-variance multipliers
:math:`V_{bc}`, each draw is

.. math::

    \\hat\\theta^{*}_{bj} - \\hat\\theta_j = \\frac{1}{n}\\sum_{c=1}^{G} V_{bc} S_{cj}

(Callaway & Sant'Anna 2021, Algorithm 1 and Remark 10: clustering = drawing one multiplier per
cluster). Standard errors are the robust, IQR-based scale of the draws,
:math:`(q_{0.75} - q_{0.25}) / (z_{0.75} - z_{0.25})`, as R's ``did::mboot``; the sup-t
critical value is the :math:`1-\\alpha` quantile of :math:`\\max_j |\\theta^*_{bj} -
\\hat\\theta_j| / \\hat\\sigma_j` (Montiel Olea & Plagborg-Møller 2019). Quantiles use the
inverse empirical CDF (R's ``type = 1``).

The whole bootstrap is one matrix product of the weight draws with the cluster-summed
influence functions, generated in blocks of draws so memory stays at ``block × G``.

References
----------
Callaway, B., & Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
Journal of Econometrics 225(2), 200–230.
Mammen, E. (1993). Bootstrap and wild bootstrap for high dimensional linear models. Annals of
Statistics 21(1), 255–285.
Webb, M. D. (2023). Reworking wild bootstrap-based inference for clustered errors. Canadian
Journal of Economics 56(3), 839–858.
Montiel Olea, J. L., & Plagborg-Møller, M. (2019). Simultaneous confidence bands: theory,
implementation, and an application to SVARs. Journal of Applied Econometrics 34(1), 1–17.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from finsam_eval.core.cluster import group_sums
from finsam_eval.core.distributions import norm_ppf
from finsam_eval.core.vocabulary import renamed_options

__all__ = [
    "MultiplierBootstrap",
    "analytic_se",
    "cluster_sums",
    "draw_multipliers",
    "multiplier_bootstrap",
    "multiplier_bootstrap_many",
    "rademacher_signs",
    "se_from_square_sums",
]

WEIGHT_KINDS = ("rademacher", "mammen", "webb")
_DEGENERATE = np.sqrt(np.finfo(float).eps) * 10
_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


# computed at first use, so `import finsam_eval` does not load scipy.special
@functools.cache
def _iqr_normal() -> float:
    return float(norm_ppf(0.75) - norm_ppf(0.25))


def draw_multipliers(rng: np.random.Generator, size: tuple[int, int], kind: str) -> np.ndarray:
    """Mean-zero, unit-variance multiplier weights.

    rademacher: ±1 with probability 1/2; mammen: :math:`(1-\\sqrt5)/2` with probability
    :math:`(\\sqrt5+1)/(2\\sqrt5)`, else :math:`(1+\\sqrt5)/2` (third moment one); webb: six
    points :math:`\\pm\\sqrt{3/2}, \\pm 1, \\pm\\sqrt{1/2}`, equally likely (for few clusters).
    """
    if kind == "rademacher":
        return rng.integers(0, 2, size=size, dtype=np.int8).astype(float) * 2.0 - 1.0
    if kind == "mammen":
        root5 = np.sqrt(5.0)
        low = rng.random(size) < (root5 + 1) / (2 * root5)
        return np.where(low, (1 - root5) / 2, (1 + root5) / 2)
    if kind == "webb":
        return _WEBB[rng.integers(0, 6, size=size)]
    raise ValueError(f"bootstrap weights must be one of {WEIGHT_KINDS}, got {kind!r}")


def rademacher_signs(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Rademacher multipliers drawn as ``rng.choice([-1.0, 1.0], size)``.

    The same distribution as :func:`draw_multipliers`' "rademacher" from another stream of
    ``rng``: the wild cluster bootstrap (:func:`cluster_weights`) and the pipeline's joint
    Romano–Wolf draws use it, so that their published results reproduce for the same seed.
    """
    return rng.choice(np.array([-1.0, 1.0]), size=size)


def cluster_weights(
    kind: str, n_clusters: int, reps: int, seed: int | None
) -> tuple[np.ndarray, bool]:
    r"""Wild-bootstrap weights per cluster, shape (G, reps), and whether they are enumerated.

    With Rademacher weights and :math:`2^G \le` ``reps`` all :math:`2^G` sign vectors are
    returned instead (the exact bootstrap distribution; Roodman et al. 2019, section 3.3).
    Otherwise draws from a numpy Generator seeded with ``seed``, by ``Generator.choice`` over
    the distribution's points (the stream of the wild cluster bootstraps since their first
    release; :func:`draw_multipliers` keeps the multiplier bootstrap's stream, so both
    reproduce their published numbers). Same distributions as :func:`draw_multipliers`.
    """
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"multiplier must be one of {WEIGHT_KINDS}, got {kind!r}")
    if kind == "rademacher" and 2**n_clusters <= reps:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n_clusters)))
        return signs.T, True
    rng = np.random.default_rng(seed)
    size = (n_clusters, reps)
    if kind == "rademacher":
        return rademacher_signs(rng, size), False
    if kind == "webb":
        return rng.choice(_WEBB, size=size), False
    root5 = np.sqrt(5.0)
    points = np.array([(1 - root5) / 2, (1 + root5) / 2])
    odds = [(root5 + 1) / (2 * root5), (root5 - 1) / (2 * root5)]
    return rng.choice(points, size=size, p=odds), False


def cluster_sums(influence: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    """Influence functions summed within clusters (rows = clusters); unchanged without clusters."""
    if cluster is None:
        return influence
    codes, n_clusters = _codes(cluster)
    return group_sums(influence, codes, n_clusters)


def _codes(cluster: np.ndarray) -> tuple[np.ndarray, int]:
    uniques, codes = np.unique(cluster, return_inverse=True)
    return codes, len(uniques)


def analytic_se(influence: np.ndarray, cluster: np.ndarray | None = None) -> np.ndarray:
    """Influence-function standard errors :math:`\\sqrt{\\sum_c S_{cj}^2}/n`.

    Without clusters this is R did's :math:`\\sqrt{\\mathrm{mean}(\\psi^2)/n}`; with clusters it
    is the cluster-robust analogue (the variance the clustered multiplier bootstrap targets).
    Standard errors at or below :math:`10\\sqrt{\\epsilon}` are returned as NaN (degenerate, as R).
    """
    n = influence.shape[0]
    sums = cluster_sums(influence, cluster)
    return se_from_square_sums(np.einsum("ij,ij->j", sums, sums), n)


def se_from_square_sums(square_sums: np.ndarray, n: int) -> np.ndarray:
    """:math:`\\sqrt{\\sum_c S_{cj}^2}/n` from the sums of squared cluster sums (or unit values).

    For influence functions stored in pieces (group-time cells over their own units), whose
    squared sums are accumulated piece by piece. Standard errors at or below
    :math:`10\\sqrt{\\epsilon}` are returned as NaN, as :func:`analytic_se`.
    """
    se = np.sqrt(np.asarray(square_sums, dtype=float)) / n
    return np.where(se <= _DEGENERATE, np.nan, se)


@dataclass
class MultiplierBootstrap:
    """Draws and summaries of a multiplier bootstrap.

    Attributes
    ----------
    draws
        :math:`\\hat\\theta^*_b - \\hat\\theta`, shape (n_boot, k).
    se
        IQR-based bootstrap standard errors (NaN for degenerate columns).
    critical_value
        Sup-t critical value over the non-degenerate columns.
    n_clusters
        Number of independent multipliers per draw.
    """

    draws: np.ndarray
    se: np.ndarray
    critical_value: float
    n_clusters: int


@renamed_options(n_boot="reps", weights="multiplier")
def multiplier_bootstrap(
    influence: np.ndarray,
    reps: int,
    rng: np.random.Generator,
    cluster: np.ndarray | None = None,
    multiplier: str = "rademacher",
    alpha: float = 0.05,
    block: int = 128,
) -> MultiplierBootstrap:
    """Multiplier bootstrap of estimators with influence functions ``influence`` (n × k).

    Parameters
    ----------
    influence
        Unit-level influence functions, R did's scale.
    reps
        Number of draws.
    rng
        numpy Generator (seeded by the caller for reproducibility).
    cluster
        Cluster label of each unit (one multiplier per cluster); None = one per unit.
    multiplier
        Multiplier distribution: "rademacher", "mammen" or "webb".
    alpha
        Level of the simultaneous band.
    block
        Draws generated per matrix product (memory ``block × G``).
    """
    return multiplier_bootstrap_many([influence], reps, rng, cluster, multiplier, alpha, block)[0]


@renamed_options(n_boot="reps", weights="multiplier")
def multiplier_bootstrap_many(
    influences: list[np.ndarray],
    reps: int,
    rng: np.random.Generator,
    cluster: np.ndarray | None = None,
    multiplier: str = "rademacher",
    alpha: float = 0.05,
    block: int = 128,
) -> list[MultiplierBootstrap]:
    """:func:`multiplier_bootstrap` of several influence matrices with the same multipliers.

    Each result equals, bit for bit, ``multiplier_bootstrap(influence, reps, rng_copy, ...)``
    with a generator in the state of ``rng``: each block of multipliers is drawn once and
    multiplied with each matrix separately. For estimators that summarise several aggregations
    with one seed (the draws of the multipliers dominate the time with many clusters).
    """
    n = influences[0].shape[0]
    if any(influence.shape[0] != n for influence in influences):
        raise ValueError("all influence matrices must have the same rows (units)")
    all_sums = [cluster_sums(influence, cluster) / n for influence in influences]
    n_clusters = all_sums[0].shape[0]
    all_draws = [np.empty((reps, sums.shape[1])) for sums in all_sums]
    for start in range(0, reps, block):
        stop = min(start + block, reps)
        multipliers = draw_multipliers(rng, (stop - start, n_clusters), multiplier)
        for draws, sums in zip(all_draws, all_sums, strict=True):
            draws[start:stop] = multipliers @ sums
    return [_summarise_draws(draws, n, n_clusters, alpha) for draws in all_draws]


def _summarise_draws(
    draws: np.ndarray, n: int, n_clusters: int, alpha: float
) -> MultiplierBootstrap:
    """IQR standard errors and the sup-t critical value of the draws (module docstring)."""
    k = draws.shape[1]
    # R treats columns whose draws are (numerically) all zero as degenerate
    finite = np.all(np.isfinite(draws), axis=0)
    # (R's scale of the draws is sqrt(G) times the cluster mean: draws * n / sqrt(G))
    energy = np.sum(np.where(np.isfinite(draws), draws, 0.0) ** 2, axis=0) * n**2 / n_clusters
    good = finite & (energy > _DEGENERATE)
    se = np.full(k, np.nan)
    if good.any():
        q75, q25 = np.quantile(draws[:, good], [0.75, 0.25], axis=0, method="inverted_cdf")
        se[good] = (q75 - q25) / _iqr_normal()
    usable = good & (se > 0)
    if usable.any():
        t_max = np.max(np.abs(draws[:, usable] / se[usable]), axis=1)
        critical = float(np.quantile(t_max, 1 - alpha, method="inverted_cdf"))
    else:
        critical = np.nan
    return MultiplierBootstrap(draws=draws, se=se, critical_value=critical, n_clusters=n_clusters)
