"""Tabular exports shared by the CLI report and the API: CSV text and XLSX workbooks.

A `Table` is a title, French column headers and plain-value rows; `to_csv` / `to_xlsx` write
it. Customer text is user input: cells that a spreadsheet would run as a formula (starting
with = + - @) are prefixed with an apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.models import Alert
from core.queries import ScoreSummary, ThemeRow, VerbatimRow
from nlp.drivers import DriverEffect

if TYPE_CHECKING:
    from core.corrections import CorrectedVerbatim

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Table:
    title: str  # sheet name (XLSX): at most 31 characters
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _utc(value: datetime) -> datetime:
    """A stored time in UTC: SQLite hands it back naive, PostgreSQL in the session's time
    zone (the server's TimeZone, often Europe/Paris): one export read 13:59, the other
    14:59+01:00."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _utc(value).isoformat().replace("+00:00", "Z")  # said UTC, as the JSON
    if isinstance(value, date):
        return value.isoformat()
    return _safe(value)


def to_csv(table: Table) -> str:
    """RFC 4180 CSV (comma, quoted when needed), header first. Encode with `utf-8-sig` for
    Excel (a BOM makes it read accents right)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_csv_value(v) for v in row])
    return out.getvalue()


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _utc(value).replace(tzinfo=None)  # Excel has no time zones: UTC, as the CSV
    if isinstance(value, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        # A control character (a taxonomy label edited through the API may hold one) made
        # openpyxl refuse the whole workbook.
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def to_xlsx(tables: Sequence[Table], target: Path | io.BytesIO) -> None:
    """One sheet per table, bold frozen header, dates as Excel dates, widths fitted."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for table in tables:
        sheet = book.create_sheet(table.title[:31])
        sheet.append(table.columns)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for row in table.rows:
            sheet.append([_xlsx_value(v) for v in row])
            for cell in sheet[sheet.max_row]:
                # Text is stored as text: "=…" never becomes a formula. The CSV's leading
                # apostrophe showed as a literal "'" in Excel here (the cell was already text).
                if isinstance(cell.value, str) and cell.data_type in ("f", "e"):
                    cell.data_type = "s"  # "=…" a formula, "#N/A" an error value otherwise
        for i, name in enumerate(table.columns, start=1):
            longest = max([len(name), *(len(str(r[i - 1] or "")) for r in table.rows[:200])])
            sheet.column_dimensions[get_column_letter(i)].width = min(60, max(8, longest + 2))
    book.save(target)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


THEME_COLUMNS = [
    "theme",
    "libellé",
    "mentions",
    "négatives",
    "neutres",
    "positives",
    "part négative",
    "sentiment net",
    "note moyenne",
    "mentions période précédente",
    "évolution volume (ratio, 0.5 = +50 %)",
    "évolution part négative (points)",
    # The period on every row: a CSV opened later says which week it is.
    "début période",
    "fin période",
]


def themes_table(rows: Iterable[ThemeRow], start: date, end: date) -> Table:
    """Theme rows count mentions; the "*" row (if present) counts verbatims by their
    document sentiment and is labelled so."""
    # 31 characters, Excel's limit for a sheet's name, with the years.
    table = Table(f"Thèmes {start:%d-%m-%Y} au {end:%d-%m-%Y}", list(THEME_COLUMNS))
    for r in rows:
        table.rows.append(
            [
                r.theme if r.theme != "*" else "*",
                r.label if r.theme != "*" else "Total (verbatims, sentiment du document)",
                r.volume,
                r.negatives,
                r.neutrals,
                r.positives,
                _r(r.negative_share),
                _r(r.net_sentiment),
                _r(r.mean_rating, 3),
                r.previous_volume,
                _r(r.volume_change),
                _r(None if r.negative_share_change is None else r.negative_share_change * 100, 2),
                start,
                end,
            ]
        )
    return table


VERBATIM_COLUMNS = [
    "feedback_id",
    "date",
    "canal",
    "source",
    "note",
    "polarité du thème",
    "sentiment",
    "sévérité",
    "extrait",
    "texte",
    # Every language is listed (the `language` filter) while /themes counts French only: a
    # file without it read 259 rows against 257 mentions, the extra ones not to be told apart.
    "langue",
]


def verbatims_table(theme: str, rows: Iterable[VerbatimRow]) -> Table:
    table = Table(f"Verbatims {theme}", list(VERBATIM_COLUMNS))
    for r in rows:
        table.rows.append(
            [
                r.feedback_id,
                r.created_at,
                r.channel,
                r.source,
                r.rating,
                r.polarity,
                r.sentiment,
                _r(r.severity, 3),
                r.evidence_text,
                r.text,
                r.language,
            ]
        )
    return table


CORRECTION_COLUMNS = [
    "feedback_id",
    "date",
    "canal",
    "source",
    "texte",
    # Empty where no analyst fixed it (the model's part is no label), as the JSONL leaves it out.
    "sentiment corrigé",
    "thèmes corrigés",
    "corrigé le",
    "par",
    "note",
    "corrections",
]


def corrections_table(rows: Iterable[CorrectedVerbatim]) -> Table:
    """Corrected verbatims for review (`verbatim corrections export -o F.csv`, `GET
    /corrections?format=csv`). Themes read `livraison:negative; emballage:negative`; a theme
    correction to "no theme" reads `aucun` (an empty cell is "not corrected")."""
    table = Table("Corrections", list(CORRECTION_COLUMNS))
    for r in rows:
        themes = None
        if r.themes is not None:
            themes = "; ".join(f"{t}:{p}" for t, p in r.themes.items()) or "aucun"
        table.rows.append(
            [
                r.feedback_id,
                r.created_at,
                r.channel,
                r.source,
                r.text,
                r.sentiment,
                themes,
                r.corrected_at,
                r.author,
                r.note,
                r.corrections,
            ]
        )
    return table


ALERT_COLUMNS = [
    "id",
    "theme",
    "type",
    "équipe",
    "statut",
    "premier jour",
    "dernier jour",
    "sévérité",
    "observé",
    "attendu",
    "p-value",
    # As the JSON's incident_id / incident_status: an alert stays "open" after a person
    # resolved its incident, which the file could not tell from one still to handle.
    "incident",
    "statut incident",
]


def alerts_table(
    alerts: Iterable[Alert],
    current_id: Callable[[str], str] = str,
    incident_status: Mapping[int | None, str] | None = None,
) -> Table:
    """`current_id` maps the theme id stored when the alert opened to the taxonomy's current
    one (a renamed or merged theme), as the JSON list shows it; `incident_status` gives the
    status of each alert's incident (`core.queries.incident_statuses`)."""
    statuses = incident_status or {}
    table = Table("Alertes", list(ALERT_COLUMNS))
    for a in alerts:
        table.rows.append(
            [
                a.id,
                current_id(a.theme),
                a.kind,
                a.team,
                a.status,
                a.first_day,
                a.last_day,
                a.severity,
                _r(a.observed, 3),
                _r(a.expected, 3),
                None if a.p_value is None else float(f"{a.p_value:.3g}"),
                a.incident_id,
                statuses.get(a.incident_id),
            ]
        )
    return table


SCORE_COLUMNS = [
    "score",
    "réponses",
    "valeur",
    "réponses période précédente",
    "valeur période précédente",
]


def score_json(s: ScoreSummary) -> dict[str, Any]:
    """One score of a period as `/overview` gives it (NPS in points, CSAT in % of 4-5
    answers, CES mean on 1-7), over the French verbatims that carry an answer."""
    return {
        "score": s.score,
        "answers": s.answers,
        "value": _r(s.value, 2),
        "previous_answers": s.previous_answers,
        "previous_value": _r(s.previous_value, 2),
    }


def scores_table(scores: Iterable[ScoreSummary]) -> Table:
    table = Table("Scores", list(SCORE_COLUMNS))
    for s in scores:
        table.rows.append(list(score_json(s).values()))
    return table


SCORE_UNITS = {
    "nps": "points de NPS",
    "csat": "points de CSAT (part de 4-5)",
    "ces": "points de CES (1-7)",
    "rating": "étoiles",
}

DRIVER_COLUMNS = [
    "theme",
    "mentions",
    "moyenne avec",
    "moyenne sans",
    "effet",
    "IC 95 % bas",
    "IC 95 % haut",
    "p-value",
    "impact sur la moyenne",
    "significatif",
]


def driver_json(d: DriverEffect) -> dict[str, Any]:
    return {
        "theme": d.theme,
        "mentions": d.mentions,
        "mean_with": round(d.mean_with, 3),
        "mean_without": round(d.mean_without, 3),
        "effect": round(d.effect, 3),
        "ci_low": round(d.ci_low, 3),
        "ci_high": round(d.ci_high, 3),
        "p_value": float(f"{d.p_value:.3g}"),
        "impact": round(d.impact, 3),
        "significant": d.significant,
    }


def drivers_table(score: str, drivers: Iterable[DriverEffect]) -> Table:
    table = Table(f"Facteurs {score.upper()}", list(DRIVER_COLUMNS))
    for d in drivers:
        j = driver_json(d)
        table.rows.append(
            [
                j[k]
                for k in (
                    "theme",
                    "mentions",
                    "mean_with",
                    "mean_without",
                    "effect",
                    "ci_low",
                    "ci_high",
                    "p_value",
                    "impact",
                )
            ]
            + ["oui" if d.significant else "non"]
        )
    return table
