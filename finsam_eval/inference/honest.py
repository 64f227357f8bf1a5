"""Honest DiD sensitivity analysis: confidence sets robust to violations of parallel trends.

Rambachan & Roth (2023, "A more credible approach to parallel trends", Review of Economic
Studies 90(5)) replace exact parallel trends by a restriction ``delta in Delta`` on the
post-period trend differences ``delta_post`` given the pre-period ones ``delta_pre = beta_pre``,
and report confidence sets for ``theta = l' tau_post`` that are valid uniformly over ``Delta``:

* relative magnitudes ``Delta^RM(Mbar)``: every post-period first difference of ``delta`` is at
  most ``Mbar`` times the largest pre-period first difference;
* smoothness ``Delta^SD(M)``: every second difference of ``delta`` is at most ``M`` in absolute
  value (``M = 0`` allows exactly linear trends).

Inference uses the conditional and conditional-least-favourable ("C-LF", hybrid) moment-inequality
tests of Andrews, Roth & Pakes (2023, "Inference for linear conditional moment inequalities",
Review of Economic Studies 90(6)), inverted over a grid of ``theta``, and for ``Delta^SD`` also the
optimal fixed-length confidence interval (FLCI; Armstrong & Kolesár 2018, 2020).

Numerical design (why it is fast). For a test of ``E[Y_T - X_T tau] <= 0`` with nuisance
``tau`` the statistic is the LP ``eta = min {eta : Y_T - X_T tau <= eta * sd}``. By LP duality
``eta = max_{lambda in P} lambda' Y_T`` with the fixed polytope
``P = {lambda >= 0 : sd' lambda = 1, X_T' lambda = 0}``, so ``eta`` is the maximum over the
(few) vertices of ``P``. R's HonestDiD solves that LP (and one per least-favourable draw) at
every grid point; here ``P``'s vertices are found once: they are the extreme rays of the cone
``{lambda >= 0 : X_T' lambda = 0}`` scaled by ``sd``, and because both restrictions bound
differences from above and below, the rows of ``X_T`` come in ``+-`` pairs and the rays follow
in closed form from the elementary vectors of a one- or two-dimensional null space
(:func:`_paired_cone_rays`; O(moments) rays for 17 pre and 14 post periods, where basis
enumeration would face C(28, 14) = 4e7 candidates). R's route, one HiGHS LP per grid point for
the statistic and its dual vector, Charnes-Cooper LPs for the conditioning interval and one LP
per least-favourable draw, is :func:`_arp_accept_lp`: the tests check that it accepts exactly the
same grid points (also at full size), and designs whose rows do not pair up and are too large to
enumerate use it. With the vertices, the statistic,
the optimal dual vector, the conditioning interval ``[v_lo, v_up]`` of ARP's dual approach
(their Appendix D, here in closed form because the dual value is a maximum of affine functions of
the conditioning scalar) and the least-favourable critical value are matrix products over the
whole ``theta`` grid and over all simulation draws, without one LP per grid point.

Defaults follow the HonestDiD packages (R, and the Python port ``honestdid``): a grid of 1 000
points, ``kappa = alpha / 10`` for the hybrid first stage, 1 000 least-favourable draws from
``numpy.random.RandomState(seed)`` with ``seed = 0`` (the draw is the port's, so results are
reproducible against it), moments restricted to those involving post periods, and the grid
``+- 20 sd(theta)`` around 0 for ``Delta^RM``.
"""

from __future__ import annotations

import inspect
import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from finsam_eval.core.distributions import norm_ppf
from finsam_eval.core.vocabulary import renamed_options
from finsam_eval.estimators.spec import check_alpha, check_count, check_seed

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from finsam_eval.estimators.result import EstimationResult

__all__ = ["breakdown_value", "honest_did", "plot_sensitivity"]

RESTRICTIONS = ("relative_magnitude", "smoothness")
_METHOD_ALIASES = {
    "c-lf": "C-LF",
    "hybrid": "C-LF",
    "lf": "C-LF",
    "conditional": "Conditional",
    "arp": "Conditional",
    "flci": "FLCI",
}
_MAX_BASES = 200_000  # vertex enumeration cap: C(m, k+1) candidate bases


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _event_study_inputs(
    res_or_betahat: EstimationResult | np.ndarray | Sequence[float],
    sigma: np.ndarray | None,
    num_pre: int | None,
    num_post: int | None,
    reference: int,
) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray | None]:
    """Return betahat, sigma, num_pre, num_post and event times (None for raw input)."""
    if hasattr(res_or_betahat, "event_study") and hasattr(res_or_betahat, "vcov"):
        es = res_or_betahat.event_study
        vcov = res_or_betahat.vcov
        times = es["event_time"].to_numpy(dtype=int)
        ref = es.loc[times == reference]
        if not ref.empty:
            ref_se = ref["se"].to_numpy(dtype=float)
            if np.any(np.isfinite(ref_se) & (ref_se > 0)):
                warnings.warn(
                    f"event time {reference} has a non-zero standard error: the pre-period "
                    "coefficients are not relative to a common reference period (a varying base "
                    "period?). Rambachan & Roth's restrictions assume they are (universal base "
                    "period); the reference row is dropped.",
                    stacklevel=3,
                )
        keep = (times != reference) & np.isin(times, np.asarray(vcov.index, dtype=int))
        times = np.sort(times[keep])
        betahat = es.set_index("event_time").loc[times, "estimate"].to_numpy(dtype=float)
        sig = vcov.loc[times, times].to_numpy(dtype=float)
        n_pre = int(np.sum(times < 0))
        n_post = int(np.sum(times >= 0))
        if num_pre is not None and num_pre != n_pre or num_post is not None and num_post != n_post:
            raise ValueError(
                f"num_pre/num_post ({num_pre}, {num_post}) disagree with the event study "
                f"({n_pre} pre, {n_post} post periods besides the reference {reference})"
            )
        return betahat, sig, n_pre, n_post, times
    betahat = np.asarray(res_or_betahat, dtype=float).ravel()
    if sigma is None or num_pre is None:
        raise ValueError("with a raw betahat, give sigma and num_pre (and num_post)")
    sig = np.asarray(sigma, dtype=float)
    n_post = len(betahat) - num_pre if num_post is None else num_post
    if sig.shape != (len(betahat), len(betahat)) or num_pre + n_post != len(betahat):
        raise ValueError(
            f"betahat ({len(betahat)}), sigma {sig.shape} and num_pre + num_post "
            f"({num_pre} + {n_post}) are not conformable"
        )
    return betahat, sig, int(num_pre), int(n_post), None


# --------------------------------------------------------------------------------------------
# Restriction matrices: Delta = {delta : A delta <= d}, delta = (delta_pre, delta_post) without
# the reference period t = 0 (R&R index the last pre-treatment period as 0).
# --------------------------------------------------------------------------------------------


def _difference_matrix(n_pre: int, n_post: int, order: int) -> np.ndarray:
    """Rows: differences of ``order`` of the full vector (t = -n_pre..n_post, 0 included)."""
    n = n_pre + n_post + 1
    diff = np.diff(np.eye(n), n=order, axis=0)
    return diff


def _sd_constraints(n_pre: int, n_post: int, m: float) -> tuple[np.ndarray, np.ndarray]:
    """``|second differences of delta| <= M`` with ``delta_0 = 0`` (Delta^SD, R&R eq. 8)."""
    diff2 = np.delete(_difference_matrix(n_pre, n_post, 2), n_pre, axis=1)
    a = np.vstack([diff2, -diff2])
    return a, np.full(a.shape[0], float(m))


def _rm_constraints(
    n_pre: int, n_post: int, mbar: float, s: int, max_positive: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One piece of Delta^RM(Mbar): the largest pre-period first difference is at ``s``.

    ``Delta^RM(Mbar)`` is the union over ``s in {-(n_pre-1), ..., 0}`` and both signs of
    ``{|delta_{t+1} - delta_t| <= c_t (delta_{s} - delta_{s-1})}`` with ``c_t = 1`` for
    pre-period and ``c_t = Mbar`` for post-period differences (R&R section 2.4.1).
    """
    diff1 = _difference_matrix(n_pre, n_post, 1)  # rows t = -n_pre .. n_post-1
    top = diff1[n_pre + s - 1] * (1.0 if max_positive else -1.0)
    scale = np.r_[np.ones(n_pre), np.full(n_post, float(mbar))][:, None]
    a = np.vstack([diff1 - scale * top, -diff1 - scale * top])
    a = a[np.sum(a**2, axis=1) > 1e-10]
    a = np.delete(a, n_pre, axis=1)
    return a, np.zeros(a.shape[0])


def _post_rows(a: np.ndarray, n_pre: int) -> np.ndarray:
    """Rows that involve a post-period coefficient (pre-only rows test ``beta_pre`` alone)."""
    return np.flatnonzero(np.any(a[:, n_pre:] != 0, axis=1))


def _gamma_inverse(l_vec: np.ndarray) -> np.ndarray:
    """Inverse of an invertible matrix whose first row is ``l'`` (reparametrises tau_post).

    The other rows are unit vectors except the one at the first non-zero entry of ``l``; the
    test does not depend on that choice (it only re-labels the nuisance parameters).
    """
    n = len(l_vec)
    first = int(np.flatnonzero(l_vec)[0])
    rows = [l_vec] + [np.eye(n)[j] for j in range(n) if j != first]
    return np.linalg.inv(np.vstack(rows))


# --------------------------------------------------------------------------------------------
# The ARP conditional / hybrid test, vectorised over a grid of theta
# --------------------------------------------------------------------------------------------


def _dual_vertices_by_bases(sd: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Vertices of ``{lambda >= 0 : sd' lambda = 1, X' lambda = 0}`` by basis enumeration.

    A vertex is a basic feasible solution: ``k + 1`` rows ``B`` with ``W_B`` invertible,
    ``W = [sd, X]``, and ``lambda_B = W_B^{-T} e_1 >= 0``. Costs ``C(m, k + 1)`` solves, so it
    is only the fallback for designs without the paired structure of :func:`_paired_cone_rays`.
    """
    m, k = x.shape
    w = np.column_stack([sd, x])
    n_bases = math.comb(m, k + 1)
    if n_bases > _MAX_BASES:
        raise ValueError(
            f"the moment design ({m} moments, {k} nuisance parameters) has no +/- row pairs and "
            f"{n_bases} candidate bases (more than {_MAX_BASES}) for vertex enumeration"
        )
    bases = np.array(list(itertools.combinations(range(m), k + 1)))
    wb = w[bases]  # (n_bases, k+1, k+1)
    det = np.linalg.det(wb)
    scale = np.prod(np.linalg.norm(wb, axis=2), axis=1)
    ok = np.abs(det) > 1e-10 * scale
    bases, wb = bases[ok], wb[ok]
    e1 = np.zeros((len(bases), k + 1, 1))
    e1[:, 0, 0] = 1.0
    lam_b = np.linalg.solve(np.transpose(wb, (0, 2, 1)), e1)[..., 0]
    feasible = np.all(lam_b >= -1e-10, axis=1)
    lam = np.zeros((int(feasible.sum()), m))
    np.put_along_axis(lam, bases[feasible], np.clip(lam_b[feasible], 0.0, None), axis=1)
    # degenerate vertices are reached from several bases
    return np.unique(np.round(lam, 12), axis=0)


def _row_pairs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Split the rows of ``X`` into zero rows and pairs ``(i, j)`` with ``x_j = -x_i``.

    Both restrictions bound differences of ``delta`` from above and below, so the nuisance
    design of their post-period moments comes in such pairs. Returns ``(zero, plus, minus)``
    row indices, or None when the rows do not pair up.
    """
    scale = max(float(np.abs(x).max()), 1.0)
    tol = 1e-10 * scale
    zero = np.flatnonzero(np.abs(x).max(axis=1) <= tol)
    rest = [i for i in range(x.shape[0]) if i not in set(zero.tolist())]
    plus: list[int] = []
    minus: list[int] = []
    free = set(rest)
    for i in rest:
        if i not in free:
            continue
        free.discard(i)
        match = [j for j in free if np.abs(x[j] + x[i]).max() <= tol]
        if not match:
            return None
        free.discard(match[0])
        plus.append(i)
        minus.append(match[0])
    return zero, np.asarray(plus, dtype=int), np.asarray(minus, dtype=int)


def _paired_cone_rays(x: np.ndarray) -> np.ndarray | None:
    """Extreme rays of the cone ``C = {lambda >= 0 : X' lambda = 0}`` for paired rows of ``X``.

    With rows ``x_i`` and ``-x_i`` paired (:func:`_row_pairs`), ``X' lambda = X_h' w`` with
    ``w = lambda_plus - lambda_minus`` and ``X_h`` the ``plus`` rows, so ``C`` is
    ``{(lambda_plus, lambda_minus) >= 0 : w in W = null(X_h')}``. By conformal decomposition
    (Rockafellar 1969) its extreme rays are ``e_i + e_i'`` for each pair, ``e_i`` for each zero
    row, and ``(w^+, w^-)`` for each elementary vector ``w`` of ``W`` (minimal support), found
    by fixing ``dim W - 1`` zero coordinates. For the Rambachan–Roth restrictions ``dim W`` is 1
    or 2, so there are O(number of moments) rays where the basis count is C(28, 14) = 4e7 in the
    default event study. Returns None when the rows do not pair up.
    """
    pairs = _row_pairs(x)
    if pairs is None:
        return None
    zero, plus, minus = pairs
    m = x.shape[0]
    rays: list[np.ndarray] = []
    for i in zero:
        rays.append(np.eye(m)[i])
    for i, j in zip(plus, minus, strict=True):
        ray = np.zeros(m)
        ray[[i, j]] = 1.0
        rays.append(ray)
    if len(plus):
        x_half = x[plus]
        _, sing, vt = np.linalg.svd(x_half.T, full_matrices=True)
        rank = int(np.sum(sing > 1e-10 * max(sing.max(initial=0.0), 1.0)))
        basis = vt[rank:].T  # (n_pairs, r): W = null(X_h')
        r = basis.shape[1]
        if r > 0 and math.comb(len(plus), r - 1) > _MAX_BASES:
            return None
        elementary: list[np.ndarray] = []
        subsets = itertools.combinations(range(len(plus)), r - 1) if r > 0 else ()
        for zeros in subsets:
            sub = basis[list(zeros)]
            if r > 1:
                _, s_sub, v_sub = np.linalg.svd(sub, full_matrices=True)
                if int(np.sum(s_sub > 1e-10)) != r - 1:
                    continue
                w = basis @ v_sub[-1]
            else:
                w = basis[:, 0]
            w = np.where(np.abs(w) > 1e-12 * np.abs(w).max(), w, 0.0)
            elementary.append(w / np.abs(w).max())
        for w in elementary:
            for sign in (1.0, -1.0):
                ray = np.zeros(m)
                ray[plus] = np.clip(sign * w, 0.0, None)
                ray[minus] = np.clip(-sign * w, 0.0, None)
                rays.append(ray)
    return np.array(rays).reshape(-1, m)


def _dual_vertices(sd: np.ndarray, x: np.ndarray, cache: dict | None = None) -> np.ndarray | None:
    """Vertices of the dual polytope ``P = {lambda >= 0 : sd' lambda = 1, X' lambda = 0}``.

    ``P`` is the cone ``{lambda >= 0 : X' lambda = 0}`` cut by ``sd' lambda = 1``, so its
    vertices are the cone's extreme rays scaled to ``sd' r = 1``. The cone does not depend on
    ``sd``, ``theta``, ``M`` or the simulation draw, which is why the LP values of R's HonestDiD
    (one linear programme per grid point and per least-favourable draw) are here maxima over
    a short list of vertices; tests check them against ``scipy.optimize.linprog`` (HiGHS).
    None when the rows of ``X`` do not pair up and basis enumeration would be too large: the
    test then solves the linear programmes as R does (:func:`_arp_accept_lp`). The rays depend
    on ``X`` alone (for Delta^RM not even on ``Mbar``), so ``cache`` keeps them by ``X``.
    """
    m, k = x.shape
    if k == 0:
        return np.diag(1.0 / sd)
    key = ("rays", x.shape, x.tobytes())
    if cache is not None and key in cache:
        rays = cache[key]
    else:
        rays = _paired_cone_rays(x)
        if cache is not None:
            cache[key] = rays
    if rays is None:
        if math.comb(m, k + 1) > _MAX_BASES:
            return None
        return _dual_vertices_by_bases(sd, x)
    vertices = rays / (rays @ sd)[:, None]
    return np.unique(np.round(vertices, 12), axis=0)


def _lp_eta(y: np.ndarray, sd: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """The ARP statistic by linear programming: ``min eta s.t. y - X tau <= eta sd`` (HiGHS).

    Returns ``eta`` and the optimal dual vector ``lambda`` (the constraints' marginals). This is
    R HonestDiD's ``.test_delta_lp_fn``; :func:`_arp_accept` uses the equivalent maximum over
    :func:`_dual_vertices`, and this function is the check of that equivalence.
    """
    m, k = x.shape
    cost = np.r_[1.0, np.zeros(k)]
    a_ub = np.column_stack([-sd, -x])
    sol = optimize.linprog(
        cost, A_ub=a_ub, b_ub=-y, bounds=[(None, None)] * (k + 1), method="highs"
    )
    if not sol.success:
        raise RuntimeError(f"ARP linear programme failed: {sol.message}")
    return float(sol.fun), -np.asarray(sol.ineqlin.marginals)


def _normal_draws(
    sigma_y: np.ndarray, sims: int, seed: int, cache: dict | None = None
) -> np.ndarray:
    """``sims`` draws of ``N(0, Sigma_Y)``, equal to the bit to
    ``np.random.RandomState(seed).multivariate_normal(0, Sigma_Y, size=sims)``.

    The legacy ``multivariate_normal`` draws standard normals (``sims × n``, row-major) and
    multiplies them by ``sqrt(s)[:, None] * v`` from ``numpy.linalg.svd(Sigma_Y)``, warning when
    ``v' diag(s) v`` is not ``Sigma_Y`` within 1e-8 (not positive semi-definite). The standard
    normals depend only on ``seed``, ``sims`` and ``n``, so they are drawn once per ``cache`` (a
    test inversion asks for them once per piece of the restriction and per ``M``) and the
    transformation is repeated here step by step; a test checks the equality against numpy.
    """
    n = sigma_y.shape[0]
    key = ("standard_normal", seed, sims, n)
    keep = cache is not None and seed is not None  # seed None: fresh entropy every time
    z = cache.get(key) if keep else None
    if z is None:
        # legacy RandomState on purpose: the same draws as the honestdid port, hence comparable CIs
        z = np.random.RandomState(seed).standard_normal((sims, n))  # noqa: NPY002
        if keep:
            cache[key] = z
    cov = sigma_y.astype(np.double)
    _, s, v = np.linalg.svd(cov)
    if not np.allclose(np.dot(v.T * s, v), cov, rtol=1e-8, atol=1e-8):
        # numpy's own warning, from the same caller (_lf_critical_value) as before
        warnings.warn(
            "covariance is not symmetric positive-semidefinite.", RuntimeWarning, stacklevel=2
        )
    xi = np.dot(z, np.sqrt(s)[:, None] * v)
    xi += np.zeros(n)
    return xi


def _lf_critical_value(
    sigma_y: np.ndarray,
    kappa: float,
    sims: int,
    seed: int,
    statistic: Callable,
    cache: dict | None = None,
) -> float:
    """Least-favourable critical value: the ``1 - kappa`` quantile of ``eta`` at ``E[Y] = 0``.

    ``statistic`` maps the draws ``xi ~ N(0, Sigma_Y)`` (one per row, :func:`_normal_draws`) to
    ``eta(xi)`` (ARP section 6.2): the maximum of ``v' xi`` over the dual vertices, or one LP
    per draw.
    """
    xi = _normal_draws(sigma_y, sims, seed, cache)
    return float(np.quantile(statistic(xi), 1 - kappa))


def _truncnorm_quantile(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Quantile ``p`` of N(0, 1) truncated to ``[lo, hi]``; ``lo`` where the interval is empty."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    out = lo.copy()
    ok = lo < hi
    if np.any(ok):
        with np.errstate(all="ignore"):
            out[ok] = stats.truncnorm.ppf(p, lo[ok], hi[ok])
    return out


def _arp_accept(
    y0: np.ndarray,
    a1: np.ndarray,
    x: np.ndarray,
    sigma_y: np.ndarray,
    theta: np.ndarray,
    alpha: float,
    hybrid: str,
    kappa: float,
    sims: int,
    seed: int,
    floor: np.ndarray | None = None,
    lp: bool = False,
    cache: dict | None = None,
) -> np.ndarray:
    """Accept indicator of the ARP test of ``E[y0 - a1 theta - X tau] <= 0`` on a theta grid.

    Parameters
    ----------
    y0, a1
        Moments at ``theta = 0`` (``A betahat - d``) and their slope in ``theta``.
    x
        Nuisance design (m × k), possibly with ``k = 0``.
    sigma_y
        Covariance of ``y0``.
    hybrid
        "ARP" (conditional test) or "LF" (conditional-least-favourable hybrid, size
        ``(alpha - kappa) / (1 - kappa)`` in the second stage).
    floor
        Per-vertex lower bound of the critical value in units of ``eta`` (0 by default). The
        no-nuisance test of HonestDiD floors the critical value of ``A beta`` rather than of the
        moment ``A beta - d``, i.e. at ``-d_i / sd_i``; passing that reproduces it.
    lp
        Solve linear programmes at every grid point, as R's HonestDiD, instead of maximising
        over the dual vertices (also the route when the vertices cannot be listed).
    cache
        Keeps what repeats between calls of one test inversion (the cone's rays, the standard
        normal draws); None computes everything afresh. The result is the same either way.
    """
    sd = np.sqrt(np.diag(sigma_y))
    vertices = None if lp else _dual_vertices(sd, x, cache)
    if vertices is None and floor is not None:
        raise ValueError("the critical-value floor needs the enumerated dual vertices")
    if hybrid == "LF":
        if vertices is None:
            lf_cv = _lf_critical_value(
                sigma_y,
                kappa,
                sims,
                seed,
                lambda xi: [_lp_eta(draw, sd, x)[0] for draw in xi],
                cache,
            )
        else:
            lf_cv = _lf_critical_value(
                sigma_y, kappa, sims, seed, lambda xi: (xi @ vertices.T).max(axis=1), cache
            )
        size = (alpha - kappa) / (1 - kappa)
    else:
        lf_cv, size = np.inf, alpha
    if vertices is None:
        eta, var_b, vlo, vup = _lp_conditioning(y0, a1, x, sigma_y, sd, theta)
        return _arp_decision(eta, var_b, vlo, vup, lf_cv, size, None)
    y = y0[:, None] - a1[:, None] * theta[None, :]  # (m, G)
    values = vertices @ y  # (n_v, G)
    best = np.argmax(values, axis=0)
    grid = np.arange(len(theta))
    eta = values[best, grid]

    # Conditioning event: the optimal vertex gamma stays optimal when only c = gamma'y moves
    # along y = s + b c, b = Sigma gamma / gamma' Sigma gamma; with a_j = v_j's and
    # b_j = v_j'b that is a_j + b_j c <= c for every vertex j.
    cross = vertices @ sigma_y @ vertices.T  # (n_v, n_v)
    var_b = cross[best, best]
    b = cross[:, best] / np.where(var_b > 0, var_b, 1.0)  # (n_v, G)
    a = values - b * eta[None, :]
    denom = 1.0 - b
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = a / denom
    vlo = np.where(denom > 1e-12, bound, -np.inf).max(axis=0)
    vup = np.where(denom < -1e-12, bound, np.inf).min(axis=0)
    low = None if floor is None else floor[best]
    return _arp_decision(eta, var_b, vlo, vup, lf_cv, size, low)


def _arp_decision(
    eta: np.ndarray,
    var_b: np.ndarray,
    vlo: np.ndarray,
    vup: np.ndarray,
    lf_cv: float,
    size: float,
    low_eta: np.ndarray | None,
) -> np.ndarray:
    """Accept indicator from the statistic ``eta``, the variance ``gamma' Sigma gamma`` of the
    optimal dual vector and the conditioning interval ``[vlo, vup]`` (ARP section 5 and
    Appendix D; the hybrid truncates ``vup`` at the least-favourable critical value)."""
    sigma_b = np.sqrt(np.where(var_b > 0, var_b, 1.0))
    stat = eta / sigma_b
    zlo = vlo / sigma_b
    zup = np.minimum(vup, lf_cv) / sigma_b
    low = np.zeros_like(stat) if low_eta is None else low_eta / sigma_b
    inside = (zlo <= stat) & (stat <= zup)
    degenerate = var_b < np.finfo(float).eps
    # The truncated-normal quantile decides only inside the truncation interval, above the
    # floor, where neither the first stage nor degeneracy does; it is computed there alone
    # (element by element, so with the same values): elsewhere +inf leaves the decision as is.
    decide = inside & (stat > low) & ~(eta > lf_cv) & ~degenerate
    crit = np.full_like(stat, np.inf)
    if decide.any():
        crit[decide] = _truncnorm_quantile(1 - size, zlo[decide], zup[decide])
    crit = np.maximum(low, crit)
    reject = stat > crit
    # outside its own truncation interval only through rounding: HonestDiD does not reject
    reject &= inside
    reject |= eta > lf_cv
    reject = np.where(degenerate, eta > 0, reject)
    return ~reject


def _charnes_cooper_bound(
    s: np.ndarray, b: np.ndarray, sd: np.ndarray, x: np.ndarray, upper: bool
) -> float:
    """``vup`` (``upper``) or ``vlo`` of the ARP conditioning interval by one LP (HiGHS).

    ``vup = min {s'l / (1 - b'l) : l in P, b'l > 1}`` and ``vlo = max {s'l / (1 - b'l) : l in P,
    b'l < 1}`` are linear-fractional programmes over the dual polytope ``P``; the Charnes-Cooper
    substitution ``mu = t l``, ``t = 1 / |b'l - 1|`` makes each one LP in ``(mu, t) >= 0``:
    ``min -s'mu`` s.t. ``sd'mu = t, X'mu = 0, b'mu - t = 1`` (``vup``), or ``max s'mu`` s.t.
    ``sd'mu = t, X'mu = 0, t - b'mu = 1`` (``vlo``). Infeasible means no such ``l``: +-inf.
    """
    m, k = x.shape
    sign = 1.0 if upper else -1.0
    a_eq = np.vstack(
        [
            np.r_[sd, -1.0],
            np.column_stack([x.T, np.zeros(k)]),
            np.r_[sign * b, -sign],
        ]
    )
    b_eq = np.r_[0.0, np.zeros(k), 1.0]
    cost = np.r_[-s, 0.0]  # vup = min -s'mu; vlo = max s'mu = -min -s'mu
    sol = optimize.linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=[(0, None)] * (m + 1), method="highs")
    if sol.status == 2:  # infeasible
        return np.inf if upper else -np.inf
    if not sol.success:
        raise RuntimeError(f"ARP conditioning LP failed: {sol.message}")
    return float(sol.fun) if upper else float(-sol.fun)


def _arp_accept_lp(*args: Any, **options: Any) -> np.ndarray:
    """:func:`_arp_accept` by linear programming at every grid point, as R's HonestDiD.

    Per ``theta``: the statistic and its dual vector from :func:`_lp_eta`, the conditioning
    interval from two :func:`_charnes_cooper_bound` LPs; the least-favourable critical value from
    one LP per draw. Used for designs whose dual vertices cannot be listed (never for the
    built-in restrictions, whose moments pair up) and by the tests as an independent check.
    """
    return _arp_accept(*args, **options, lp=True)


def _lp_conditioning(
    y0: np.ndarray,
    a1: np.ndarray,
    x: np.ndarray,
    sigma_y: np.ndarray,
    sd: np.ndarray,
    theta: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per ``theta``: the LP statistic ``eta``, ``gamma' Sigma gamma`` and the conditioning
    interval ``[vlo, vup]`` of :func:`_arp_decision`, by linear programming."""
    eta = np.empty(len(theta))
    var_b = np.empty(len(theta))
    vlo = np.empty(len(theta))
    vup = np.empty(len(theta))
    for j, value in enumerate(theta):
        y = y0 - a1 * value
        eta[j], gamma = _lp_eta(y, sd, x)
        var_b[j] = float(gamma @ sigma_y @ gamma)
        b = sigma_y @ gamma / (var_b[j] if var_b[j] > 0 else 1.0)
        s = y - b * eta[j]
        vlo[j] = _charnes_cooper_bound(s, b, sd, x, upper=False)
        vup[j] = _charnes_cooper_bound(s, b, sd, x, upper=True)
    return eta, var_b, vlo, vup


def _conditional_accept(
    betahat: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    n_post: int,
    a: np.ndarray,
    d: np.ndarray,
    rows: np.ndarray,
    l_vec: np.ndarray,
    theta: np.ndarray,
    **test: Any,
) -> np.ndarray:
    """Test ``theta`` in the identified set for ``Delta = {A delta <= d}`` (R&R section 3).

    ``A delta - d = A beta - d - A_post tau_post <= 0`` with ``tau_post = Gamma^{-1}(theta, t)``;
    ``t`` (the post-period effects other than ``l' tau``) is the nuisance parameter. ``test``
    holds the settings of :func:`_arp_accept` (``alpha``, ``hybrid``, ``kappa``, ``sims``,
    ``seed``).
    """
    a, d = a[rows], d[rows]
    post = a[:, n_pre:] @ _gamma_inverse(l_vec)
    y0 = a @ betahat - d
    sigma_y = a @ sigma @ a.T
    # Without nuisance parameters HonestDiD floors the critical value of the normalised
    # A beta (not of A beta - d) at 0: for vertex e_i / sd_i that is -d_i / sd_i in eta units.
    floor = -d / np.sqrt(np.diag(sigma_y)) if n_post == 1 else None
    return _arp_accept(y0, post[:, 0], post[:, 1:], sigma_y, theta, floor=floor, **test)


def _grid_interval(theta: np.ndarray, accept: np.ndarray, what: str) -> tuple[float, float]:
    """Smallest and largest accepted grid point (HonestDiD's reading of the grid)."""
    if not accept.any():
        return np.nan, np.nan
    if accept[0] or accept[-1]:
        warnings.warn(
            f"{what}: the confidence set is open at an end of the theta grid "
            f"[{theta[0]:.4g}, {theta[-1]:.4g}]; widen grid_lb/grid_ub",
            stacklevel=4,
        )
    idx = np.flatnonzero(accept)
    return float(theta[idx[0]]), float(theta[idx[-1]])


def _identified_bound_sd(n_pre: int, n_post: int, m: float, l_vec: np.ndarray) -> float:
    """``max l' delta_post`` over Delta^SD(M) with ``delta_pre = 0`` (half the ID set width)."""
    a, d = _sd_constraints(n_pre, n_post, m)
    cost = -np.r_[np.zeros(n_pre), l_vec]
    bounds = [(0.0, 0.0)] * n_pre + [(None, None)] * n_post
    sol = optimize.linprog(cost, A_ub=a, b_ub=d, bounds=bounds, method="highs")
    return float(-sol.fun) if sol.success else 0.0


# --------------------------------------------------------------------------------------------
# FLCI for Delta^SD(M)
# --------------------------------------------------------------------------------------------


def _flci(
    betahat: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    n_post: int,
    l_vec: np.ndarray,
    m: float,
    alpha: float,
) -> tuple[float, float]:
    """Optimal fixed-length CI for ``theta = l' tau_post`` under Delta^SD(M).

    Affine estimators ``v' betahat`` with ``v = (v_pre, l)``. Their worst-case bias over
    ``{|D delta| <= M}`` (``D`` second differences) is, by LP duality,
    ``M * min {||mu||_1 : D' mu = v}``, finite iff ``v`` is orthogonal to linear trends. The
    half-length is ``cv_alpha(bias / h) * h`` with ``h = sd(v' betahat)`` and ``cv_alpha(b)`` the
    ``1 - alpha`` quantile of ``|N(b, 1)|`` (Armstrong & Kolesár 2018; R&R section 4.1). We
    minimise it over ``h`` between the smallest achievable ``h`` and the ``h`` of the
    bias-minimising estimator; for each ``h`` the bias is a convex programme (SLSQP).

    Returns
    -------
    estimate, half_length
    """
    t_pre = np.arange(-n_pre, 0, dtype=float)
    t_post = np.arange(1, n_post + 1, dtype=float)
    s_pp = sigma[:n_pre, :n_pre]
    s_pq = sigma[:n_pre, n_pre:] @ l_vec
    s_qq = float(l_vec @ sigma[n_pre:, n_pre:] @ l_vec)
    target = -float(t_post @ l_vec)  # t_pre' v_pre must equal this (no linear-trend bias)

    def variance(v_pre: np.ndarray) -> float:
        return float(v_pre @ s_pp @ v_pre + 2 * v_pre @ s_pq + s_qq)

    # smallest variance: equality-constrained QP, solved from its KKT system
    kkt = np.block([[2 * s_pp, t_pre[:, None]], [t_pre[None, :], np.zeros((1, 1))]])
    v_min = np.linalg.lstsq(kkt, np.r_[-2 * s_pq, target], rcond=None)[0][:n_pre]
    h_min = np.sqrt(max(variance(v_min), 0.0))
    z = norm_ppf(1 - alpha / 2)
    if m <= 0:
        est = float(v_min @ betahat[:n_pre] + l_vec @ betahat[n_pre:])
        return est, float(z * h_min)

    # bias-minimising estimator: all pre-period weight on t = -1
    v_bias = np.zeros(n_pre)
    v_bias[-1] = -target
    h_max = np.sqrt(max(variance(v_bias), 0.0))

    diff2 = np.delete(_difference_matrix(n_pre, n_post, 2), n_pre, axis=1)
    d_pre, d_post = diff2[:, :n_pre], diff2[:, n_pre:]
    n_mu = diff2.shape[0]
    mu0 = np.linalg.lstsq(diff2.T, np.r_[v_min, l_vec], rcond=None)[0]
    start = np.r_[np.clip(mu0, 0, None), np.clip(-mu0, 0, None)]

    def split(x: np.ndarray) -> np.ndarray:
        return x[:n_mu] - x[n_mu:]

    def min_bias(h: float) -> tuple[float, np.ndarray]:
        cons = [
            {
                "type": "eq",
                "fun": lambda x: d_post.T @ split(x) - l_vec,
                "jac": lambda x: np.hstack([d_post.T, -d_post.T]),
            },
            {
                "type": "ineq",
                "fun": lambda x: h**2 - variance(d_pre.T @ split(x)),
                "jac": lambda x: -np.r_[g := 2 * d_pre @ (s_pp @ (d_pre.T @ split(x)) + s_pq), -g],
            },
        ]
        sol = optimize.minimize(
            lambda x: x.sum(),
            start,
            jac=lambda x: np.ones_like(x),
            bounds=[(0, None)] * (2 * n_mu),
            constraints=cons,
            method="SLSQP",
            options={"ftol": 1e-12, "maxiter": 500},
        )
        return float(sol.x.sum()), d_pre.T @ split(sol.x)

    def half_length(h: float) -> float:
        bias = m * min_bias(h)[0]
        return float(stats.foldnorm.ppf(1 - alpha, bias / h) * h)

    if h_max - h_min <= 1e-12 * max(h_max, 1.0):
        h_star = h_max
    else:
        h_star = optimize.minimize_scalar(
            half_length,
            bounds=(h_min, h_max),
            method="bounded",
            options={"xatol": 1e-5 * (h_max - h_min)},
        ).x
    bias, v_pre = min_bias(h_star)
    v_pre = v_pre if np.isfinite(bias) else v_bias
    h = np.sqrt(max(variance(v_pre), 0.0))
    est = float(v_pre @ betahat[:n_pre] + l_vec @ betahat[n_pre:])
    return est, float(stats.foldnorm.ppf(1 - alpha, m * bias / h) * h)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _resolve_method(restriction: str, method: str | None) -> str:
    if restriction not in RESTRICTIONS:
        raise ValueError(f"restriction must be one of {RESTRICTIONS}, got {restriction!r}")
    if method is None:
        return "C-LF" if restriction == "relative_magnitude" else "FLCI"
    key = _METHOD_ALIASES.get(method.lower())
    if key is None:
        raise ValueError(f"method must be one of C-LF (hybrid), Conditional, FLCI; got {method!r}")
    if key == "FLCI" and restriction != "smoothness":
        raise ValueError("the FLCI is only available for restriction='smoothness'")
    return key


def _robust_ci(
    betahat: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    n_post: int,
    restriction: str,
    m: float,
    method: str,
    alpha: float,
    l_vec: np.ndarray,
    grid_points: int,
    grid_lb: float | None,
    grid_ub: float | None,
    kappa: float,
    sims: int,
    seed: int,
    cache: dict | None = None,
    zero_question: bool = False,
) -> tuple[float, float]:
    """The robust confidence interval for one value of M (or Mbar).

    ``cache`` is passed to :func:`_arp_accept` (one dict per data set and settings). With
    ``zero_question`` only ``lo <= 0 <= hi`` matters (:func:`breakdown_value`): the union over
    the pieces of Delta^RM stops as soon as the accepted grid points span 0, and the interval
    returned is then the union's so far, which contains 0 exactly when the full one does.
    """
    sd_theta = float(np.sqrt(l_vec @ sigma[n_pre:, n_pre:] @ l_vec))
    if method == "FLCI":
        est, half = _flci(betahat, sigma, n_pre, n_post, l_vec, m, alpha)
        return est - half, est + half
    hybrid = "LF" if method == "C-LF" else "ARP"
    opts = {
        "alpha": alpha,
        "hybrid": hybrid,
        "kappa": kappa,
        "sims": sims,
        "seed": seed,
        "cache": cache,
    }
    if restriction == "smoothness":
        width = _identified_bound_sd(n_pre, n_post, m, l_vec)
        lb = -width - 20 * sd_theta if grid_lb is None else grid_lb
        ub = width + 20 * sd_theta if grid_ub is None else grid_ub
        theta = np.linspace(lb, ub, grid_points)
        a, d = _sd_constraints(n_pre, n_post, m)
        rows = _post_rows(a, n_pre) if n_post > 1 else np.arange(a.shape[0])
        accept = _conditional_accept(
            betahat, sigma, n_pre, n_post, a, d, rows, l_vec, theta, **opts
        )
        return _grid_interval(theta, accept, f"Delta^SD(M={m:g})")
    if n_pre < 1:
        raise ValueError("relative magnitudes need at least one pre-period coefficient")
    lb = -20 * sd_theta if grid_lb is None else grid_lb
    ub = 20 * sd_theta if grid_ub is None else grid_ub
    theta = np.linspace(lb, ub, grid_points)
    accept = np.zeros(grid_points, dtype=bool)
    # The interval's ends are the first and last accepted grid points. On a non-decreasing grid
    # more accepted points only move them outwards, so once they span 0 the union's do too.
    may_stop = zero_question and bool(np.all(np.diff(theta) >= 0))
    # Delta^RM(Mbar) is a union: the confidence set is the union of the pieces' sets
    for s in range(-(n_pre - 1), 1):
        for max_positive in (True, False):
            a, d = _rm_constraints(n_pre, n_post, m, s, max_positive)
            rows = _post_rows(a, n_pre)
            accept |= _conditional_accept(
                betahat, sigma, n_pre, n_post, a, d, rows, l_vec, theta, **opts
            )
            if may_stop and _spans_zero(theta, accept):
                return _grid_interval(theta, accept, f"Delta^RM(Mbar={m:g})")
    return _grid_interval(theta, accept, f"Delta^RM(Mbar={m:g})")


def _spans_zero(theta: np.ndarray, accept: np.ndarray) -> bool:
    """Whether the interval :func:`_grid_interval` reads off ``accept`` contains 0."""
    idx = np.flatnonzero(accept)
    return bool(idx.size) and bool(theta[idx[0]] <= 0 <= theta[idx[-1]])


def _honest_inputs(
    res_or_betahat: EstimationResult | np.ndarray | Sequence[float],
    sigma: np.ndarray | None,
    num_pre: int | None,
    num_post: int | None,
    restriction: str,
    method: str | None,
    alpha: float,
    l_vec: Sequence[float] | np.ndarray | None,
    reference: int,
    reps: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, int, int, str, np.ndarray]:
    """Checked inputs of :func:`honest_did` and :func:`breakdown_value`: betahat, sigma, the
    numbers of pre and post coefficients, the method's key and ``l_vec``."""
    check_alpha(alpha)
    check_count("reps", reps)
    check_seed(seed)
    betahat, sig, n_pre, n_post, _ = _event_study_inputs(
        res_or_betahat, sigma, num_pre, num_post, reference
    )
    if n_post < 1:
        raise ValueError("no post-period coefficients")
    method_key = _resolve_method(restriction, method)
    if method_key == "C-LF" and reps < 1:
        raise ValueError(
            f"method C-LF (hybrid) takes its critical value from reps least-favourable draws: "
            f"reps must be at least 1, got {reps}"
        )
    lv = np.zeros(n_post) if l_vec is None else np.asarray(l_vec, dtype=float).ravel()
    if l_vec is None:
        lv[0] = 1.0
    if len(lv) != n_post:
        raise ValueError(f"l_vec has length {len(lv)}, expected {n_post} post periods")
    return betahat, sig, n_pre, n_post, method_key, lv


def _check_m(m: Sequence[float] | np.ndarray) -> np.ndarray:
    """The values of ``M`` (or ``Mbar``) as a float vector: finite and non-negative."""
    m_values = np.asarray(m, dtype=float).ravel()
    if not np.isfinite(m_values).all() or (m_values < 0).any():
        raise ValueError(
            f"m (Mbar or M) must be finite, non-negative numbers; got {m_values.tolist()}"
        )
    return m_values


@renamed_options(sims="reps")
def honest_did(
    res_or_betahat: EstimationResult | np.ndarray | Sequence[float],
    sigma: np.ndarray | None = None,
    num_pre: int | None = None,
    num_post: int | None = None,
    restriction: str = "relative_magnitude",
    m: Sequence[float] | np.ndarray | None = None,
    method: str | None = None,
    alpha: float = 0.05,
    l_vec: Sequence[float] | np.ndarray | None = None,
    *,
    reference: int = -1,
    grid_points: int = 1000,
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    kappa: float | None = None,
    reps: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Sensitivity of an event-study effect to violations of parallel trends.

    Robust confidence sets for ``theta = l' tau_post`` under Rambachan & Roth's (2023)
    restrictions on the differential trend ``delta``, for each value in ``m``:

    * ``restriction="relative_magnitude"``: ``Delta^RM(Mbar) = {delta : |delta_{t+1} - delta_t|
      <= Mbar * max_{s<0} |delta_{s+1} - delta_s| for all t >= 0}``; default method "C-LF".
    * ``restriction="smoothness"``: ``Delta^SD(M) = {delta : |(delta_{t+1} - delta_t) -
      (delta_t - delta_{t-1})| <= M for all t}``; default method "FLCI".

    Methods: "C-LF" (alias "hybrid": the conditional-least-favourable hybrid test of Andrews,
    Roth & Pakes 2023 with first-stage size ``kappa``), "Conditional" (the ARP conditional test),
    "FLCI" (optimal fixed-length interval; smoothness only). Test-based sets are read off a grid
    of ``grid_points`` values of ``theta`` (their ends are grid points).

    Parameters
    ----------
    res_or_betahat
        An ``EstimationResult`` (its ``event_study`` estimates and ``vcov``, without the reference
        period ``reference``; event times < 0 are pre-periods) or the coefficient vector
        ``(beta_pre, beta_post)`` ordered in time, without the reference period.
    sigma, num_pre, num_post
        Covariance of ``betahat`` and the numbers of pre and post coefficients (raw input only).
    m
        Values of ``Mbar`` (default 0, 0.5, ..., 2) or ``M`` (default six values from 0 to the
        standard error of ``l' beta_post``).
    l_vec
        Weights on the post-period effects; default the first post period (``e_1``). Use
        ``np.full(n_post, 1 / n_post)`` for the average effect.
    kappa
        First-stage size of the hybrid test, default ``alpha / 10``.
    reps, seed
        Least-favourable critical value: number of normal draws and their seed.

    Returns
    -------
    pandas.DataFrame
        Columns ``restriction``, ``m``, ``method``, ``ci_lower``, ``ci_upper``; the first row is
        the original (parallel-trends) interval ``l' beta_post +- z sd`` with ``m`` NaN.
        ``attrs["breakdown"]`` is the smallest ``m`` of the grid whose interval contains 0 (NaN if
        none does; :func:`breakdown_value` refines it by bisection).

    References
    ----------
    Rambachan, A. & Roth, J. (2023). A more credible approach to parallel trends. Review of
    Economic Studies 90(5), 2555-2591.
    Andrews, I., Roth, J. & Pakes, A. (2023). Inference for linear conditional moment
    inequalities. Review of Economic Studies 90(6), 2763-2791.
    Armstrong, T. & Kolesár, M. (2018). Optimal inference in a class of regression models.
    Econometrica 86(2), 655-683.
    """
    sims = reps  # the body's name for it
    betahat, sig, n_pre, n_post, method_key, lv = _honest_inputs(
        res_or_betahat, sigma, num_pre, num_post, restriction, method, alpha, l_vec,
        reference, reps, seed,
    )  # fmt: skip
    sd_theta = float(np.sqrt(lv @ sig[n_pre:, n_pre:] @ lv))
    if m is None:
        m = (
            np.arange(0, 2.01, 0.5)
            if restriction == "relative_magnitude"
            else np.linspace(0, sd_theta, 6)
        )
    m_values = _check_m(m)
    kappa = alpha / 10 if kappa is None else kappa
    cache: dict = {}  # rays and draws shared by the pieces and values of m

    est = float(lv @ betahat[n_pre:])
    z = norm_ppf(1 - alpha / 2)
    rows: list[dict[str, Any]] = [
        {
            "restriction": "none",
            "m": np.nan,
            "method": "Original",
            "ci_lower": est - z * sd_theta,
            "ci_upper": est + z * sd_theta,
        }
    ]
    for value in m_values:
        lo, hi = _robust_ci(
            betahat, sig, n_pre, n_post, restriction, float(value), method_key, alpha, lv,
            grid_points, grid_lb, grid_ub, kappa, sims, seed, cache,
        )  # fmt: skip
        rows.append(
            {
                "restriction": restriction,
                "m": float(value),
                "method": method_key,
                "ci_lower": lo,
                "ci_upper": hi,
            }
        )
    out = pd.DataFrame(rows)
    robust = out.iloc[1:]
    covers = (robust["ci_lower"] <= 0) & (robust["ci_upper"] >= 0)
    out.attrs["breakdown"] = float(robust.loc[covers, "m"].min()) if covers.any() else np.nan
    return out


@renamed_options(sims="reps")
def breakdown_value(
    res_or_betahat: EstimationResult | np.ndarray | Sequence[float],
    sigma: np.ndarray | None = None,
    num_pre: int | None = None,
    num_post: int | None = None,
    restriction: str = "relative_magnitude",
    method: str | None = None,
    alpha: float = 0.05,
    l_vec: Sequence[float] | np.ndarray | None = None,
    *,
    m_max: float | None = None,
    tol: float = 1e-3,
    **options: Any,
) -> float:
    """Smallest ``Mbar`` (or ``M``) at which the robust interval contains 0.

    The sets ``Delta(M)`` are nested in ``M``, so the robust intervals widen with ``M`` and the
    breakdown value is found by bisection on ``[0, m_max]`` to absolute tolerance ``tol``
    (R&R section 5). Returns 0 when the interval at ``M = 0`` already contains 0, and ``inf``
    when the interval at ``m_max`` (default 10 for ``Mbar``, 10 sd of the effect for ``M``)
    does not. ``options`` are :func:`honest_did`'s keyword options (``grid_points``, ``reps``,
    ``seed``, ...).

    Each step asks only whether the interval of :func:`honest_did` at one ``M`` contains 0, so
    the inputs are checked once, the cone's rays and the least-favourable draws are kept between
    steps, and under Delta^RM the union over its pieces stops as soon as the accepted grid
    points span 0 (the same answer as the whole interval's; see :func:`_robust_ci`).

    References
    ----------
    Rambachan, A. & Roth, J. (2023). A more credible approach to parallel trends. Review of
    Economic Studies 90(5), 2555-2591.
    """
    params = inspect.signature(honest_did).parameters.values()
    settings = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}
    unknown = sorted(set(options) - set(settings))
    if unknown:
        raise TypeError(
            f"breakdown_value: unknown option(s) {unknown}; honest_did's options are "
            f"{sorted(settings)}"
        )
    settings.update(options)
    # the bisection's steps have always silenced honest_did's UserWarnings (the reference row's)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        betahat, sig, n_pre, n_post, method_key, lv = _honest_inputs(
            res_or_betahat, sigma, num_pre, num_post, restriction, method, alpha, l_vec,
            settings["reference"], settings["reps"], settings["seed"],
        )  # fmt: skip
    kappa = alpha / 10 if settings["kappa"] is None else settings["kappa"]
    cache: dict = {}

    def covers(value: float) -> bool:
        # an interval open at the grid end covers 0 all the same: no warning while bisecting
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            (m_value,) = _check_m([value])
            lo, hi = _robust_ci(
                betahat, sig, n_pre, n_post, restriction, float(m_value), method_key, alpha, lv,
                settings["grid_points"], settings["grid_lb"], settings["grid_ub"], kappa,
                settings["reps"], settings["seed"], cache, zero_question=True,
            )  # fmt: skip
        return bool(lo <= 0 <= hi)

    if m_max is None:
        if restriction == "relative_magnitude":
            m_max = 10.0
        else:
            table = honest_did(
                res_or_betahat, sigma, num_pre, num_post, restriction, [0.0], method, alpha,
                l_vec, **options,
            )  # fmt: skip
            original = table.iloc[0]
            m_max = 10 * (original["ci_upper"] - original["ci_lower"]) / 3.92
    if covers(0.0):
        return 0.0
    if not covers(m_max):
        return np.inf
    lo, hi = 0.0, float(m_max)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if covers(mid) else (mid, hi)
    return hi


def plot_sensitivity(table: pd.DataFrame, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Sensitivity plot: robust intervals against ``M`` (or ``Mbar``), the original at the left.

    ``table`` is the output of :func:`honest_did`.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    robust = table[table["method"] != "Original"]
    original = table[table["method"] == "Original"]
    m_values = robust["m"].to_numpy(dtype=float)
    step = np.diff(m_values).min() if len(m_values) > 1 else 1.0
    x_orig = m_values.min() - step if len(m_values) else 0.0
    for x, frame, color, label in (
        (np.full(len(original), x_orig), original, "black", "Original"),
        (m_values, robust, kwargs.pop("color", "C0"), str(robust["method"].iloc[0])),
    ):
        if frame.empty:
            continue
        mid = 0.5 * (frame["ci_lower"] + frame["ci_upper"]).to_numpy(dtype=float)
        half = 0.5 * (frame["ci_upper"] - frame["ci_lower"]).to_numpy(dtype=float)
        ax.errorbar(x, mid, yerr=half, fmt="none", capsize=4, color=color, label=label, **kwargs)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    restriction = str(robust["restriction"].iloc[0]) if not robust.empty else ""
    ax.set_xlabel("Mbar" if restriction == "relative_magnitude" else "M")
    ax.set_ylabel("Robust confidence interval")
    ax.legend()
    return ax
