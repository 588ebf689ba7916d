"""Row preparation (validation, PII masking, language, dedup keys) and insert with dedup."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Feedback, Quarantine
from core.store import (
    InvalidValue,
    Rejection,
    add_quarantine,
    insert_feedback,
    parse_datetime,
    parse_rating,
    prepare_feedback,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-03", datetime(2026, 11, 3, tzinfo=UTC)),
        ("2026-11-03T10:15:00Z", datetime(2026, 11, 3, 10, 15, tzinfo=UTC)),
        ("2026-11-03T11:15:00+01:00", datetime(2026, 11, 3, 10, 15, tzinfo=UTC)),
        ("2026-11-03 10:15:00", datetime(2026, 11, 3, 10, 15, tzinfo=UTC)),
        ("03/11/2026", datetime(2026, 11, 3, tzinfo=UTC)),
        ("3/11/2026 10h15", datetime(2026, 11, 3, 10, 15, tzinfo=UTC)),
        (1762164900, datetime(2025, 11, 3, 10, 15, tzinfo=UTC)),
        ("1762164900000", datetime(2025, 11, 3, 10, 15, tzinfo=UTC)),
    ],
)
def test_parse_datetime_formats(value: object, expected: datetime) -> None:
    assert parse_datetime(value, now=NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        *("hier", "31/02/2026", "2026-13-01", "2024", "", "2030-01-01"),
        # Past datetime's range once converted to UTC: an OverflowError (POST /feedback: 500).
        *("9999-12-31T23:59:59-05:00", "31/12/9999 23:00 -0500", "0001-01-01T00:00:00+05:00"),
    ],
)
def test_parse_datetime_rejects(value: str) -> None:
    with pytest.raises(InvalidValue):
        parse_datetime(value, now=NOW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("45998", datetime(2025, 12, 7, tzinfo=UTC)),
        (45998, datetime(2025, 12, 7, tzinfo=UTC)),
        ("46328.5", datetime(2026, 11, 2, 12, 0, tzinfo=UTC)),
        # A French Excel's decimal comma (« 45998,5833 » in a « ; » CSV) was `bad_date`
        # « '45998,25' is not a date »: the day and its time, never a day of 1970.
        ("45998,25", datetime(2025, 12, 7, 6, 0, tzinfo=UTC)),
        ("46328,5", datetime(2026, 11, 2, 12, 0, tzinfo=UTC)),
        ("45998,", None),  # no digit after the comma: not a number
    ],
)
def test_parse_datetime_excel_serial_days(value: object, expected: datetime | None) -> None:
    # A spreadsheet's date column in "General" format: every row was `bad_date` « '45998' is
    # before 1990 » (read as seconds after 1970-01-01), the whole export quarantined.
    if expected is None:
        with pytest.raises(InvalidValue):
            parse_datetime(value, now=NOW)
    else:
        assert parse_datetime(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4", 4.0),
        ("4,5", 4.5),
        ("4/5", 4.0),
        (5, 5.0),
        ("", None),
        (None, None),
        # Star glyphs and units, as review exports write them (the audit quarantined these).
        ("★★★★", 4.0),
        ("★★★☆☆", 3.0),
        ("5 étoiles", 5.0),
        ("4 stars", 4.0),
        ("4*", 4.0),
        ("4★", 4.0),
        ("4,5 ⭐", 4.5),
        # "No answer" as exports write it: the verbatim is kept without a rating (the audit
        # found whole verbatims quarantined for "N/A").
        ("N/A", None),
        (" nc ", None),
        ("-", None),
        ("n.c.", None),
    ],
)
def test_parse_rating(value: object, expected: float | None) -> None:
    assert parse_rating(value) == expected


def test_a_no_answer_score_keeps_the_verbatim() -> None:
    row = _prep(text="Livraison rapide", rating="N/A", nps="-", csat="nc")
    assert isinstance(row, dict), row
    assert (row["rating"], row["nps"], row["csat"]) == (None, None, None)


def test_a_score_written_on_another_scale_is_refused_not_misread() -> None:
    """ "4/10" for a CSAT kept its numerator (4: "satisfied") while "9/10" was quarantined, and
    an NPS "5/5" (the top answer) became 5, a detractor: an answer says its own scale."""
    row = _prep(text="Bien", nps="9/10", csat="4/5", ces="6/7")
    assert isinstance(row, dict) and (row["nps"], row["csat"], row["ces"]) == (9.0, 4.0, 6.0)
    for field, value in (("csat", "4/10"), ("nps", "5/5"), ("ces", "5/5")):
        rejected = _prep(text="Bien", **{field: value})
        assert isinstance(rejected, Rejection) and rejected.field == field, (field, rejected)
        assert "scale" in rejected.message


@pytest.mark.parametrize(
    "value", ["11", "-1", "cinq", "nan", True, "6/5", "4/0", "4/x", "120 %", "★★★★★★"]
)
def test_parse_rating_rejects(value: object) -> None:
    with pytest.raises(InvalidValue):
        parse_rating(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # A rating is out of 5 (the dashboard's « x / 5 »): "8/10" was stored as 8 and averaged
        # with 1-5 stars, the report's « Note » and the dashboard's mean too high.
        ("8/10", 4.0),
        ("8 sur 10", 4.0),
        ("7/10", 3.5),
        ("4,5/5", 4.5),
        ("4 sur 5", 4.0),
        ("4 étoiles sur 5", 4.0),
        ("17/20", 4.25),
        ("80 %", 4.0),
        ("100%", 5.0),
        ("0/10", 0.0),
    ],
)
def test_parse_rating_normalises_a_written_scale_to_five(value: str, expected: float) -> None:
    assert parse_rating(value) == expected


@pytest.mark.parametrize("value", ["8", 8, "9,5", 10.0])
def test_a_bare_rating_above_5_is_refused_naming_the_scale(value: object) -> None:
    """A bare 8 in a star column was kept as 8 stars out of 5; now the row says why."""
    with pytest.raises(InvalidValue, match=r"out of 5.*rating_scale"):
        parse_rating(value)


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        ("8", 10, 4.0),
        (7, 10, 3.5),
        ("10", 10, 5.0),
        ("8/10", 10, 4.0),
        ("4/5", 10, 4.0),
        ("★★★★", 10, 4.0),
        ("80 %", 10, 4.0),
        ("15", 20, 3.75),
    ],
)
def test_a_declared_scale_reads_bare_numbers_on_it(
    value: object, scale: int, expected: float
) -> None:
    assert parse_rating(value, scale=scale) == expected


def test_a_declared_scale_still_refuses_a_rating_above_it() -> None:
    with pytest.raises(InvalidValue, match="out of 10"):
        parse_rating("11", scale=10)


def test_a_rating_on_another_scale_is_a_rejected_row_with_its_reason() -> None:
    rejected = _prep(text="Bien", rating="8")
    assert isinstance(rejected, Rejection) and rejected.reason == "bad_rating"
    assert "'8' is above 5" in rejected.message, rejected.message
    row = prepare_feedback(
        {"text": "Bien", "rating": "8"},
        source="s",
        channel="review",
        max_text_chars=200,
        now=NOW,
        rating_scale=10,
    )
    assert isinstance(row, dict) and row["rating"] == 4.0


@pytest.mark.parametrize("value", ["NaN", "nan", float("nan"), " NAN "])
def test_a_nan_rating_is_not_a_number_not_out_of_range(value: object) -> None:
    """ "NaN" (a spreadsheet's empty numeric cell) was refused with « 'NaN' is outside 0..10 »,
    sending the user to look for a rating of 11."""
    with pytest.raises(InvalidValue, match="is not a number"):
        parse_rating(value)
    rejected = _prep(text="Bien", rating=value)
    assert isinstance(rejected, Rejection) and "not a number" in rejected.message
    assert "outside" not in rejected.message


def _prep(**fields: object) -> dict | Rejection:
    return prepare_feedback(fields, source="s", channel="review", max_text_chars=200, now=NOW)


def test_prepare_masks_pii_and_detects_language() -> None:
    row = _prep(
        text="Colis jamais reçu !! Écrivez-moi à jean.dupont@gmail.com ou au 06 12 34 56 78",
        id="42",
        customer="  Order-77 ",
    )
    assert isinstance(row, dict)
    assert "jean.dupont" not in row["text"] and "06 12 34 56 78" not in row["text"]
    assert row["language"] == "fr" and row["is_french"] is True
    assert row["dedup_key"] == "id:42"
    assert row["created_at"] == NOW  # no date column: ingestion time
    # Customer reference is hashed, case/space-insensitively.
    assert row["customer_key"] == _prep(text="x y z", customer="order-77")["customer_key"]
    assert len(row["customer_key"]) == 64


@pytest.mark.parametrize(
    "text", ["Impeccable ! No souci !", "meilleur site de e-cig.", "Game of Thrones coffret abîmé"]
)
def test_prepare_stores_a_weak_foreign_guess_as_french(text: str) -> None:
    # is_french said French, the language column "en"/"pt": topics counted the row French, the
    # aggregates, `other_languages` and the report (which read the language) foreign.
    from core.queries import AGGREGATED_LANGUAGES

    row = _prep(text=text)
    assert isinstance(row, dict)
    assert row["is_french"] is True and row["language"] in AGGREGATED_LANGUAGES, row


def test_prepare_keeps_english_as_not_french() -> None:
    row = _prep(text="The parcel never arrived and customer service never answered my emails")
    assert isinstance(row, dict)
    assert row["is_french"] is False and row["language"] == "en"


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({"text": "   "}, "empty_text", "text"),
        ({"text": "x" * 201}, "text_too_long", "text"),
        ({"text": "ok", "created_at": "n'importe quand"}, "bad_date", "created_at"),
        ({"text": "ok", "created_at": ""}, "bad_date", "created_at"),
        ({"text": "ok", "rating": "12"}, "bad_rating", "rating"),
        ({"text": "ok", "channel": "fax"}, "bad_channel", "channel"),
        ({"text": ["a", "list"]}, "bad_text", "text"),
    ],
)
def test_prepare_rejections(fields: dict, reason: str, field: str) -> None:
    rejection = _prep(**fields)
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.field) == (reason, field)
    assert rejection.message.startswith(reason)


def test_hash_dedup_key_uses_text_date_and_customer() -> None:
    a = _prep(text="Très bien", created_at="2026-11-01")
    b = _prep(text="  Très   bien ", created_at="2026-11-01")  # same once normalised
    c = _prep(text="Très bien", created_at="2026-11-02")
    assert a["dedup_key"].startswith("h:")
    assert a["dedup_key"] == b["dedup_key"] != c["dedup_key"]
    assert a["content_hash"] == c["content_hash"]


def test_insert_feedback_dedups_within_and_across_batches(session: Session) -> None:
    rows = [_prep(text=f"avis numéro {i}", id=str(i)) for i in range(5)]
    rows.append(_prep(text="autre texte", id="3"))  # same external id as rows[3]
    stored, dup = insert_feedback(session, rows)
    session.commit()
    assert (stored, dup) == (5, 1)
    stored, dup = insert_feedback(session, rows[:3] + [_prep(text="nouveau", id="9")])
    session.commit()
    assert (stored, dup) == (1, 3)
    assert session.scalar(select(func.count()).select_from(Feedback)) == 6
    # The same key under another source is a different verbatim.
    other = dict(rows[0], source="autre")
    assert insert_feedback(session, [other]) == (1, 0)


def test_a_whole_float_id_is_the_same_id_as_the_integer(session: Session) -> None:
    """An id sent as 77.0 (a pandas float column) was keyed `id:77.0`, not a duplicate of
    the same row sent as 77 or "77": stored twice, counted twice."""
    as_float, as_int, as_text = (_prep(text="Colis perdu", id=v) for v in (77.0, 77, "77"))
    assert isinstance(as_float, dict) and isinstance(as_int, dict) and isinstance(as_text, dict)
    assert as_float["dedup_key"] == as_int["dedup_key"] == as_text["dedup_key"] == "id:77"
    assert as_float["external_id"] == "77"
    assert _prep(text="Colis perdu", id=77.5)["dedup_key"] == "id:77.5"  # type: ignore[index]
    # A missing value of a float column (NaN) is no id: those rows were all `id:nan`, every
    # one after the first dropped as its duplicate.
    a, b = _prep(text="Premier", id=float("nan")), _prep(text="Second", id=float("nan"))
    assert isinstance(a, dict) and isinstance(b, dict)
    assert a["external_id"] is None and a["dedup_key"] != b["dedup_key"]
    assert insert_feedback(session, [as_float, as_int]) == (1, 1)


def test_a_row_stored_with_a_float_key_is_still_a_duplicate(session: Session) -> None:
    """Rows stored before whole floats were keyed as integers keep their `id:77.0` key: a
    re-post of the same id (as 77.0 or 77) is still their duplicate, not a second row."""
    old = _prep(text="Colis perdu", id="77")
    assert isinstance(old, dict)
    old["dedup_key"] = "id:77.0"  # as an earlier version stored the id 77.0
    big = dict(old, dedup_key="id:1e+16")  # str(1e16): how the id 1e16 was keyed
    assert insert_feedback(session, [old, big]) == (2, 0)
    session.commit()
    again = [_prep(text="Colis perdu", id=v) for v in (77.0, 77, 1e16, 10**16)]
    assert insert_feedback(session, again) == (0, 4)  # type: ignore[arg-type]
    assert session.scalar(select(func.count()).select_from(Feedback)) == 2


def test_quarantine_raw_is_masked(session: Session) -> None:
    add_quarantine(
        session,
        [(7, Rejection("bad_date", "created_at", "x"), "7;hier;appelez le 0612345678")],
        source="s",
        run_id=None,
    )
    session.commit()
    q = session.scalars(select(Quarantine)).one()
    assert q.row_number == 7 and q.field == "created_at" and "0612345678" not in q.raw


def test_title_is_prepended_and_meta_is_masked() -> None:
    row = prepare_feedback(
        {"text": "colis arrivé ouvert", "title": "Déçu"},
        source="s",
        channel="review",
        max_text_chars=200,
        extra={"auteur": "marie.dupont@gmail.com", "votes": 3, "vide": ""},
        now=NOW,
    )
    assert row["text"] == "Déçu. colis arrivé ouvert"
    assert row["meta"]["votes"] == 3 and "vide" not in row["meta"]
    assert "marie.dupont" not in row["meta"]["auteur"]


def test_meta_is_strict_json() -> None:
    """A JSON body may send NaN or 1e400 (inf): stored as numbers, PostgreSQL's json column
    refused them and POST /feedback answered 500."""
    row = prepare_feedback(
        {"text": "colis arrivé ouvert"},
        source="s",
        channel="review",
        max_text_chars=200,
        extra={"x": float("nan"), "y": float("inf"), "z": 1.5},
        now=NOW,
    )
    assert isinstance(row, dict)
    assert json.loads(json.dumps(row["meta"], allow_nan=False)) == {
        "x": "nan",
        "y": "inf",
        "z": 1.5,
    }


def test_personal_ids_are_hashed() -> None:
    row = _prep(text="Colis reçu", id="jean.dupont@gmail.com")
    again = _prep(text="autre", id="jean.dupont@gmail.com")
    assert "dupont" not in row["external_id"] and "dupont" not in row["dedup_key"]
    assert row["external_id"].startswith("sha256:")
    assert row["dedup_key"] == again["dedup_key"]  # still deduplicated by that id
    assert _prep(text="x", id="REV-000123")["external_id"] == "REV-000123"
    assert _prep(text="x", id="123456789")["external_id"] == "123456789"  # plain numeric id
    assert _prep(text="x", id="0612345678")["external_id"].startswith("sha256:")
