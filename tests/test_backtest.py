"""`verbatim backtest`: replay a generated feed (template texts written for this test) through
the real analyzer and detector; check the alert file contract and robustness to bad input."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.models import DailyAggregate
from jobs.backtest import parse_day, read_feed

START = date(2026, 2, 2)
DAYS = 56
SPIKE_DAY = 45  # livraison triples on days 45-47

TEMPLATES = {
    "livraison": [
        "Ma livraison est arrivée avec {n} jours de retard, colis introuvable.",
        "Colis toujours pas reçu après {n} jours, le suivi ne bouge plus.",
        "Le livreur n'est jamais passé, livraison ratée encore une fois ({n}e fois).",
        "Livraison rapide en {n} jours, colis bien reçu.",
    ],
    "service_client": [
        "Le service client ne répond jamais au téléphone, injoignable depuis {n} jours.",
        "Conseillère très aimable, réponse en {n} heures, merci au service client.",
        "J'ai envoyé {n} mails au service client sans aucune réponse.",
    ],
    "prix": [
        "Prix correct, frais de port un peu chers ({n} euros).",
        "Beaucoup trop cher, {n} euros de plus qu'ailleurs, le prix est abusé.",
        "Très bon prix avec le code promo, {n} % de réduction.",
    ],
}


def review_aggregate(
    day: date, theme: str, source: str, volume: int, negatives: int
) -> DailyAggregate:
    """One `daily_aggregates` row of review channel (the rest of the volume positive)."""
    return DailyAggregate(
        day=day,
        theme=theme,
        channel="review",
        source=source,
        volume=volume,
        negatives=negatives,
        positives=volume - negatives,
    )


def _detected(sessions) -> list[tuple[str, str]]:
    """The alerts `verbatim detect` stored: (kind, first day), sorted."""
    from sqlalchemy import select

    from core.models import Alert

    with sessions() as s:
        return sorted((a.kind, a.first_day.isoformat()) for a in s.execute(select(Alert)).scalars())


def _replayed(settings, total, per, last_day: int, source_days=None) -> list[tuple[str, str]]:
    """The replay's alerts on livraison over days 0..`last_day` from START, by source `per`,
    with the settings `verbatim detect` uses: (kind, day), sorted."""
    from jobs.backtest import replay
    from nlp.spikes import DetectorConfig, SpikeDetector, rules_from_taxonomy
    from nlp.taxonomy import load_taxonomy

    tax = load_taxonomy("ecommerce")
    config = DetectorConfig(warmup_days=settings.detection_warmup_days)
    detector = SpikeDetector(config, rules_from_taxonomy(tax, config))
    lines = replay(
        {("livraison", None): total},
        START,
        START + timedelta(days=last_day),
        detector,
        tax.ids,
        co_mentions={},
        sources={("livraison", None): per},
        source_days=source_days,
    )
    return sorted((a["kind"], a["day"]) for a in lines)


def write_feed(path: Path, seed: int = 7, spike: bool = True) -> None:
    rng = random.Random(seed)
    lines: list[str] = []
    k = 0
    for d in range(DAYS):
        day = START + timedelta(days=d)
        weekend = day.weekday() >= 5
        for theme, templates in TEMPLATES.items():
            base = 12 * (0.8 if weekend else 1.05)
            n = sum(rng.random() < base / 40 for _ in range(40))  # binomial ~ base
            if spike and theme == "livraison" and SPIKE_DAY <= d < SPIKE_DAY + 3:
                n *= 3
            for _ in range(n):
                k += 1
                ts = datetime(
                    day.year, day.month, day.day, rng.randrange(24), rng.randrange(60), tzinfo=UTC
                )
                row = {
                    "id": f"r{k}",
                    "text": rng.choice(templates).format(n=rng.randint(2, 9)),
                    "created_at": ts.isoformat().replace("+00:00", "Z"),
                }
                if k % 3:
                    row["channel"] = "review" if k % 2 else "social"
                lines.append(json.dumps(row, ensure_ascii=False))
    rng.shuffle(lines)  # unsorted input
    lines[10:10] = [
        "{not json",
        json.dumps({"id": "x", "text": "sans date"}),
        json.dumps({"id": "y", "text": "", "created_at": "2026-02-03"}),
        json.dumps({"id": "z", "text": "date invalide", "created_at": "hier"}),
        "",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def backtest_run(tmp_path_factory: pytest.TempPathFactory):
    from verbatim_cli import app

    tmp = tmp_path_factory.mktemp("bt")
    feed, out = tmp / "feed.jsonl", tmp / "alerts.jsonl"
    write_feed(feed)
    mp = pytest.MonkeyPatch()
    mp.setenv("VERBATIM_CONFIG", os.devnull)
    mp.setenv("VERBATIM_DATA_DIR", str(tmp / "data"))
    result = CliRunner().invoke(app, ["backtest", str(feed), "-o", str(out)])
    mp.undo()
    return result, out


@pytest.mark.slow
def test_backtest_reports_the_injected_spike_once(backtest_run) -> None:
    result, out = backtest_run
    assert result.exit_code == 0, result.output
    assert "4 rejected" in result.output
    assert "line 11" in result.output  # bad lines are reported with their number
    alerts = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    for a in alerts:
        assert {"theme", "kind", "day", "severity", "observed", "expected"} <= set(a)
        assert a["kind"] in ("volume", "negativity", "emerging")
        assert a["severity"] in ("low", "medium", "high", "critical")
        date.fromisoformat(a["day"])
    spike_days = {(START + timedelta(days=SPIKE_DAY + i)).isoformat() for i in range(2)}
    vol = [a for a in alerts if a["theme"] == "livraison" and a["kind"] == "volume"]
    assert len(vol) == 1, alerts  # the 3-day episode is reported once
    assert vol[0]["day"] in spike_days and vol[0]["update"] is False
    assert vol[0]["observed"] > 2 * vol[0]["expected"]
    # The quiet themes raise nothing.
    assert not [a for a in alerts if a["theme"] in ("prix", "service_client")], alerts


@pytest.mark.slow
def test_backtest_quiet_feed_raises_nothing(tmp_path: Path) -> None:
    from core.analysis import build_analyzer
    from core.settings import Settings
    from jobs.backtest import run_backtest
    from nlp.taxonomy import load_taxonomy

    feed, out = tmp_path / "feed.jsonl", tmp_path / "alerts.jsonl"
    write_feed(feed, seed=8, spike=False)
    tax = load_taxonomy("ecommerce")
    analyzer = build_analyzer(Settings(data_dir=tmp_path / "d"), backend="lexicon", taxonomy=tax)
    warnings: list[str] = []
    result = run_backtest(feed, out, analyzer=analyzer, taxonomy=tax, warn=warnings.append)
    assert result.bad == 4 and len(warnings) == 4
    assert result.days == DAYS
    assert out.read_text() == ""


def test_parse_day_and_bad_lines() -> None:
    assert parse_day("2026-03-01") == date(2026, 3, 1)
    assert parse_day("2026-03-01T23:30:00-02:00") == date(2026, 3, 2)  # UTC day
    assert parse_day("2026-03-01 10:00:00") == date(2026, 3, 1)
    assert parse_day(1772323200) == date(2026, 3, 1)
    for bad in (None, "", "hier", True, float("nan")):
        with pytest.raises(ValueError):
            parse_day(bad)
    warnings: list[str] = []
    rows, bad = read_feed(
        [
            '{"id": 1, "text": "ok", "created_at": "2026-01-01"}',
            "[1]",
            '{"text": "pas de date"}',
            "   ",
        ],
        warnings.append,
    )
    assert len(rows) == 1 and bad == 2 and rows[0].channel == "review" and rows[0].id == "1"
    assert warnings[0].startswith("line 2")


def test_cli_backtest_missing_feed(tmp_path: Path) -> None:
    from verbatim_cli import app

    res = CliRunner().invoke(
        app, ["backtest", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "a.jsonl")]
    )
    assert res.exit_code == 2 and "feed not found" in res.output


def test_cli_backtest_help_says_it_reads_csv() -> None:
    """The help said "JSONL feed" while the command reads CSV as `verbatim ingest` does."""
    from verbatim_cli import app

    res = CliRunner().invoke(app, ["backtest", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "JSONL or CSV feed" in res.output
    # --per-channel adds the channel series to the overall ones, as `verbatim detect
    # --per-channel`: « One series per channel » read as the overall alerts left out.
    assert "Also one series per channel" in res.output


def test_replay_reports_an_episode_once_and_escalations_on_request() -> None:
    import numpy as np

    from jobs.backtest import replay
    from nlp.spikes import SpikeDetector

    rng = np.random.default_rng(4)
    counts: dict = {("prix", None): {}}
    for d in range(60):
        vol = int(rng.poisson(20)) + {50: 30, 51: 60, 52: 120}.get(d, 0)
        counts[("prix", None)][START + timedelta(days=d)] = (vol, vol // 4)
    end = START + timedelta(days=59)
    plain = list(replay(counts, START, end, SpikeDetector(), ["prix", "livraison"]))
    assert [(a["theme"], a["kind"], a["update"]) for a in plain] == [("prix", "volume", False)]
    assert plain[0]["day"] in {(START + timedelta(days=d)).isoformat() for d in (50, 51)}
    full = list(replay(counts, START, end, SpikeDetector(), ["prix"], include_updates=True))
    assert full[0] == plain[0]
    updates = full[1:]
    assert updates and all(u["update"] and u["episode"] == plain[0]["episode"] for u in updates)
    assert [u["revision"] for u in updates] == list(range(2, 2 + len(updates)))


def test_alerts_group_into_incidents() -> None:
    from jobs.backtest import group_incidents

    alerts = [
        {"theme": "emballage", "kind": "volume", "day": "2026-03-02"},
        {"theme": "emballage", "kind": "negativity", "day": "2026-03-03"},
        {"theme": "livraison", "kind": "volume", "day": "2026-03-03"},
        {"theme": "emballage", "kind": "volume", "day": "2026-03-20"},
    ]
    incs = group_incidents(alerts, gap=4)
    assert [(i["theme"], i["first_day"], i["kinds"]) for i in incs] == [
        ("emballage", "2026-03-02", ["negativity", "volume"]),
        ("livraison", "2026-03-03", ["volume"]),
        ("emballage", "2026-03-20", ["volume"]),
    ]


def test_incidents_are_grouped_as_detect_groups_them(settings, sessions) -> None:
    """A volume episode lasting ten days and a negativity alert raised on its seventh day are
    one incident for `verbatim detect` (the incident's days run to the episode's last day);
    the backtest grouped alerts by the days they were raised only (7 days apart > cooldown
    + 1) and named two incidents."""
    from sqlalchemy import select

    from core.models import Alert
    from jobs.backtest import replay
    from jobs.detect import run_detect
    from nlp.spikes import DetectorConfig, SpikeDetector, rules_from_taxonomy
    from nlp.taxonomy import load_taxonomy

    series: dict[date, tuple[int, int]] = {}
    for d in range(50):
        vol, neg = (40, 8) if 30 <= d < 40 else (10 + d % 3, 2)  # volume x4 on days 30-39
        series[START + timedelta(days=d)] = (vol, 36 if 37 <= d < 40 else neg)  # negatives
    with sessions() as s:
        for day, (vol, neg) in series.items():
            for theme, v in (("livraison", vol), ("*", 3 * vol)):
                s.add(review_aggregate(day, theme, "x", v, neg))
        s.commit()
    run_detect(settings, sessions)
    with sessions() as s:
        detected = sorted(
            (a.kind, a.first_day.isoformat(), a.incident_id)
            for a in s.execute(select(Alert)).scalars()
        )
    assert [k for k, _, _ in detected] == ["negativity", "volume"]
    assert len({i for _, _, i in detected}) == 1  # one incident, one Slack thread
    tax = load_taxonomy("ecommerce")
    config = DetectorConfig(warmup_days=settings.detection_warmup_days)
    detector = SpikeDetector(config, rules_from_taxonomy(tax, config))
    lines = list(
        replay(
            {("livraison", None): series},
            START,
            START + timedelta(days=49),
            detector,
            tax.ids,
            co_mentions={},
        )
    )
    assert sorted((a["kind"], a["day"]) for a in lines) == [(k, d) for k, d, _ in detected]
    first = min(d for _, d, _ in detected)
    assert {a["incident"] for a in lines} == {f"livraison|{first}"}


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_source_connected_later_warms_up_in_detect_and_in_the_replay(
    settings, request: pytest.FixtureRequest, db: str
) -> None:
    """A complaints form (40/day, 70 % negative) connected on day 25 next to the app store
    (60/day, 10 %): counted at the pooled share from its first day, it raised negativity
    alerts until it had history. Held out until its days fill the baseline window, detect
    and the replay both raise only the app store's real rise (days 70-72), and detect says
    which source is warming up."""
    import numpy as np

    from jobs.detect import run_detect

    sessions = request.getfixturevalue("sessions" if db == "sqlite" else "pg_sessions")
    rng = np.random.default_rng(11)
    per: dict[str, dict[date, tuple[int, int]]] = {"appstore": {}, "plaintes": {}}
    for d in range(76):
        day = START + timedelta(days=d)
        for source, mu, share in (("appstore", 60, 0.10), ("plaintes", 40, 0.70)):
            if source == "plaintes" and d < 25:
                continue  # the form is connected on day 25
            share = 0.45 if source == "appstore" and d >= 70 else share  # a real rise
            vol = int(rng.poisson(mu))
            per[source][day] = (vol, int(rng.binomial(vol, share)))
    total: dict[date, tuple[int, int]] = {}
    with sessions() as s:
        for source, days in per.items():
            for day, (vol, neg) in days.items():
                old = total.get(day, (0, 0))
                total[day] = (old[0] + vol, old[1] + neg)
                s.add(review_aggregate(day, "livraison", source, vol, neg))
        s.commit()
    res = run_detect(settings, sessions, day=START + timedelta(days=40))
    assert res.warming == {"plaintes": START + timedelta(days=54)}
    run_detect(settings, sessions)  # the days after, up to the last one
    assert run_detect(settings, sessions, since=START + timedelta(days=54)).warming == {}
    detected = _detected(sessions)
    assert detected and {k for k, _ in detected} == {"negativity"}
    assert min(d for _, d in detected) >= (START + timedelta(days=70)).isoformat()
    assert _replayed(settings, total, per, 75) == detected


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_sustained_spike_stays_one_open_incident_in_detect_and_the_replay(
    settings, request: pytest.FixtureRequest, db: str
) -> None:
    """Emballage 40/day at 10 % negative turns 35 % negative for 7 days (days 60-66);
    livraison 30/day doubles for the same 7 days. Each spike's earlier days entered its own
    baseline from its third day (the window ends two days before the tested day): the
    negativity alerts went silent on day 4 and the incident read "résolu" on day 66, packaging
    complaints still tripled. With the series' own episode days held out of its baseline,
    each episode signals until the spike's end, is open on its last day and resolves after
    it, in detect (run to day 66, then on) and in the replay alike."""
    import numpy as np
    from sqlalchemy import select

    from core.models import Alert, Incident
    from jobs.backtest import replay
    from jobs.detect import run_detect
    from nlp.spikes import DetectorConfig, SpikeDetector, rules_from_taxonomy
    from nlp.taxonomy import load_taxonomy

    sessions = request.getfixturevalue("sessions" if db == "sqlite" else "pg_sessions")
    rng = np.random.default_rng(2)
    spike = range(60, 67)
    counts: dict[tuple[str, str | None], dict[date, tuple[int, int]]] = {}
    for theme in ("emballage", "livraison"):
        days = counts.setdefault((theme, None), {})
        for d in range(80):
            mu, share = (40, 0.10) if theme == "emballage" else (30, 0.10)
            if d in spike:
                mu, share = (mu, 0.35) if theme == "emballage" else (2 * mu, share)
            vol = int(rng.poisson(mu))
            days[START + timedelta(days=d)] = (vol, int(rng.binomial(vol, share)))
    with sessions() as s:
        for (theme, _), days in counts.items():
            for day, (vol, neg) in days.items():
                s.add(review_aggregate(day, theme, "x", vol, neg))
        s.commit()
    last_spike_day = START + timedelta(days=spike[-1])
    run_detect(settings, sessions, day=last_spike_day)
    with sessions() as s:
        live = {(a.theme, a.kind): a.status for a in s.execute(select(Alert)).scalars()}
    assert live == {("emballage", "negativity"): "open", ("livraison", "volume"): "open"}
    run_detect(settings, sessions)  # the days after (and the look-back again)
    with sessions() as s:
        alerts = list(s.execute(select(Alert)).scalars())
        detected = sorted((a.kind, a.first_day.isoformat()) for a in alerts)
        assert len(alerts) == 2  # one episode per spike, none restarted after a resolve
        for a in alerts:
            assert a.first_day <= START + timedelta(days=61)
            assert a.last_day >= last_spike_day - timedelta(days=1)
            assert a.status == "resolved"
        assert {i.status for i in s.execute(select(Incident)).scalars()} == {"resolved"}
    tax = load_taxonomy("ecommerce")
    config = DetectorConfig(warmup_days=settings.detection_warmup_days)
    detector = SpikeDetector(config, rules_from_taxonomy(tax, config))
    lines = list(
        replay(counts, START, START + timedelta(days=79), detector, tax.ids, co_mentions={})
    )
    assert sorted((a["kind"], a["day"]) for a in lines) == detected


def test_the_only_source_does_not_warm_up_after_a_first_day_without_theme(
    settings, sessions
) -> None:
    """One source; its first day has verbatims of no theme (only the "*" total row), its
    theme mentions start the day after. That one source read as "connected recently" and was
    held out of every test for 29 days: detect missed livraison tripled on days 25-27, which
    the replay raises. The first source to start is the data's start."""
    import numpy as np

    from core.models import ALL_THEMES, DailyAggregate
    from jobs.detect import run_detect

    rng = np.random.default_rng(3)
    total: dict[date, tuple[int, int]] = {}
    with sessions() as s:
        s.add(
            DailyAggregate(day=START, theme=ALL_THEMES, channel="review", source="avis", volume=3)
        )
        for d in range(1, 40):
            day = START + timedelta(days=d)
            vol = int(rng.poisson(90 if d in (25, 26, 27) else 30))
            neg = int(rng.binomial(vol, 0.1))
            total[day] = (vol, neg)
            for theme in ("livraison", ALL_THEMES):
                s.add(review_aggregate(day, theme, "avis", vol, neg))
        s.commit()
    assert run_detect(settings, sessions, day=START + timedelta(days=27)).warming == {}
    detected = _detected(sessions)
    assert detected == [("volume", (START + timedelta(days=25)).isoformat())]
    assert _replayed(settings, total, {"avis": total}, 27) == detected


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_source_back_from_a_long_outage_warms_up_again_in_detect_and_the_replay(
    settings, request: pytest.FixtureRequest, db: str
) -> None:
    """App store 60/day at 10 % negative all along; a complaints form (20/day, 60 %) down
    from day 31 to day 74. Back on day 75 with no day of its own in the window, it counted at
    the pooled share (~10 %) and raised negativity alerts on days 75-76, nobody more
    negative. Back after an outage longer than the window, it warms up again as a newly
    connected source, in detect (which names it) and in the replay alike."""
    import numpy as np
    from sqlalchemy import select

    from core.models import Alert
    from jobs.detect import run_detect

    sessions = request.getfixturevalue("sessions" if db == "sqlite" else "pg_sessions")
    rng = np.random.default_rng(5)
    per: dict[str, dict[date, tuple[int, int]]] = {"appstore": {}, "plaintes": {}}
    total: dict[date, tuple[int, int]] = {}
    with sessions() as s:
        for d in range(100):
            day = START + timedelta(days=d)
            for source, mu, share in (("appstore", 60, 0.10), ("plaintes", 20, 0.60)):
                if source == "plaintes" and 31 <= d < 75:
                    continue  # the form's connector is down
                vol = int(rng.poisson(mu))
                neg = int(rng.binomial(vol, share))
                per[source][day] = (vol, neg)
                old = total.get(day, (0, 0))
                total[day] = (old[0] + vol, old[1] + neg)
                s.add(review_aggregate(day, "livraison", source, vol, neg))
        s.commit()
    back = START + timedelta(days=75)
    assert run_detect(settings, sessions, day=back + timedelta(days=5)).warming == {
        "plaintes": back + timedelta(days=29)
    }
    run_detect(settings, sessions)
    with sessions() as s:
        assert list(s.execute(select(Alert)).scalars()) == []
    assert _replayed(settings, total, per, 99) == []


@pytest.mark.parametrize("first_rows", ["no theme", "a removed theme"])
def test_a_source_there_from_the_first_day_is_not_new_at_its_first_theme_mention(
    settings, sessions, first_rows: str
) -> None:
    """Reviews (livraison 15/day) and a chat whose verbatims start on day 0 too, but mention
    no theme of the taxonomy before day 5 (none, or a theme removed since). Its first theme
    mention made the chat "connected recently": held out of every test until day 34, detect
    missed its livraison complaints tripling on days 25-27, and it counted a removed theme's
    mentions where the replay saw none. A source starts with its first verbatim, whatever its
    themes, in detect and in the replay (`source_days`) alike."""
    import numpy as np

    from core.models import ALL_THEMES, DailyAggregate
    from jobs.detect import run_detect

    rng = np.random.default_rng(4)
    per: dict[str, dict[date, tuple[int, int]]] = {"avis": {}, "chat": {}}
    total: dict[date, tuple[int, int]] = {}
    with sessions() as s:
        for d in range(30):
            day = START + timedelta(days=d)
            for source in per:
                total_row = DailyAggregate(
                    day=day, theme=ALL_THEMES, channel="review", source=source, volume=60
                )
                s.add(total_row)
                if source == "chat" and d < 5:  # no theme, or a theme removed since
                    if first_rows == "a removed theme":
                        s.add(review_aggregate(day, "ancien_theme", "chat", 3, 1))
                    continue
                vol = int(rng.poisson(80 if source == "chat" and d in (25, 26, 27) else 15))
                neg = int(rng.binomial(vol, 0.1))
                per[source][day] = (vol, neg)
                old = total.get(day, (0, 0))
                total[day] = (old[0] + vol, old[1] + neg)
                s.add(review_aggregate(day, "livraison", source, vol, neg))
        s.commit()
    assert run_detect(settings, sessions, day=START + timedelta(days=27)).warming == {}
    detected = _detected(sessions)
    assert detected == [("volume", (START + timedelta(days=25)).isoformat())]
    assert (
        _replayed(
            settings,
            total,
            per,
            27,
            source_days={k: [START + timedelta(days=d) for d in range(30)] for k in per},
        )
        == detected
    )


def test_detect_names_only_the_sources_still_warming_on_its_last_day(settings, sessions) -> None:
    """A form connected on day 5 is tested from day 34. A run over the whole history (or a
    daily run whose look-back re-checks days before 34) said "source 'plaintes' connected
    recently: held out of spike tests until" day 34, a day already past; it names the
    sources still warming up on the last day it detected."""
    from jobs.detect import run_detect

    with sessions() as s:
        for d in range(40):
            for source in ("avis", "plaintes")[: 1 + (d >= 5)]:
                s.add(review_aggregate(START + timedelta(days=d), "livraison", source, 20, 2))
        s.commit()
    until = START + timedelta(days=30)
    assert run_detect(settings, sessions, day=until).warming == {
        "plaintes": START + timedelta(days=34)
    }
    assert run_detect(settings, sessions).warming == {}  # days 31-39, the look-back from 33
