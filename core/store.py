"""Write side of storage: validate + prepare feedback rows, insert them with dedup, quarantine
rejected rows, and track ingestion runs (watermark = resume point).

`prepare_feedback` is the single place where an input row becomes a stored verbatim, so the
file ingester and the HTTP API store exactly the same thing: text normalised and PII-masked
before it ever reaches the database, language detected, dedup key computed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from core.db import lock_aggregates
from core.masking import MAX_META_VALUE, masked_key
from core.masking import storable_text as _clean
from core.models import Feedback, IngestionRun, Quarantine
from nlp.errors import VerbatimError

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

CHANNELS = ("review", "social", "complaint", "survey")
# Canonical input fields; anything else in a row is kept in `meta`.
FIELDS = (
    "text",
    "id",
    "created_at",
    "rating",
    "customer",
    "channel",
    "title",
    "nps",
    "csat",
    "ces",
)
# Survey scores: field -> (lowest, highest) answer; answers are whole numbers.
SCORE_RANGES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
MAX_EXTERNAL_ID = 200
MAX_RAW = 2_000
MIN_YEAR = 1990
# Lists and dicts inside one field may nest this deep; a deeper row is rejected `too_deep`
# (JSON allows any depth, but masking, storing and serialising it would meet Python's
# recursion limit: a 600-level field used to stop a whole ingest with RecursionError).
MAX_NESTING = 32
TOO_DEEP = f"lists or objects nested deeper than {MAX_NESTING} levels"  # the rejection's detail
QUOTED_CHARS = 40  # characters of a rejected value quoted in its rejection reason


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a row cannot be stored. `reason` is a stable code; `detail` is for humans."""

    reason: str
    field: str | None = None
    detail: str = ""
    # False when `detail` is ours alone (sizes, limits): nothing in it to mask, and the masker
    # would take "1000001 characters" for an order number.
    quotes_input: bool = True

    @property
    def message(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


class InvalidValue(VerbatimError, ValueError):
    """A value that cannot be read. `value` (when set) is the input it quotes: a rejection
    quotes it masked, then cut (`quoted`), so a cut never splits an IBAN or a phone number
    into a piece the masker no longer recognises; `template` has "{}" where it goes."""

    def __init__(self, message: str, value: Any = None, template: str | None = None) -> None:
        super().__init__(message)
        self.value = value
        self.template = template

    @classmethod
    def quoting(cls, value: Any, template: str) -> InvalidValue:
        """An error whose message quotes `value` (cut, unmasked: for our own logs and the
        callers that mask nothing); `detail(mask)` is the masked form for rejections."""
        if value is None or isinstance(value, bool | int | float):
            return cls(template.format(repr(value)))  # nothing to mask, nothing to cut
        return cls(template.format(repr(str(value)[:QUOTED_CHARS])), value, template)

    def detail(self, mask: Callable[[str], str]) -> str:
        if self.template is None:
            return str(self)
        return self.template.format(quoted(self.value, mask))


def quoted(value: Any, mask: Callable[[str], str]) -> str:
    """`value` as quoted in a rejection reason: masked whole (up to MAX_META_VALUE
    characters), then cut to QUOTED_CHARS. Cutting first left "FR76 3000 6000 0112 3456 78",
    too short to be seen as an IBAN, in clear."""
    masked = mask(_clean(str(value)[:MAX_META_VALUE]))
    if len(masked) > QUOTED_CHARS:
        masked = masked[:QUOTED_CHARS] + "…"
    return repr(masked)


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """How deep lists and dicts nest in `value` (a string or number: 0, `[]`: 1, `[[1]]`: 2),
    counted without recursion and only up to `limit` + 1 (enough to say "too deep")."""
    if not isinstance(value, dict | list):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def too_deep(fields: Mapping[str, Any], limit: int = MAX_NESTING) -> str | None:
    """The first field of a row whose value nests deeper than `limit`, else None."""
    for name, value in fields.items():
        if nesting_depth(value, limit) > limit:
            return str(name)
    return None


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clean_text(raw_text: str) -> str:
    """A text as ingest keeps it before PII masking: HTML entities and tags and garbled
    accents repaired (`nlp.text.repair`), normalised, control characters out."""
    from nlp.text import normalize_text
    from nlp.text.repair import repair_text

    return _clean(normalize_text(repair_text(raw_text)))


def key_text(raw_text: str) -> str:
    """The text a row without an id is deduplicated on: `clean_text` without the repair, as
    ingest cleaned it before the repair came (2026-12-06). Every stored "h:" key hashes this:
    keyed on the repaired text, a file read again after an upgrade stored each of its rows
    with an entity or garbled accents a second time. One key per row, so the repaired and the
    raw form of one text are two rows, as they were before the repair."""
    from nlp.text import normalize_text

    return _clean(normalize_text(raw_text))


def text_hash(raw_text: str) -> str:
    """The `content_hash` ingest stores for this text (of `clean_text`, before masking): what
    matches a training file's row to a stored verbatim, whose text is normalised and masked."""
    return sha256(clean_text(raw_text))


_DMY = re.compile(
    r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})"
    r"(?:[ T,]+(\d{1,2})[:h](\d{2})(?::(\d{2}))?(?:\s*(Z|[+-]\d{2}(?::?\d{2})?))?)?"
)
_COMPACT = re.compile(r"(19|20)\d{6}")  # 20261103: ISO basic format, not an epoch
# Excel's serial dates (days since 1899-12-30; 45998 = 2025-12-07, 45998.5 at noon), as a
# spreadsheet column in "General" format exports them. As epoch seconds every number of this
# range is in January 1970, a date no export means: read as days, not rejected "before 1990".
_EXCEL_EPOCH = datetime(1899, 12, 30)
_EXCEL_LAST = 2_958_465  # 9999-12-31
_PERSONAL_TOKENS = re.compile(r"<(EMAIL|PHONE|CARD|IBAN)>")


def looks_personal(value: str) -> bool:
    """An e-mail, phone, card or IBAN where an identifier is expected (an id, a source):
    personal data that would otherwise be stored or shown in clear."""
    from nlp.text import mask_pii

    return _PERSONAL_TOKENS.search(mask_pii(value)) is not None


# A decimal comma too: a French Excel writes its serial dates « 45998,5833 » in a CSV.
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def _written_date(text: str) -> datetime | None:
    """Slow path for dates written out ("26 février 2021", "mardi 3 mars 2025 à 14h"), French
    then English, by `dateparser`; absolute dates only (no "hier", no "il y a 3 jours").

    A zone in the text ("20:00 PST", "CET", "UTC+2", RFC 2822's "-0500") is applied: the
    result is aware and converted to UTC like an ISO offset (it used to come back as the local
    clock time, the zone dropped). Without a zone the time is taken as UTC, as before."""
    if len(text) > 64 or not any(ch.isalpha() for ch in text):
        return None
    import dateparser

    return dateparser.parse(
        text,
        languages=["fr", "en"],
        settings={
            "DATE_ORDER": "DMY",
            "STRICT_PARSING": True,  # day, month and year must all be there
            "PARSERS": ["absolute-time"],
            "RETURN_AS_TIMEZONE_AWARE": True,
            "TIMEZONE": "UTC",  # the zone of a time written without one
            "TO_TIMEZONE": "UTC",
        },
    )


def _utc_offset(text: str) -> timezone:
    """ "Z", "+01", "+0100", "-05:30" -> a fixed zone (ValueError beyond ±24 h)."""
    if text == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:] or 0)
    return timezone((-1 if text[0] == "-" else 1) * timedelta(minutes=minutes))


def parse_datetime(value: Any, *, now: datetime | None = None) -> datetime:
    """ISO 8601, `YYYY-MM-DD`, `DD/MM/YYYY[ HH:MM[:SS]]` (or with - .), epoch s/ms, Excel
    serial days (45998), and dates written out in French or English ("26 février 2021") -> UTC.

    Naive times are taken as UTC. Dates before 1990 or more than a day ahead are rejected.
    """
    now = now or utcnow()
    if isinstance(value, bool):
        raise InvalidValue(f"{value!r} is not a date")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float) or (
        _NUMBER.fullmatch(str(value).strip()) and not _COMPACT.fullmatch(str(value).strip())
    ):
        number = float(value if isinstance(value, int | float) else str(value).replace(",", "."))
        if not math.isfinite(number):
            raise InvalidValue(f"{value!r} is not a date")
        if abs(number) > 1e11:  # milliseconds
            number /= 1000.0
        try:
            if 1 <= number <= _EXCEL_LAST:
                parsed = _EXCEL_EPOCH + timedelta(days=number)
            else:
                parsed = datetime.fromtimestamp(number, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidValue(f"{value!r} is not a date") from exc
    else:
        text = str(value).strip()
        if not text:
            raise InvalidValue("empty date")
        match = _DMY.fullmatch(text)
        try:
            if match:
                d, _sep, m, y, hh, mm, ss, offset = match.groups()
                parsed = datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
                if offset:  # "01/11/2026 20:00 +0100": the zone is applied, never dropped
                    parsed = parsed.replace(tzinfo=_utc_offset(offset))
            else:
                parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            written = _written_date(text)
            if written is None:
                raise InvalidValue.quoting(text, "{} is not a date") from exc
            parsed = written
    try:
        parsed = as_utc(parsed)
    except OverflowError:  # year 9999 with a negative offset (or year 1, positive): a 500
        late = parsed.year > MIN_YEAR
        raise InvalidValue.quoting(
            value, "{} is in the future" if late else "{} is before " + str(MIN_YEAR)
        ) from None
    if parsed.year < MIN_YEAR:
        raise InvalidValue.quoting(value, "{} is before " + str(MIN_YEAR))
    if parsed > now + timedelta(days=1):
        raise InvalidValue.quoting(value, "{} is in the future")
    return parsed


# "★★★★☆" (filled stars count) and a unit after the number ("5 étoiles", "4 stars", "4*",
# "4★"): stars, out of 5.
_STAR_GLYPHS = re.compile(r"^[★⭐☆✩✰\s]+$")
_STAR_UNIT = re.compile(r"\s*(?:[ée]toiles?|stars?|\*|★|⭐)$", re.IGNORECASE)
# A written scale: "8/10", "8 sur 10", "4 étoiles sur 5", "4 out of 5 stars".
_WRITTEN_SCALE = re.compile(
    r"^(.*?)\s*(?:/|\bsur\b|\bout\s+of\b)\s*(\d+(?:\.\d+)?)\s*(?:[ée]toiles?|stars?|pts?|points?)?$",
    re.IGNORECASE,
)
# The scale ratings are stored on (the dashboard's « x / 5 »).
RATING_SCALE = 5

# What exports write for "no answer" (a survey question skipped, a review without stars):
# the verbatim is stored without the score. A rejected row lost its text to the quarantine.
_NO_ANSWER = frozenset(
    {"n/a", "na", "n.a", "nc", "n.c", "-", "–", "—", "?", "null", "none", "sans note", "non noté"}
)


def _no_answer(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().rstrip(".") in _NO_ANSWER


def parse_rating(value: Any, scale: int = RATING_SCALE) -> float | None:
    """A rating out of 5 (RATING_SCALE), rounded to 0.01: a bare number is on `scale` (the
    column's, 5 unless the source declares another: "8" with scale 10 is 4.0), a written scale
    is converted ("8/10", "8 sur 10" and "80 %" are 4.0; "★★★★" and "4 étoiles" are stars);
    "4,5" accepted; a bare number above `scale` is refused (never averaged with stars);
    empty or "N/A" ("-", "nc", …) is None."""
    if value is None or _no_answer(value):
        return None
    if isinstance(value, bool):
        raise InvalidValue(f"{value!r} is not a rating")
    out_of, written = float(scale), False
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip().replace(",", ".")
        if not text:
            return None
        if _STAR_GLYPHS.match(text):
            filled = text.count("★") + text.count("⭐")
            if filled > RATING_SCALE:
                raise InvalidValue.quoting(value, "{} has more than 5 stars")
            return float(filled)
        match = _WRITTEN_SCALE.match(text)
        if text.endswith("%"):  # "80 %": a satisfaction score
            text, out_of, written = text[:-1].strip(), 100.0, True
        elif match:
            text, out_of, written = match.group(1), float(match.group(2)), True
            if out_of <= 0:
                raise InvalidValue.quoting(value, "{} is not a rating (a scale of 0)")
        stars = _STAR_UNIT.sub("", text)
        if stars != text and not written:  # "4 étoiles": stars, whatever the column's scale
            out_of = float(RATING_SCALE)
        try:
            number = float(stars)
        except ValueError as exc:
            raise InvalidValue.quoting(value, "{} is not a number") from exc
        if written and not (math.isfinite(number) and 0.0 <= number <= out_of):
            raise InvalidValue.quoting(value, "{} is outside its own scale")
    if math.isnan(number):  # "NaN" (a float column's blank): no rating, not an out-of-range one
        raise InvalidValue.quoting(value, "{} is not a number")
    if not math.isfinite(number) or number < 0.0:
        raise InvalidValue.quoting(value, "{} is not a rating")
    if number > out_of:
        hint = (
            "a rating is out of 5 stars: write it with its scale ('8/10') or declare the "
            "column's scale (the source's rating_scale, ingest --rating-scale)"
            if out_of == RATING_SCALE
            else f"the source's rating_scale says ratings are out of {scale}"
        )
        raise InvalidValue.quoting(value, f"{{}} is above {out_of:g}: {hint}")
    return round(number / out_of * RATING_SCALE, 2)


def parse_score(name: str, value: Any) -> float | None:
    """An NPS (0-10), CSAT (1-5) or CES (1-7) answer: a whole number in its range; "8/10"
    (NPS), "4/5" (CSAT) and "4,0" accepted, an answer written on another scale ("4/10" for a
    CSAT: its numerator was kept, read as "satisfied") refused; empty or "N/A" ("-", "nc",
    …) is None."""
    if value is None or (isinstance(value, str) and not value.strip()) or _no_answer(value):
        return None
    low, high = SCORE_RANGES[name]
    if isinstance(value, bool):
        raise InvalidValue(f"{value!r} is not a {name.upper()} answer")
    text = str(value).strip().replace(",", ".")
    if "/" in text:  # "8/10": the denominator must be this score's own scale
        text, scale = (part.strip() for part in text.split("/", 1))
        try:
            out_of = float(scale)
        except ValueError as exc:
            raise InvalidValue.quoting(value, "{} is not a number") from exc
        if out_of != high:
            raise InvalidValue.quoting(
                value, f"{{}} is on a 0..{scale} scale, not the {name.upper()} {low}..{high} one"
            )
    try:
        number = float(text)
    except ValueError as exc:
        raise InvalidValue.quoting(value, "{} is not a number") from exc
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise InvalidValue.quoting(value, f"{{}} is not a whole number in {low}..{high}")
    return number


def _text_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidValue(f"expected text, got {type(value).__name__}")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _meta(extra: Mapping[str, Any], mask: Callable[[str], str]) -> dict[str, Any]:
    """Extra fields -> `feedback.metadata`: keys and values repaired as the text is (HTML
    entities and tags, garbled accents: the incidents' drivers quote them, and « jean&#64;x.fr »
    escaped the masking), then masked. Keys that mask alike keep both values ("<EMAIL>",
    "<EMAIL>#2"; see `nlp.text.pii.mask_nested`)."""
    from nlp.text.pii import free_key
    from nlp.text.repair import repair_text

    meta: dict[str, Any] = {}
    for key, value in extra.items():
        if value in ("", None):
            continue
        name = masked_key(repair_text(str(key)), mask)
        meta[free_key(meta, name)] = _meta_value(value, mask)
    return meta


def _meta_text(value: str, mask: Callable[[str], str]) -> str:
    from nlp.text.repair import repair_text

    return mask(_clean(repair_text(value[:MAX_META_VALUE])))


def _meta_value(value: Any, mask: Any) -> Any:
    """Extra columns are kept, but free text in them is repaired, PII-masked and bounded too."""
    if isinstance(value, str):
        return _meta_text(value, mask)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity: PostgreSQL's json refused the row (500)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict | list):
        from nlp.text import mask_nested
        from nlp.text.repair import repair_text

        # Masked leaf by leaf, then written as JSON: masking str(value) met "\\n" escapes
        # where the text had line breaks ("FR76\\n3000…" kept an IBAN whole).
        leaves = mask_nested(
            value,
            lambda s: _meta_text(s, mask),
            mask_key=lambda k: masked_key(repair_text(k), mask),
        )
        return _clean(json.dumps(leaves, ensure_ascii=False, default=str)[:MAX_META_VALUE])
    return mask(_clean(str(value)[:MAX_META_VALUE]))


def id_key(external_id: str) -> tuple[str, str]:
    """A row's cleaned id -> (external_id as stored, dedup_key). `verbatim forget --key`
    finds a verbatim by the id its source gave it with the same steps."""
    if looks_personal(external_id):
        # An id that is an e-mail or a phone number is personal data: keep only its hash.
        # (Long numeric ids look like order numbers to mask_pii; those are kept as they are.)
        external_id = "sha256:" + sha256(external_id)
    # Over-long ids are hashed so the key always fits its column.
    key_id = external_id if len(external_id) <= MAX_EXTERNAL_ID else sha256(external_id)
    return external_id[:MAX_EXTERNAL_ID], f"id:{key_id}"


_WHOLE_ID = re.compile(r"id:-?[0-9]{1,400}")


def float_keyed(keys: Iterable[str]) -> dict[str, str]:
    """Each key to look up for `keys` -> the key it stands for: a key itself, and for an
    integer id its form before whole floats were read as integers (`id:77.0`, `id:1e+16`:
    str() of the float), so a row stored then is still the duplicate of a re-post. Rows are
    found by lookup, not rewritten: no migration of a large `feedback` table."""
    out: dict[str, str] = {}
    for key in keys:
        out[key] = key
        if _WHOLE_ID.fullmatch(key):
            number = int(key[3:])
            try:
                as_float = float(number)
            except OverflowError:
                continue
            if as_float == number:
                out.setdefault(f"id:{as_float}", key)
    return out


def customer_key(customer: str) -> str:
    """The stored `customer_key` of a row's customer / order reference (hashed)."""
    return sha256(_clean(customer).strip().lower())


def prepare_feedback(
    fields: Mapping[str, Any],
    *,
    source: str,
    channel: str,
    max_text_chars: int,
    extra: Mapping[str, Any] | None = None,
    run_id: int | None = None,
    now: datetime | None = None,
    mask: Callable[[str], str] | None = None,
    rating_scale: int = RATING_SCALE,
) -> dict[str, Any] | Rejection:
    """Canonical fields (see FIELDS) -> column values for `feedback`, or why the row is rejected.

    Dedup key: "id:<external id>" when the row has an id, else "h:" + sha256 of the normalised
    text (+ the raw date and customer when the row has them, so that two customers who both
    wrote "Très bien" on different days are not merged; re-reading a file still gives the same
    key).

    `mask` is the PII masker (a `nlp.text.PiiMasker`, built once by the caller with its NER
    pipeline); without one the rules-only masker runs. `rating_scale` is the scale of a bare
    rating (the source's `rating_scale`: 10 for a 0-10 `note` column); ratings are stored out
    of 5.
    """
    from nlp.text import mask_pii

    mask = mask or mask_pii

    now = now or utcnow()
    # First: every later step (str(), masking, JSON) would meet the recursion limit.
    deep = too_deep(fields) or too_deep(extra or {})
    if deep is not None:
        field = deep if deep in FIELDS else masked_key(deep, mask)[:100]  # its column: 100
        return Rejection("too_deep", field, TOO_DEEP, quotes_input=False)
    try:
        raw_text = _text_value(fields.get("text"))
        title = _text_value(fields.get("title")).strip()
    except InvalidValue as exc:
        return Rejection("bad_text", "text", str(exc))
    if not (_encodable(raw_text) and _encodable(title)):
        return Rejection("encoding_error", "text", "invalid unicode (lone surrogate)")
    if title and raw_text.strip():
        raw_text = f"{title}. {raw_text}"
    elif title:
        raw_text = title
    if len(raw_text) > max_text_chars:
        detail = f"{len(raw_text)} characters > {max_text_chars}"
        return Rejection("text_too_long", "text", detail, quotes_input=False)
    text = clean_text(raw_text)
    if not text.strip():
        return Rejection("empty_text", "text", "no text")

    raw_date = fields.get("created_at")
    if raw_date is None or (isinstance(raw_date, str) and not raw_date.strip()):
        if "created_at" in fields:
            return Rejection("bad_date", "created_at", "empty date")
        created_at, raw_date = now, None
    else:
        try:
            created_at = parse_datetime(raw_date, now=now)
        except InvalidValue as exc:
            return Rejection("bad_date", "created_at", exc.detail(mask))

    try:
        rating = parse_rating(fields.get("rating"), rating_scale)
    except InvalidValue as exc:
        return Rejection("bad_rating", "rating", exc.detail(mask))

    scores: dict[str, float | None] = {}
    for name in SCORE_RANGES:
        try:
            scores[name] = parse_score(name, fields.get(name))
        except InvalidValue as exc:
            return Rejection(f"bad_{name}", name, exc.detail(mask))

    row_channel = fields.get("channel")
    if row_channel is not None and str(row_channel).strip():
        row_channel = str(row_channel).strip().lower()
        if row_channel not in CHANNELS:
            # Masked whole, then cut: cutting first left a truncated IBAN in clear.
            shown = quoted(row_channel, mask)
            return Rejection("bad_channel", "channel", f"{shown} not in {', '.join(CHANNELS)}")
    else:
        row_channel = channel

    external = fields.get("id")
    if isinstance(external, float):
        # A pandas float column: 77.0 is the id 77 (it was `id:77.0`, not a duplicate of the
        # same row sent as 77), and NaN, its missing value, is no id (every row `id:nan`).
        if not math.isfinite(external):
            external = None
        elif external.is_integer():
            external = int(external)
    for name in ("id", "customer"):
        value = fields.get(name)
        if isinstance(value, dict | list | bool):
            # str() stored a Python repr ("{'x': 1}") as the id, deduplicating nothing useful;
            # `true` (a checkbox mapped to `id`) made every later row a duplicate of the first.
            what = str(value).lower() if isinstance(value, bool) else "an object or a list"
            return Rejection(
                f"bad_{name}",
                name,
                f"{name} must be a string or a number, not {what}",
                quotes_input=False,
            )
    external_id = None if external is None else _clean(str(external)).strip() or None
    customer_raw = fields.get("customer")
    customer = None if customer_raw is None else _clean(str(customer_raw)).strip().lower() or None

    content_hash = sha256(text)  # = text_hash(raw_text): training files match on it
    if external_id:
        external_id, dedup_key = id_key(external_id)
    else:
        parts = [key_text(raw_text)]  # not `text`: see key_text
        if raw_date is not None:
            parts.append(str(raw_date).strip())
        if customer:
            parts.append(customer)
        dedup_key = "h:" + sha256(_clean("\x1f".join(parts)))

    masked = mask(text)
    meta = _meta(extra or {}, mask)
    return {
        "source": source,
        "channel": row_channel,
        "external_id": external_id,
        "dedup_key": dedup_key,
        "created_at": created_at,
        "ingested_at": now,
        "rating": rating,
        **scores,
        "text": masked,
        **language_columns(masked),
        "content_hash": content_hash,
        "customer_key": sha256(customer) if customer else None,
        "meta": meta,
        "run_id": run_id,
        "analyzed": False,
    }


def language_columns(masked: str) -> dict[str, Any]:
    """`feedback.language` and `is_french` of a stored (masked) text: one rule for ingest and
    `verbatim enrich --reanalyze`, which detects again the rows a newer detector reads
    differently."""
    from nlp.text import detect_language, is_french

    language, confidence = detect_language(masked[:2000])  # the start is enough to tell
    return {"language": (language or "und")[:8], "is_french": is_french(language, confidence)}


def dialect_insert(session: Session) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for the dialects we run on."""
    name = session.get_bind().dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    raise RuntimeError(f"unsupported database dialect {name!r}")  # pragma: no cover


def insert_feedback(session: Session, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Insert prepared rows, skipping duplicates (same source + dedup_key), in the caller's
    transaction. Returns (stored, duplicates)."""
    if not rows:
        return 0, 0
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        unique.setdefault((row["source"], row["dedup_key"]), row)
    existing: set[tuple[str, str]] = set()
    by_source: dict[str, list[str]] = {}
    for source, key in unique:
        by_source.setdefault(source, []).append(key)
    for source, keys in by_source.items():
        for start in range(0, len(keys), 500):
            chunk = float_keyed(keys[start : start + 500])
            found = session.execute(
                select(Feedback.dedup_key).where(
                    Feedback.source == source, Feedback.dedup_key.in_(chunk)
                )
            ).scalars()
            existing.update((source, chunk[key]) for key in found)
    fresh = [row for key, row in unique.items() if key not in existing]
    if fresh:
        table = Feedback.__table__
        values = [{("metadata" if k == "meta" else k): v for k, v in r.items()} for r in fresh]
        # ON CONFLICT: a concurrent writer (API + job) may have stored the same key meanwhile.
        stmt = dialect_insert(session)(table).on_conflict_do_nothing(
            index_elements=["source", "dedup_key"]
        )
        result = cast("CursorResult[Any]", session.execute(stmt, values))
        stored = (
            result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(fresh)
        )
    else:
        stored = 0
    return stored, len(rows) - stored


def quarantine_digest(reason: str, raw: str) -> str:
    """Identity of a quarantined row: its reason and raw text as stored (masked, truncated).
    Migration 0008 holds a frozen copy: change both or neither."""
    return hashlib.blake2b(f"{reason}\0{raw}".encode(), digest_size=16).hexdigest()


def add_quarantine(
    session: Session,
    items: Sequence[tuple[int | None, Rejection, str]],
    *,
    source: str,
    run_id: int | None,
    now: datetime | None = None,
    mask: Callable[[str], str] | None = None,
) -> int:
    """Store rejected rows (row number, rejection, raw text); raw and reason are PII-masked.

    A row that an EARLIER run of `source` already quarantined (same reason, same raw text) is
    not stored again: reading the same data twice (`ingest --force`, a file that grew, an HTTP
    source asked again, a retried `POST /feedback`) kept adding copies. Identical rows of one
    run are distinct rows of the input and are all kept. Returns the rows stored."""
    if not items:
        return 0
    from nlp.text import mask_pii

    mask = mask or mask_pii

    now = now or utcnow()
    rows = []
    for number, rejection, raw in items:
        reason = (mask(rejection.message) if rejection.quotes_input else rejection.message)[:200]
        text = mask(_clean(raw[:MAX_RAW]))
        rows.append(
            Quarantine(
                run_id=run_id,
                source=source,
                row_number=number,
                reason=reason,
                field=rejection.field,
                raw=text,
                digest=quarantine_digest(reason, text),
                created_at=now,
            )
        )
    digests = sorted({str(q.digest) for q in rows})
    known: set[str] = set()
    for start in range(0, len(digests), 900):  # under SQLite's bound-parameter limit
        earlier = (
            select(Quarantine.digest)
            .where(Quarantine.source == source, Quarantine.digest.in_(digests[start : start + 900]))
            .distinct()
        )
        if run_id is not None:
            earlier = earlier.where(or_(Quarantine.run_id.is_(None), Quarantine.run_id != run_id))
        known.update(session.scalars(earlier))
    fresh = [q for q in rows if q.digest not in known]
    session.add_all(fresh)
    return len(fresh)


# --- ingestion runs -------------------------------------------------------------------------


def find_resumable_run(
    session: Session, *, source: str, location: str, fingerprint: str | None
) -> IngestionRun | None:
    """The latest run of this exact file content (same source, path and fingerprint)."""
    return session.execute(
        select(IngestionRun)
        .where(
            IngestionRun.source == source,
            IngestionRun.location == location,
            IngestionRun.fingerprint == fingerprint,
        )
        .order_by(IngestionRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _encoding_errors(*, source: str, location: str, fingerprint: str | None) -> tuple[Any, ...]:
    """Where-clauses of the rows quarantined as not decodable by the runs of this exact file
    content."""
    runs = select(IngestionRun.id).where(
        IngestionRun.source == source,
        IngestionRun.location == location,
        IngestionRun.fingerprint == fingerprint,
    )
    return Quarantine.run_id.in_(runs), Quarantine.reason.startswith("encoding_error")


def count_encoding_errors(session: Session, **same_file: Any) -> int:
    query = select(func.count()).select_from(Quarantine).where(*_encoding_errors(**same_file))
    return session.scalar(query) or 0


def delete_encoding_errors(session: Session, **same_file: Any) -> None:
    """One DELETE with a subquery: no bound parameter per row (PostgreSQL takes 65,535)."""
    rows = delete(Quarantine).where(*_encoding_errors(**same_file))
    session.execute(rows.execution_options(synchronize_session=False))


def start_run(
    session: Session,
    *,
    source: str,
    channel: str,
    location: str,
    fingerprint: str | None,
    encoding: str | None = None,
) -> IngestionRun:
    run = IngestionRun(
        source=source,
        channel=channel,
        location=location,
        fingerprint=fingerprint,
        encoding=encoding,
        status="running",
        started_at=utcnow(),
        watermark=0,
        rows_read=0,
        rows_stored=0,
        rows_duplicate=0,
        rows_rejected=0,
    )
    session.add(run)
    session.flush()
    return run


def advance_run(
    session: Session,
    run_id: int,
    *,
    watermark: int,
    read: int,
    stored: int,
    duplicates: int,
    rejected: int,
) -> None:
    """Move the watermark and counters; called in the same transaction as the batch's rows."""
    session.execute(
        update(IngestionRun)
        .where(IngestionRun.id == run_id)
        .values(
            watermark=watermark,
            status="running",
            rows_read=IngestionRun.rows_read + read,
            rows_stored=IngestionRun.rows_stored + stored,
            rows_duplicate=IngestionRun.rows_duplicate + duplicates,
            rows_rejected=IngestionRun.rows_rejected + rejected,
        )
    )


def finish_run(session: Session, run_id: int, *, status: str, error: str | None = None) -> None:
    session.execute(
        update(IngestionRun)
        .where(IngestionRun.id == run_id)
        .values(status=status, error=error[:2000] if error else None, finished_at=utcnow())
    )


# --- scheduler job runs ---------------------------------------------------------------------


def claim_job_run(
    session: Session, *, job: str, command: str, tick: datetime, host: str
) -> int | None:
    """Insert the (job, tick) row; None when another scheduler already claimed that tick.

    The unique constraint decides, so two schedulers on one database run each tick once even
    when their clocks or start-up differ."""
    from core.models import JobRun

    now = utcnow()
    tick = as_utc(tick).replace(microsecond=0)
    stmt = (
        dialect_insert(session)(JobRun.__table__)
        .values(
            job=job,
            command=command,
            scheduled_for=tick,
            started_at=now,
            status="running",
            lag_seconds=max(0.0, (now - tick).total_seconds()),
            host=host[:200],
        )
        .on_conflict_do_nothing(index_elements=["job", "scheduled_for"])
        .returning(JobRun.__table__.c.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def job_run_claimed(session: Session, *, job: str, tick: datetime) -> bool:
    """Whether a scheduler already claimed the (job, tick) row (`claim_job_run`)."""
    from core.models import JobRun

    tick = as_utc(tick).replace(microsecond=0)
    found = select(JobRun.id).where(JobRun.job == job, JobRun.scheduled_for == tick).limit(1)
    return session.execute(found).first() is not None


def finish_job_run(session: Session, run_id: int, *, status: str, detail: str | None) -> None:
    from core.models import JobRun

    session.execute(
        update(JobRun)
        .where(JobRun.id == run_id)
        .values(status=status, detail=(detail or "")[:4000] or None, finished_at=utcnow())
    )


def interrupt_stale_job_runs(session: Session) -> int:
    """Rows left `running` by a scheduler that died (SIGKILL, power loss). Only called by the
    holder of the run lock: nothing else can be running, so they are stale."""
    from core.models import JobRun

    result = session.execute(
        update(JobRun)
        .where(JobRun.status == "running")
        .values(status="interrupted", finished_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def prune_job_runs(session: Session, *, before: datetime, jobs: Sequence[str]) -> int:
    """Delete the finished runs started before `before`, except, for each job of `jobs` (the
    configured ones), its latest run and its latest success: /health keeps its status and
    `last_success_at`. A job no longer configured ages out entirely. Returns the rows deleted.
    `job_runs` was never pruned: a job every 5 minutes added 105,000 rows a year, and /health
    and /metrics, which read it on every call, slowed down with it."""
    from core.models import JobRun

    keep_latest = select(func.max(JobRun.id)).where(JobRun.job.in_(jobs)).group_by(JobRun.job)
    keep_success = (
        select(func.max(JobRun.id))
        .where(JobRun.job.in_(jobs), JobRun.status == "ok")
        .group_by(JobRun.job)
    )
    result = session.execute(
        delete(JobRun).where(
            JobRun.started_at < before,
            JobRun.status != "running",
            JobRun.id.not_in(keep_latest),
            JobRun.id.not_in(keep_success),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- analyses -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredAnalyses:
    analyses: int  # inserted by this call (the others were already analysed by this model)
    mentions: int
    # Ids of `rows` still stored, marked analysed (a `forget` or `purge` may delete others).
    kept: frozenset[int] = frozenset()


def store_analyses(
    session: Session,
    rows: Sequence[Any],
    docs: Sequence[Any],
    *,
    model_version: str,
    recurrent: set[int] | frozenset[int] = frozenset(),
    now: datetime | None = None,
) -> StoredAnalyses:
    """Write the analyses of `rows` (with `.id`, `.created_at`) and mark them analysed, in the
    caller's transaction; says how many analyses and theme mentions this call wrote, and which
    rows were still stored (`kept`: the caller writes nothing more for the others).

    `verbatim forget` or `purge` may delete some rows while the batch is analysed: writing
    their analyses failed the whole batch on the foreign key. Marking them analysed first (one
    UPDATE ... RETURNING) says which are left and keeps a deletion from committing before
    this batch does.

    Idempotent: INSERT ... ON CONFLICT (feedback_id, model_version) DO NOTHING, and mentions
    only for the analyses this call inserted. A re-run, two concurrent `enrich` runs, or a Ray
    worker retried after a crash never count a verbatim twice. One mention per theme and
    document (the most confident), so volumes count verbatims, not clauses."""
    from core.models import Analysis, ThemeMention

    if not rows:
        return StoredAnalyses(0, 0)
    # Before any row lock: no aggregate rebuild reads half of this batch (core.db).
    lock_aggregates(session, shared=True)
    marked = (
        update(Feedback)
        .where(Feedback.id.in_([r.id for r in rows]))
        .values(analyzed=True)
        .returning(Feedback.id)
        .execution_options(synchronize_session=False)
    )
    stored = frozenset(session.scalars(marked))
    pairs = [(r, d) for r, d in zip(rows, docs, strict=True) if r.id in stored]
    if not pairs:
        return StoredAnalyses(0, 0, stored)
    now = now or utcnow()
    values = [
        {
            "feedback_id": row.id,
            "model_version": model_version,
            "sentiment": doc.sentiment.label,
            "sentiment_score": float(doc.sentiment.score),
            "expected_stars": doc.sentiment.stars,
            "severity": float(doc.severity),
            "is_recurrent": row.id in recurrent,
            "analyzed_at": now,
        }
        for row, doc in pairs
    ]
    table = Analysis.__table__
    stmt = (
        dialect_insert(session)(table)
        .on_conflict_do_nothing(index_elements=["feedback_id", "model_version"])
        .returning(table.c.id, table.c.feedback_id)
    )
    inserted = {fid: aid for aid, fid in session.execute(stmt, values).all()}
    mentions = []
    for row, doc in pairs:
        analysis_id = inserted.get(row.id)
        if analysis_id is None:  # already analysed by this model version
            continue
        best: dict[str, Any] = {}
        for mention in doc.themes:
            kept = best.get(mention.theme)
            if kept is None or mention.score > kept.score:
                best[mention.theme] = mention
        day = as_utc(row.created_at).date()
        for mention in best.values():
            span = mention.evidence
            mentions.append(
                {
                    "analysis_id": analysis_id,
                    "feedback_id": row.id,
                    "theme": mention.theme,
                    "polarity": mention.polarity,
                    "score": float(mention.score),
                    "day": day,
                    "evidence_start": span.start if span else None,
                    "evidence_end": span.end if span else None,
                    "evidence_text": span.text if span else None,
                }
            )
    if mentions:
        session.execute(insert(ThemeMention), mentions)
    if inserted:
        from core.corrections import refresh_corrections

        # An analyst's correction keeps what it fixed and takes the rest from this analysis
        # (same days as the rows': the caller re-aggregates them).
        refresh_corrections(session, list(inserted))
    return StoredAnalyses(len(inserted), len(mentions), stored)
