"""`verbatim report`: the themes table of the last N days, with French labels."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from rich.table import Table
from sqlalchemy.orm import Session

from core.cli import rich_text
from core.exports import (
    SCORE_UNITS,
    driver_json,
    drivers_table,
    score_json,
    scores_table,
    themes_table,
    to_csv,
    to_xlsx,
)
from core.exports import Table as ExportTable
from core.queries import (
    SCORES,
    ScoreSummary,
    ThemeRow,
    key_driver_report,
    latest_day,
    listed_summary,
    other_language_volumes,
    score_summary,
)
from core.store import utcnow
from jobs.slack_message import french_number, share_points
from nlp.drivers import DriverEffect
from nlp.taxonomy import Taxonomy


@dataclass
class Report:
    start: date
    end: date
    rows: list[ThemeRow]  # themes, then the "*" total last
    drivers: dict[str, list[DriverEffect]] = field(default_factory=dict)  # score -> effects
    driver_start: date | None = None  # drivers are estimated over a longer window
    # Verbatims in other languages over the period, counted apart (never in the rows above).
    other_languages: dict[str, int] = field(default_factory=dict)
    last_day: date | None = None  # the last day with French verbatims (None: no data yet)
    # NPS / CSAT / CES of the period and the one before, as /overview gives them (the scores
    # the feed carries only).
    scores: list[ScoreSummary] = field(default_factory=list)
    # `end` is today (UTC days) or later: today's figures still grow until midnight UTC.
    in_progress: bool = False
    today: date | None = None  # the UTC day when the report was built (the day in progress)


def build_report(
    session: Session,
    taxonomy: Taxonomy,
    *,
    days: int = 7,
    end: date | None = None,
    channel: str | None = None,
    source: str | None = None,
    driver_days: int = 90,
) -> Report:
    """Default end: the last day with data (a stale feed still shows its latest week; a live
    feed's is today, still in progress: the report says so, `in_progress`).

    Key drivers of every score the feed carries (NPS, CSAT, CES, rating) are estimated over
    the `driver_days` up to `end` (a week is too few answers for a confidence interval)."""
    if days < 1:
        raise ValueError("--days must be at least 1")
    last = latest_day(session)
    end = end or last or date.today()
    start = end - timedelta(days=days - 1)
    # Not a retired theme's stored mentions: listed nowhere else (/themes, its CSV).
    rows = listed_summary(
        session, start=start, end=end, channel=channel, source=source, taxonomy=taxonomy
    )
    driver_start = end - timedelta(days=max(driver_days, days) - 1)
    drivers: dict[str, list[DriverEffect]] = {}
    for score in SCORES:
        found = key_driver_report(
            session,
            score,
            start=driver_start,
            end=end,
            channel=channel,
            source=source,
            taxonomy=taxonomy,
        )
        if found.effects:
            drivers[score] = found.effects
    others = other_language_volumes(session, start=start, end=end, channel=channel, source=source)
    summaries = (
        score_summary(session, score, start=start, end=end, channel=channel, source=source)
        for score in ("nps", "csat", "ces")
    )
    scores = [s for s in summaries if s.answers or s.previous_answers]
    today = utcnow().date()
    return Report(
        start, end, rows, drivers, driver_start, others, last, scores, end >= today, today
    )


SCORE_NAMES = {"rating": "de la note", "nps": "du NPS", "csat": "du CSAT", "ces": "du CES"}


def render_drivers(report: Report) -> list[Table]:
    """One rich table per score: effect of each theme with its 95 % interval."""
    out = []
    labels = {r.theme: r.label for r in report.rows}  # "Commande et paiement", not its id
    for score, effects in report.drivers.items():
        table = Table(
            title=f"Facteurs clés {SCORE_NAMES.get(score, score)} du "
            f"{report.driver_start:%d/%m/%Y} au "
            f"{report.end:%d/%m/%Y} (effet en {SCORE_UNITS[score]}, IC 95 %)",
            title_justify="left",
        )
        for name, justify in (
            ("Thème", "left"),
            ("Mentions", "right"),
            ("Effet", "right"),
            ("IC 95 %", "right"),
            ("Impact", "right"),
        ):
            table.add_column(name, justify=justify, no_wrap=name != "Thème")  # type: ignore[arg-type]
        for d in effects:
            color = "red" if d.ci_high < 0 else "green" if d.ci_low > 0 else "white"
            j = driver_json(d)  # the figures the json / xlsx / API carry, rounded as shown there
            table.add_row(
                rich_text(labels.get(d.theme, d.theme)),  # a label from the API: text
                french_number(d.mentions),
                f"[{color}]{_tenth(j['effect'])}[/]",
                f"[{_tenth(j['ci_low'])} ; {_tenth(j['ci_high'])}]",
                french_number(d.impact, "+.2f"),
            )
        out.append(table)
    return out


def _tenth(value: float, *, signed: bool = True) -> str:
    """A published figure (an effect to 3 decimals, a CES to 2) to one, a half away from zero
    as the dashboard rounds it: the unrounded 0.3496 read +0,3 here where the API's 0.35 read
    +0,4 there. French decimal comma, as the dashboard writes it."""
    tenth = Decimal(repr(value)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return (f"{tenth:+}" if signed else f"{tenth}").replace(".", ",")


def _pct(value: float) -> str:
    return f"{value * 100:.0f} %"


def _change(value: float | None) -> str:
    if value is None:
        return "[dim]nouveau[/]"
    color = "red" if value > 0.2 else "green" if value < -0.2 else "white"
    return f"[{color}]{value * 100:+.0f} %[/]"


def _points(row: ThemeRow) -> str:
    if row.negative_share_change is None:  # no share in one of the periods to compare
        return "–"
    # The difference of the whole percentages shown (« 92 % » against « 29 % »: +63), as the
    # digest and the dashboard say it; the unrounded difference (63.7) read +64 here.
    points = share_points(row.negative_share, row.previous_negative_share)
    color = "red" if points > 5 else "green" if points < -5 else "white"
    return f"[{color}]{points:+d} pts[/]"


# The languages the detector names (nlp/text/language.py), as a French reader says them:
# "en 8 verbatims" read as "in 8 verbatims".
LANGUAGE_NAMES = {
    "en": "anglais",
    "es": "espagnol",
    "de": "allemand",
    "it": "italien",
    "pt": "portugais",
    "nl": "néerlandais",
    "ar": "arabe",
    "ru": "russe",
    "uk": "ukrainien",
    "el": "grec",
    "he": "hébreu",
    "ja": "japonais",
    "zh": "chinois",
    "ko": "coréen",
    "th": "thaï",
    "hi": "hindi",
}


def _other_languages(counts: dict[str, int], where: str = " ci-dessus") -> str | None:
    if not counts:
        return None
    parts = ", ".join(
        f"{LANGUAGE_NAMES.get(lang, lang)} : {french_number(n)}"
        for lang, n in sorted(counts.items(), key=lambda x: -x[1])
    )
    return f"Hors français, non comptés{where} (verbatims) : {parts}"


def empty_report(report: Report) -> str | None:
    """What the table command prints instead of a table of zeros when neither the period nor
    the one before has a French verbatim (None when one has). It said « no analysed verbatims
    in this period yet: run verbatim ingest … » of a week of English reviews, ingested and
    analysed, and of a week before the data began."""
    if any(r.volume or r.previous_volume for r in report.rows):
        return None
    days = (report.end - report.start).days + 1
    before = "the day before" if days == 1 else f"the {days} days before"
    period = f"from {report.start:%d/%m/%Y} to {report.end:%d/%m/%Y} nor in {before}"
    others = _other_languages(report.other_languages, where="")
    if others is not None:
        return f"no French verbatim {period} (the report counts French verbatims only)\n{others}"
    if report.last_day is not None:
        return (
            f"no analysed verbatim {period} (last day with French verbatims: "
            f"{report.last_day:%d/%m/%Y}; --end and --days choose the period)"
        )
    return (
        "no analysed verbatims yet: run [bold]verbatim ingest[/] then [bold]verbatim enrich[/] "
        "and [bold]verbatim aggregate[/] (or [bold]verbatim run[/])"
    )


def _score_value(score: str, value: float | None) -> str:
    """As the dashboard's cards: NPS whole and signed, CSAT a whole percentage (both a half to
    even, as the digest), CES a mean on its 1-7 scale."""
    if value is None:
        return "–"
    if score == "nps":
        return french_number(round(value), "+d") if round(value) else "0"
    if score == "csat":
        return f"{round(value)} %"
    return f"{_tenth(round(value, 2), signed=False)} / 7"  # /overview's figure, rounded once


def _answers(n: int) -> str:
    return f"{french_number(n)} réponse{'s' if n > 1 else ''}"


def _scores(scores: list[ScoreSummary]) -> str | None:
    """« NPS +12 (48 réponses ; période précédente : +5, 40 réponses) · CSAT 81 % (…) »."""
    parts = []
    for s in scores:
        part = f"{s.score.upper()} {_score_value(s.score, s.value)} ({_answers(s.answers)}"
        if s.previous_answers:
            before = _score_value(s.score, s.previous_value)
            part += f" ; période précédente : {before}, {_answers(s.previous_answers)}"
        parts.append(part + ")")
    return " · ".join(parts) or None


def _in_progress(report: Report) -> str | None:
    """« le 06/12/2026 est en cours (jour UTC) … » when the period ends today (or later:
    `--end` a day to come; today is still the day in progress)."""
    if not report.in_progress:
        return None
    today = min(report.end, report.today or report.end)
    return (
        f"le {today:%d/%m/%Y} est en cours (jour UTC) : ses chiffres ne sont pas complets\n"
        f"--end {today - timedelta(days=1)} pour finir sur le dernier jour complet"
    )


def render_report(report: Report) -> Table:
    days = (report.end - report.start).days + 1
    caption = [
        _in_progress(report),
        _scores(report.scores),
        _other_languages(report.other_languages),
    ]
    table = Table(
        title=f"Thèmes du {report.start:%d/%m/%Y} au {report.end:%d/%m/%Y} "
        f"({days} j ; Δ = vs les {days} j précédents)",
        title_justify="left",
        caption="\n".join(line for line in caption if line) or None,
        caption_justify="left",
    )
    table.add_column("Thème", min_width=10, ratio=1)
    table.add_column("Vol.", justify="right", no_wrap=True)
    table.add_column("Δ vol.", justify="right", no_wrap=True)
    table.add_column("Nég.", justify="right", no_wrap=True)
    table.add_column("% nég.", justify="right", no_wrap=True)
    table.add_column("Δ % nég.", justify="right", no_wrap=True)
    table.add_column("Net", justify="right", no_wrap=True)
    table.add_column("Note", justify="right", no_wrap=True)
    for row in report.rows:
        is_total = row.theme == "*"
        if is_total:
            table.add_section()
        if row.volume == 0 and row.previous_volume == 0 and not is_total:
            table.add_row(rich_text(row.label), "0", "", "0", "", "", "", "", style="dim")
            continue
        # No share nor net sentiment of no mention: a theme gone quiet read « 0 % » and
        # « +0.00 », an improvement made of nothing.
        table.add_row(
            # A label is text (PUT /taxonomy): « Prix [/] » was a MarkupError traceback.
            f"[bold]{rich_text(row.label)}[/]" if is_total else rich_text(row.label),
            french_number(row.volume),
            _change(row.volume_change) if row.volume or row.previous_volume else "",
            french_number(row.negatives),
            _pct(row.negative_share) if row.volume else "–",
            _points(row),
            french_number(row.net_sentiment, "+.2f") if row.volume else "–",
            # The published mean (/themes: 3 decimals) rounded once, as the dashboard shows it.
            _tenth(round(row.mean_rating, 3), signed=False) if row.mean_rating is not None else "–",
        )
    return table


FORMATS = ("table", "csv", "xlsx", "json")


def report_tables(report: Report) -> list[ExportTable]:
    """The report as export tables: the themes (mentions per theme, then the verbatim total),
    the period's NPS / CSAT / CES when the feed has them, and one table of key drivers per
    score."""
    tables = [themes_table(report.rows, report.start, report.end)]
    if report.scores:
        tables.append(scores_table(report.scores))
    for score, drivers in report.drivers.items():
        tables.append(drivers_table(score, drivers))
    return tables


def report_json(report: Report) -> dict[str, Any]:
    themes = [
        {
            "theme": r.theme,
            "label": r.label,
            "mentions": r.volume,
            "negatives": r.negatives,
            "neutrals": r.neutrals,
            "positives": r.positives,
            "negative_share": round(r.negative_share, 4),
            "net_sentiment": round(r.net_sentiment, 4),
            "mean_rating": None if r.mean_rating is None else round(r.mean_rating, 3),
            "previous_mentions": r.previous_volume,
            "volume_change": None if r.volume_change is None else round(r.volume_change, 4),
            "negative_share_change": None
            if r.negative_share_change is None
            else round(r.negative_share_change, 4),
        }
        for r in report.rows
        if r.theme != "*"
    ]
    total = next((r for r in report.rows if r.theme == "*"), None)
    return {
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "end_in_progress": report.in_progress,  # `end` is today (UTC): not complete yet
        "verbatims": total.volume if total else 0,
        "verbatims_negative": total.negatives if total else 0,
        # Counted apart, as the table's caption says: without it the JSON's figures read as
        # every verbatim of the period.
        "other_languages": report.other_languages,
        "scores": [score_json(s) for s in report.scores],  # as /overview's
        "themes": themes,
        "drivers": {
            score: [driver_json(d) for d in drivers] for score, drivers in report.drivers.items()
        },
    }


def write_report(report: Report, fmt: str, output: Path | None) -> str | None:
    """Write `report` as csv / xlsx / json to `output` (or return the text for stdout;
    xlsx needs a file). Table format is rendered by the caller (rich)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}")
    if fmt == "xlsx":
        if output is None:
            raise ValueError("--format xlsx needs an output file: -o report.xlsx")
        to_xlsx(report_tables(report), output)
        return None
    if fmt == "csv":
        # One CSV holds one table: the themes (drivers go to json/xlsx).
        text = to_csv(report_tables(report)[0])
    else:
        text = json.dumps(report_json(report), ensure_ascii=False, indent=2) + "\n"
    if output is None:
        return text
    from jobs.analyze import BOM, atomic_output

    # As every `-o`: `-o /dev/stdout >> log` appends (write_text truncated the log), a file
    # is written whole or not at all. The BOM tells Excel the CSV is UTF-8.
    with atomic_output(output) as fh:
        fh.write(BOM + text if fmt == "csv" else text)
    return None
