"""Evaluate the spike detector on synthetic timelines with known injected spikes.

Ground truth comes from injection, not labels: daily mention counts per theme are sampled
with weekly seasonality (baseline >= 10 mentions/day), optional overdispersion (negative
binomial), then spikes are injected on known days/themes. Every timeline is replayed day by
day with `jobs.backtest.replay` (the code path of `verbatim backtest`, same detector and
episode logic as `verbatim detect`) and compared with a naive detector (today > 2x the
trailing 7-day mean, today >= 10).

Figures printed:
- quiet 90-day timelines (8 themes, no injection): alerts per timeline, share with zero alerts;
- injected spikes (one per timeline, 3 days long): recall (alert of the right theme and kind
  on day 1 or 2 of the spike), recall by baseline band, mean delay, precision (alerts that
  match an injected spike / all alerts on those timelines, late matches count as true).

Optional `--text`: an end-to-end run through `run_backtest` on feeds assembled from real
French review texts (../shared/data/trustpilot_fr, read at run time, never stored), pooled by
the theme the analyzer detects in them.

    nice -n 10 python benchmarks/eval_spikes.py            # main figures (~5 min on 2 cores)
    nice -n 10 python benchmarks/eval_spikes.py --quick    # smaller run
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.backtest import replay  # noqa: E402
from nlp.spikes import DetectorConfig, Series, Signal, SpikeDetector, severity_of  # noqa: E402

START = date(2025, 9, 1)  # a Monday
THEMES = [
    "livraison",
    "emballage",
    "service_client",
    "retours_remboursements",
    "qualite_produit",
    "prix",
    "commande_paiement",
    "site_appli",
]
SPIKE_LEN = 3


@dataclass
class Timeline:
    counts: dict[tuple[str, str | None], dict[date, tuple[int, int]]]
    base: dict[str, float]
    days: int
    truth: list[tuple[str, str, int]] = field(default_factory=list)  # theme, kind, onset


def make_timeline(
    rng: np.random.Generator, days: int, dispersion: float, base_range: tuple[float, float]
) -> tuple[Timeline, dict[str, Any]]:
    """Daily (volume, negatives) per theme with weekly seasonality and NB noise."""
    params: dict[str, Any] = {}
    lo, hi = np.log(base_range[0]), np.log(base_range[1])
    for theme in THEMES:
        weekend = rng.uniform(0.55, 1.0)
        weekly = np.array([rng.uniform(0.95, 1.15) for _ in range(5)] + [weekend, weekend])
        weekly = weekly / weekly.mean()
        params[theme] = {
            "base": float(np.exp(rng.uniform(lo, hi))),
            "weekly": weekly,
            "share": float(rng.uniform(0.15, 0.45)),
        }
    return Timeline({}, {t: p["base"] for t, p in params.items()}, days), {
        "params": params,
        "dispersion": dispersion,
    }


def sample(
    rng: np.random.Generator,
    tl: Timeline,
    spec: dict[str, Any],
    inject: list[tuple[str, str, int, float]],
) -> Timeline:
    """Draw the counts; `inject`: (theme, kind, onset, size) with size = volume factor
    (kind volume) or negative-share rise (kind negativity)."""
    disp = spec["dispersion"]
    for theme, p in spec["params"].items():
        mu = np.array(
            [p["base"] * p["weekly"][(START + timedelta(i)).weekday()] for i in range(tl.days)]
        )
        share = np.full(tl.days, p["share"])
        for th, kind, onset, size in inject:
            if th != theme:
                continue
            sl = slice(onset, min(onset + SPIKE_LEN, tl.days))
            if kind == "volume":
                mu[sl] *= size
            else:
                share[sl] = np.minimum(share[sl] + size, 0.95)
        lam = rng.gamma(1 / disp, mu * disp) if disp > 0 else mu
        vols = rng.poisson(lam)
        negs = rng.binomial(vols, share)
        tl.counts[(theme, None)] = {
            START + timedelta(i): (int(v), int(n))
            for i, (v, n) in enumerate(zip(vols, negs, strict=True))
        }
    tl.truth = [(th, kind, onset) for th, kind, onset, _ in inject]
    return tl


class NaiveDetector:
    """Today's volume > 2x the trailing 7-day mean and >= 10 (volume kind only)."""

    def __init__(self) -> None:
        self.config = DetectorConfig()
        self.rules: dict[str, Any] = {}

    def detect(self, series_list: list[Series], day: date) -> list[Signal]:
        out = []
        for s in series_list:
            i = (day - s.start).days
            if i < 7:
                continue
            today = s.volumes[i]
            mean = float(np.mean(s.volumes[i - 7 : i]))
            if today >= 10 and today > 2 * mean:
                ratio = today / max(mean, 1e-9)
                out.append(
                    Signal(
                        s.theme,
                        "volume",
                        day,
                        today,
                        mean,
                        1.0,
                        ratio,
                        severity_of(ratio, 1.0),
                        None,
                        today,
                        s.negatives[i],
                    )
                )
        return out


def run(detector: Any, tl: Timeline) -> list[dict[str, Any]]:
    end = START + timedelta(tl.days - 1)
    return list(replay(tl.counts, START, end, detector, THEMES))


@dataclass
class Score:
    events: int = 0
    hit2: int = 0
    hit_any: int = 0
    delays: list[int] = field(default_factory=list)
    alerts: int = 0
    true_alerts: int = 0
    by_band: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, tl: Timeline, alerts: list[dict[str, Any]], cooldown: int = 3) -> None:
        self.alerts += len(alerts)
        matched_alerts: set[int] = set()
        for theme, kind, onset in tl.truth:
            self.events += 1
            band = band_of(tl.base[theme])
            self.by_band[band][1] += 1
            best = None
            for k, a in enumerate(alerts):
                d = (date.fromisoformat(a["day"]) - START).days - onset
                if a["theme"] == theme and a["kind"] == kind and 0 <= d < SPIKE_LEN + cooldown:
                    matched_alerts.add(k)
                    best = d if best is None else min(best, d)
            if best is not None and best < SPIKE_LEN:
                self.hit_any += 1
                self.delays.append(best)
            if best is not None and best <= 1:
                self.hit2 += 1
                self.by_band[band][0] += 1
        self.true_alerts += len(matched_alerts)

    def line(self, name: str) -> str:
        rec = self.hit2 / self.events if self.events else float("nan")
        prec = self.true_alerts / self.alerts if self.alerts else float("nan")
        delay = float(np.mean(self.delays)) if self.delays else float("nan")
        bands = " ".join(f"{b}:{h}/{n}" for b, (h, n) in sorted(self.by_band.items()))
        return (
            f"  {name:<8} recall@day1-2 {rec:.3f} ({self.hit2}/{self.events})  "
            f"recall@spike {self.hit_any / max(self.events, 1):.3f}  precision {prec:.3f} "
            f"({self.true_alerts}/{self.alerts})  mean delay {delay:.2f} d  [{bands}]"
        )


def band_of(base: float) -> str:
    return "10-20" if base < 20 else "20-40" if base < 40 else "40+"


def quiet_block(
    rng: np.random.Generator,
    n: int,
    disp: float,
    detectors: dict[str, Any],
    base_range: tuple[float, float],
) -> None:
    totals = {k: [] for k in detectors}
    kinds: dict[str, dict[str, int]] = {k: defaultdict(int) for k in detectors}
    for _ in range(n):
        tl, spec = make_timeline(rng, 90, disp, base_range)
        sample(rng, tl, spec, [])
        for name, det in detectors.items():
            alerts = run(det, tl)
            totals[name].append(len(alerts))
            for a in alerts:
                kinds[name][a["kind"]] += 1
    for name, vals in totals.items():
        zero = sum(v == 0 for v in vals)
        print(
            f"  {name:<8} quiet 90-day timelines: {sum(vals)} alert(s) over {n} timelines "
            f"({np.mean(vals):.2f}/timeline), {zero}/{n} with zero alerts  "
            f"{dict(kinds[name])}"
        )


def spike_block(
    rng: np.random.Generator,
    n: int,
    disp: float,
    kind: str,
    size: float,
    detectors: dict[str, Any],
    base_range: tuple[float, float],
) -> None:
    scores = {k: Score() for k in detectors}
    for _ in range(n):
        tl, spec = make_timeline(rng, 90, disp, base_range)
        theme = THEMES[int(rng.integers(len(THEMES)))]
        onset = int(rng.integers(40, 90 - SPIKE_LEN))
        sample(rng, tl, spec, [(theme, kind, onset, size)])
        for name, det in detectors.items():
            scores[name].add(tl, run(det, tl))
    for name, sc in scores.items():
        if kind != "volume" and name == "naive":
            continue
        print(sc.line(name))


def text_block(args: argparse.Namespace) -> None:
    """End to end: feeds of real review texts pooled by detected theme -> run_backtest."""
    from core.analysis import build_analyzer
    from core.settings import Settings
    from jobs.backtest import run_backtest
    from nlp.taxonomy import load_taxonomy

    data = Path(args.data) / "trustpilot_fr"
    files = sorted(data.glob("*.jsonl"))
    if not files:
        print(f"  (skipped: no JSONL under {data})")
        return
    rng = random.Random(args.seed)
    texts: list[str] = []
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    t = json.loads(line).get("text")
                except json.JSONDecodeError:
                    continue
                if isinstance(t, str) and 20 < len(t) < 400:
                    texts.append(t)
    rng.shuffle(texts)
    texts = texts[: args.text_pool]
    tax = load_taxonomy("ecommerce")
    with tempfile.TemporaryDirectory() as tmp:
        analyzer = build_analyzer(Settings(data_dir=Path(tmp)), backend="lexicon", taxonomy=tax)
        t0 = time.time()
        docs = analyzer.analyze(texts)
        pool: dict[str, list[str]] = defaultdict(list)
        for text, doc in zip(texts, docs, strict=True):
            ids = {m.theme for m in doc.themes}
            if len(ids) == 1:
                pool[ids.pop()].append(text)
        print(
            f"  pool: {len(texts)} texts analysed in {time.time() - t0:.0f}s; single-theme "
            f"texts per theme: { {k: len(v) for k, v in sorted(pool.items())} }"
        )
        themes = [t for t in THEMES if len(pool[t]) >= 30]
        hits = events = alerts_total = true_total = quiet_alerts = 0
        for k in range(args.text_timelines):
            spike = k % 2 == 0  # every other timeline is quiet
            theme = rng.choice(themes)
            onset = rng.randrange(35, 55)
            lines = []
            for d in range(60):
                day = START + timedelta(d)
                w = 0.7 if day.weekday() >= 5 else 1.1
                for th in themes:
                    n = int(np.random.default_rng(rng.randrange(1 << 30)).poisson(12 * w))
                    if spike and th == theme and onset <= d < onset + SPIKE_LEN:
                        n *= 2
                    for _ in range(n):
                        lines.append(
                            json.dumps(
                                {
                                    "id": f"{k}-{len(lines)}",
                                    "text": rng.choice(pool[th]),
                                    "created_at": f"{day.isoformat()}T12:00:00Z",
                                },
                                ensure_ascii=False,
                            )
                        )
            feed, out = Path(tmp) / "feed.jsonl", Path(tmp) / "alerts.jsonl"
            feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
            res = run_backtest(feed, out, analyzer=analyzer, taxonomy=tax, warn=lambda m: None)
            alerts = res.alerts
            alerts_total += len(alerts)
            if not spike:
                quiet_alerts += len(alerts)
                continue
            events += 1
            ok = [
                a
                for a in alerts
                if a["theme"] == theme
                and a["kind"] == "volume"
                and 0 <= (date.fromisoformat(a["day"]) - START).days - onset < 6
            ]
            true_total += len(ok)
            if any((date.fromisoformat(a["day"]) - START).days - onset <= 1 for a in ok):
                hits += 1
        print(
            f"  text feeds (60 days, themes {len(themes)}, ~12 texts/day/theme, +100% x3 days):"
            f" recall@day1-2 {hits}/{events}; alerts on spiked feeds "
            f"{alerts_total - quiet_alerts} ({true_total} true); alerts on "
            f"{args.text_timelines - events} quiet feeds: {quiet_alerts}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--alpha", type=float, default=None, help="override DetectorConfig.alpha")
    ap.add_argument(
        "--day1-weight", type=float, default=None, help="override DetectorConfig.day1_weight"
    )
    ap.add_argument("--text", action="store_true", help="also the end-to-end text run")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data"))
    ap.add_argument("--text-pool", type=int, default=3000)
    ap.add_argument("--text-timelines", type=int, default=6)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    overrides: dict[str, float] = {}
    if args.alpha is not None:
        overrides["alpha"] = args.alpha
    if args.day1_weight is not None:
        overrides["day1_weight"] = args.day1_weight
    cfg = DetectorConfig(**overrides)  # type: ignore[arg-type]
    detectors = {"detector": SpikeDetector(cfg), "naive": NaiveDetector()}
    n_quiet, n_spike = (8, 30) if args.quick else (25, 100)
    base = (10.0, 80.0)
    t0 = time.time()
    print(f"config: {cfg}")
    for disp in (0.0, 0.03):
        noise = "Poisson" if disp == 0 else f"neg. binomial alpha={disp}"
        print(
            f"\n== noise: {noise}; 8 themes, baselines log-uniform {base[0]:.0f}-{base[1]:.0f}"
            "/day, weekly seasonality =="
        )
        quiet_block(rng, n_quiet, disp, detectors, base)
        print(f" volume +100% for {SPIKE_LEN} days, {n_spike} timelines:")
        spike_block(rng, n_spike, disp, "volume", 2.0, detectors, base)
        if disp == 0:
            for size in (1.5, 3.0):
                print(f" volume {size - 1:+.0%} for {SPIKE_LEN} days, {n_spike // 2} timelines:")
                spike_block(rng, n_spike // 2, disp, "volume", size, detectors, base)
            print(f" baseline exactly 10-12/day, volume +100%, {n_spike // 2} timelines:")
            spike_block(rng, n_spike // 2, disp, "volume", 2.0, detectors, (10.0, 12.0))
        print(
            f" negative share +0.25 for {SPIKE_LEN} days (volume unchanged), "
            f"{n_spike // 2} timelines:"
        )
        spike_block(rng, n_spike // 2, disp, "negativity", 0.25, detectors, base)
    print(f"\n(count-level part: {time.time() - t0:.0f}s)")
    if args.text:
        print("\n== end to end on real texts (run_backtest) ==")
        text_block(args)


if __name__ == "__main__":
    main()
