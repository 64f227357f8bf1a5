"""Within transformation: residuals of columns after projecting out fixed effects.

For fixed-effect factors :math:`f_1, \\dots, f_K` with integer codes and observation weights
:math:`w`, the within transformation of a column :math:`x` is the weighted least-squares residual

.. math::

    M x = x - D(D'WD)^{-}D'Wx, \\qquad D = [D_1, \\dots, D_K],

where :math:`D_k` is the (never materialised) indicator matrix of factor :math:`k`. By the
Frisch–Waugh–Lovell theorem, regressing :math:`My` on :math:`MX` gives the slope coefficients of
the regression with the fixed effects as dummies.

Two algorithms, chosen automatically:

* **Closed form** for a complete two-way layout (every level pair observed exactly once) with
  weights constant within the levels of one factor (population weights constant within kommun):
  :math:`(Mx)_{it} = x_{it} - \\bar x_{i\\cdot} - \\bar x^{w}_{\\cdot t} + \\bar x^{w}_{\\cdot\\cdot}`,
  with unweighted row means and weighted column and grand means.
* **Direct solve** for any other two-factor layout whose smaller factor has few levels (years):
  eliminating the larger factor's effects from the normal equations leaves an
  :math:`L_B \\times L_B` system in the smaller factor's effects (the Schur complement
  :math:`D_B'WD_B - C'\\operatorname{diag}(D_A'WD_A)^{-1}C`, :math:`C = D_A'WD_B`, solved by
  least squares because it is singular); the residual is then two gathers. The result is checked:
  if either factor's weighted residual means exceed the tolerance (an ill-conditioned layout),
  alternating projections continue from it.
* **Alternating projections** otherwise (Gaure 2013; Correia 2017): sweep
  :math:`x \\leftarrow (I - P_K)\\cdots(I - P_1)x`, where :math:`P_k` replaces each value by the
  weighted mean of its level of factor :math:`k`. The sweep is a linear contraction whose fixed
  point is :math:`Mx` (von Neumann–Halperin); Irons & Tuck (1969) extrapolation, as in fixest
  (Bergé 2018), accelerates it.

Group sums use integer codes through sparse indicator products and ``np.bincount``; no dense dummy
matrix is ever built.

References
----------
Bergé, L. (2018). Efficient estimation of maximum likelihood models with multiple fixed-effects:
the R package FENmlm. CREA Discussion Paper 2018-13.
Correia, S. (2017). Linear models with high-dimensional fixed effects: an efficient and feasible
estimator. Working paper.
Gaure, S. (2013). OLS with multiple high dimensional category variables. Computational Statistics
& Data Analysis 66, 8–18.
Irons, B. M., & Tuck, R. C. (1969). A version of the Aitken accelerator for computer iteration.
International Journal for Numerical Methods in Engineering 1(3), 275–277.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Demeaned", "complete_two_way_cells", "demean"]

# rows per block when subtracting group means in place: bounds the temporary to a few MB
_BLOCK = 1 << 16


@dataclass(frozen=True)
class Demeaned:
    """Output of :func:`demean`.

    Attributes
    ----------
    values
        Demeaned columns, shape (n, p).
    method
        "closed form", "direct solve" or "alternating projections".
    iterations
        Accelerated iterations used (0 for the closed form).
    converged
        Whether every column met the tolerance.
    """

    values: np.ndarray
    method: str
    iterations: int
    converged: bool


def _as_codes(factor: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    codes = np.asarray(factor)
    if codes.shape != (n,):
        raise ValueError(f"each factor must have shape ({n},), got {codes.shape}")
    if codes.dtype.kind not in "iu":
        raise ValueError("factors must be integer codes 0..L-1")
    codes = codes.astype(np.int64, copy=False)
    if n and codes.min() < 0:
        raise ValueError("factor codes must be non-negative")
    return codes, int(codes.max()) + 1 if n else 0


def complete_two_way_cells(
    rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int
) -> np.ndarray | None:
    """Cell index ``rows * n_cols + cols`` if every (row, col) pair occurs exactly once, else None.

    A complete layout is what makes the closed form exact; counting cells rather than margins
    rules out duplicated pairs that happen to have balanced margins.
    """
    if len(rows) != n_rows * n_cols:
        return None
    cell = rows * n_cols + cols
    if np.any(np.bincount(cell, minlength=n_rows * n_cols) != 1):
        return None
    return cell


def _constant_within(values: np.ndarray, cube_shape: tuple[int, int], axis: int) -> bool:
    table = values.reshape(cube_shape)
    spread = table.max(axis=axis) - table.min(axis=axis)
    return bool(np.all(spread <= 1e-12 * max(float(np.abs(table).max()), 1e-300)))


def _closed_form(
    x: np.ndarray, cell: np.ndarray, shape: tuple[int, int], row_weights: np.ndarray | None
) -> np.ndarray:
    n_rows, n_cols = shape
    p = x.shape[1]
    in_order = bool(np.array_equal(cell, np.arange(len(cell))))
    if in_order:
        # already sorted by row then column: the (rows, cols, p) cube is a reshape of a copy
        out = np.array(x, dtype=np.float64, order="C", copy=True)
        cube = out.reshape(n_rows, n_cols, p)
    else:
        cube = np.empty((n_rows * n_cols, p))
        cube[cell] = x
        cube = cube.reshape(n_rows, n_cols, p)
    row_mean = cube.mean(axis=1)
    if row_weights is None:
        col_mean = cube.mean(axis=0)
    else:
        # weights constant within rows: a column mean is a row-weighted mean over rows
        col_mean = np.tensordot(row_weights, cube, axes=(0, 0)) / row_weights.sum()
    # in a complete layout the weighted grand mean is the plain mean of the column means
    col_mean -= col_mean.mean(axis=0)
    cube -= row_mean[:, None, :]
    cube -= col_mean[None, :, :]
    flat = cube.reshape(n_rows * n_cols, p)
    return flat if in_order else flat[cell]


class _Projector:
    """Weighted group means of one factor, applied in place block by block."""

    def __init__(self, codes: np.ndarray, n_levels: int, weights: np.ndarray) -> None:
        import scipy.sparse as sp  # here, not at import: ~0.1 s of `import finsam_eval`

        n = len(codes)
        self.codes = codes
        # a sparse L × n indicator with the weights as entries gives all weighted group sums in one
        # product, whatever the number of columns
        self.sums = sp.csr_matrix((weights, (codes, np.arange(n))), shape=(n_levels, n))
        total = np.bincount(codes, weights=weights, minlength=n_levels)
        with np.errstate(divide="ignore"):
            self.inverse_total = np.where(total > 0, 1.0 / total, 0.0)

    def remove_means(self, z: np.ndarray) -> None:
        means = np.asarray(self.sums @ z) * self.inverse_total[:, None]
        for start in range(0, len(z), _BLOCK):
            stop = start + _BLOCK
            z[start:stop] -= means[self.codes[start:stop]]


def _alternating_projections(
    x: np.ndarray,
    factors: list[tuple[np.ndarray, int]],
    weights: np.ndarray,
    tol: float,
    maxiter: int,
) -> tuple[np.ndarray, int, bool]:
    projectors = [_Projector(codes, levels, weights) for codes, levels in factors]

    def sweep(z: np.ndarray) -> np.ndarray:
        z = z.copy()
        for projector in projectors:
            projector.remove_means(z)
        return z

    current = np.array(x, dtype=np.float64, copy=True)
    # the stopping rule is relative to each column's size so that y and 0/1 dummies are alike
    scale = np.maximum(np.abs(current).max(axis=0), 1.0) if len(current) else np.ones(x.shape[1])
    if len(projectors) == 1:
        projectors[0].remove_means(current)
        return current, 1, True
    active = np.arange(current.shape[1])
    iterations = 0
    while active.size and iterations < maxiter:
        iterations += 1
        z0 = current[:, active]
        z1 = sweep(z0)
        z2 = sweep(z1)
        step = z2 - z1
        done = np.abs(step).max(axis=0) <= tol * scale[active]
        # Irons–Tuck: extrapolate along the last step using the change between the two steps
        curvature = step - (z1 - z0)
        denominator = np.einsum("ij,ij->j", curvature, curvature)
        numerator = np.einsum("ij,ij->j", step, curvature)
        with np.errstate(divide="ignore", invalid="ignore"):
            coef = np.where(denominator > 0, numerator / denominator, 0.0)
        coef[done] = 0.0
        current[:, active] = z2 - coef * step
        active = active[~done]
    return current, iterations, active.size == 0


# the direct two-factor solve: at most this many levels in the smaller factor and cells in the
# dense level × level weight table (100 000 units × 21 years is 2.1 million cells, 17 MB)
_DIRECT_MAX_LEVELS = 2_000
_DIRECT_MAX_CELLS = 50_000_000


def _two_way_direct(
    x: np.ndarray,
    big: tuple[np.ndarray, int],
    small: tuple[np.ndarray, int],
    weights: np.ndarray,
) -> np.ndarray:
    """Exact two-factor within transformation by the Schur complement (module docstring)."""
    import scipy.sparse as sp  # here, not at import: ~0.1 s of `import finsam_eval`

    (a_codes, n_a), (b_codes, n_b) = big, small
    n = len(a_codes)
    sums_a = sp.csr_matrix((weights, (a_codes, np.arange(n))), shape=(n_a, n))
    sums_b = sp.csr_matrix((weights, (b_codes, np.arange(n))), shape=(n_b, n))
    w_a = np.bincount(a_codes, weights=weights, minlength=n_a)
    w_b = np.bincount(b_codes, weights=weights, minlength=n_b)
    cross = np.bincount(a_codes * n_b + b_codes, weights=weights, minlength=n_a * n_b).reshape(
        n_a, n_b
    )
    with np.errstate(divide="ignore"):
        inv_a = np.where(w_a > 0, 1.0 / w_a, 0.0)
    xa = np.asarray(sums_a @ x)  # D_A'Wx, (n_a, p)
    xb = np.asarray(sums_b @ x)  # D_B'Wx, (n_b, p)
    scaled = cross * inv_a[:, None]  # diag(w_a)^-1 C
    schur = np.diag(w_b) - cross.T @ scaled
    rhs = xb - scaled.T @ xa
    # singular (one zero eigenvalue per connected component): any least-squares solution gives
    # the same fitted values D_A a + D_B b, which are unique
    b = np.linalg.lstsq(schur, rhs, rcond=None)[0]
    a = (xa - cross @ b) * inv_a[:, None]
    out = np.array(x, dtype=np.float64, copy=True)
    for start in range(0, n, _BLOCK):
        stop = start + _BLOCK
        out[start:stop] -= a[a_codes[start:stop]]
        out[start:stop] -= b[b_codes[start:stop]]
    return out


def _residual_means_small(
    z: np.ndarray,
    factors: list[tuple[np.ndarray, int]],
    weights: np.ndarray,
    tol: float,
    scale: np.ndarray,
) -> bool:
    """Whether one projection sweep would change no column of ``z`` by more than ``tol`` × scale
    (the stopping rule of the alternating projections)."""
    for codes, levels in factors:
        projector = _Projector(codes, levels, weights)
        means = np.asarray(projector.sums @ z) * projector.inverse_total[:, None]
        if np.any(np.abs(means).max(axis=0, initial=0.0) > tol * scale):
            return False
    return True


def demean(
    x: np.ndarray,
    factors: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
    *,
    tol: float = 1e-12,
    maxiter: int = 100_000,
) -> Demeaned:
    """Weighted within transformation of the columns of ``x`` by one or more fixed effects.

    Parameters
    ----------
    x
        Values, shape (n,) or (n, p); all columns are demeaned together.
    factors
        Integer codes (0..L-1), one array of length n per fixed effect.
    weights
        Non-negative observation weights (analytic weights); None for equal weights.
    tol
        Alternating projections stop when, for every column, the largest change in one sweep is at
        most ``tol`` times the column's largest absolute value (or 1 if smaller).
    maxiter
        Maximum accelerated iterations (each is two sweeps).

    Returns
    -------
    Demeaned
        ``values`` has shape (n, p) (a 1-d ``x`` becomes one column).

    Notes
    -----
    The closed form is used for exactly two factors forming a complete layout (each level pair
    once) when the weights are constant within the levels of one of them; the direct solve for
    other two-factor layouts whose smaller factor has at most 2 000 levels; otherwise alternating
    projections with Irons–Tuck acceleration (see the module docstring).
    """
    values = np.asarray(x, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"x must be 1- or 2-dimensional, got shape {np.shape(x)}")
    n = values.shape[0]
    coded = [_as_codes(f, n) for f in factors]
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    if w is not None and (w.shape != (n,) or np.any(w < 0) or not np.all(np.isfinite(w))):
        raise ValueError(f"weights must be finite, non-negative and of shape ({n},)")
    if not coded:
        return Demeaned(values.copy(), "closed form", 0, True)

    if len(coded) == 2:
        (rows, n_rows), (cols, n_cols) = coded
        cell = complete_two_way_cells(rows, cols, n_rows, n_cols)
        if cell is not None:
            if w is None:
                return Demeaned(
                    _closed_form(values, cell, (n_rows, n_cols), None), "closed form", 0, True
                )
            cube_w = np.empty(n)
            cube_w[cell] = w
            if _constant_within(cube_w, (n_rows, n_cols), axis=1):
                row_w = cube_w.reshape(n_rows, n_cols)[:, 0]
                return Demeaned(
                    _closed_form(values, cell, (n_rows, n_cols), row_w), "closed form", 0, True
                )
            if _constant_within(cube_w, (n_rows, n_cols), axis=0):
                # the same formula with the roles of the factors swapped
                cell_t = cols * n_rows + rows
                col_w = cube_w.reshape(n_rows, n_cols)[0, :]
                return Demeaned(
                    _closed_form(values, cell_t, (n_cols, n_rows), col_w), "closed form", 0, True
                )

    w_all = np.ones(n) if w is None else w
    if len(coded) == 2 and n:
        big, small = sorted(coded, key=lambda factor: -factor[1])
        if small[1] <= _DIRECT_MAX_LEVELS and big[1] * small[1] <= _DIRECT_MAX_CELLS:
            out = _two_way_direct(values, big, small, w_all)
            scale = np.maximum(np.abs(values).max(axis=0), 1.0)
            if _residual_means_small(out, coded, w_all, tol, scale):
                return Demeaned(out, "direct solve", 0, True)
            values = out  # ill-conditioned: refine by alternating projections from here

    out, iterations, converged = _alternating_projections(values, coded, w_all, tol, maxiter)
    return Demeaned(out, "alternating projections", iterations, converged)
