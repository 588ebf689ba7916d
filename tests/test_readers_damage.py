"""Damaged feeds never lose the rest of the data: JSONL columns from the whole file, broken
CSV quotes and oversized fields cost one quarantined row, and (Hypothesis) whatever the damage,
every input row is stored, rejected with a reason, or reported as a duplicate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import Feedback, IngestionRun, Quarantine
from core.settings import Settings
from jobs import readers
from jobs.ingest import ingest_file


def _stored(sessions: sessionmaker[Session]) -> dict[str, Feedback]:
    with sessions() as session:
        return {f.external_id: f for f in session.scalars(select(Feedback))}


def _quarantine(sessions: sessionmaker[Session]) -> list[Quarantine]:
    with sessions() as session:
        return list(session.scalars(select(Quarantine)))


def test_jsonl_keys_appearing_late_are_columns(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    lines = [json.dumps({"id": f"a{i}", "text": f"Avis {i} correct"}) for i in range(250)]
    lines += [
        json.dumps({"id": "late", "text": "Colis abîmé", "created_at": "2021-02-26", "rating": 2}),
        # Lacks the keys the row before had: not a bad date, just no date.
        json.dumps({"id": "after", "text": "Livraison rapide"}),
    ]
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest_file(sessions, settings, path, source="s")
    assert (result.read, result.stored, result.rejected) == (252, 252, 0)
    stored = _stored(sessions)
    assert stored["late"].created_at.date().isoformat() == "2021-02-26"
    assert stored["late"].rating == 2
    assert stored["after"].rating is None


def test_unterminated_quote_costs_one_row(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    rows = [f"u{i},Avis {i} correct,2025-03-0{1 + i % 9}" for i in range(1, 11)]
    rows[1] = 'u2,"abîmé,2025-03-01'  # the audit's row: the quote is never closed
    rows[6] = 'u7,"Très bien, ""vraiment""\net soigné",2025-03-02'  # a legit multi-line field
    path = tmp_path / "avis.csv"
    path.write_text("id,text,created_at\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = ingest_file(sessions, settings, path, source="s")
    assert (result.read, result.stored, result.rejected) == (10, 9, 1)
    assert result.reasons == {"unterminated_quote": 1}
    stored = _stored(sessions)
    assert "u3" in stored and "u2" not in stored
    assert stored["u7"].text == 'Très bien, "vraiment"\net soigné'
    (q,) = _quarantine(sessions)
    assert q.row_number == 2 and "abîmé" in q.raw and "never closed" in q.reason

    # At the end of the file, an open quote is one rejected row too.
    tail = tmp_path / "tail.csv"
    tail.write_text('id,text\nv1,ok\nv2,"jamais fermé\n', encoding="utf-8")
    result = ingest_file(sessions, settings, tail, source="t")
    assert (result.read, result.stored, result.rejected) == (2, 1, 1)


@pytest.mark.parametrize(
    ("content", "texts"),
    [
        # The audit's cases: a comment over two lines whose second line, read alone, has as
        # many fields as the header; it was split into a quarantined row and a garbage row.
        (
            'id,text\nu1,"Bonjour,\nje suis déçu, vraiment"\nu2,Rien à dire\n',
            {"u1": "Bonjour,\nje suis déçu, vraiment", "u2": "Rien à dire"},
        ),
        (
            'id,text,date\nu1,"Livraison en retard.\nService client absent, produit abîmé",'
            "2025-03-01\nu2,ok,2025-03-02\n",
            {"u1": "Livraison en retard.\nService client absent, produit abîmé", "u2": "ok"},
        ),
        # The quote closes two lines later, the middle line looking like a record.
        (
            'id,text,date\nu1,"Bonjour,\nligne deux, avec, virgules\nfin",2025-01-01\n'
            "u2,x,2025-01-02\n",
            {"u1": "Bonjour,\nligne deux, avec, virgules\nfin", "u2": "x"},
        ),
    ],
)
def test_multiline_comment_is_one_record(
    tmp_path: Path,
    settings: Settings,
    sessions: sessionmaker[Session],
    content: str,
    texts: dict[str, str],
) -> None:
    path = tmp_path / "avis.csv"
    path.write_text(content, encoding="utf-8")
    result = ingest_file(sessions, settings, path, source="s")
    assert (result.read, result.stored, result.rejected) == (2, 2, 0)
    assert {k: f.text for k, f in _stored(sessions).items()} == texts


def test_broken_quote_in_a_one_column_csv_costs_one_row(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    # Every row after the open quote was swallowed into one quarantined record.
    path = tmp_path / "avis.csv"
    path.write_text(
        'commentaire\nTrès bien\n"abîmé et cassé\nLivraison rapide\nNul\nCorrect\nParfait\n',
        encoding="utf-8",
    )
    result = ingest_file(sessions, settings, path, source="s")
    assert (result.read, result.stored, result.rejected) == (6, 5, 1)
    assert result.reasons == {"unterminated_quote": 1}
    with sessions() as session:
        texts = set(session.scalars(select(Feedback.text)))
    assert texts == {"Très bien", "Livraison rapide", "Nul", "Correct", "Parfait"}


def test_excel_sep_line_names_the_delimiter(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    # Excel's "sep=;" first line was read as the header ("no text column found").
    path = tmp_path / "export.csv"
    path.write_text("sep=;\nid;commentaire;date\na1;Colis abîmé, déçu;2025-03-01\n", "utf-8")
    result = ingest_file(sessions, settings, path, source="s")
    assert (result.read, result.stored) == (1, 1)
    assert _stored(sessions)["a1"].text == "Colis abîmé, déçu"


@pytest.mark.parametrize(
    "content",
    [
        # Rows end with ";", the header does not (an old CRM's export).
        'id;avis;note\na1;Bon produit;4;\na2;"Colis\nabîmé";1;\na3;Trop;de;champs\n',
        # The header ends with ";" (an empty column), the rows do not.
        'id;avis;note;\na1;Bon produit;4\na2;"Colis\nabîmé";1\na3;Trop;de;champs;x\n',
    ],
)
def test_an_empty_trailing_column_costs_no_row(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session], content: str
) -> None:
    # Every row was `wrong_field_count` (« 4 fields, the header has 3 »): the whole export
    # quarantined for a column with nothing in it; a field that is not empty still is.
    path = tmp_path / "export.csv"
    path.write_text(content, encoding="utf-8")
    result = ingest_file(sessions, settings, path, source="s")
    assert (result.read, result.stored, result.rejected) == (3, 2, 1)
    assert result.reasons == {"wrong_field_count": 1}
    stored = _stored(sessions)
    assert {k: (f.text, f.rating) for k, f in stored.items()} == {
        "a1": ("Bon produit", 4.0),
        "a2": ("Colis\nabîmé", 1.0),
    }
    assert all(not f.meta for f in stored.values())


@pytest.mark.parametrize(
    "content",
    [
        # Rows as wide as the header: one more field, even empty, is a broken row.
        "id;avis;ville\na1;Bon produit;Paris\na2;Colis arrivé; mais cassé;\na3;Bien;Lyon\n",
        # Rows end with one ";": two more fields are a broken row.
        "id;avis;ville\na1;Bon produit;Paris;\na2;Colis arrivé; mais cassé;;\na3;Bien;Lyon;\n",
    ],
)
def test_an_unquoted_delimiter_before_an_empty_last_column_is_not_a_trailing_one(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session], content: str
) -> None:
    # The empty fields were cut as a trailing column: « Colis arrivé » stored, the rest of
    # the complaint read as the town, without a word.
    path = tmp_path / "export.csv"
    path.write_text(content, encoding="utf-8")
    result = ingest_file(sessions, settings, path, source="s")
    assert (result.read, result.stored, result.rejected) == (3, 2, 1)
    assert result.reasons == {"wrong_field_count": 1}
    assert {k: f.text for k, f in _stored(sessions).items()} == {
        "a1": "Bon produit",
        "a3": "Bien",
    }


def test_repeated_header_names_keep_every_column(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    # A form's export repeats a question's title; the second « note » was renamed note_2,
    # the name of the file's own next column, and one of the two values was lost.
    path = tmp_path / "typeform.csv"
    path.write_text("id;avis;note;note_2;note\na1;Bien;4;A;B\n", encoding="utf-8")
    assert readers.columns(path, "csv") == ["id", "avis", "note", "note_2", "note_3"]
    result = ingest_file(sessions, settings, path, source="s")
    assert (result.read, result.stored) == (1, 1)
    stored = _stored(sessions)["a1"]
    assert stored.rating == 4.0 and stored.meta == {"note_2": "A", "note_3": "B"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("mac.csv", b"id,text\ra1,Bien\ra2,Nul\r", "carriage return only"),
        ("mac.jsonl", b'{"id": "a1", "text": "Bien"}\r{"id": "a2", "text": "Nul"}\r', "carriage"),
        ("pretty.json", b'{\n  "id": "x1",\n  "text": "Bien"\n}\n', "several lines is not JSONL"),
    ],
)
def test_files_that_are_not_line_records_are_one_clear_error(
    tmp_path: Path,
    settings: Settings,
    sessions: sessionmaker[Session],
    name: str,
    content: bytes,
    message: str,
) -> None:
    """Old-Mac line endings failed with Python's "new-line character seen in unquoted field";
    a pretty-printed JSON object became 5 quarantined "rows"."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(readers.ReaderError, match=message):
        ingest_file(sessions, settings, path, source="s")
    assert not _stored(sessions) and not _quarantine(sessions)


@pytest.mark.parametrize("multiline", [False, True])
def test_oversized_quoted_field_does_not_desync(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session], multiline: bool
) -> None:
    # A real >10 MB field (the reader's limit), inside quotes, on one line or many.
    chunk = "x" * 1000 + ("\n" if multiline else "")
    huge = '"' + chunk * 10_500 + ' fin"'
    content = (
        "id,text,created_at\nb1,avant,2025-03-01\n"
        f'b2,{huge},2025-03-01\nb3,"après, ok",2025-03-02\n'
    )
    path = tmp_path / "big.csv"
    path.write_text(content, encoding="utf-8")
    result = ingest_file(sessions, settings, path, source=f"s{multiline}")
    assert (result.read, result.stored, result.rejected) == (3, 2, 1)
    assert result.reasons == {"oversized_field": 1}
    stored = _stored(sessions)
    assert stored["b3"].text == "après, ok" and stored["b1"].text == "avant"
    (q,) = _quarantine(sessions)
    assert q.row_number == 2 and len(q.raw) <= 2000


# --- Hypothesis: random damage ---------------------------------------------------------------

WORDS = ["colis", "abîmé", "livraison", "rapide", "SAV", "nul", "très", "bien", "déçu", "😡"]


def _text(draw: st.DrawFn) -> str:
    return " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6)))


DAMAGE = [
    "none",
    "none",
    "none",
    "open_quote",  # a quote opened and never closed
    "stray_quote",  # a quote inside an unquoted field (legal, literal)
    "extra_field",
    "missing_field",
    "bad_utf8",
    "empty_text",
    "bad_date",
    "quoted_newline",  # legit multi-line quoted text
    "duplicate",  # the same id again
    "blank_line_after",
]


@st.composite
def damaged_csv(draw: st.DrawFn) -> tuple[bytes, list[str], int]:
    """(file bytes, ids of the input rows, how many duplicate rows were added)."""
    n = draw(st.integers(3, 25))
    lines: list[bytes] = [b"id,text,created_at,rating"]
    ids: list[str] = []
    dups = 0
    for i in range(n):
        rid = f"id{i}x"
        text, day = _text(draw), f"2025-03-{1 + i % 28:02d}"
        damage = draw(st.sampled_from(DAMAGE))
        fields = [rid, text, day, str(1 + i % 5)]
        if damage == "open_quote":
            fields[1] = '"' + text
        elif damage == "stray_quote":
            fields[1] = text + ' 5" écran'
        elif damage == "extra_field":
            fields.append("en trop")
        elif damage == "missing_field":
            fields = fields[:2]
        elif damage == "empty_text":
            fields[1] = ""
        elif damage == "bad_date":
            fields[2] = "32/13/2025"
        elif damage == "quoted_newline":
            fields[1] = f'"{text},\n""suite"""'
        line = ",".join(fields).encode("utf-8")
        if damage == "bad_utf8":
            line = line.replace(b"2025", b"\xff2025", 1)
        lines.append(line)
        ids.append(rid)
        if damage == "duplicate":
            lines.append(line)
            dups += 1
        if damage == "blank_line_after":
            lines.append(b"")
    return b"\n".join(lines) + b"\n", ids, dups


@st.composite
def damaged_jsonl(draw: st.DrawFn) -> tuple[bytes, list[str], int]:
    n = draw(st.integers(3, 25))
    lines: list[bytes] = []
    ids: list[str] = []
    dups = 0
    for i in range(n):
        rid = f"id{i}x"
        obj: dict = {"id": rid, "text": _text(draw)}
        if draw(st.booleans()):
            obj["created_at"] = f"2025-03-{1 + i % 28:02d}"
        if draw(st.booleans()):
            obj["rating"] = 1 + i % 5
        line = json.dumps(obj, ensure_ascii=False).encode()
        damage = draw(st.sampled_from(["none", "none", "truncate", "array", "bad_utf8", "dup"]))
        if damage == "truncate":
            # Cut anywhere after the id (so that the rejected row still names it).
            line = line[: draw(st.integers(line.index(b'"text"'), len(line) - 1))]
        elif damage == "array":
            line = json.dumps([rid]).encode()
        elif damage == "bad_utf8":
            line = line.replace(b'"text"', b'"te\xffxt"')
        lines.append(line)
        ids.append(rid)
        if damage == "dup":
            lines.append(line)
            dups += 1
    return b"\n".join(lines) + b"\n", ids, dups


def _check_every_row_accounted(
    sessions: sessionmaker[Session],
    settings: Settings,
    path: Path,
    ids: list[str],
    dups: int,
    in_hypothesis: bool = True,
) -> None:
    if in_hypothesis:
        note(repr(path.read_bytes()))
    with session_scope(sessions) as session:  # a fresh database state per example
        for model in (Feedback, Quarantine, IngestionRun):
            session.execute(delete(model))
    result = ingest_file(sessions, settings, path, source="s", force=True)
    assert result.read == result.stored + result.duplicates + result.rejected
    stored = set(_stored(sessions))
    quarantined = _quarantine(sessions)
    assert len(quarantined) == result.rejected
    assert all(q.reason for q in quarantined)
    for rid in ids:
        assert rid in stored or any(rid in (q.raw or "") for q in quarantined), rid
    assert result.duplicates <= dups


def test_an_unterminated_quote_keeps_the_ids_it_swallows(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    # Found by the property test below in CI: the quarantined record held "…,colis\nid10x,…"
    # and the PII masker read "colis id10x" across the line break as an order reference.
    rows = [f"id{i}x,colis,2025-03-{i + 1:02d},{i % 5 + 1}" for i in range(8)]
    rows += ['id8x,"colis,2025-03-09,4', "id9x,colis", "id10x,colis,2025-03-11,1,en trop"]
    path = tmp_path / "damaged.csv"
    path.write_text("id,text,created_at,rating\n" + "\n".join(rows) + "\n", encoding="utf-8")
    ids = [f"id{i}x" for i in range(11)]
    _check_every_row_accounted(sessions, settings, path, ids, 0, in_hypothesis=False)


@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(damaged_csv())
def test_damaged_csv_loses_no_row(
    tmp_path: Path,
    settings: Settings,
    sessions: sessionmaker[Session],
    case: tuple[bytes, list[str], int],
) -> None:
    content, ids, dups = case
    path = tmp_path / "damaged.csv"
    path.write_bytes(content)
    _check_every_row_accounted(sessions, settings, path, ids, dups)


@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(damaged_jsonl())
def test_damaged_jsonl_loses_no_row(
    tmp_path: Path,
    settings: Settings,
    sessions: sessionmaker[Session],
    case: tuple[bytes, list[str], int],
) -> None:
    content, ids, dups = case
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(content)
    _check_every_row_accounted(sessions, settings, path, ids, dups)


def test_reader_module_limits_are_sane() -> None:
    assert readers.CSV_FIELD_LIMIT >= 10_000_000 and readers.RAW_KEEP <= 2_000


def test_a_jsonl_file_without_any_object_quarantines_every_line(
    tmp_path: Path, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """Found by the property above: when no line is a JSON object there is nothing to map,
    and each line is still accounted for (quarantined with its reason), not the file refused."""
    path = tmp_path / "arrays.jsonl"
    path.write_bytes(b'["id0x"]\n["id1x"]\n42\n')
    result = ingest_file(sessions, settings, path, source="s")
    assert (result.read, result.stored, result.rejected) == (3, 0, 3)
    quarantined = _quarantine(sessions)
    assert len(quarantined) == 3 and all(q.reason for q in quarantined)
    assert all(any(rid in (q.raw or "") for q in quarantined) for rid in ("id0x", "id1x"))


def test_json_nested_past_the_parser_is_one_rejected_row(tmp_path: Path) -> None:
    """json.loads raises RecursionError (not JSONDecodeError) ~1,000 levels down: the line is
    one `too_deep` record, not the end of the file."""
    path = tmp_path / "deep.jsonl"
    deep = '{"id": "2", "text": "deep", "meta": ' + "[" * 3000 + "]" * 3000 + "}"
    path.write_text("[" * 3000 + "]" * 3000 + "\n" + json.dumps({"text": "a"}) + "\n" + deep + "\n")
    records = list(readers.iter_jsonl(path))
    assert [r.error[0] if r.error else None for r in records] == ["too_deep", None, "too_deep"]
    assert readers.columns(path, "jsonl") == ["text"]
