"""`verbatim report`'s table as an analyst reads it: the figures of each row against the
counts they are made of, French number formatting, and what a window without French
verbatims says (the rows come from tests/test_aggregate.py's `add`)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from sqlalchemy.orm import Session
from test_aggregate import add
from typer.testing import CliRunner

from core.queries import theme_summary
from core.settings import Settings
from jobs.aggregate import aggregate
from jobs.report import build_report, render_drivers, render_report, report_json
from nlp.drivers import DriverEffect
from nlp.taxonomy import load_taxonomy

END = date(2026, 11, 30)
WEEK = [END - timedelta(days=i) for i in range(7)]
BEFORE = [END - timedelta(days=7 + i) for i in range(7)]


def _text(table: object) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(table)
    return console.export_text()


def _line(text: str, label: str) -> list[str]:
    """The cells of the table row that starts with `label`."""
    row = next(line for line in text.splitlines() if line.startswith(f"│ {label} "))
    return [cell.strip() for cell in row.strip("│").split("│")]


def _env(settings: Settings) -> dict[str, str]:
    return {
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_DATABASE_URL": settings.resolved_database_url,
        "VERBATIM_CONFIG": os.devnull,
        "COLUMNS": "200",
    }


def test_a_theme_without_mention_this_week_has_no_share_nor_change_of_share(
    session: Session,
) -> None:
    """Livraison had 2 negative mentions of 2 last week and none this week: the report read
    « 0 % », « -100 pts » and a net sentiment « +0.00 », an improvement made of nothing (the
    JSON, CSV and xlsx a -1.0 change, /themes -1.0 too); the digest already says an empty
    week is no « 0 % négatifs »."""
    for day in BEFORE[:2]:
        add(session, day, "negative", {"livraison": "negative"}, rating=1)
    add(session, WEEK[0], "positive", {"prix": "positive"}, rating=5)
    session.commit()
    aggregate(session)
    session.commit()
    rows = {r.theme: r for r in theme_summary(session, start=WEEK[-1], end=END)}
    assert rows["livraison"].volume == 0 and rows["livraison"].previous_volume == 2
    assert rows["livraison"].negative_share_change is None
    report = build_report(session, load_taxonomy(), days=7, end=END)
    live = next(t for t in report_json(report)["themes"] if t["theme"] == "livraison")
    assert live["negative_share_change"] is None and live["volume_change"] == -1.0
    cells = _line(_text(render_report(report)), "Livraison")
    # Thème, Vol., Δ vol., Nég., % nég., Δ % nég., Net, Note
    assert cells[1:] == ["0", "-100 %", "0", "–", "–", "–", "–"], cells


def test_change_of_negative_share_is_the_difference_of_the_shares_shown(
    session: Session,
) -> None:
    """12 negatives of 13 (92 %) this week against 2 of 7 (29 %) the week before: the report
    read « +64 pts » (the unrounded 63.7) beside 92 % and 29 %, where the digest and the
    dashboard say +63 for the same shares."""
    for i in range(13):
        polarity = "negative" if i < 12 else "positive"
        add(session, WEEK[i % 7], polarity, {"emballage": polarity}, rating=2)
    for i in range(7):
        polarity = "negative" if i < 2 else "positive"
        add(session, BEFORE[i], polarity, {"emballage": polarity}, rating=4)
    session.commit()
    aggregate(session)
    session.commit()
    report = build_report(session, load_taxonomy(), days=7, end=END)
    cells = _line(_text(render_report(report)), "Emballage")
    assert cells[4:6] == ["92 %", "+63 pts"], cells


def test_report_table_writes_numbers_the_french_way(session: Session) -> None:
    """The table is French (« Thèmes du 24/11/2026 au 30/11/2026 », « % nég. ») but wrote
    « -0.71 », « 1.4 », « [-0.6 ; -0.1] » and « 1234 », where the dashboard, the digest
    and the Slack messages write « -0,71 », « 1,4 » and « 1 234 »."""
    for i in range(7):
        polarity = "negative" if i < 6 else "neutral"
        add(session, WEEK[i], polarity, {"livraison": polarity}, rating=1 if i < 4 else 2)
    session.commit()
    aggregate(session)
    session.commit()
    report = build_report(session, load_taxonomy(), days=7, end=END)
    text = _text(render_report(report))
    cells = _line(text, "Livraison")
    assert cells[6:] == ["-0,86", "1,4"], cells
    # Drivers: effect, interval and impact in French, a count of thousands grouped.
    report.drivers = {
        "nps": [DriverEffect("livraison", 1234, 10.0, 40.0, -34.56, -40.04, -29.06, 0.001, -4.25)]
    }
    drivers = _text(render_drivers(report)[0])
    assert _line(drivers, "Livraison") == [
        "Livraison",
        "1\u202f234",
        "-34,6",
        "[-40,0 ; -29,1]",
        "-4,25",
    ]


def test_report_of_a_window_without_french_verbatims_says_so(
    tmp_path: Path, settings: Settings, session: Session
) -> None:
    """A week of English reviews only printed « no analysed verbatims in this period yet:
    run verbatim ingest then verbatim enrich and verbatim aggregate », though they were
    ingested and analysed, and dropped the line counting them; a week before the data began
    said the same. Both now say what the period holds."""
    from verbatim_cli import app

    add(session, END, "negative", {"livraison": "negative"}, language="en")
    add(session, END, "positive", {}, language="en")
    add(session, date(2026, 10, 1), "negative", {"livraison": "negative"})
    session.commit()
    aggregate(session)
    session.commit()
    env = _env(settings)
    res = CliRunner().invoke(app, ["report", "--end", str(END)], env=env)
    assert res.exit_code == 0, res.output
    out = " ".join(res.stdout.split())
    assert "run verbatim ingest" not in out, out
    assert "no French verbatim from 24/11/2026 to 30/11/2026" in out, out
    assert "anglais : 2" in out, out
    res = CliRunner().invoke(app, ["report", "--end", "2026-01-07"], env=env)
    assert res.exit_code == 0, res.output
    out = " ".join(res.stdout.split())
    assert "run verbatim ingest" not in out, out
    assert "no analysed verbatim from 01/01/2026 to 07/01/2026" in out, out
    # The day a report without --end ends on: the last one with French verbatims.
    assert "last day with French verbatims: 01/10/2026" in out, out


def test_report_carries_the_scores_of_the_overview(
    tmp_path: Path, settings: Settings, session: Session
) -> None:
    """`/overview` gave the week's NPS, CSAT and CES; `verbatim report` (every format) had
    none of them, only their key drivers over 90 days (none below 20 mentions a theme): the
    weekly export an analyst sends had no NPS. The report now carries the same figures as
    `/overview` (French verbatims with an answer; a missing answer is no detractor)."""
    from openpyxl import load_workbook

    from verbatim_cli import app

    answers = [(10, 5, 1), (9, 4, 2), (7, 3, 4), (6, 2, 6), (0, 1, None), (None, None, None)]
    for i, (nps, csat, ces) in enumerate(answers):
        fb = add(session, WEEK[i], "neutral", {}, nps=nps)
        fb.csat, fb.ces = csat, ces
    for nps in (10, 3):  # the week before: NPS 0, no CSAT
        add(session, BEFORE[0], "neutral", {}, nps=nps)
    add(session, WEEK[0], "negative", {}, nps=0, language="en")  # counted apart
    session.commit()
    aggregate(session)
    session.commit()
    report = build_report(session, load_taxonomy(), days=7, end=END)
    data = report_json(report)
    # 2 promoters, 2 detractors of 5 answers: NPS 0; CSAT 2 of 5 satisfied: 40.
    assert data["scores"] == [
        {"score": "nps", "answers": 5, "value": 0.0, "previous_answers": 2, "previous_value": 0.0},
        {
            "score": "csat",
            "answers": 5,
            "value": 40.0,
            "previous_answers": 0,
            "previous_value": None,
        },
        {
            "score": "ces",
            "answers": 4,
            "value": 3.25,
            "previous_answers": 0,
            "previous_value": None,
        },
    ]
    text = " ".join(_text(render_report(report)).split())
    assert "NPS 0 (5 réponses ; période précédente : 0, 2 réponses)" in text, text
    assert "CSAT 40 % (5 réponses)" in text, text
    assert "CES 3,3 / 7 (4 réponses)" in text, text  # /overview's 3.25, as the dashboard
    out = tmp_path / "r.xlsx"
    res = CliRunner().invoke(app, ["report", "--end", str(END), "-o", str(out)], env=_env(settings))
    assert res.exit_code == 0, res.output
    sheet = load_workbook(out)["Scores"]
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows[1] == ["nps", 5, 0.0, 2, 0.0] and rows[2] == ["csat", 5, 40.0, 0, None], rows


def test_a_report_ending_today_says_the_day_is_still_in_progress(session: Session) -> None:
    """The default report ends on the last day with data: today, when the feed is live. Its
    figures were shown as a whole day's (« Vol. 3 » at 10:00 UTC, compared with seven full
    days), and nothing said the last day was still being counted."""
    from core.store import utcnow

    today = utcnow().date()
    for day in (today, today - timedelta(days=1)):
        add(session, day, "negative", {"livraison": "negative"}, rating=1, hour=0)
    session.commit()
    aggregate(session)
    report = build_report(session, load_taxonomy(), days=7)
    assert report.end == today and report.in_progress
    text = _text(render_report(report))
    assert f"le {today:%d/%m/%Y} est en cours" in text, text
    assert f"--end {today - timedelta(days=1)}" in text
    assert report_json(report)["end_in_progress"] is True
    done = build_report(session, load_taxonomy(), days=7, end=today - timedelta(days=1))
    assert not done.in_progress and report_json(done)["end_in_progress"] is False
    assert "en cours" not in _text(render_report(done))


def test_a_report_ending_after_today_names_today_as_the_day_in_progress(
    session: Session,
) -> None:
    """`--end` a day to come: the report said « le 01/01/2027 est en cours » of a day not
    begun, and advised `--end 2026-12-31`, another one. Today is the day in progress, and the
    last complete day is yesterday."""
    from core.store import utcnow

    today = utcnow().date()
    add(session, today, "negative", {"livraison": "negative"}, rating=1, hour=0)
    session.commit()
    aggregate(session)
    later = today + timedelta(days=26)
    report = build_report(session, load_taxonomy(), days=30, end=later)
    assert report.in_progress and report_json(report)["end_in_progress"] is True
    text = _text(render_report(report))
    assert f"le {later:%d/%m/%Y}" not in text, text
    assert f"le {today:%d/%m/%Y} est en cours" in text, text
    assert f"--end {today - timedelta(days=1)}" in text, text
