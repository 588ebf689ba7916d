"""`verbatim report`: the themes table of the last N days, with French labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from rich.table import Table
from sqlalchemy.orm import Session

from core.queries import ThemeRow, latest_day, other_language_volumes, theme_summary
from nlp.taxonomy import Taxonomy


@dataclass
class Report:
    start: date
    end: date
    rows: list[ThemeRow]  # themes, then the "*" total last
    # Verbatims in other languages over the period, counted apart (never in the rows above).
    other_languages: dict[str, int] = field(default_factory=dict)


def build_report(
    session: Session,
    taxonomy: Taxonomy,
    *,
    days: int = 7,
    end: date | None = None,
    channel: str | None = None,
    source: str | None = None,
) -> Report:
    """Default end: the last day with data (a stale feed still shows its latest week)."""
    if days < 1:
        raise ValueError("--days must be at least 1")
    end = end or latest_day(session) or date.today()
    start = end - timedelta(days=days - 1)
    rows = theme_summary(
        session,
        start=start,
        end=end,
        channel=channel,
        source=source,
        taxonomy=taxonomy,
        include_total=True,
    )
    others = other_language_volumes(session, start=start, end=end, channel=channel, source=source)
    return Report(start, end, rows, others)


def _pct(value: float) -> str:
    return f"{value * 100:.0f} %"


def _change(value: float | None) -> str:
    if value is None:
        return "[dim]nouveau[/]"
    color = "red" if value > 0.2 else "green" if value < -0.2 else "white"
    return f"[{color}]{value * 100:+.0f} %[/]"


def _points(value: float) -> str:
    color = "red" if value > 0.05 else "green" if value < -0.05 else "white"
    return f"[{color}]{value * 100:+.0f} pts[/]"


def _other_languages(counts: dict[str, int]) -> str | None:
    if not counts:
        return None
    parts = ", ".join(f"{lang} {n}" for lang, n in sorted(counts.items(), key=lambda x: -x[1]))
    return f"Hors français, non comptés ci-dessus : {parts} verbatims"


def render_report(report: Report) -> Table:
    days = (report.end - report.start).days + 1
    table = Table(
        title=f"Thèmes du {report.start:%d/%m/%Y} au {report.end:%d/%m/%Y} "
        f"({days} j ; Δ = vs les {days} j précédents)",
        title_justify="left",
        caption=_other_languages(report.other_languages),
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
            table.add_row(row.label, "0", "", "0", "", "", "", "", style="dim")
            continue
        table.add_row(
            f"[bold]{row.label}[/]" if is_total else row.label,
            str(row.volume),
            _change(row.volume_change) if row.volume or row.previous_volume else "",
            str(row.negatives),
            _pct(row.negative_share),
            _points(row.negative_share_change),
            f"{row.net_sentiment:+.2f}",
            f"{row.mean_rating:.1f}" if row.mean_rating is not None else "–",
        )
    return table
