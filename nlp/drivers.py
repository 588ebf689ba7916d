"""Key-driver analysis: how much each theme's presence moves a score (rating, NPS, CSAT).

A multiple linear regression of the score on one presence indicator per theme, so that a theme
that co-occurs with another (late parcels are often damaged ones) is not credited with its
neighbour's effect. Standard errors are heteroskedasticity-robust (HC3: scores are bounded and
their spread differs between groups), confidence intervals use Student's t.

The effect is in score units: for NPS use `nps_points` (promoter +100, passive 0, detractor
-100) so that a coefficient reads as "NPS points lost when the theme is mentioned"; for CSAT
use `csat_points` (share of 4-5 answers, in points).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True, slots=True)
class DriverConfig:
    min_mentions: int = 20  # themes named fewer times are not estimated (too wide to act on)
    confidence: float = 0.95


@dataclass(frozen=True, slots=True)
class DriverEffect:
    theme: str
    mentions: int
    mean_with: float  # mean score of the verbatims that name the theme
    mean_without: float
    effect: float  # adjusted change of the score when the theme is named (regression coefficient)
    ci_low: float
    ci_high: float
    p_value: float
    impact: float  # effect x share of verbatims naming it: what the theme costs the overall mean

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


def nps_points(scores: Sequence[float]) -> np.ndarray:
    """0-10 answers -> +100 promoter (9-10), 0 passive (7-8), -100 detractor (0-6)."""
    s = np.asarray(scores, dtype=float)
    return np.where(s >= 9, 100.0, np.where(s >= 7, 0.0, -100.0))


def csat_points(scores: Sequence[float]) -> np.ndarray:
    """1-5 answers -> 100 when satisfied (4-5), else 0: the mean is the CSAT in points."""
    s = np.asarray(scores, dtype=float)
    return np.where(s >= 4, 100.0, 0.0)


def key_drivers(
    presence: Mapping[str, Sequence[bool]],
    scores: Sequence[float],
    config: DriverConfig | None = None,
    weights: Sequence[float] | None = None,
) -> list[DriverEffect]:
    """Per-theme effects on `scores`, largest negative impact first.

    `presence[theme][i]` says whether verbatim i names the theme; every sequence has the length
    of `scores`. Themes under `config.min_mentions` (or named everywhere) are left out.
    `weights[i]` (frequency weights) says how many identical verbatims row i stands for: the
    result is the one of the expanded data (HC3 included: identical rows share a leverage), so
    grouped counts can be regressed without expanding them.
    """
    config = config or DriverConfig()
    y = np.asarray(scores, dtype=float)
    n = y.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.size != n:
        raise ValueError(f"weights have {w.size} rows, scores have {n}")
    total = float(w.sum())
    kept: list[str] = []
    columns: list[np.ndarray] = []
    for theme, flags in presence.items():
        x = np.asarray(flags, dtype=float)
        if x.size != n:
            raise ValueError(f"presence of {theme!r} has {x.size} rows, scores have {n}")
        mentions = float(x @ w)
        if config.min_mentions <= mentions < total:
            kept.append(theme)
            columns.append(x)
    if not kept or total <= len(kept) + 1:
        return []

    design = np.column_stack([np.ones(n), *columns])
    root = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
    residuals = y - design @ coef
    bread = np.linalg.pinv(design.T @ (design * w[:, None]))
    # HC3: each squared residual inflated by its leverage, robust in small groups.
    leverage = np.einsum("ij,jk,ik->i", design, bread, design)
    hc = w * residuals**2 / np.clip(1.0 - leverage, 1e-9, None) ** 2
    cov = bread @ (design.T * hc) @ design @ bread
    dof = total - design.shape[1]
    t_crit = float(stats.t.ppf(0.5 + config.confidence / 2, dof))

    effects = []
    for j, theme in enumerate(kept, start=1):
        x = columns[j - 1].astype(bool)
        se = float(np.sqrt(max(cov[j, j], 0.0)))
        beta = float(coef[j])
        p_value = float(2 * stats.t.sf(abs(beta) / se, dof)) if se > 0 else 0.0
        named = float(w[x].sum())
        effects.append(
            DriverEffect(
                theme=theme,
                mentions=int(round(named)),
                mean_with=float((y[x] * w[x]).sum() / named),
                mean_without=float((y[~x] * w[~x]).sum() / (total - named)),
                effect=beta,
                ci_low=beta - t_crit * se,
                ci_high=beta + t_crit * se,
                p_value=p_value,
                impact=beta * named / total,
            )
        )
    return sorted(effects, key=lambda e: e.impact)
