"""Two-period (2×2) difference-in-differences estimators with influence functions.

These are the building blocks of Callaway & Sant'Anna (2021): every group-time effect
ATT(g, t) is one 2×2 comparison of a treated cohort with a comparison group between a base
period and period t. The estimators follow Sant'Anna & Zhao (2020) and R's ``DRDID`` package,
which R's ``did`` calls:

===============  ==========================  ===============================
estimator        panel (balanced)            repeated cross-section rows
===============  ==========================  ===============================
unconditional    :func:`unconditional_panel`  (``reg`` with an intercept only)
outcome reg.     :func:`reg_did_panel`        :func:`reg_did_rc`
standardized IPW :func:`std_ipw_did_panel`    :func:`std_ipw_did_rc`
doubly robust    :func:`drdid_panel`          :func:`drdid_rc`
===============  ==========================  ===============================

The doubly robust estimators are the *locally efficient* ones with a logit propensity score
and linear outcome regressions (``DRDID::drdid_panel`` / ``drdid_rc``), which is what R's
``did::att_gt(est_method = "dr")`` uses; the "improved" variant with inverse probability tilting
(``drdid_imp_*``) is not what ``did`` runs and is not implemented here.

Conventions (as ``DRDID``): ``x`` is the full design matrix including the intercept column;
sampling weights are normalised to mean one inside each call; the returned influence function
``psi`` has one entry per observation, mean zero, and ``sqrt(mean(psi**2) / n)`` is the
standard error of the estimate. Propensity scores are capped at ``1 - 1e-6`` and comparison
units with a score of at least ``trim_level`` (0.995) get weight zero, as ``DRDID`` does.

References
----------
Sant'Anna, P. H. C., & Zhao, J. (2020). Doubly robust difference-in-differences estimators.
Journal of Econometrics 219(1), 101–122. (Callaway & Sant'Anna 2021, who use these 2×2
estimators for every group-time cell: see :mod:`finsam_eval.estimators.callaway_santanna`.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "PropensityFit",
    "drdid_panel",
    "drdid_rc",
    "fit_logit",
    "reg_did_panel",
    "reg_did_rc",
    "std_ipw_did_panel",
    "std_ipw_did_rc",
    "unconditional_panel",
    "weighted_ols",
]

PS_CAP = 1.0 - 1e-6
TRIM_LEVEL = 0.995


class SingularDesignError(np.linalg.LinAlgError):
    """A regression or propensity-score design that cannot be inverted (R: rcond < eps)."""


@dataclass(frozen=True)
class PropensityFit:
    """A fitted logit propensity score with what the influence functions need.

    Attributes
    ----------
    ps
        Fitted scores, capped at ``1 - 1e-6``.
    hessian
        ``n (X' W X)^{-1}`` with ``W = w p (1 - p)``, the inverse of the average information,
        so ``score @ hessian`` is the asymptotic linear representation of the coefficients.
    converged
        Whether Newton–Raphson met its tolerance.
    """

    ps: np.ndarray
    hessian: np.ndarray
    converged: bool


def _checked_inverse(matrix: np.ndarray, what: str) -> np.ndarray:
    # R's DRDID refuses designs with reciprocal condition number below machine epsilon
    if matrix.shape == (1, 1):
        if not matrix[0, 0] > 0:
            raise SingularDesignError(f"the {what} design matrix is singular")
        return 1.0 / matrix
    if 1.0 / np.linalg.cond(matrix, 1) < np.finfo(float).eps:
        raise SingularDesignError(f"the {what} design matrix is singular")
    return np.linalg.inv(matrix)


def fit_logit(
    d: np.ndarray, x: np.ndarray, w: np.ndarray, tol: float = 1e-12, max_iter: int = 50
) -> PropensityFit:
    """Weighted logistic regression of ``d`` on ``x`` by Newton–Raphson (= IRLS).

    Solves :math:`\\sum_i w_i (d_i - \\Lambda(x_i'\\gamma)) x_i = 0`, the same maximum-likelihood
    problem as R's ``glm(d ~ -1 + x, family = binomial, weights = w)``; iterating to a
    relative step of ``tol`` reproduces glm's converged coefficients to about 1e-10.
    """
    n, k = x.shape
    gamma = np.zeros(k)
    # start from the weighted share on the intercept: one step closer, same optimum
    share = float(np.sum(w * d) / np.sum(w))
    if 0.0 < share < 1.0 and np.all(x[:, 0] == 1.0):
        gamma[0] = np.log(share / (1.0 - share))
    converged = False
    for _ in range(max_iter):
        eta = x @ gamma
        p = 1.0 / (1.0 + np.exp(-eta))
        info = x.T @ ((w * p * (1.0 - p))[:, None] * x)
        step = np.linalg.solve(info, x.T @ (w * (d - p)))
        gamma = gamma + step
        if np.max(np.abs(step)) <= tol * (1.0 + np.max(np.abs(gamma))):
            converged = True
            break
    p = 1.0 / (1.0 + np.exp(-(x @ gamma)))
    info = x.T @ ((w * p * (1.0 - p))[:, None] * x)
    hessian = _checked_inverse(info, "propensity score") * n
    return PropensityFit(ps=np.minimum(p, PS_CAP), hessian=hessian, converged=converged)


def weighted_ols(y: np.ndarray, x: np.ndarray, w: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Weighted least-squares coefficients of ``y`` on ``x`` within ``subset`` (QR-based).

    ``y`` may have several columns (one regression each on the same design).
    """
    sw = np.sqrt(w[subset])
    xs = x[subset] * sw[:, None]
    if xs.shape[0] < x.shape[1]:
        raise SingularDesignError("too few observations for the outcome regression")
    ys = y[subset] * (sw[:, None] if y.ndim == 2 else sw)
    beta, _, rank, _ = np.linalg.lstsq(xs, ys, rcond=None)
    if rank < x.shape[1]:
        raise SingularDesignError("the outcome regression design matrix is singular")
    return beta


def _ols_linear_rep(
    y: np.ndarray, x: np.ndarray, w_ols: np.ndarray, fitted: np.ndarray
) -> np.ndarray:
    # asymptotic linear representation of the OLS coefficients, one row per observation:
    # w e x' (X'WX / n)^{-1}, exactly the DRDID expression
    n = len(y)
    xpx = (x * w_ols[:, None]).T @ x / n
    return (x * (w_ols * (y - fitted))[:, None]) @ _checked_inverse(xpx, "regression")


def _ols_linear_rep_times(
    x: np.ndarray, w_ols: np.ndarray, resid: np.ndarray, vectors: list[np.ndarray]
) -> list[np.ndarray]:
    """``_ols_linear_rep(...) @ v`` for each ``v``, for one or many outcome columns.

    The representation's row :math:`i` is :math:`w_i e_i x_i'(X'WX/n)^{-1}`, so its product
    with :math:`v` is :math:`w_i e_i \\, x_i'(X'WX/n)^{-1}v`: the residuals (``resid``, shape
    (n,) or (n, m)) times one fixed vector per ``v``, without an n × k matrix per column.
    """
    n = len(w_ols)
    inverse = _checked_inverse((x * w_ols[:, None]).T @ x / n, "regression")
    scaled = w_ols[:, None] * resid if resid.ndim == 2 else w_ols * resid
    out = []
    for v in vectors:
        h = x @ (inverse @ v)
        out.append(scaled * (h[:, None] if resid.ndim == 2 else h))
    return out


def _by_unit(v: np.ndarray, two_d: bool) -> np.ndarray:
    # a per-unit vector broadcast against (n,) or (n, m) outcome arrays
    return v[:, None] if two_d else v


def _result(att: np.ndarray, inf: np.ndarray) -> tuple[float | np.ndarray, np.ndarray]:
    return (float(att) if np.ndim(att) == 0 else att), inf


def _normalise(w: np.ndarray) -> np.ndarray:
    return w / np.mean(w)


def _trim(ps: np.ndarray, d: np.ndarray, trim_level: float) -> np.ndarray:
    # DRDID keeps every treated unit and drops comparison units with extreme scores
    keep = np.ones_like(ps)
    controls = d == 0
    keep[controls] = (ps[controls] < trim_level).astype(float)
    return keep


def unconditional_panel(
    dy: np.ndarray, treated: np.ndarray, control: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unconditional 2×2 DiD for many cells at once (balanced panel, no covariates).

    For each column j of the outcome changes ``dy`` (n × m) the estimate is

    .. math::

        \\widehat{ATT}_j = \\frac{\\sum_i w_i D_i \\Delta Y_{ij}}{\\sum_i w_i D_i}
          - \\frac{\\sum_i w_i C_{ij} \\Delta Y_{ij}}{\\sum_i w_i C_{ij}},

    and its per-unit contribution (the influence function divided by the cell's sample size,
    so that the estimate minus the truth is approximately the column sum) is

    .. math::

        \\phi_{ij} = \\frac{w_i D_i(\\Delta Y_{ij} - \\bar m^D_j)}{\\sum_k w_k D_k}
          - \\frac{w_i C_{ij}(\\Delta Y_{ij} - \\bar m^C_j)}{\\sum_k w_k C_{kj}}.

    With an intercept only, outcome regression, standardized IPW and the doubly robust
    estimator all reduce to this (Sant'Anna & Zhao 2020, section 2).

    Parameters
    ----------
    dy
        Outcome changes, shape (n, m); entries outside treated ∪ control are ignored.
    treated
        Boolean (n,) membership of the treated cohort (the same for every column).
    control
        Boolean (n,) or (n, m) membership of the comparison group for each column.
    w
        Unit sampling weights (n,).

    Returns
    -------
    att
        Shape (m,).
    phi
        Shape (n, m), zero outside the cell's sample.
    """
    wd = w * treated
    sum_d = wd.sum()
    if np.isnan(dy).any():
        # units outside the cell (e.g. unobserved) must not turn zero weights into NaN
        dy = np.where(np.isnan(dy), 0.0, dy)
    mean_d = wd @ dy / sum_d
    a = wd / sum_d
    if control.ndim == 1:
        # one comparison group for every column: no n × m weight matrix needed
        wc = w * control
        sum_c = wc.sum()
        mean_c = wc @ dy / sum_c
        b = wc / sum_c
        if np.any(treated & control):
            phi = (a - b)[:, None] * dy
            phi -= np.outer(a, mean_d) - np.outer(b, mean_c)
            return mean_d - mean_c, phi
        # disjoint groups (the usual case): centre each unit at its own group's mean
        phi = dy - np.where(treated[:, None], mean_d, mean_c)
        phi *= (a - b)[:, None]
        return mean_d - mean_c, phi
    wc = control * w[:, None]
    sum_c = wc.sum(axis=0)
    mean_c = np.einsum("ij,ij->j", wc, dy) / sum_c
    bmat = wc / sum_c
    phi = a[:, None] * (dy - mean_d) - bmat * (dy - mean_c)
    return mean_d - mean_c, phi


def reg_did_panel(
    y1: np.ndarray, y0: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[float | np.ndarray, np.ndarray]:
    """Outcome-regression DiD for panel data (Heckman, Ichimura & Todd 1997; ``DRDID::reg_did_panel``).

    :math:`\\widehat{ATT} = \\bar{\\Delta Y}_{D=1} - \\overline{x'\\hat\\beta}_{D=1}` with
    :math:`\\hat\\beta` from weighted OLS of :math:`\\Delta Y` on :math:`x` among comparison units.
    ``y1`` and ``y0`` may have m columns (periods sharing the sample and design): the estimate
    is then an array (m,) and the influence function (n, m).
    """
    w = _normalise(w)
    dy = y1 - y0
    two_d = dy.ndim == 2
    beta = weighted_ols(dy, x, w, d == 0)
    fitted = x @ beta
    w_treat = w * d
    mean_treat = np.mean(w_treat)
    att_treat = _by_unit(w_treat, two_d) * dy
    att_cont = _by_unit(w_treat, two_d) * fitted
    eta_treat = np.mean(att_treat, axis=0) / mean_treat
    eta_cont = np.mean(att_cont, axis=0) / mean_treat
    (rep_m,) = _ols_linear_rep_times(
        x, w * (1 - d), dy - fitted, [np.mean(w_treat[:, None] * x, axis=0)]
    )
    inf_treat = (att_treat - _by_unit(w_treat, two_d) * eta_treat) / mean_treat
    inf_cont = (att_cont - _by_unit(w_treat, two_d) * eta_cont + rep_m) / mean_treat
    return _result(eta_treat - eta_cont, inf_treat - inf_cont)


def _odds_weighted_panel(
    dy: np.ndarray,
    d: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    pscore: PropensityFit | None,
    trim_level: float,
    outcome_model: bool,
) -> tuple[float | np.ndarray, np.ndarray]:
    """Hajek contrast of treated units and comparison units reweighted by the propensity odds
    :math:`\\hat p/(1-\\hat p)`, applied to :math:`\\Delta Y` (standardized IPW) or, with
    ``outcome_model``, to its residual from the comparison units' weighted OLS on :math:`x`
    (doubly robust). The influence function carries the propensity score's estimation effect
    and, with ``outcome_model``, the regression's (``DRDID::std_ipw_did_panel`` and
    ``DRDID::drdid_panel``).
    """
    w = _normalise(w)
    two_d = dy.ndim == 2
    ps_fit = pscore if pscore is not None else fit_logit(d, x, w)
    ps = ps_fit.ps
    keep = _trim(ps, d, trim_level)
    resid = dy - x @ weighted_ols(dy, x, w, d == 0) if outcome_model else dy
    w_treat = keep * w * d
    w_cont = keep * w * ps * (1 - d) / (1 - ps)
    mean_treat, mean_cont = np.mean(w_treat), np.mean(w_cont)
    att_treat = _by_unit(w_treat, two_d) * resid
    att_cont = _by_unit(w_cont, two_d) * resid
    eta_treat = np.mean(att_treat, axis=0) / mean_treat
    eta_cont = np.mean(att_cont, axis=0) / mean_cont
    lin_rep_ps = (x * (w * (d - ps))[:, None]) @ ps_fit.hessian
    inf_treat = att_treat - _by_unit(w_treat, two_d) * eta_treat
    # mean over units of w_cont (resid - eta_cont) x, one column per outcome column
    m_ps = x.T @ (_by_unit(w_cont, two_d) * (resid - eta_cont)) / len(d)
    inf_cont = att_cont - _by_unit(w_cont, two_d) * eta_cont + lin_rep_ps @ m_ps
    if outcome_model:
        rep_treat, rep_or = _ols_linear_rep_times(
            x,
            w * (1 - d),
            resid,
            [np.mean(w_treat[:, None] * x, axis=0), np.mean(w_cont[:, None] * x, axis=0)],
        )
        inf_treat = inf_treat - rep_treat
        inf_cont = inf_cont - rep_or
    return _result(eta_treat - eta_cont, inf_treat / mean_treat - inf_cont / mean_cont)


def std_ipw_did_panel(
    y1: np.ndarray,
    y0: np.ndarray,
    d: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    pscore: PropensityFit | None = None,
    trim_level: float = TRIM_LEVEL,
) -> tuple[float | np.ndarray, np.ndarray]:
    """Standardized (Hajek) IPW DiD for panel data (Abadie 2005; ``DRDID::std_ipw_did_panel``).

    .. math::

        \\widehat{ATT} = \\frac{\\sum w_i D_i \\Delta Y_i}{\\sum w_i D_i}
        - \\frac{\\sum w_i (1-D_i)\\frac{\\hat p_i}{1-\\hat p_i}\\Delta Y_i}
                {\\sum w_i (1-D_i)\\frac{\\hat p_i}{1-\\hat p_i}}.

    ``pscore`` may be passed in when the same treated/comparison sample and covariates were
    already fitted (a cache across periods); it must come from :func:`fit_logit` on
    ``(d, x, normalised w)``. ``y1`` and ``y0`` may have m columns (see :func:`reg_did_panel`).
    """
    return _odds_weighted_panel(y1 - y0, d, x, w, pscore, trim_level, outcome_model=False)


def drdid_panel(
    y1: np.ndarray,
    y0: np.ndarray,
    d: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    pscore: PropensityFit | None = None,
    trim_level: float = TRIM_LEVEL,
) -> tuple[float | np.ndarray, np.ndarray]:
    """Locally efficient doubly robust DiD for panel data (Sant'Anna & Zhao 2020, eq. 3.1).

    .. math::

        \\widehat{ATT} = \\mathbb{E}_n\\Big[\\Big(\\frac{w_1}{\\mathbb{E}_n w_1}
          - \\frac{w_0}{\\mathbb{E}_n w_0}\\Big)(\\Delta Y - x'\\hat\\beta_0)\\Big],\\quad
        w_1 = D,\\; w_0 = \\frac{\\hat p(x)(1-D)}{1-\\hat p(x)},

    with a logit propensity score and :math:`\\hat\\beta_0` from weighted OLS of
    :math:`\\Delta Y` on :math:`x` among comparison units (``DRDID::drdid_panel``). The influence
    function includes the estimation effects of both nuisance models. ``y1`` and ``y0`` may
    have m columns (periods sharing the sample, design and propensity score): one vectorised
    estimation returning an array (m,) and an influence function (n, m).
    """
    return _odds_weighted_panel(y1 - y0, d, x, w, pscore, trim_level, outcome_model=True)


def reg_did_rc(
    y: np.ndarray, post: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD for repeated cross-sections (``DRDID::reg_did_rc``).

    :math:`\\widehat{ATT} = \\bar Y_{D=1,post} - \\bar Y_{D=1,pre}
    - \\overline{x'(\\hat\\beta_{0,post} - \\hat\\beta_{0,pre})}_{D=1}` with the
    :math:`\\hat\\beta_{0,\\cdot}` from weighted OLS among comparison rows of each period.
    """
    w = _normalise(w)
    pre = 1 - post
    beta_pre = weighted_ols(y, x, w, (d == 0) & (post == 0))
    beta_post = weighted_ols(y, x, w, (d == 0) & (post == 1))
    fit_pre = x @ beta_pre
    fit_post = x @ beta_post
    w_treat_pre = w * d * pre
    w_treat_post = w * d * post
    w_cont = w * d
    att_treat_pre = w_treat_pre * y
    att_treat_post = w_treat_post * y
    att_cont = w_cont * (fit_post - fit_pre)
    eta_treat_pre = np.mean(att_treat_pre) / np.mean(w_treat_pre)
    eta_treat_post = np.mean(att_treat_post) / np.mean(w_treat_post)
    eta_cont = np.mean(att_cont) / np.mean(w_cont)
    rep_pre = _ols_linear_rep(y, x, w * (1 - d) * pre, fit_pre)
    rep_post = _ols_linear_rep(y, x, w * (1 - d) * post, fit_post)
    inf_treat = (att_treat_post - w_treat_post * eta_treat_post) / np.mean(w_treat_post) - (
        att_treat_pre - w_treat_pre * eta_treat_pre
    ) / np.mean(w_treat_pre)
    moment = np.mean(w_cont[:, None] * x, axis=0)
    inf_cont = (att_cont - w_cont * eta_cont + (rep_post - rep_pre) @ moment) / np.mean(w_cont)
    return float(eta_treat_post - eta_treat_pre - eta_cont), inf_treat - inf_cont


def _ipw_rc_weights(
    ps: np.ndarray, keep: np.ndarray, d: np.ndarray, post: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    odds = ps / (1 - ps)
    return (
        keep * w * d * (1 - post),
        keep * w * d * post,
        keep * w * odds * (1 - d) * (1 - post),
        keep * w * odds * (1 - d) * post,
    )


def std_ipw_did_rc(
    y: np.ndarray,
    post: np.ndarray,
    d: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    trim_level: float = TRIM_LEVEL,
) -> tuple[float, np.ndarray]:
    """Standardized IPW DiD for repeated cross-sections (``DRDID::std_ipw_did_rc``).

    The difference of Hajek-weighted post-minus-pre means of treated rows and of comparison rows
    reweighted by the propensity odds :math:`\\hat p/(1-\\hat p)`.
    """
    w = _normalise(w)
    ps_fit = fit_logit(d, x, w)
    ps = ps_fit.ps
    keep = _trim(ps, d, trim_level)
    wt_pre, wt_post, wc_pre, wc_post = _ipw_rc_weights(ps, keep, d, post, w)
    eta_t_pre = wt_pre * y / np.mean(wt_pre)
    eta_t_post = wt_post * y / np.mean(wt_post)
    eta_c_pre = wc_pre * y / np.mean(wc_pre)
    eta_c_post = wc_post * y / np.mean(wc_post)
    a_t_pre, a_t_post = np.mean(eta_t_pre), np.mean(eta_t_post)
    a_c_pre, a_c_post = np.mean(eta_c_pre), np.mean(eta_c_post)
    lin_rep_ps = (x * (w * (d - ps))[:, None]) @ ps_fit.hessian
    inf_treat = (eta_t_post - wt_post * a_t_post / np.mean(wt_post)) - (
        eta_t_pre - wt_pre * a_t_pre / np.mean(wt_pre)
    )
    m_pre = np.mean((wc_pre * (y - a_c_pre))[:, None] * x, axis=0) / np.mean(wc_pre)
    m_post = np.mean((wc_post * (y - a_c_post))[:, None] * x, axis=0) / np.mean(wc_post)
    inf_cont = (
        (eta_c_post - wc_post * a_c_post / np.mean(wc_post))
        - (eta_c_pre - wc_pre * a_c_pre / np.mean(wc_pre))
        + lin_rep_ps @ (m_post - m_pre)
    )
    att = (a_t_post - a_t_pre) - (a_c_post - a_c_pre)
    return float(att), inf_treat - inf_cont


def drdid_rc(
    y: np.ndarray,
    post: np.ndarray,
    d: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    trim_level: float = TRIM_LEVEL,
) -> tuple[float, np.ndarray]:
    """Locally efficient doubly robust DiD for repeated cross-sections (Sant'Anna & Zhao 2020, eq. 3.4).

    Combines IPW-reweighted comparison rows with outcome regressions fitted separately for
    treated and comparison rows in each period (``DRDID::drdid_rc``):

    .. math::

        \\widehat{ATT} = (\\tau^{1}_{post} - \\tau^{1}_{pre}) - (\\tau^{0}_{post} - \\tau^{0}_{pre})
          + (\\mu^{d}_{post} - \\mu^{dt}_{post}) - (\\mu^{d}_{pre} - \\mu^{dt}_{pre}).

    Influence function: the estimation effect of the comparison-group outcome regressions on
    the treated component is *subtracted* for the pre period (post minus pre, as the estimator
    is a post-minus-pre difference). R's ``DRDID::drdid_rc`` adds it instead; the point estimate
    is unaffected and the two agree whenever the design is an intercept only (then the terms
    cancel), so R's ``did`` without covariates is matched exactly. With covariates on unbalanced
    panels the standard error follows the derivation (and csdid/drdid in Python), not R.
    """
    w = _normalise(w)
    pre = 1 - post
    ps_fit = fit_logit(d, x, w)
    ps = ps_fit.ps
    keep = _trim(ps, d, trim_level)
    c_pre, c_post = (d == 0) & (post == 0), (d == 0) & (post == 1)
    t_pre, t_post = (d == 1) & (post == 0), (d == 1) & (post == 1)
    fit_c_pre = x @ weighted_ols(y, x, w, c_pre)
    fit_c_post = x @ weighted_ols(y, x, w, c_post)
    fit_t_pre = x @ weighted_ols(y, x, w, t_pre)
    fit_t_post = x @ weighted_ols(y, x, w, t_post)
    fit_c = post * fit_c_post + pre * fit_c_pre

    wt_pre, wt_post, wc_pre, wc_post = _ipw_rc_weights(ps, keep, d, post, w)
    w_d = keep * w * d
    w_dt1 = w_d * post
    w_dt0 = w_d * pre
    resid = y - fit_c
    eta_t_pre = wt_pre * resid / np.mean(wt_pre)
    eta_t_post = wt_post * resid / np.mean(wt_post)
    eta_c_pre = wc_pre * resid / np.mean(wc_pre)
    eta_c_post = wc_post * resid / np.mean(wc_post)
    gap_post = fit_t_post - fit_c_post
    gap_pre = fit_t_pre - fit_c_pre
    eta_d_post = w_d * gap_post / np.mean(w_d)
    eta_dt1_post = w_dt1 * gap_post / np.mean(w_dt1)
    eta_d_pre = w_d * gap_pre / np.mean(w_d)
    eta_dt0_pre = w_dt0 * gap_pre / np.mean(w_dt0)
    a = {
        k: float(np.mean(v))
        for k, v in {
            "t_pre": eta_t_pre,
            "t_post": eta_t_post,
            "c_pre": eta_c_pre,
            "c_post": eta_c_post,
            "d_post": eta_d_post,
            "dt1_post": eta_dt1_post,
            "d_pre": eta_d_pre,
            "dt0_pre": eta_dt0_pre,
        }.items()
    }
    att = (
        (a["t_post"] - a["t_pre"])
        - (a["c_post"] - a["c_pre"])
        + (a["d_post"] - a["dt1_post"])
        - (a["d_pre"] - a["dt0_pre"])
    )

    rep_c_pre = _ols_linear_rep(y, x, w * c_pre, fit_c_pre)
    rep_c_post = _ols_linear_rep(y, x, w * c_post, fit_c_post)
    rep_t_pre = _ols_linear_rep(y, x, w * t_pre, fit_t_pre)
    rep_t_post = _ols_linear_rep(y, x, w * t_post, fit_t_post)
    lin_rep_ps = (x * (w * (d - ps))[:, None]) @ ps_fit.hessian

    def colmean(v: np.ndarray) -> np.ndarray:
        return np.mean(v[:, None] * x, axis=0)

    inf_t_pre = eta_t_pre - wt_pre * a["t_pre"] / np.mean(wt_pre)
    inf_t_post = eta_t_post - wt_post * a["t_post"] / np.mean(wt_post)
    m1_post = -colmean(wt_post * post) / np.mean(wt_post)
    m1_pre = -colmean(wt_pre * pre) / np.mean(wt_pre)
    inf_treat = inf_t_post - inf_t_pre + rep_c_post @ m1_post - rep_c_pre @ m1_pre

    inf_c_pre = eta_c_pre - wc_pre * a["c_pre"] / np.mean(wc_pre)
    inf_c_post = eta_c_post - wc_post * a["c_post"] / np.mean(wc_post)
    m2_pre = colmean(wc_pre * (resid - a["c_pre"])) / np.mean(wc_pre)
    m2_post = colmean(wc_post * (resid - a["c_post"])) / np.mean(wc_post)
    m3_post = -colmean(wc_post * post) / np.mean(wc_post)
    m3_pre = -colmean(wc_pre * pre) / np.mean(wc_pre)
    inf_cont = (
        inf_c_post
        - inf_c_pre
        + lin_rep_ps @ (m2_post - m2_pre)
        + rep_c_post @ m3_post
        - rep_c_pre @ m3_pre
    )

    inf_eff = (
        (eta_d_post - w_d * a["d_post"] / np.mean(w_d))
        - (eta_dt1_post - w_dt1 * a["dt1_post"] / np.mean(w_dt1))
        - (eta_d_pre - w_d * a["d_pre"] / np.mean(w_d))
        + (eta_dt0_pre - w_dt0 * a["dt0_pre"] / np.mean(w_dt0))
    )
    mom_post = colmean(w_d / np.mean(w_d) - w_dt1 / np.mean(w_dt1))
    mom_pre = colmean(w_d / np.mean(w_d) - w_dt0 / np.mean(w_dt0))
    inf_or = (rep_t_post - rep_c_post) @ mom_post - (rep_t_pre - rep_c_pre) @ mom_pre
    return float(att), inf_treat - inf_cont + inf_eff + inf_or
