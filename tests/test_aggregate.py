"""Daily aggregates (SQL GROUP BY) and the theme summary read from them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Analysis, DailyAggregate, Feedback, ThemeMention
from core.queries import other_language_volumes, theme_summary
from jobs.aggregate import aggregate
from jobs.report import build_report, render_report
from nlp.taxonomy import load_taxonomy

D1 = date(2026, 11, 2)
D2 = date(2026, 11, 3)
_n = 0


def add(
    session: Session,
    day: date,
    sentiment: str,
    themes: dict[str, str],
    *,
    channel: str = "review",
    source: str = "shop",
    rating: float | None = None,
    severity: float = 0.5,
    hour: int = 10,
    language: str = "fr",
    nps: float | None = None,
) -> Feedback:
    global _n
    _n += 1
    at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    fb = Feedback(
        source=source,
        channel=channel,
        dedup_key=f"id:{_n}",
        external_id=str(_n),
        created_at=at,
        ingested_at=at,
        rating=rating,
        nps=nps,
        text=f"verbatim {_n}",
        language=language,
        is_french=language == "fr",
        content_hash=f"{_n:064d}",
        meta={},
        analyzed=True,
    )
    session.add(fb)
    session.flush()
    analysis = Analysis(
        feedback_id=fb.id,
        model_version="v1",
        sentiment=sentiment,
        sentiment_score=0.9,
        severity=severity,
        analyzed_at=at,
    )
    for theme, polarity in themes.items():
        analysis.mentions.append(
            ThemeMention(feedback_id=fb.id, theme=theme, polarity=polarity, score=0.8, day=day)
        )
    session.add(analysis)
    session.flush()
    return fb


def rows(session: Session) -> dict[tuple, DailyAggregate]:
    return {
        (r.day, r.theme, r.channel, r.source): r for r in session.scalars(select(DailyAggregate))
    }


@pytest.fixture
def data(session: Session) -> Session:
    add(session, D1, "negative", {"livraison": "negative", "emballage": "negative"}, rating=1)
    add(session, D1, "positive", {"livraison": "positive"}, rating=5, severity=0.0)
    add(session, D1, "negative", {"livraison": "negative"}, channel="social")
    add(session, D1, "neutral", {}, rating=3, severity=0.1, hour=23)
    add(session, D2, "negative", {"emballage": "negative"}, rating=2, hour=0)
    session.commit()
    return session


def test_aggregate_counts(data: Session) -> None:
    written = aggregate(data)
    data.commit()
    agg = rows(data)
    assert written == len(agg) == 7
    liv = agg[(D1, "livraison", "review", "shop")]
    assert (liv.volume, liv.negatives, liv.neutrals, liv.positives) == (2, 1, 0, 1)
    assert (liv.rating_sum, liv.rating_count, liv.severity_sum) == (6.0, 2, 0.5)
    assert agg[(D1, "livraison", "social", "shop")].negatives == 1
    total = agg[(D1, "*", "review", "shop")]  # document sentiment, incl. theme-less verbatims
    assert (total.volume, total.negatives, total.neutrals, total.positives) == (3, 1, 1, 1)
    assert (total.rating_sum, total.rating_count) == (9.0, 3)
    assert total.severity_sum == pytest.approx(0.6)
    assert agg[(D2, "*", "review", "shop")].volume == 1  # 00:00 UTC lands on its own day
    assert agg[(D2, "emballage", "review", "shop")].negatives == 1


def test_other_languages_are_reported_apart_not_mixed_into_french_figures(
    data: Session,
) -> None:
    add(data, D1, "positive", {"livraison": "positive"}, language="en")
    add(data, D1, "negative", {"livraison": "negative"}, language="en", channel="social")
    add(data, D2, "negative", {"emballage": "negative"}, language="es")
    add(data, D1, "neutral", {}, language="und")  # no letters at all: kept with French
    data.commit()
    aggregate(data)
    agg = rows(data)
    assert agg[(D1, "livraison", "review", "shop")].volume == 2  # the English mention is out
    assert agg[(D1, "livraison", "social", "shop")].volume == 1
    assert agg[(D1, "*", "review", "shop")].volume == 4
    assert agg[(D2, "emballage", "review", "shop")].volume == 1
    assert other_language_volumes(data, start=D1, end=D2) == {"en": 2, "es": 1}
    assert other_language_volumes(data, start=D1, end=D1, channel="social") == {"en": 1}
    assert other_language_volumes(data, start=D2, end=D2, source="other") == {}
    report = build_report(data, load_taxonomy(), days=2, end=D2)
    assert report.rows[-1].volume == 6 and report.other_languages == {"en": 2, "es": 1}
    assert render_report(report).caption == (
        "Hors français, non comptés ci-dessus (verbatims) : anglais : 2, espagnol : 1"
    )
    # The JSON export says so too (it gave 6 verbatims and nothing of the 3 left out).
    from jobs.report import report_json

    assert report_json(report)["other_languages"] == {"en": 2, "es": 1}


def test_theme_keywords_are_french_like_the_theme_figures(session: Session) -> None:
    # An English review naming Livraison put "delivery" first among its /themes keywords.
    from core.queries import top_keywords

    for text, language in (
        ("Colis livré en retard", "fr"),
        ("The delivery was late", "en"),
        ("The delivery was late again", "en"),
    ):
        fb = add(session, D1, "negative", {"livraison": "negative"}, language=language)
        mention = session.scalars(select(ThemeMention).where(ThemeMention.feedback_id == fb.id))
        mention.one().evidence_text = text
    session.commit()
    aggregate(session)
    words = top_keywords(session, ["livraison"], start=D1, end=D1)
    assert words and "delivery" not in words and "late" not in words, words


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def either(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A migrated session on SQLite or on a throwaway PostgreSQL schema."""
    name = "sessions" if request.param == "sqlite" else "pg_sessions"
    factory: sessionmaker[Session] = request.getfixturevalue(name)
    with factory() as s:
        yield s


def test_trend_drivers_and_scores_count_french_like_the_theme_figures(either: Session) -> None:
    """The audit: /themes/{id}/trend said 6 mentions a day (hourly too) where the theme's
    summary and its spike alert say 3, /drivers regressed 60 answers of which 30 English, and
    /overview's NPS counted 42 answers beside 21 verbatims. Every one of them now counts the
    French verbatims (AGGREGATED_LANGUAGES) only, other languages apart."""
    from core.queries import key_driver_report, score_summary, theme_trend

    s = either
    for day in (D1, D2):
        for polarity, nps in (("negative", 0), ("negative", 2), ("positive", 10)):
            add(s, day, polarity, {"livraison": polarity}, rating=2, nps=nps, hour=9)
        add(s, day, "neutral", {}, nps=8, hour=9, language="und")  # no letters: French
        for _ in range(3):  # English reviews, all detractors
            add(
                s,
                day,
                "negative",
                {"livraison": "negative"},
                rating=1,
                nps=0,
                hour=9,
                language="en",
            )
    s.commit()
    aggregate(s)
    s.commit()
    summary = {r.theme: r for r in theme_summary(s, start=D1, end=D2)}
    assert summary["livraison"].volume == 6  # 3 French a day
    daily = theme_trend(s, ["livraison"], start=D1, end=D2)
    assert [(p.volume, p.negatives, p.rating_count) for p in daily] == [(3, 2, 3), (3, 2, 3)]
    split = theme_trend(s, ["livraison"], start=D1, end=D1, by_channel=True, by_source=True)
    assert [p.volume for p in split] == [3]
    hourly = theme_trend(s, ["livraison"], start=D1, end=D1, granularity="hour")
    assert [(p.bucket.hour, p.volume, p.negatives) for p in hourly if p.volume] == [(9, 3, 2)]
    # NPS: French answers -100, -100, +100 and a passive (8) each day: 8 answers, -25.
    nps = score_summary(s, "nps", start=D1, end=D2)
    assert (nps.answers, nps.value) == (8, -25.0)
    assert score_summary(s, "rating", start=D1, end=D2).answers == 6
    drivers = key_driver_report(s, "nps", start=D1, end=D2)
    assert (drivers.answers, drivers.coded_mean) == (8, -25.0)
    assert key_driver_report(s, "rating", start=D1, end=D2).answers == 6
    assert other_language_volumes(s, start=D1, end=D2) == {"en": 6}


def test_aggregate_is_a_recompute_and_can_be_incremental(data: Session) -> None:
    aggregate(data)
    aggregate(data)  # no doubling
    data.commit()
    assert rows(data)[(D1, "*", "review", "shop")].volume == 3
    add(data, D2, "positive", {"prix": "positive"}, rating=4)
    aggregate(data, days=[D2])
    data.commit()
    agg = rows(data)
    assert agg[(D2, "*", "review", "shop")].volume == 2
    assert agg[(D2, "prix", "review", "shop")].positives == 1
    assert agg[(D1, "*", "review", "shop")].volume == 3  # untouched day kept


def test_latest_analysis_wins(data: Session) -> None:
    fb = data.scalars(select(Feedback).order_by(Feedback.id)).first()
    newer = Analysis(
        feedback_id=fb.id,
        model_version="v2",
        sentiment="positive",
        sentiment_score=0.7,
        severity=0.0,
        analyzed_at=fb.created_at,
    )
    newer.mentions.append(
        ThemeMention(feedback_id=fb.id, theme="livraison", polarity="positive", score=0.9, day=D1)
    )
    data.add(newer)
    data.commit()
    aggregate(data)
    agg = rows(data)
    assert (
        agg[(D1, "*", "review", "shop")].negatives,
        agg[(D1, "*", "review", "shop")].positives,
    ) == (0, 2)
    assert agg[(D1, "livraison", "review", "shop")].positives == 2
    assert (D1, "emballage", "review", "shop") not in agg


def test_theme_summary_with_previous_period(session: Session) -> None:
    end = date(2026, 11, 14)
    for i in range(7):  # previous week: 1 emballage verbatim a day, half negative
        add(
            session,
            end - timedelta(days=7 + i),
            "neutral",
            {"emballage": "negative" if i % 2 else "positive"},
        )
    for i in range(3):  # this week: a packaging spike
        for _ in range(4):
            add(session, end - timedelta(days=i), "negative", {"emballage": "negative"}, rating=1)
    add(session, end, "positive", {"old_theme": "positive"}, channel="social", rating=5)
    session.commit()
    aggregate(session)
    session.commit()
    taxonomy = load_taxonomy()
    rows_ = theme_summary(
        session, start=end - timedelta(days=6), end=end, taxonomy=taxonomy, include_total=True
    )
    by_id = {r.theme: r for r in rows_}
    emb = by_id["emballage"]
    assert rows_[0].theme == "emballage" and emb.label == "Emballage"
    assert (emb.volume, emb.negatives, emb.previous_volume) == (12, 12, 7)
    assert emb.negative_share == 1.0 and emb.net_sentiment == -1.0
    assert emb.volume_change == pytest.approx(5 / 7)
    assert emb.negative_share_change == pytest.approx(1 - 3 / 7)
    assert emb.mean_rating == 1.0
    assert set(taxonomy.ids) <= set(by_id)  # every active theme listed, zeros included
    assert by_id["prix"].volume == 0 and by_id["prix"].volume_change is None
    # A theme new this week has no share to rise from: its change is unknown, not "+100 pts".
    livraison_new = {"livraison": "negative"}
    add(session, end, "negative", livraison_new)
    session.commit()
    aggregate(session)
    session.commit()
    again = theme_summary(session, start=end - timedelta(days=6), end=end, taxonomy=taxonomy)
    new = next(r for r in again if r.theme == "livraison")
    assert (new.volume, new.negative_share, new.previous_volume) == (1, 1.0, 0)
    assert new.volume_change is None and new.negative_share_change is None
    # An id the taxonomy does not know (a theme a later version removed) is no theme row:
    # it was listed under its bare id by `verbatim report` and the digest, and not by /themes.
    assert "old_theme" not in by_id
    assert rows_[-1].theme == "*" and rows_[-1].volume == 13  # its verbatim still counts
    untaxed = {r.theme for r in theme_summary(session, start=end - timedelta(days=6), end=end)}
    assert "old_theme" in untaxed  # without a taxonomy every stored id is a row
    social = theme_summary(session, start=end - timedelta(days=6), end=end, channel="social")
    assert [r.theme for r in social] == ["old_theme"]


def test_theme_summary_folds_renamed_themes(session: Session) -> None:
    add(session, D1, "negative", {"livraison": "negative"})
    add(session, D1, "negative", {"livraison": "negative"})
    session.commit()
    aggregate(session)
    renamed = load_taxonomy().rename("livraison", "expedition", label="Expédition")
    rows_ = theme_summary(session, start=D1, end=D1, taxonomy=renamed)
    assert rows_[0].theme == "expedition" and rows_[0].label == "Expédition"
    assert rows_[0].volume == 2
    assert "livraison" not in {r.theme for r in rows_}
    with pytest.raises(ValueError):
        theme_summary(session, start=D2, end=D1)


@pytest.mark.postgres
def test_ingest_aggregate_and_summary_on_postgres(pg_sessions, settings, tmp_path) -> None:
    """Same code path on PostgreSQL: ON CONFLICT dedup, day extraction, GROUP BY, summary."""
    from jobs.ingest import ingest_file

    path = tmp_path / "a.csv"
    path.write_text("id;date;avis\n1;2026-11-02T23:30:00-02:00;Colis écrasé\n2;2026-11-02;Top\n")
    assert ingest_file(pg_sessions, settings, path, source="s").stored == 2
    assert ingest_file(pg_sessions, settings, path, source="s", force=True).duplicates == 2
    with pg_sessions() as session:
        for fb in session.scalars(select(Feedback).order_by(Feedback.id)):
            analysis = Analysis(
                feedback_id=fb.id,
                model_version="v1",
                sentiment="negative",
                sentiment_score=0.9,
                severity=0.5,
                analyzed_at=fb.created_at,
            )
            day = fb.created_at.astimezone(UTC).date()
            analysis.mentions.append(
                ThemeMention(
                    feedback_id=fb.id, theme="emballage", polarity="negative", score=0.9, day=day
                )
            )
            session.add(analysis)
        session.commit()
        assert aggregate(session) == 4  # emballage and "*" on each of the two days
        session.commit()
        agg = rows(session)
        assert agg[(date(2026, 11, 3), "*", "review", "s")].volume == 1  # 01:30 UTC
        assert agg[(D1, "*", "review", "s")].volume == 1
        summary = theme_summary(session, start=D1, end=D2, taxonomy=load_taxonomy())
        assert summary[0].theme == "emballage" and summary[0].negatives == 2


def test_since_and_long_day_lists(data: Session) -> None:
    from jobs import aggregate as agg_module

    aggregate(data)
    before = {k: (r.volume, r.negatives) for k, r in rows(data).items()}
    assert aggregate(data, since=D2) == 2  # only D2's rows are rebuilt
    many = [D1 - timedelta(days=i) for i in range(agg_module.MAX_DAY_LIST + 10)] + [D2]
    assert aggregate(data, days=many) == len(before)  # span recompute, same result
    data.commit()
    data.expire_all()
    assert {k: (r.volume, r.negatives) for k, r in rows(data).items()} == before
