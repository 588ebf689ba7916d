"""Key-driver analysis: how much each theme's presence moves a score (rating, NPS, CSAT).

A multiple linear regression of the score on one presence indicator per theme, so that a theme
that co-occurs with another (late parcels are often damaged ones) is not credited with its
neighbour's effect. Standard errors are heteroskedasticity-robust (HC3: scores are bounded and
their spread differs between groups), confidence intervals use Student's t.

The effect is in score units: for NPS use `nps_points` (promoter +100, passive 0, detractor
-100) so that a coefficient reads as "NPS points lost when the theme is mentioned"; for CSAT
use `csat_points` (share of 4-5 answers, in points). CES and ratings are regressed as given;
the ranking assumes a higher score is better, so an effort score where a high answer means
more effort needs `higher_is_better=False` (the coefficients themselves do not depend on it).
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

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:  # else NaN intervals, read as "not significant"
            raise ValueError("confidence must lie strictly between 0 and 1")


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
    """0-10 answers -> +100 promoter (9-10), 0 passive (7-8), -100 detractor (0-6).

    The mean of the coded answers is the NPS (% promoters - % detractors) in points. A missing
    answer (NaN) stays NaN (`key_drivers` leaves such rows out): it used to be coded -100, a
    detractor. An answer outside 0-10 raises ValueError.
    """
    s = _answers(scores, 0.0, 10.0, "NPS")
    return np.where(np.isnan(s), np.nan, np.where(s >= 9, 100.0, np.where(s >= 7, 0.0, -100.0)))


def csat_points(scores: Sequence[float]) -> np.ndarray:
    """1-5 answers -> 100 when satisfied (4-5), else 0: the mean is the CSAT in points.
    A missing answer (NaN) stays NaN; an answer outside 1-5 raises ValueError."""
    s = _answers(scores, 1.0, 5.0, "CSAT")
    return np.where(np.isnan(s), np.nan, np.where(s >= 4, 100.0, 0.0))


def _answers(scores: Sequence[float], low: float, high: float, name: str) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    known = s[~np.isnan(s)]
    if known.size and (known.min() < low or known.max() > high):
        raise ValueError(f"{name} answers must lie in {low:g}-{high:g} (NaN for a missing one)")
    return s


# A theme column whose weighted residual, once projected on the intercept and the themes kept
# before it, is below this share of its own norm is a linear combination of them: aliased.
_ALIAS_TOL = 1e-8
# Residuals and coefficients below this share of the score scale are rounding noise (an exact
# fit, identical scores): they are set to 0 so that noise never reads as a significant effect.
_NOISE_TOL = 1e-10


def key_drivers(
    presence: Mapping[str, Sequence[bool]],
    scores: Sequence[float],
    config: DriverConfig | None = None,
    weights: Sequence[float] | None = None,
    *,
    higher_is_better: bool = True,
) -> list[DriverEffect]:
    """Per-theme effects on `scores`, the most harmful impact first.

    `presence[theme][i]` says whether verbatim i names the theme (bool, or 0/1); every sequence
    has the length of `scores`. Themes under `config.min_mentions` (or never named, or named
    everywhere) are left out, and so is a theme whose presence is a linear combination of the
    themes kept (named always together with another one, or exactly when another one is not):
    its effect cannot be told apart from theirs, any split would be arbitrary and its interval
    meaningless. Themes are taken most mentioned first (then by name), so of two themes always
    named together the more mentioned one (then the first by name) is kept and carries their
    joint effect.

    `weights[i]` (frequency weights: whole counts >= 0) says how many identical verbatims row i
    stands for: the result is the one of the expanded data (HC3 included: identical rows share
    a leverage), so grouped counts can be regressed without expanding them. Survey (sampling)
    weights are not frequency weights and are refused when not whole.

    A NaN score is a missing answer: the row is left out. An infinite score, a NaN, infinite,
    negative or fractional weight, or a presence flag other than 0/1 raises ValueError.

    `impact` = effect x (weighted share of the verbatims naming the theme): the change of the
    overall mean score attributable to the theme. The list is sorted by impact, the most
    negative first when a higher score is better (NPS, CSAT, rating), the most positive first
    with `higher_is_better=False` (an effort score where a high answer means more effort).
    """
    config = config or DriverConfig()
    y = np.asarray(scores, dtype=float)
    n = y.size
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.size != n:
        raise ValueError(f"weights have {w.size} rows, scores have {n}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or np.any(w != np.round(w)):
        raise ValueError("weights must be finite whole counts >= 0 (frequency weights)")
    if np.any(np.isinf(y)):
        raise ValueError("scores must be finite (NaN for a missing answer)")
    flags_of: dict[str, np.ndarray] = {}
    for theme, flags in presence.items():
        x = np.asarray(flags, dtype=float)
        if x.size != n:
            raise ValueError(f"presence of {theme!r} has {x.size} rows, scores have {n}")
        if not np.all((x == 0) | (x == 1)):
            raise ValueError(f"presence of {theme!r} must be booleans (or 0/1)")
        flags_of[theme] = x
    rows = ~np.isnan(y) & (w > 0)  # missing answers and empty groups carry nothing
    y, w = y[rows], w[rows]
    total = float(w.sum())
    candidates: list[tuple[float, str]] = []
    for theme, x in flags_of.items():
        mentions = float(x[rows] @ w)
        if mentions > 0 and mentions >= config.min_mentions and float((1 - x[rows]) @ w) > 0:
            candidates.append((-mentions, theme))

    # Keep a theme only when its (weighted) column adds a dimension to the design so far.
    root = np.sqrt(w)
    basis = [root / np.linalg.norm(root)] if total > 0 else []
    kept: list[str] = []
    columns: list[np.ndarray] = []
    for _, theme in sorted(candidates):
        x = flags_of[theme][rows]
        z = x * root
        r = z.copy()
        for _ in range(2):  # twice: Gram-Schmidt keeps its orthogonality
            for q in basis:
                r -= (q @ r) * q
        if np.linalg.norm(r) <= _ALIAS_TOL * np.linalg.norm(z):
            continue
        basis.append(r / np.linalg.norm(r))
        kept.append(theme)
        columns.append(x)
    dof = total - (len(kept) + 1)
    if not kept or dof <= 0:
        return []

    design = np.column_stack([np.ones(y.size), *columns])
    coef, *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
    noise = _NOISE_TOL * max(1.0, float(np.abs(y).max()))
    coef[np.abs(coef) <= noise] = 0.0
    residuals = y - design @ coef
    residuals[np.abs(residuals) <= noise] = 0.0
    bread = np.linalg.inv(design.T @ (design * w[:, None]))
    # HC3: each squared residual inflated by its leverage, robust in small groups.
    leverage = np.einsum("ij,jk,ik->i", design, bread, design)
    hc = w * residuals**2 / np.clip(1.0 - leverage, 1e-9, None) ** 2
    cov = bread @ (design.T * hc) @ design @ bread
    t_crit = float(stats.t.ppf(0.5 + config.confidence / 2, dof))

    effects = []
    for j, theme in enumerate(kept, start=1):
        x = columns[j - 1].astype(bool)
        se = float(np.sqrt(max(cov[j, j], 0.0)))
        beta = float(coef[j])
        if se > 0:
            p_value = float(2 * stats.t.sf(abs(beta) / se, dof))
        else:  # an exact fit: the effect is known without error (0 when there is none)
            p_value = 0.0 if beta != 0 else 1.0
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
    sign = 1.0 if higher_is_better else -1.0
    return sorted(effects, key=lambda e: (sign * e.impact, e.theme))
