"""Spike detection on sparse daily counts with weekly seasonality (pure library, no DB).

One *series* is the daily history of one theme (optionally restricted to one channel):
mentions per day (`volumes`) and negative mentions per day (`negatives`), dense from `start`.
For a tested day the detector:

1. fits a robust seasonal baseline on the trailing window (default 28 days, ending two days
   before the tested day so a spike that began yesterday does not inflate its own baseline):
   day-of-week factors shrunk towards 1 (sparse counts) x a trimmed-mean level. The days of
   the series' own alert episodes (`Series.held_out`, set by `hold_out_episodes`) are left
   out: counts without its volume / emerging episodes, the negative share without its
   negativity ones, so a sustained spike is compared with the normal before it on every
   one of its days instead of entering its own baseline from its third day (a 7-day +25
   points negativity shift went silent on day 4 and its incident resolved mid-spike);
2. runs up to three tests, each giving an upper-tail p-value:
   - volume: negative-binomial tail of today's count (and of the yesterday+today sum, which
     catches a sustained rise one day earlier than two weak single days), overdispersion
     estimated from the window plus the uncertainty of the baseline itself;
   - negativity: beta-binomial tail of today's negatives given today's volume and the
     baseline negative share (overdispersion of the share estimated from the window); when
     the series carries its per-source counts (`Series.sources`), that share is standardised
     to today's source mix: sum over sources of today's volume x the source's own baseline
     share (shrunk toward the pooled share when the source has little history), so a mostly
     positive source going silent, or a mostly negative one taking a bigger part, is not a
     negativity rise when no source's customers became more negative (a source with no
     history in the window counts at the pooled share; a source connected after the
     series' first day, e.g. a form plugged in today, or one back from an outage that left
     the window without its days, is held out of every test until its days fill the window:
     `DetectorConfig.source_warmup_days`, `Series.source_returns`);
   - emerging: a theme that was near-absent in the window and now reaches a volume floor;
3. keeps candidates above floors (min_volume, min_negatives, effect size: observed >= 1.5x
   expected, share rise >= 0.15) and applies Benjamini-Hochberg across all candidates of the
   day (per-theme alpha as weights);
4. grades severity from the ratio, the p-value and the theme's severity_weight.

Emerging topics (from topic discovery) get the same count test: `detect_growth` runs the
volume / emergence tests and floors above on per-day topic sizes (verbatims assigned to the
topic per day), Benjamini-Hochberg across the day's topic candidates (their own family), and
reports each as an `emerging` signal of the pseudo-theme `topic:<id>` (`topic_theme`).

`update_episodes` then turns the day's signals into alert episodes: a signal of a (theme,
kind, channel) that already has an open episode updates it (last_day moves; the revision only
bumps when the severity escalates, i.e. when a new notification is worth sending); an episode
whose signal has been absent for more than `cooldown_days` is resolved, and only then can a
new episode (new key) start.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Literal

import numpy as np
from scipy import stats

Kind = Literal["volume", "negativity", "emerging"]
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")


# --- configuration -------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectorConfig:
    """Detector-wide defaults; per-theme overrides come from the taxonomy (`ThemeRules`)."""

    window_days: int = 28
    guard_days: int = 1  # days between the window's end and the tested day (yesterday excluded)
    min_history_days: int = 10  # fewer days of history: no test (nothing to compare with)
    # Warm-up: no alert of any kind on a series until it has this many days of history (from
    # the first day of data, or the day its theme started to be detected): a baseline built
    # on the first days of an export, or on a theme just added, is not a baseline.
    warmup_days: int = 21
    # Benjamini-Hochberg level across one day's candidates. 3e-4 (was 1e-3): calibrated on
    # replays of real reviews (benchmarks/eval_spikes.py --replay, tuning seeds 0-1), where
    # 1e-3 let random bursts of small themes through over 90-day timelines.
    alpha: float = 3e-4
    min_volume: int = 10  # today's mentions needed for a volume / negativity alert
    min_negatives: int = 5  # today's negative mentions needed for a negativity alert
    min_ratio: float = 1.5  # effect-size floor: observed >= min_ratio x expected
    min_share_rise: float = 0.15  # negativity: share must rise by >= 15 points ...
    min_share_ratio: float = 1.3  # ... and by >= 30 % relative to the baseline share
    # Mentions of prior (pooled share) in each source's baseline share: a source with little
    # history in the window reads as the pooled share, one with hundreds of mentions as its own.
    source_prior: float = 30.0
    # Warm-up of a source connected after the series' first day (a complaints form plugged in
    # today): it is held out of every test, as if not connected yet, until its days fill the
    # baseline window (None: window_days + guard_days). Counted at the pooled share before,
    # a form 60 % negative raised negativity (and volume) alerts on many themes at once.
    # A source back after window_days + guard_days days without a verbatim (an outage that
    # left the window without its days) warms up again the same way.
    source_warmup_days: int | None = None
    emerging_max_level: float = 1.0  # baseline mentions/day below which a theme is "emerging"
    emerging_min_volume: int = 5
    emerging_min_ratio: float = 3.0
    cooldown_days: int = 3  # quiet days after an episode before a new one may start
    trim: float = 0.1  # trimmed-mean proportion cut at each end (old spikes, holes)
    outlier_p: float = 1e-3  # window days this unlikely under a first fit are left out
    min_seasonal_days: int = 14  # weekday factors only with two weeks of history
    min_dispersion: float = 0.02  # negative-binomial alpha floor (var = mu + alpha mu^2)
    two_day_test: bool = True  # also test yesterday + today (a sustained rise)
    # Weighted Bonferroni share of the 1-day test (the 2-day test gets the rest); was 0.5. A
    # one-day burst must be overwhelming to alert alone; a rise confirmed on a second day
    # alerts then (delay <= 1 day), which is where most false alarms on real reviews went.
    day1_weight: float = 0.2


@dataclass(frozen=True)
class ThemeRules:
    """Effective thresholds of one theme (taxonomy `alerts` merged over the config)."""

    min_volume: int
    min_negatives: int
    alpha: float
    cooldown_days: int
    enabled: bool = True
    severity_weight: float = 1.0


def rules_for(
    config: DetectorConfig, overrides: object | None = None, severity_weight: float = 1.0
) -> ThemeRules:
    """Merge an `AlertThresholds`-like object (attributes may be None) over the config."""

    def pick(name: str, default: float | int) -> float | int:
        value = getattr(overrides, name, None) if overrides is not None else None
        return default if value is None else value

    return ThemeRules(
        min_volume=int(pick("min_volume", config.min_volume)),
        min_negatives=int(pick("min_negatives", config.min_negatives)),
        alpha=float(pick("alpha", config.alpha)),
        cooldown_days=int(pick("cooldown_days", config.cooldown_days)),
        enabled=bool(getattr(overrides, "enabled", True)) if overrides is not None else True,
        severity_weight=severity_weight,
    )


def rules_from_taxonomy(taxonomy: object, config: DetectorConfig) -> dict[str, ThemeRules]:
    """Theme id -> rules, for every active theme of a `nlp.taxonomy.Taxonomy`."""
    return {
        theme.id: rules_for(config, theme.alerts, theme.severity_weight)
        for theme in taxonomy.active  # type: ignore[attr-defined]
    }


# --- inputs and outputs --------------------------------------------------------------------
@dataclass(frozen=True)
class Series:
    """Dense daily history of one theme (x channel): index i is `start + i days`."""

    theme: str
    start: date
    volumes: Sequence[int]
    negatives: Sequence[int]
    channel: str | None = None
    history_from: date | None = None  # first day the theme could be observed (else `start`)
    # source -> (volumes, negatives) on the same days, summing to the series: lets the
    # negativity test compare today with today's source mix (None: one pooled series).
    sources: Mapping[str, tuple[Sequence[int], Sequence[int]]] | None = None
    # source -> first day of its data (its first verbatim, of any theme or none): a source
    # that started after `history_from` (else `start`) and the first source warms up
    # (`source_warmup_days`).
    source_since: Mapping[str, date] | None = None
    # kind -> day spans (inclusive) of the series' own alert episodes, left out of the
    # baseline of the tests of that kind (`hold_out_episodes`; None: none).
    held_out: Mapping[str, Sequence[tuple[date, date]]] | None = None
    # source -> days it came back after an outage long enough to leave the baseline window
    # without its data (`source_returns`): it warms up again from each, as a new source.
    source_returns: Mapping[str, Sequence[date]] | None = None

    def __post_init__(self) -> None:
        if len(self.volumes) != len(self.negatives):
            raise ValueError("volumes and negatives must have the same length")
        for name, (vols, negs) in (self.sources or {}).items():
            if len(vols) != len(self.volumes) or len(negs) != len(self.volumes):
                raise ValueError(f"source {name!r}: its days must be the series' days")

    def window(self, lo: int, hi: int) -> Series:
        """Days [lo, hi) of the series (index space), its sources sliced alike."""
        return replace(
            self,
            start=self.start + timedelta(days=lo),
            volumes=self.volumes[lo:hi],
            negatives=self.negatives[lo:hi],
            sources=(
                {k: (v[lo:hi], n[lo:hi]) for k, (v, n) in self.sources.items()}
                if self.sources is not None
                else None
            ),
        )

    def without(self, names: Iterable[str]) -> Series:
        """The series with the counts of sources `names` taken out of every day."""
        gone = [k for k in names if self.sources and k in self.sources]
        if not gone or self.sources is None:
            return self
        vols, negs = list(self.volumes), list(self.negatives)
        for k in gone:
            sv, sn = self.sources[k]
            vols = [max(a - int(b), 0) for a, b in zip(vols, sv, strict=True)]
            negs = [max(a - int(b), 0) for a, b in zip(negs, sn, strict=True)]
        kept = {k: v for k, v in self.sources.items() if k not in gone}
        return replace(self, volumes=vols, negatives=negs, sources=kept)

    @property
    def end(self) -> date:
        return self.start + timedelta(days=len(self.volumes) - 1)

    @classmethod
    def from_days(
        cls,
        theme: str,
        counts: Mapping[date, tuple[int, int]],
        start: date,
        end: date,
        channel: str | None = None,
        history_from: date | None = None,
        sources: Mapping[str, Mapping[date, tuple[int, int]]] | None = None,
        source_since: Mapping[str, date] | None = None,
        source_returns: Mapping[str, Sequence[date]] | None = None,
    ) -> Series:
        """Build a dense series from sparse {day: (volume, negatives)}; missing days are 0.
        `sources`: the same per source ({source: {day: (volume, negatives)}})."""
        n = (end - start).days + 1

        def dense(days: Mapping[date, tuple[int, int]]) -> tuple[list[int], list[int]]:
            vols, negs = [0] * max(n, 0), [0] * max(n, 0)
            for day, (vol, neg) in days.items():
                i = (day - start).days
                if 0 <= i < n:
                    vols[i], negs[i] = int(vol), int(neg)
            return vols, negs

        vols, negs = dense(counts)
        by_source = {k: dense(v) for k, v in sources.items()} if sources is not None else None
        return cls(
            theme,
            start,
            vols,
            negs,
            channel,
            history_from,
            by_source,
            source_since,
            source_returns=source_returns,
        )


def source_returns(
    days: Iterable[date], gap: int, known_from: date | None = None
) -> tuple[date, ...]:
    """Days of `days` (one source's days with a verbatim) that come after at least `gap` days
    without any: the source is back from an outage. `known_from`: the first day `days` is
    complete from (unset: from the first one); a day whose silence would reach before it is
    not judged, and the first day is a return only when its silence fits after it."""
    out: list[date] = []
    prev = None
    for day in sorted(set(days)):
        if prev is not None:
            back = (day - prev).days - 1 >= gap
        else:
            back = known_from is not None and (day - known_from).days >= gap
        if back:
            out.append(day)
        prev = day
    return tuple(out)


@dataclass(frozen=True)
class Baseline:
    level: float  # deseasonalised mentions/day
    dow_factors: tuple[float, ...]  # Monday..Sunday, mean 1
    dispersion: float  # negative-binomial alpha of the day-to-day noise
    param_dispersion: float  # relative variance of the baseline estimate (does not average out)
    neg_share: float
    share_dispersion: float  # beta-binomial intra-class correlation (0: binomial)
    history_days: int
    # source -> its baseline negative share, shrunk toward `neg_share` (empty: one source).
    source_shares: Mapping[str, float] = field(default_factory=dict)

    def expected(self, day: date) -> float:
        return self.level * self.dow_factors[day.weekday()]

    def alpha(self, days: int = 1) -> float:
        """NB alpha of a sum over `days` days: the noise part averages out, the fit part not."""
        return self.dispersion / days + self.param_dispersion

    def expected_negatives(self, series: Series, i: int) -> float:
        """Negatives expected on day index `i` of `series` given that day's source mix: each
        source's volume x its own baseline share (a source new to the window, or volume no
        source accounts for, at the pooled share). One source: volume x pooled share."""
        vol = float(series.volumes[i])
        if not self.source_shares or not series.sources:
            return vol * self.neg_share
        expected, covered = 0.0, 0.0
        for name, (vols, _negs) in series.sources.items():
            v = float(vols[i])
            expected += v * self.source_shares.get(name, self.neg_share)
            covered += v
        return expected + max(vol - covered, 0.0) * self.neg_share

    def expected_share(self, series: Series, i: int) -> float:
        """Baseline negative share standardised to day `i`'s source mix."""
        vol = float(series.volumes[i])
        if not self.source_shares or not series.sources or vol <= 0:
            return self.neg_share
        return self.expected_negatives(series, i) / vol


@dataclass(frozen=True)
class Signal:
    """One significant rise of one series on one day."""

    theme: str
    kind: Kind
    day: date
    observed: float  # today's mentions (volume/emerging) or negative share (negativity)
    expected: float  # today's baseline of the same quantity
    p_value: float
    ratio: float
    severity: str
    channel: str | None = None
    volume: int = 0
    negatives: int = 0
    window: int = 1  # test window: 1 (today) or 2 (yesterday + today, ratio/p of the sum)


# --- statistics ----------------------------------------------------------------------------
def nb_sf(observed: float, mu: float, alpha: float) -> float:
    """P(X >= observed) for a negative binomial with mean mu and var mu + alpha mu^2."""
    k = math.ceil(observed)
    if k <= 0:
        return 1.0
    mu = max(mu, 1e-9)
    if alpha <= 1e-9:
        return float(stats.poisson.sf(k - 1, mu))
    r = 1.0 / alpha
    return float(stats.nbinom.sf(k - 1, r, r / (r + mu)))


def nb_cdf(observed: float, mu: float, alpha: float) -> float:
    """P(X <= observed) for the same negative binomial."""
    k = math.floor(observed)
    mu = max(mu, 1e-9)
    if alpha <= 1e-9:
        return float(stats.poisson.cdf(k, mu))
    r = 1.0 / alpha
    return float(stats.nbinom.cdf(k, r, r / (r + mu)))


def betabinom_sf(k: int, n: int, p: float, rho: float) -> float:
    """P(X >= k) for n trials with success p and intra-class correlation rho (0: binomial)."""
    if k <= 0:
        return 1.0
    p = min(max(p, 1e-6), 1 - 1e-6)
    if rho <= 1e-9:
        return float(stats.binom.sf(k - 1, n, p))
    conc = (1.0 - rho) / rho  # a + b
    return float(stats.betabinom.sf(k - 1, n, p * conc, (1 - p) * conc))


def benjamini_hochberg(p_values: Sequence[float], alphas: Sequence[float]) -> list[bool]:
    """Step-up BH; per-hypothesis alpha (per-theme thresholds) compared as p_i <= a_i k / m."""
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i] / max(alphas[i], 1e-300))
    cutoff = -1
    for rank, i in enumerate(order, start=1):
        if p_values[i] <= alphas[i] * rank / m:
            cutoff = rank
    keep = [False] * m
    for rank, i in enumerate(order, start=1):
        keep[i] = rank <= cutoff
    return keep


def severity_of(ratio: float, p_value: float, weight: float = 1.0) -> str:
    """low / medium / high / critical from effect size, evidence and the theme's weight."""
    evidence = min(-math.log10(max(p_value, 1e-300)), 12.0)
    score = (math.log2(max(ratio, 1.0)) + 0.1 * evidence) * weight
    if score >= 3.0:
        return "critical"
    if score >= 2.0:
        return "high"
    if score >= 1.3:
        return "medium"
    return "low"


# --- baseline ------------------------------------------------------------------------------
_CHI2_1_MEDIAN = 0.4549364231195724


_ALPHA_GRID = np.concatenate([[0.0], np.geomspace(1e-4, 10.0, 240)])


def _robust_dispersion(y: np.ndarray, mu: np.ndarray) -> float:
    """NB alpha such that the median squared Pearson residual matches a chi2(1) median
    (the smallest alpha of a fine geometric grid that gets there; one vectorised pass)."""
    ok = mu > 0
    y, mu = y[ok], mu[ok]
    if len(y) < 5:
        return 0.0
    r2 = (y - mu) ** 2
    med = np.median(r2[None, :] / (mu[None, :] + _ALPHA_GRID[:, None] * mu[None, :] ** 2), axis=1)
    below = np.nonzero(med <= _CHI2_1_MEDIAN)[0]
    return float(_ALPHA_GRID[below[0]]) if len(below) else float(_ALPHA_GRID[-1])


def _weekday_outliers(high: np.ndarray, low: np.ndarray, dows: np.ndarray) -> np.ndarray:
    """Days flagged (high or low) whose weekday is off in the same direction on at least 3 of
    its days in the window, all but at most one: that is seasonality (every Monday busy,
    every Sunday empty), not an outlier. A past spike does not cover its weekday's other
    weeks, so it stays flagged."""
    seasonal = np.zeros(len(dows), dtype=bool)
    for d in range(7):
        same = dows == d
        need = max(3, int(same.sum()) - 1)
        for flag in (high, low):
            if int((flag & same).sum()) >= need:
                seasonal |= flag & same
    return seasonal


def _trim_mean(x: np.ndarray, proportion: float) -> float:
    cut = int(proportion * len(x))
    xs = np.sort(x)
    return float(xs[cut : len(xs) - cut].mean()) if len(xs) > 2 * cut else float(xs.mean())


def _fit_counts(
    vols: np.ndarray, dows: np.ndarray, config: DetectorConfig
) -> tuple[float, np.ndarray, float, float]:
    """(level, weekday factors, noise dispersion, parameter dispersion) of some window days."""
    n = len(vols)
    mean = float(vols.mean()) if n else 0.0

    # Day-of-week factors, shrunk towards 1 (James-Stein): kept only as far as their spread
    # exceeds what sampling noise alone would give, so sparse series are not over-fitted.
    factors = np.ones(7)
    factor_var = 0.0
    if mean > 0 and n >= config.min_seasonal_days:
        per_dow = np.array([max(int((dows == d).sum()), 1) for d in range(7)])
        raw = (
            np.array([vols[dows == d].mean() if (dows == d).any() else mean for d in range(7)])
            / mean
        )
        noise_var = (1.0 / mean + config.min_dispersion) / per_dow
        spread = float(np.var(raw))
        weight = max(0.0, 1.0 - float(noise_var.mean()) / spread) if spread > 0 else 0.0
        factors = 1.0 + weight * (raw - 1.0)
        factors = np.clip(factors, 0.05, None)
        factors = factors / factors.mean()
        factor_var = weight * float(noise_var.mean())

    # Level: trimmed mean of deseasonalised counts.
    level = max(_trim_mean(vols / factors[dows], config.trim), 0.0) if n else 0.0

    # Overdispersion by moments (outlier days are already out), corrected for the fitted
    # mean, plus the uncertainty of the fit itself.
    fitted = level * factors[dows]
    denom = float((fitted**2).sum())
    mom = float(((vols - fitted) ** 2 - vols).sum()) / denom if denom > 0 else 0.0
    noise = max(mom * n / max(n - 2, 1), config.min_dispersion)
    level_var = (1.0 / max(level, 0.5) + noise) / max(n, 1)  # relative variance of the level
    return level, factors, noise, level_var + factor_var


COUNT_KINDS: tuple[str, ...] = ("volume", "emerging")  # kinds tested on the count baseline


def _kept_days(
    series: Series, lo: int, hi: int, kinds: Sequence[str], config: DetectorConfig
) -> np.ndarray:
    """Mask of the window days [lo, hi) outside the series' own episodes of `kinds`
    (`Series.held_out`); every day when that would leave fewer than `min_history_days`: a
    shift lasting most of the window has become the normal (its incident then resolves)."""
    keep = np.ones(hi - lo, dtype=bool)
    for kind in kinds:
        for first, last in (series.held_out or {}).get(kind, ()):
            a = max((first - series.start).days - lo, 0)
            b = min((last - series.start).days - lo + 1, hi - lo)
            if a < b:
                keep[a:b] = False
    return keep if int(keep.sum()) >= config.min_history_days else np.ones(hi - lo, dtype=bool)


def fit_baseline(series: Series, day: date, config: DetectorConfig) -> Baseline | None:
    """Seasonal baseline from the window before `day`; None when history is too short.

    Days that are outliers under a robust first pass (an earlier spike, an outage) are left
    out of the fit, so a past episode does not hide the next one. The days of the series' own
    episodes (`Series.held_out`) are left out beforehand: the counts (level, weekday factors,
    dispersion) without its volume / emerging episodes, the negative share without its
    negativity ones, so an ongoing incident is compared with the normal before it.
    """
    end_i = (day - series.start).days - config.guard_days  # exclusive
    start_i = max(0, end_i - config.window_days)
    if series.history_from is not None:  # days before the theme existed are not zeros
        start_i = max(start_i, (series.history_from - series.start).days)
    if end_i - start_i < config.min_history_days:
        return None
    counts = _kept_days(series, start_i, end_i, COUNT_KINDS, config)
    shares = _kept_days(series, start_i, end_i, ("negativity",), config)
    base = _fit_window(series, start_i, end_i, counts, config)
    if np.array_equal(counts, shares):
        return base
    other = _fit_window(series, start_i, end_i, shares, config)
    return replace(
        base,
        neg_share=other.neg_share,
        share_dispersion=other.share_dispersion,
        source_shares=other.source_shares,
    )


def _fit_window(
    series: Series, start_i: int, end_i: int, kept: np.ndarray, config: DetectorConfig
) -> Baseline:
    """`fit_baseline` on the window days [start_i, end_i) where `kept` is True."""
    idx = np.arange(start_i, end_i)[kept]
    vols = np.asarray(series.volumes[start_i:end_i], dtype=float)[kept]
    negs = np.asarray(series.negatives[start_i:end_i], dtype=float)[kept]
    dows = (series.start.weekday() + idx) % 7
    # Per-source window counts (rows: sources); one source needs no standardisation.
    srcs = series.sources or {}
    names = sorted(srcs) if len(srcs) > 1 else []
    src_v = np.array([np.asarray(srcs[k][0][start_i:end_i])[kept] for k in names], dtype=float)
    src_n = np.array([np.asarray(srcs[k][1][start_i:end_i])[kept] for k in names], dtype=float)
    src_v, src_n = src_v.reshape(len(names), len(vols)), src_n.reshape(len(names), len(vols))

    # First pass, robust to a past episode covering up to ~40 % of the window: flat median
    # level and median-based dispersion; days too unlikely under it are left out.
    med = float(np.median(vols))
    if med > 0:
        a0 = _robust_dispersion(vols, np.full(len(vols), med)) + 1.0 / len(vols)
        r = 1.0 / a0
        high = stats.nbinom.sf(np.ceil(vols) - 1, r, r / (r + med)) <= config.outlier_p
        low = stats.nbinom.cdf(np.floor(vols), r, r / (r + med)) <= config.outlier_p
        # Against the flat median alone every (3x) Monday, or every empty Sunday, was left
        # out: the weekday factors never saw them and each Monday alerted.
        keep = ~(high | low) | _weekday_outliers(high, low, dows)
        if config.min_history_days <= keep.sum() < len(vols):
            vols, negs, dows = vols[keep], negs[keep], dows[keep]
            src_v, src_n = src_v[:, keep], src_n[:, keep]
    level, factors, noise, param = _fit_counts(vols, dows, config)

    # Negative share and its day-to-day overdispersion (beta-binomial rho).
    total_v, total_n = float(vols.sum()), float(negs.sum())
    share = (total_n + 1.0) / (total_v + 2.0)
    # Each source's own share, shrunk toward the pooled one by `source_prior` mentions.
    prior = config.source_prior
    own = (src_n.sum(axis=1) + prior * share) / (src_v.sum(axis=1) + prior)
    source_shares = {k: float(p) for k, p in zip(names, own, strict=True)}
    # Each window day's expected share under its own source mix: a mix that varied within
    # the window is not day-to-day overdispersion of the share.
    day_share = (
        (own @ src_v + np.clip(vols - src_v.sum(axis=0), 0, None) * share) / np.maximum(vols, 1)
        if names
        else np.full(len(vols), share)
    )
    rho = 0.0
    used = vols > 0
    if used.sum() >= 3 and 0 < share < 1:
        v, k, e = vols[used], negs[used], np.clip(day_share[used], 1e-6, 1 - 1e-6)
        df = int(used.sum()) - 1
        chi = float((((k - v * e) ** 2) / (v * e * (1 - e))).sum()) / df
        # One standard error of the statistic off first: on a few weeks of small daily
        # counts, chi scatters by ~sqrt(2/df) around 1 even for a binomial share, and a rho
        # read off that noise widens the tail enough to hide a real shift (replays of real
        # reviews: a 6 % -> 37 % negative share was not significant with the raw estimate).
        chi -= math.sqrt(2.0 / df)
        mean_v = float(v.mean())
        if chi > 1 and mean_v > 1:
            rho = min((chi - 1) / (mean_v - 1), 0.5)
    return Baseline(
        level,
        tuple(float(f) for f in factors),
        noise,
        param,
        share,
        rho,
        len(vols),
        source_shares,
    )


# --- detector ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Candidate:
    signal: Signal
    alpha: float


class SpikeDetector:
    """Tests every series on one day; the same code runs `verbatim detect` and the backtest."""

    def __init__(
        self, config: DetectorConfig | None = None, rules: Mapping[str, ThemeRules] | None = None
    ) -> None:
        self.config = config or DetectorConfig()
        self.rules = dict(rules or {})

    def rules_of(self, theme: str) -> ThemeRules:
        return self.rules.get(theme) or rules_for(self.config)

    def warmed_up(self, series: Series, day: date) -> bool:
        """Enough history (config.warmup_days) before `day` for any alert."""
        origin = series.history_from or series.start
        return (day - origin).days >= self.config.warmup_days

    @property
    def source_warmup(self) -> int:
        """Days a new (or returning) source is held out of the tests."""
        cfg = self.config
        if cfg.source_warmup_days is None:  # until its days fill the baseline window
            return cfg.window_days + cfg.guard_days
        return cfg.source_warmup_days

    @property
    def outage_days(self) -> int:
        """Days without a verbatim after which a source warms up again on its return: its
        return day's baseline window holds none of its days (`source_returns`)."""
        return self.config.window_days + self.config.guard_days

    def source_tested_from(self, series: Series, name: str, day: date | None = None) -> date | None:
        """First day source `name` enters the tests of `series` (as of `day`: after its latest
        return up to then); None when it always did (it started with the series' history or
        with the first source, or its first day is unknown)."""
        firsts = series.source_since or {}
        since = firsts.get(name)
        # A source back after an outage longer than the window has no days in it: tested at
        # the pooled share, a complaints form back after six weeks read as a negativity rise.
        backs = [d for d in (series.source_returns or {}).get(name, ()) if day is None or d <= day]
        if backs and (since is None or max(backs) > since):
            since = max(backs)
        if since is None:
            return None
        # The first source to start is the data's start, not one connected later: a first day
        # with only verbatims of no theme held the one source out of every test for 29 days.
        origin = max(series.history_from or series.start, min(firsts.values(), default=since))
        if since <= origin:
            return None
        return since + timedelta(days=self.source_warmup)

    def warming_sources(self, series: Series, day: date) -> list[str]:
        """Sources of `series` still in their warm-up on `day` (held out of its tests)."""
        return [
            k
            for k in sorted(series.sources or {})
            if (since := self.source_tested_from(series, k, day)) is not None and day < since
        ]

    def tested(self, series: Series, day: date) -> Series:
        """`series` as the tests see it on `day`: warming-up sources taken out of every day
        (window and today alike), as if not connected yet; the aggregates keep them."""
        if not series.source_since and not series.source_returns:
            return series
        return series.without(self.warming_sources(series, day))

    def baseline(self, series: Series, day: date) -> Baseline | None:
        i = (day - series.start).days
        if not self.rules_of(series.theme).enabled or i < 0 or i >= len(series.volumes):
            return None
        if not self.warmed_up(series, day):
            return None
        return fit_baseline(series, day, self.config)

    def candidates(
        self, series: Series, day: date, base: Baseline | None = None
    ) -> list[_Candidate]:
        """Raw tests of one series (floors applied, no multiple-testing correction)."""
        cfg, rules = self.config, self.rules_of(series.theme)
        i = (day - series.start).days
        base = base or self.baseline(series, day)
        if base is None:
            return []
        vol, neg = int(series.volumes[i]), int(series.negatives[i])
        exp = base.expected(day)
        out: list[_Candidate] = []

        def make(
            kind: Kind,
            observed: float,
            expected: float,
            p: float,
            ratio: float,
            window: int = 1,
            graded: float | None = None,
        ) -> _Candidate:
            sev = severity_of(ratio if graded is None else graded, p, rules.severity_weight)
            sig = Signal(
                series.theme,
                kind,
                day,
                observed,
                expected,
                p,
                ratio,
                sev,
                series.channel,
                vol,
                neg,
                window,
            )
            return _Candidate(sig, rules.alpha)

        if base.level < cfg.emerging_max_level:
            # Near-absent theme: only a clear emergence counts (a Poisson-ish tail).
            ratio = vol / max(exp, 0.5)
            if vol >= max(cfg.emerging_min_volume, 1) and ratio >= cfg.emerging_min_ratio:
                p = nb_sf(vol, max(exp, 0.5), base.alpha())
                # Graded on volume against the emergence floor: against a near-zero baseline
                # the ratio is at least 10 at the floor, and every new theme was "critical"
                # (now, with no history and the defaults: 6 mentions medium, 7-11 high, 12+
                # critical).
                graded = vol / max(cfg.emerging_min_volume / 2, exp, 0.5)
                out.append(make("emerging", vol, exp, p, ratio, graded=graded))
        elif vol >= rules.min_volume and vol >= cfg.min_ratio * exp:
            p = nb_sf(vol, exp, base.alpha())
            ratio, window, obs, expct = vol / max(exp, 1e-9), 1, float(vol), exp
            if cfg.two_day_test and i >= 1:
                # Both looks are tested: weighted Bonferroni keeps the day's error rate.
                w1 = cfg.day1_weight
                p = p / w1
                prev = day - timedelta(days=1)
                v2 = vol + int(series.volumes[i - 1])
                e2 = exp + base.expected(prev)
                if v2 >= cfg.min_ratio * e2:
                    p2 = nb_sf(v2, e2, base.alpha(2)) / (1 - w1)
                    if p2 < p:  # reported figures stay today's; the test used 2 days
                        p, ratio, window = p2, v2 / e2, 2
            out.append(make("volume", obs, expct, min(p, 1.0), ratio, window))

        if vol >= rules.min_volume and neg >= rules.min_negatives and base.level > 0:
            share = neg / vol
            # Expected for today's source mix (the pooled share when one source): a mostly
            # positive source gone silent is not customers turning negative.
            p0 = base.expected_share(series, i)
            if share >= p0 + cfg.min_share_rise and share >= cfg.min_share_ratio * p0:
                p = betabinom_sf(neg, vol, p0, base.share_dispersion)
                ratio, window = share / p0, 1
                if cfg.two_day_test and i >= 1:  # a sustained shift: yesterday + today
                    w1 = cfg.day1_weight
                    p = p / w1
                    v2 = vol + int(series.volumes[i - 1])
                    n2 = neg + int(series.negatives[i - 1])
                    # Each day at its own mix's expected share.
                    p02 = (
                        (vol * p0 + base.expected_negatives(series, i - 1)) / v2
                        if base.source_shares
                        else p0
                    )
                    if n2 / v2 >= p02 + cfg.min_share_rise:
                        # rho is a within-day correlation: over two days it weighs on each
                        # day's count, not on the 2-day total as one block.
                        rho2 = base.share_dispersion * max(v2 / 2 - 1, 0) / max(v2 - 1, 1)
                        p2 = betabinom_sf(n2, v2, p02, rho2) / (1 - w1)
                        if p2 < p:
                            p, ratio, window = p2, (n2 / v2) / p02, 2
                p = min(1.0, p)
                out.append(make("negativity", share, p0, p, ratio, window))
        return out

    def detect(self, series_list: Iterable[Series], day: date) -> list[Signal]:
        """Significant signals of `day` across all series (BH across the day's candidates).

        Themes of one feed share its noise: each series' dispersion is at least the median
        of the day's series (guards against a window that happened to look too calm)."""
        tested = [self.tested(s, day) for s in series_list]
        fitted = [(s, self.baseline(s, day)) for s in tested]
        disp = [b.dispersion for _, b in fitted if b is not None and b.level >= 5]
        pooled = float(np.median(disp)) if len(disp) >= 3 else 0.0
        cands = [
            c
            for s, b in fitted
            if b is not None
            for c in self.candidates(s, day, replace(b, dispersion=max(b.dispersion, pooled)))
        ]
        keep = benjamini_hochberg([c.signal.p_value for c in cands], [c.alpha for c in cands])
        return [c.signal for c, k in zip(cands, keep, strict=True) if k]


# --- related themes -----------------------------------------------------------------------
def absorb_related(
    detector: SpikeDetector,
    series_list: Iterable[Series],
    signals: Sequence[Signal],
    day: date,
    co_mentions: Mapping[tuple[str, str], int],
    min_explained: float = 0.5,
    active: Iterable[str] = (),
    min_strength: float = 3.0,
) -> tuple[list[Signal], dict[str, str]]:
    """One event, one incident: a burst of verbatims about theme A that also mention B lifts
    B too. B's signal is absorbed into A when the verbatims mentioning both today explain at
    least `min_explained` of B's excess (mentions, or negatives, above its baseline) and A's
    rise is the stronger one (excess in baseline standard deviations). A can be a theme with a
    signal, an open episode (`active`), or a rise of `min_strength` deviations whose own test
    is not significant yet (it usually is the next day). Two independent incidents share few
    verbatims and both stay. Returns (kept signals, {absorbed theme: theme it joins}).
    Per-channel signals are left alone (they feed their theme's incident anyway)."""
    overall = {s.theme: detector.tested(s, day) for s in series_list if s.channel is None}
    signalled = {s.theme for s in signals if s.channel is None and s.theme in overall}
    if not signalled or not co_mentions:
        return list(signals), {}
    excess: dict[str, float] = {}
    strength: dict[str, float] = {}
    for theme, series in overall.items():
        i = (day - series.start).days
        if i < 0 or i >= len(series.volumes):
            continue
        vol, neg = int(series.volumes[i]), int(series.negatives[i])
        base = fit_baseline(series, day, detector.config)
        if base is None:
            excess[theme], strength[theme] = float(vol), 0.0
            continue
        exp = max(base.expected(day), 0.5)
        share = min(max(base.expected_share(series, i), 0.01), 0.99)  # today's source mix
        z_vol = (vol - exp) / math.sqrt(exp + base.alpha() * exp**2)
        z_neg = (neg - share * vol) / math.sqrt(vol * share * (1 - share) + 1.0)
        excess[theme] = max(vol - exp, neg - share * exp, 1.0)
        strength[theme] = max(z_vol, z_neg)
    active = set(active)
    primaries = [t for t in excess if t in signalled or t in active or strength[t] >= min_strength]
    joins: dict[str, str] = {}
    for b in sorted(signalled):
        best, best_strength = None, strength.get(b, 0.0)
        for a in primaries:
            if a == b:
                continue
            both = co_mentions.get((a, b), 0) or co_mentions.get((b, a), 0)
            if both >= min_explained * excess[b] and strength[a] > best_strength:
                best, best_strength = a, strength[a]
        if best is not None:
            joins[b] = best
    kept = [s for s in signals if s.channel is not None or s.theme not in joins]
    return kept, joins


# --- emerging topics ----------------------------------------------------------------------
TOPIC_PREFIX = "topic:"


def topic_theme(topic_id: int) -> str:
    """The `theme` of a topic's series, signals and alerts (e.g. "topic:12")."""
    return f"{TOPIC_PREFIX}{int(topic_id)}"


def topic_id_of(theme: str) -> int | None:
    """The topic id of a `topic_theme` name; None for a taxonomy theme."""
    if not theme.startswith(TOPIC_PREFIX):
        return None
    rest = theme[len(TOPIC_PREFIX) :]
    return int(rest) if rest.isdigit() else None


def detect_growth(
    detector: SpikeDetector, series_list: Iterable[Series], day: date
) -> list[Signal]:
    """Growth of emerging topics on `day`: each series is one topic's verbatims per day
    (theme = `topic_theme(id)`, negatives unused). The volume test (1- and 2-day NB tails,
    min_volume, min_ratio) or, for a topic that was near-absent in its window, the emergence
    test (emerging_min_volume, emerging_min_ratio); BH across the day's topic candidates.
    Every kept signal has kind "emerging" (a growing emerging topic)."""
    cands = []
    for s in (detector.tested(t, day) for t in series_list):
        base = detector.baseline(s, day)
        if base is None:
            continue
        for c in detector.candidates(s, day, base):
            if c.signal.kind in ("volume", "emerging"):
                cands.append(c)
    keep = benjamini_hochberg([c.signal.p_value for c in cands], [c.alpha for c in cands])
    return [replace(c.signal, kind="emerging") for c, k in zip(cands, keep, strict=True) if k]


# --- episodes ------------------------------------------------------------------------------
@dataclass
class Episode:
    """An alert episode; `key` is stable for its whole life (the DB row's alert_key)."""

    key: str
    theme: str
    kind: str
    first_day: date
    last_day: date
    severity: str
    observed: float
    expected: float
    p_value: float | None
    channel: str | None = None
    revision: int = 1
    status: str = "open"
    peak_ratio: float = 1.0
    details: dict[str, object] = field(default_factory=dict)

    @property
    def scope(self) -> tuple[str, str, str | None]:
        return (self.theme, self.kind, self.channel)


@dataclass(frozen=True)
class EpisodeEvent:
    action: Literal["new", "update", "resolve"]
    episode: Episode
    notify: bool  # True when a new revision is worth a message (new, or escalated)


def episode_key(theme: str, kind: str, channel: str | None, first_day: date) -> str:
    return f"{theme}|{kind}|{channel or '*'}|{first_day.isoformat()}"


def _cooldown_of(cooldown: Mapping[str, int] | int, theme: str) -> int:
    return cooldown.get(theme, 3) if isinstance(cooldown, Mapping) else cooldown


def hold_out_episodes(
    series_list: Iterable[Series],
    episodes: Iterable[Episode],
    cooldown: Mapping[str, int] | int = 3,
) -> list[Series]:
    """Each series with the days of its own episodes (same theme and channel; any status)
    held out of the baselines of their kind (`Series.held_out`): from the first day the
    episode's first test used (yesterday too for a 2-day test) to its last signal + the
    cooldown (the days it stays open). `verbatim detect` and the backtest replay both call
    this before testing a day, with the episodes known before that day, `cooldown` as for
    `update_episodes`. The spans depend on the episode's days only, not on whether it is
    resolved yet: a day re-checked later (the look-back) gets the baseline it first got."""
    spans: dict[tuple[str, str | None], dict[str, list[tuple[date, date]]]] = {}
    for ep in episodes:
        window = ep.details.get("window", 1)
        lead = int(window) - 1 if isinstance(window, int | float) and window > 1 else 0
        first = ep.first_day - timedelta(days=lead)
        last = ep.last_day + timedelta(days=_cooldown_of(cooldown, ep.theme))
        spans.setdefault((ep.theme, ep.channel), {}).setdefault(ep.kind, []).append((first, last))
    out = []
    for s in series_list:
        own = spans.get((s.theme, s.channel))
        out.append(replace(s, held_out={k: tuple(v) for k, v in own.items()}) if own else s)
    return out


def update_episodes(
    episodes: Iterable[Episode],
    signals: Iterable[Signal],
    day: date,
    cooldown: Mapping[str, int] | int = 3,
) -> list[EpisodeEvent]:
    """Apply one day's signals to the known episodes; idempotent, and safe to replay a few
    past days again (the job re-checks a short look-back window on every run).

    `episodes`: the open ones plus the recently resolved ones. For each signal, an episode of
    the same (theme, kind, channel) whose span, widened by `cooldown + 1` days on each side,
    contains `day` absorbs it: a day already inside the span changes nothing; a later day
    moves `last_day` (revision + notification only when the severity escalates); an earlier
    day (catch-up) moves `first_day` back silently. Otherwise a new episode starts. Open
    episodes left quiet for more than their cooldown are resolved.
    """

    def cool(theme: str) -> int:
        return _cooldown_of(cooldown, theme)

    by_scope: dict[tuple[str, str, str | None], list[Episode]] = {}
    for ep in episodes:
        by_scope.setdefault(ep.scope, []).append(ep)
    events: list[EpisodeEvent] = []
    touched: set[str] = set()
    seen: set[tuple[str, str, str | None]] = set()
    for sig in sorted(signals, key=lambda s: (s.theme, s.kind, s.channel or "")):
        scope = (sig.theme, sig.kind, sig.channel)
        if scope in seen:
            continue
        seen.add(scope)
        gap = cool(sig.theme) + 1
        near = [
            e
            for e in by_scope.get(scope, [])
            if (e.first_day - day).days <= gap and (day - e.last_day).days <= gap
        ]
        if near:
            ep = max(near, key=lambda e: e.last_day)
            touched.add(ep.key)
            escalated = SEVERITIES.index(sig.severity) > SEVERITIES.index(ep.severity)
            same_day = day == ep.last_day
            if ep.first_day <= day <= ep.last_day:
                # A past day of the episode was already applied (re-run): nothing to do. Its
                # latest day evaluated again with more of its data (the scheduler's ticks
                # during the day, late rows) is refreshed: else the first tick that saw the
                # signal froze the day's figures and severity (32 mentions, "high", for a day
                # that ended at 64, "critical", and an escalation never told). A resolved
                # episode's days stay as they were: it was quiet for its whole cooldown, and
                # late rows for its last day (within the look-back) reopened it for that run
                # and told an escalation on an incident that stayed resolved.
                last = ep.details.get("last_observed", ep.observed)
                unchanged = isinstance(last, int | float) and math.isclose(
                    float(last), sig.observed, rel_tol=1e-9, abs_tol=1e-12
                )
                if ep.status != "open" or not same_day or (unchanged and not escalated):
                    continue
            if day < ep.first_day:
                earlier = replace(
                    ep, first_day=day, details={**ep.details, "days_active": _days_active(ep) + 1}
                )
                events.append(EpisodeEvent("update", earlier, False))
                continue
            # The peak day's count stays with the peak day's baseline: the latest day's
            # baseline under the peak's count is a rise no day had (a Friday's 45 against a
            # Sunday's 2.5 expected read "+1700 %"). The latest day is in `details`.
            keep_peak = sig.kind != "negativity" and not escalated and ep.observed >= sig.observed
            updated = replace(
                ep,
                status="open",
                last_day=day,
                observed=ep.observed if keep_peak else sig.observed,
                expected=ep.expected if keep_peak else sig.expected,
                p_value=min(ep.p_value if ep.p_value is not None else 1.0, sig.p_value),
                severity=sig.severity if escalated else ep.severity,
                revision=ep.revision + (1 if escalated else 0),
                peak_ratio=max(ep.peak_ratio, sig.ratio),
                details={
                    **ep.details,
                    **(
                        {"volume": sig.volume, "negatives": sig.negatives}
                        if same_day and day == ep.first_day
                        else {}
                    ),
                    "last_observed": sig.observed,
                    "last_expected": sig.expected,
                    "days_active": _days_active(ep) + (0 if same_day else 1),
                },
            )
            events.append(EpisodeEvent("update", updated, escalated))
        else:
            new = Episode(
                key=episode_key(sig.theme, sig.kind, sig.channel, day),
                theme=sig.theme,
                kind=sig.kind,
                first_day=day,
                last_day=day,
                severity=sig.severity,
                observed=sig.observed,
                expected=sig.expected,
                p_value=sig.p_value,
                channel=sig.channel,
                peak_ratio=sig.ratio,
                details={
                    "window": sig.window,
                    "volume": sig.volume,
                    "negatives": sig.negatives,
                    "days_active": 1,
                },
            )
            events.append(EpisodeEvent("new", new, True))
    for eps in by_scope.values():
        for ep in eps:
            if (
                ep.status == "open"
                and ep.key not in touched
                and (day - ep.last_day).days > cool(ep.theme)
            ):
                events.append(EpisodeEvent("resolve", replace(ep, status="resolved"), False))
    return events


def _days_active(ep: Episode) -> int:
    value = ep.details.get("days_active", 1)
    return int(value) if isinstance(value, int | float | str) else 1


def apply_events(episodes: dict[str, Episode], events: Iterable[EpisodeEvent]) -> None:
    """In-memory store helper (backtest, tests): key -> latest episode state."""
    for ev in events:
        episodes[ev.episode.key] = ev.episode
