"""The tables a regression-type event study reports (TWFE, stacked DiD, dCDH), built once.

Each of these estimators ends with coefficients of event-time indicators, their covariance and
unit- (or cluster-) level influence functions. :func:`regression_event_tables` turns them into
the event-study table with its reference rows, the covariance frame and the overall effect
(the equally weighted mean of the post-treatment coefficients, standard error
:math:`\\sqrt{a'\\hat V a}`), with t intervals as fixest reports them; :class:`EventTables`
makes the :class:`~finsam_eval.estimators.result.EstimationResult` of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finsam_eval.estimators.event_study import influence_row_labels, t_table
from finsam_eval.estimators.prepare import PreparedPanel
from finsam_eval.estimators.result import EstimationResult

__all__ = ["EventTables", "influence_rows", "regression_event_tables"]


@dataclass(frozen=True)
class EventTables:
    """An event study's tables: what a regression-type estimator's result is made of.

    Attributes
    ----------
    event_study
        One row per event time shown (``reference=True`` rows have estimate 0 and NaN SE).
    overall
        The overall effect (estimate, se, ci_lower, ci_upper, p_value).
    vcov
        Covariance of the estimated event-time coefficients, indexed by event time.
    event_influence
        Influence functions in ``event_study`` row order (zero columns for reference rows),
        scaled so that :math:`\\psi'\\psi/n^2` is ``vcov``; None without them (TWFE's HC1, iid).
    """

    event_study: pd.DataFrame
    overall: pd.Series
    vcov: pd.DataFrame
    event_influence: np.ndarray | None

    def result(
        self, method: str, info: dict[str, Any], unit_labels: np.ndarray | None, **facts: Any
    ) -> EstimationResult:
        """The :class:`EstimationResult` of these tables; ``facts`` are its design facts
        (``overall_event_times``, ``influence_level``, ``df_t``, ...)."""
        return EstimationResult(
            method=method,
            event_study=self.event_study,
            overall=self.overall,
            vcov=self.vcov,
            event_influence=self.event_influence,
            unit_labels=unit_labels,
            info=info,
            **facts,
        )


def influence_rows(data: pd.DataFrame, panel: PreparedPanel) -> dict[str, Any]:
    """``unit_labels`` and ``influence_level`` of influence functions summed by cluster when the
    panel is clustered (stacked, dCDH): the cluster labels, else the units."""
    return {
        "unit_labels": influence_row_labels(data, panel),
        "influence_level": "unit" if panel.cluster is None else "cluster",
    }


def regression_event_tables(
    coef: np.ndarray,
    v: np.ndarray,
    se: np.ndarray,
    psi: np.ndarray | None,
    position: Mapping[int, int],
    shown: Sequence[int],
    post: Sequence[int],
    df_t: float,
    alpha: float,
    notes: list[str],
) -> EventTables:
    """Event-study tables of regression coefficients with t(``df_t``) intervals.

    Parameters
    ----------
    coef, v, se
        Coefficients, their covariance and standard errors (event-time indicators and possibly
        further regressors, e.g. covariates).
    psi
        Influence functions of ``coef`` (rows × coefficients), or None.
    position
        Estimated event time -> its index in ``coef``, in the order of the ``vcov`` frame.
    shown
        Event times of the table: the estimated ones and the reference (normalised) ones.
    post
        Estimated event times whose equally weighted mean is the overall effect; none gives a
        NaN overall effect and a note in ``notes``.
    """
    est = np.array([coef[position[e]] if e in position else 0.0 for e in shown])
    err = np.array([se[position[e]] if e in position else np.nan for e in shown])
    event_study = pd.DataFrame({"event_time": list(shown), **t_table(est, err, df_t, alpha)})
    event_study["reference"] = [e not in position for e in shown]
    event_influence = None
    if psi is not None:
        event_influence = np.zeros((psi.shape[0], len(shown)))
        for j, e in enumerate(shown):
            if e in position:
                event_influence[:, j] = psi[:, position[e]]
    columns = list(position.values())
    index = pd.Index(list(position), name="event_time")
    vcov = pd.DataFrame(v[np.ix_(columns, columns)], index=index, columns=index)
    if post:
        a = np.zeros(len(coef))
        a[[position[e] for e in post]] = 1.0 / len(post)
        overall_est, overall_se = float(a @ coef), float(np.sqrt(a @ v @ a))
    else:
        overall_est = overall_se = np.nan
        notes.append("no estimated post-treatment event time: overall effect is NaN")
    overall_table = t_table(np.array([overall_est]), np.array([overall_se]), df_t, alpha)
    overall = pd.Series({k: float(value[0]) for k, value in overall_table.items()})
    return EventTables(event_study, overall, vcov, event_influence)
