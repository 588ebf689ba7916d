"""Personal data: `verbatim forget` (right to erasure) and `verbatim purge` (retention_days),
on SQLite and PostgreSQL, with the derived rows and the aggregates they must not break."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core.aggregate import aggregate
from core.db import session_scope
from core.erasure import AUDIT_FILE, ERASED_QUOTE, ErasureError, Target, erase, purge
from core.models import (
    Analysis,
    Correction,
    DailyAggregate,
    DailyKeyword,
    Embedding,
    Feedback,
    Incident,
    OutboxMessage,
    Quarantine,
    ThemeMention,
    Topic,
    TopicAssignment,
)
from core.queries import AGGREGATED_LANGUAGES
from core.settings import Settings, SourceConfig
from jobs.demo import DemoSpec, write_demo
from jobs.run import _needs_full, run_pipeline

TODAY = datetime.now(UTC).date()
SECRET = "Le livreur a jeté mon colis zqxwv par-dessus le portail"


@pytest.fixture(scope="module")
def analyzer():  # type: ignore[no-untyped-def]
    from core.analysis import build_analyzer

    return build_analyzer(Settings(data_dir=Path("unused"), sentiment_backend="lexicon"))


def _feed(tmp_path: Path, days: int = 10) -> SourceConfig:
    """A demo feed of `days` days ending today, plus one identified verbatim (id, customer)."""
    feed = tmp_path / "feed.jsonl"
    write_demo(feed, DemoSpec(days=days, seed=3, per_day=8, end=TODAY))
    with feed.open("a", encoding="utf-8") as fh:
        row = {
            "text": SECRET,
            "id": "AV-7781",
            "customer": "CMD-445566",
            "created_at": f"{TODAY - timedelta(days=2)}T10:00:00Z",
            "channel": "review",
            "rating": 1,
        }
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return SourceConfig(
        path=feed,
        source="boutique",
        mapping={"channel": "channel", "id": "id", "customer": "customer", "rating": "rating"},
    )


def _run(settings: Settings, sessions: sessionmaker, analyzer, src: SourceConfig) -> None:  # type: ignore[no-untyped-def]
    run_pipeline(settings.model_copy(update={"sources": [src]}), sessions, analyzer=analyzer)


def _volumes(session: Session) -> dict[date, int]:
    rows = session.execute(
        select(DailyAggregate.day, func.sum(DailyAggregate.volume))
        .where(DailyAggregate.theme == "*")
        .group_by(DailyAggregate.day)
    )
    return {d: int(v) for d, v in rows}


def _french_analysed(session: Session) -> int:
    return session.scalar(
        select(func.count())
        .select_from(Feedback)
        .where(Feedback.analyzed.is_(True), Feedback.language.in_(AGGREGATED_LANGUAGES))
    )


def _count(session: Session, model: type, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _decorate(session: Session, settings: Settings, fid: int, text: str) -> None:
    """What else quotes or keys on the verbatim: a correction with a note, an embedding, a
    topic with it as example, an incident quoting it and its stored Slack message."""
    from core.corrections import apply_correction
    from core.taxonomy_store import current

    fb = session.get(Feedback, fid)
    day = fb.created_at.date()
    now = datetime.now(UTC)
    tax = current(session, settings).taxonomy
    apply_correction(
        session, fid, author="ana", taxonomy=tax, sentiment="negative", note="rappeler"
    )
    session.add(Embedding(feedback_id=fid, model="m", dim=1, vector=b"\0\0", created_at=now))
    topic = Topic(
        label="portail",
        representatives=[{"feedback_id": fid, "text": text}],
        size=1,
        first_seen=now,
        last_seen=now,
    )
    session.add(topic)
    session.flush()
    session.add(TopicAssignment(feedback_id=fid, topic_id=topic.id, day=day))
    inc = Incident(
        theme="livraison",
        first_day=day,
        last_day=day,
        severity="high",
        examples=[text, "Très bien, rien à dire sur la livraison"],
        created_at=now,
        updated_at=now,
    )
    session.add(inc)
    session.flush()
    quote = f"Exemples de verbatims (masqués) :\n> {text}\n> Très bien"
    session.add(
        OutboxMessage(
            incident_id=inc.id,
            revision=1,
            route="default",
            payload={"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": quote}}]},
            status="sent",
        )
    )


def test_forget_by_id_erases_the_verbatim_and_everything_quoting_it(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer
) -> None:
    _run(settings, sessions, analyzer, _feed(tmp_path))
    with session_scope(sessions) as s:
        fid, text = s.execute(
            select(Feedback.id, Feedback.text).where(Feedback.external_id == "AV-7781")
        ).one()
        _decorate(s, settings, fid, text)
        aggregate(s, days=[TODAY - timedelta(days=2)])
    with session_scope(sessions) as s:
        before = _volumes(s)[TODAY - timedelta(days=2)]
        erased = erase(s, Target(ids=[fid]))
    assert erased.verbatims == 1 and erased.corrections == 1 and erased.embeddings == 1
    assert erased.days == [TODAY - timedelta(days=2)]
    with session_scope(sessions) as s:
        for model, col in (
            (Analysis, Analysis.feedback_id),
            (ThemeMention, ThemeMention.feedback_id),
            (Correction, Correction.feedback_id),
            (Embedding, Embedding.feedback_id),
            (TopicAssignment, TopicAssignment.feedback_id),
        ):
            assert _count(s, model, col == fid) == 0, model
        assert s.get(Feedback, fid) is None
        assert s.scalars(select(Topic)).one().representatives == []
        inc = s.scalars(select(Incident)).one()
        assert inc.examples == ["Très bien, rien à dire sur la livraison"]
        payload = json.dumps(s.scalars(select(OutboxMessage)).one().payload, ensure_ascii=False)
        assert "zqxwv" not in payload and ERASED_QUOTE in payload and "> Très bien" in payload
        # The day was re-aggregated: figures count the rows left.
        assert _volumes(s)[TODAY - timedelta(days=2)] == before - 1
        assert sum(_volumes(s).values()) == _french_analysed(s)
        assert not _needs_full(s)


def test_forget_by_source_key_customer_or_text(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer
) -> None:
    _run(settings, sessions, analyzer, _feed(tmp_path))
    with session_scope(sessions) as s:
        s.add(
            Quarantine(
                source="boutique",
                reason="bad_date",
                raw=f'{{"id": "AV-7781", "text": "{SECRET}"}}',
                created_at=datetime.now(UTC),
            )
        )
    with session_scope(sessions) as s:
        with pytest.raises(ErasureError, match="--source"):
            erase(s, Target(key="AV-7781"))
        with pytest.raises(ErasureError, match="whole source"):
            erase(s, Target(source="boutique"))
        for empty in (Target(source="boutique", key=" "), Target(customer="")):
            with pytest.raises(ErasureError, match="is empty"):  # was « nothing matches »
                erase(s, empty)
        assert erase(s, Target(source="autre", key="AV-7781")).verbatims == 0
        assert erase(s, Target(customer="cmd-999")).verbatims == 0
    for target in (
        Target(source="boutique", key="AV-7781"),
        Target(customer=" cmd-445566 "),  # as the feed gave it: trimmed, any case
        Target(contains="JETÉ MON COLIS zqxwv"[5:]),
    ):
        with session_scope(sessions) as s:
            n = _count(s, Feedback)
            erased = erase(s, target)
            assert erased.verbatims == 1, target
            assert _count(s, Feedback) == n - 1
            s.rollback()  # each criterion on the same row
    with session_scope(sessions) as s:
        erased = erase(s, Target(source="boutique", key="AV-7781"))
        assert erased.quarantine == 1 and _count(s, Quarantine) == 0


def test_forget_by_key_or_customer_spares_the_rejected_rows_of_longer_ones(
    settings: Settings, sessions: sessionmaker
) -> None:
    # `--key AV-77` erased the quarantined rows of AV-771 and AV-7700 too (a LIKE on a piece
    # of the value): other customers' rejected rows, lost for good.
    raws = {
        "AV-77;pas une date;CMD-44;Colis perdu": True,
        "AV-771;pas une date;CMD-441;Très déçu": False,
        "AV-7700;hier;CMD-4400;Livraison rapide": False,
        '{"id": "av-77", "customer": "cmd-44", "text": "Remboursé"}': True,
    }
    with session_scope(sessions) as s:
        for raw in raws:
            s.add(Quarantine(source="boutique", reason="bad_date", raw=raw, created_at=TODAY))
    for target in (Target(source="boutique", key="AV-77"), Target(customer="CMD-44")):
        with session_scope(sessions) as s:
            assert erase(s, target).quarantine == 2, target
            left = set(s.scalars(select(Quarantine.raw)))
            assert left == {raw for raw, gone in raws.items() if not gone}, target
            s.rollback()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_forget_by_key_finds_a_row_stored_with_a_whole_float_id(
    request: pytest.FixtureRequest, db: str
) -> None:
    """A row whose id came as 77.0 (a pandas float column) was stored as `77.0` (`id:77.0`)
    before whole floats were read as integers; ingest now knows it as the id 77 (its re-post
    is a duplicate), and `verbatim forget --key 77`, the id as the source has it, said that
    nothing matched while the person's verbatim stayed."""
    from core.store import insert_feedback, prepare_feedback

    sessions = request.getfixturevalue("sessions" if db == "sqlite" else "pg_sessions")
    row = prepare_feedback(
        {"text": "Colis perdu, remboursez-moi", "id": "77"},
        source="boutique",
        channel="review",
        max_text_chars=200,
    )
    assert isinstance(row, dict)
    row.update(external_id="77.0", dedup_key="id:77.0")  # as an earlier version stored it
    other = prepare_feedback(
        {"text": "Livraison rapide", "id": "770"},
        source="boutique",
        channel="review",
        max_text_chars=200,
    )
    with session_scope(sessions) as s:
        insert_feedback(s, [row, other])  # type: ignore[list-item]
    for key in ("77", "77.0", "id:77"):
        with session_scope(sessions) as s:
            assert erase(s, Target(source="boutique", key=key)).verbatims == 1, key
            assert _count(s, Feedback) == 1
            s.rollback()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_forget_while_enrich_analyses_the_verbatim(
    tmp_path: Path, settings: Settings, request: pytest.FixtureRequest, analyzer, db: str
) -> None:
    # The batch's analyses were written for a verbatim deleted meanwhile: the run failed on
    # the foreign key (IntegrityError), no analysis of the batch stored.
    from jobs.enrich import enrich
    from jobs.ingest import ingest_file

    sessions = request.getfixturevalue("sessions" if db == "sqlite" else "pg_sessions")
    src = _feed(tmp_path, days=2)
    ingest_file(sessions, settings, src.path, source="boutique", mapping=src.mapping)
    with session_scope(sessions) as s:
        fid = s.scalar(select(Feedback.id).where(Feedback.external_id == "AV-7781"))
        pending = _count(s, Feedback)

    class Racing:  # `verbatim forget` commits while the batch is being analysed
        model_version = analyzer.model_version

        def analyze(self, texts: list[str]) -> list[object]:
            with session_scope(sessions) as other:
                erase(other, Target(ids=[fid]))
            return analyzer.analyze(texts)

    result = enrich(sessions, settings, analyzer=Racing(), batch_size=1000)
    assert result.analyzed == pending - 1
    with session_scope(sessions) as s:
        assert _count(s, Feedback) == _count(s, Analysis) == pending - 1
        assert _count(s, Feedback, Feedback.analyzed.is_(False)) == 0
        assert _count(s, ThemeMention, ThemeMention.feedback_id == fid) == 0


def _purge_keeps_history(settings: Settings, sessions: sessionmaker, analyzer, src) -> None:  # type: ignore[no-untyped-def]
    _run(settings, sessions, analyzer, src)
    cut = TODAY - timedelta(days=5)
    with session_scope(sessions) as s:
        history = _volumes(s)
        assert any(d < cut for d in history) and _count(s, DailyKeyword, DailyKeyword.day < cut)
    with session_scope(sessions) as s:
        erased = purge(s, before=cut)
    assert erased.verbatims > 0
    with session_scope(sessions) as s:
        assert (
            _count(
                s,
                Feedback,
                Feedback.created_at < datetime(cut.year, cut.month, cut.day, tzinfo=UTC),
            )
            == 0
        )
        assert _count(s, ThemeMention, ThemeMention.day < cut) == 0
        assert _count(s, DailyKeyword, DailyKeyword.day < cut) == 0  # words of the texts
        assert _volumes(s) == history  # anonymous counts kept
        assert not _needs_full(s)
    # The trap: a later run (its full-rebuild check), a full `verbatim aggregate` and a
    # rebuild of a purged day must not recompute the purged days from the rows left.
    _run(settings, sessions, analyzer, src)
    with session_scope(sessions) as s:
        aggregate(s)
        aggregate(s, days=[cut - timedelta(days=1), cut])
        assert _volumes(s) == history
    # A second purge later moves the horizon on; counts still kept.
    with session_scope(sessions) as s:
        purge(s, before=cut + timedelta(days=1))
        aggregate(s)
        assert _volumes(s) == history


def test_forget_refreshes_the_sizes_of_the_topics_of_the_erased_verbatims(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer
) -> None:
    # /topics showed a topic's size counting the erased verbatims, and a topic whose every
    # verbatim was erased stayed listed (size > 0) with no example left.
    from core.queries import list_topics

    _run(settings, sessions, analyzer, _feed(tmp_path))
    with session_scope(sessions) as s:
        fid, text = s.execute(
            select(Feedback.id, Feedback.text).where(Feedback.external_id == "AV-7781")
        ).one()
        _decorate(s, settings, fid, text)  # topic « portail »: this verbatim only
        now = datetime.now(UTC)
        colis = Topic(label="colis", size=3, first_seen=now, last_seen=now)
        s.add(colis)
        s.flush()
        members = list(s.scalars(select(Feedback).where(Feedback.id != fid).limit(3)))
        for fb in members:
            s.add(TopicAssignment(feedback_id=fb.id, topic_id=colis.id, day=fb.created_at.date()))
    with session_scope(sessions) as s:
        erase(s, Target(ids=[fid, members[0].id]))
    with session_scope(sessions) as s:
        page, total = list_topics(s)
        assert [(t.label, t.size) for t in page] == [("colis", 2)] and total == 1


@pytest.mark.parametrize("how", ["forget", "purge"])
def test_an_erasure_emptying_a_topic_closes_its_incident_and_says_so(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer, how: str
) -> None:
    # A topic whose every verbatim was erased dropped to size 0 but kept its open alert and
    # incident (on /alerts, /incidents, the digest) until the next `verbatim topics` run.
    from core.models import Alert
    from nlp.spikes import topic_theme

    _run(settings, sessions, analyzer, _feed(tmp_path))
    with session_scope(sessions) as s:
        fid, text = s.execute(
            select(Feedback.id, Feedback.text).where(Feedback.external_id == "AV-7781")
        ).one()
        _decorate(s, settings, fid, text)  # topic « portail »: this verbatim only
        topic = s.scalars(select(Topic).where(Topic.label == "portail")).one()
        topic_id = topic.id
        now, day = datetime.now(UTC), TODAY - timedelta(days=2)
        inc = Incident(theme=topic_theme(topic.id), team="default", status="open",
                       first_day=day, last_day=day, severity="high", kinds=["emerging"],
                       signals={}, drivers=[], examples=[text], historical=False, revision=1,
                       notified_severity="high", created_at=now, updated_at=now)  # fmt: skip
        s.add(inc)
        s.flush()
        s.add(Alert(alert_key="k-portail", theme=inc.theme, kind="emerging", status="open",
                    first_day=day, last_day=day, severity="high", observed=9.0, expected=1.0,
                    p_value=1e-6, details={}, created_at=now, updated_at=now,
                    incident_id=inc.id))  # fmt: skip
        s.add(OutboxMessage(incident_id=inc.id, revision=1, route="default",
                            payload={"text": f"ouverture\n> {text}"}, status="sent"))  # fmt: skip
        inc_id = inc.id
    with session_scope(sessions) as s:
        if how == "forget":
            erased = erase(s, Target(ids=[fid]))
        else:
            erased = purge(s, before=TODAY - timedelta(days=1), language="en")
    with session_scope(sessions) as s:
        inc = s.get(Incident, inc_id)
        assert inc.status == "resolved" and inc.resolved_by == "erasure"
        assert inc.resolve_note and "effacement" in inc.resolve_note
        alert = s.scalars(select(Alert).where(Alert.incident_id == inc_id)).one()
        assert alert.status == "resolved"
        last = s.scalars(
            select(OutboxMessage).where(
                OutboxMessage.incident_id == inc_id, OutboxMessage.status == "pending"
            )
        ).one()
        opening = {"forget": "Incident n° ", "purge": "Incident #"}[how]
        assert last.revision == 2 and last.payload["text"].startswith(f"{opening}{inc_id}")
        # Named by its number: its label was words of the erased verbatim, now forgotten.
        assert "portail" not in last.payload["text"] and f"n°{topic_id}" in last.payload["text"]
        emptied = s.get(Topic, topic_id)
        assert emptied.label == f"Sujet n°{topic_id}" and emptied.keywords == []
        stored = json.dumps([m.payload for m in s.scalars(select(OutboxMessage))])
        assert "zqxwv" not in stored  # the follow-up quotes nothing, the opening is scrubbed
    assert erased.incidents == 1  # counted in the audit line and the CLI's summary


@pytest.mark.parametrize("how", ["forget", "api"])
def test_an_erasure_closes_only_the_incidents_of_the_topics_it_emptied(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer, how: str
) -> None:
    # Every size-0 topic's incident was closed as « n'a plus aucun verbatim après
    # l'effacement », also one a topic had before the erasure (retired by an older version,
    # taken in charge since), and `DELETE /feedback/{id}` did not say how many it closed.
    from fastapi.testclient import TestClient

    from nlp.spikes import topic_theme
    from service.app import create_app
    from service.auth import create_key

    _run(settings, sessions, analyzer, _feed(tmp_path))
    day, now = TODAY - timedelta(days=2), datetime.now(UTC)
    with session_scope(sessions) as s:
        fid, text = s.execute(
            select(Feedback.id, Feedback.text).where(Feedback.external_id == "AV-7781")
        ).one()
        _decorate(s, settings, fid, text)  # topic « portail »: this verbatim only
        portail = s.scalars(select(Topic).where(Topic.label == "portail")).one()
        old = Topic(label="ancien", size=0, first_seen=now, last_seen=now)
        s.add(old)
        s.flush()
        ids = {}
        for topic, status in ((portail, "open"), (old, "acknowledged")):
            inc = Incident(theme=topic_theme(topic.id), team="default", status=status,
                           first_day=day, last_day=day, severity="high", kinds=["emerging"],
                           signals={}, drivers=[], examples=[], historical=False, revision=1,
                           created_at=now, updated_at=now)  # fmt: skip
            s.add(inc)
            s.flush()
            s.add(OutboxMessage(incident_id=inc.id, revision=1, route="default",
                                payload={"text": "ouverture"}, status="sent"))  # fmt: skip
            ids[topic.label] = inc.id
        _, write = create_key(s, "dpo", "write")
    if how == "forget":
        with session_scope(sessions) as s:
            closed = erase(s, Target(ids=[fid])).incidents
    else:
        client = TestClient(create_app(settings, engine=sessions.kw["bind"]))
        res = client.delete(f"/feedback/{fid}", headers={"X-API-Key": write})
        assert res.status_code == 200, res.text
        closed = res.json()["incidents"]  # as the audit line and `forget`'s summary count
    assert closed == 1
    with session_scope(sessions) as s:
        assert s.get(Incident, ids["portail"]).status == "resolved"
        kept = s.get(Incident, ids["ancien"])
        assert kept.status == "acknowledged" and kept.resolved_by is None
        assert _count(s, OutboxMessage, OutboxMessage.incident_id == ids["ancien"]) == 1


def test_purge_keeps_the_counts_of_purged_days_and_no_rebuild_zeroes_them(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer
) -> None:
    _purge_keeps_history(settings, sessions, analyzer, _feed(tmp_path))


@pytest.mark.postgres
def test_forget_and_purge_on_postgres(
    tmp_path: Path, settings: Settings, pg_sessions: sessionmaker, analyzer
) -> None:
    _purge_keeps_history(settings, pg_sessions, analyzer, _feed(tmp_path))
    with session_scope(pg_sessions) as s:
        before = sum(_volumes(s).values())
        erased = erase(s, Target(source="boutique", key="AV-7781"))
        assert erased.verbatims == 1 and sum(_volumes(s).values()) == before - 1


def test_cli_forget_and_purge(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer, monkeypatch
) -> None:
    from verbatim_cli import app

    _run(settings, sessions, analyzer, _feed(tmp_path))
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    res = runner.invoke(app, ["forget", "--contains", "zqxwv", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "1 verbatim(s) and 0 rejected row(s) would be erased" in res.output
    res = runner.invoke(app, ["forget", "--contains", "livr"])  # several rows, no --yes
    assert res.exit_code == 1 and "--yes" in res.output
    res = runner.invoke(app, ["forget", "--key", "AV-7781"])
    assert res.exit_code == 2 and "--source" in res.output
    for big in ("3000000000", "99999999999999999999"):  # past feedback.id: was a traceback
        res = runner.invoke(app, ["forget", "--id", big, "--dry-run"])
        assert res.exit_code == 2 and "1 to 2147483647" in res.output, res.output
    for extra in ([], ["--dry-run"]):  # a misspelt source: was « nothing matches »
        res = runner.invoke(app, ["forget", "--source", "boutque", "--key", "AV-7781", *extra])
        assert res.exit_code == 2 and "unknown source 'boutque'" in res.output, res.output
        assert "the sources stored: boutique" in res.output
    res = runner.invoke(app, ["forget", "--source", "boutique", "--key", "AV-7781"])
    assert res.exit_code == 0 and "erased 1 verbatim(s)" in res.output, res.output
    audit = (settings.data_dir / AUDIT_FILE).read_text(encoding="utf-8")
    line = json.loads(audit.splitlines()[-1])
    assert line["action"] == "forget" and line["verbatims"] == 1
    assert line["criteria"] == ["source", "key"]
    assert "AV-7781" not in audit and "zqxwv" not in audit  # anonymous
    res = runner.invoke(app, ["purge"])
    assert res.exit_code == 2 and "retention_days is 0" in res.output
    monkeypatch.setenv("VERBATIM_RETENTION_DAYS", "5")
    res = runner.invoke(app, ["purge", "--dry-run"])
    assert res.exit_code == 0 and "would be deleted" in res.output, res.output
    res = runner.invoke(app, ["purge"])
    assert res.exit_code == 0 and "their days' counts are kept" in " ".join(res.output.split())
    with session_scope(sessions) as s:
        assert _count(s, Feedback, Feedback.created_at < datetime.now(UTC) - timedelta(days=6)) == 0


@pytest.mark.parametrize("when", ["after", "during"])
def test_an_erasure_interrupted_at_its_commit_leaves_a_consistent_audit(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, monkeypatch, when: str
) -> None:
    """The audit line was written after the commit: a process killed in between erased the
    verbatim and left no trace of it. Failure injected right after the erasure's commit
    ("after") or instead of it ("during": nothing erased, the audit says so)."""
    import core.erasure
    from jobs.ingest import ingest_file
    from verbatim_cli import app

    src = _feed(tmp_path, days=1)
    ingest_file(sessions, settings, src.path, source="boutique", mapping=src.mapping)
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    real_erase, real_commit = core.erasure.erase, Session.commit

    def erase_marked(session: Session, target: Target, *args: str):  # type: ignore[no-untyped-def]
        session.info["erasing"] = True
        return real_erase(session, target, *args)

    def commit(self: Session) -> None:
        if not self.info.pop("erasing", False):
            return real_commit(self)
        if when == "after":
            real_commit(self)
        raise RuntimeError("killed")

    monkeypatch.setattr(core.erasure, "erase", erase_marked)
    monkeypatch.setattr(Session, "commit", commit)
    res = CliRunner().invoke(app, ["forget", "--source", "boutique", "--key", "AV-7781"])
    assert isinstance(res.exception, RuntimeError), res.output
    with session_scope(sessions) as s:
        left = _count(s, Feedback, Feedback.external_id == "AV-7781")
    assert left == (0 if when == "after" else 1)
    lines = [json.loads(x) for x in (settings.data_dir / AUDIT_FILE).read_text().splitlines()]
    assert [line["status"] for line in lines] == (
        ["started", "done"] if when == "after" else ["started", "rolled back"]
    )
    assert {line["ref"] for line in lines} == {lines[0]["ref"]}
    assert all(line["action"] == "forget" for line in lines)
    assert lines[-1].get("verbatims") == (1 if when == "after" else None)


def test_forget_leaves_no_trace_of_the_text_in_the_sqlite_file(
    tmp_path: Path, settings: Settings, engine, sessions: sessionmaker, analyzer
) -> None:
    """SQLite keeps a deleted row's bytes in its free pages unless `secure_delete` is on,
    which depends on how the library was built: the erased text stayed readable in the
    database file (`strings verbatim.db`)."""
    _run(settings, sessions, analyzer, _feed(tmp_path))
    with session_scope(sessions) as s:
        fid = s.scalar(select(Feedback.id).where(Feedback.external_id == "AV-7781"))
        erase(s, Target(ids=[fid]))
    path = Path(engine.url.database)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert b"zqxwv" not in stored


def test_forget_leaves_no_trace_in_the_wal_of_a_running_server(
    tmp_path: Path, settings: Settings, engine, sessions: sessionmaker, analyzer
) -> None:
    """`secure_delete` overwrites the database file's pages, but the WAL beside it kept the
    pages written before the erasure (the text) while any connection stayed open (a running
    `verbatim serve`), even after a checkpoint: `strings verbatim.db-wal` showed it."""
    _run(settings, sessions, analyzer, _feed(tmp_path))
    path = Path(engine.url.database)
    with engine.connect():  # the API's pooled connection: the WAL is never deleted
        with session_scope(sessions) as s:
            fid = s.scalar(select(Feedback.id).where(Feedback.external_id == "AV-7781"))
            erase(s, Target(ids=[fid]))
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert b"zqxwv" not in stored


def test_cli_forget_asks_when_rejected_rows_go_with_the_verbatim(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer, monkeypatch
) -> None:
    # One verbatim plus its rejected rows went without a question: only several verbatims
    # asked, though the rejected rows are lost for good too.
    from verbatim_cli import app

    _run(settings, sessions, analyzer, _feed(tmp_path))
    with session_scope(sessions) as s:
        for n in range(2):
            raw = f'{{"id": "AV-7781", "text": "relance {n}"}}'
            s.add(Quarantine(source="boutique", reason="bad_date", raw=raw, created_at=TODAY))
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    args = ["forget", "--source", "boutique", "--key", "AV-7781"]
    res = runner.invoke(app, args)  # no terminal to answer on, no --yes
    assert res.exit_code == 1 and "--yes" in res.output, res.output
    assert "1 verbatim(s) and 2 rejected row(s)" in " ".join(res.output.split())
    with session_scope(sessions) as s:
        assert _count(s, Quarantine) == 2 and _count(s, Feedback, Feedback.external_id == "AV-7781")
    res = runner.invoke(app, args, input="y\n")
    assert res.exit_code == 0 and "erased 1 verbatim(s)" in res.output, res.output
    with session_scope(sessions) as s:
        assert _count(s, Quarantine) == 0


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_api_delete_feedback_erases_as_forget_does(
    tmp_path: Path,
    settings: Settings,
    request: pytest.FixtureRequest,
    analyzer,
    db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An erasure request reaching a CX team through the API could not be served there: only
    # `verbatim forget` on the server erased a verbatim.
    from fastapi.testclient import TestClient

    from core.db import AggregatesBusy
    from service.app import create_app
    from service.auth import create_key
    from service.routers import corrections as module

    sessions = request.getfixturevalue("sessions" if db == "sqlite" else "pg_sessions")
    _run(settings, sessions, analyzer, _feed(tmp_path))
    day = TODAY - timedelta(days=2)
    with session_scope(sessions) as s:
        fid, text = s.execute(
            select(Feedback.id, Feedback.text).where(Feedback.external_id == "AV-7781")
        ).one()
        _decorate(s, settings, fid, text)
        aggregate(s, days=[day])
        _, read = create_key(s, "lecture", "read")
        _, write = create_key(s, "dpo", "write")
    client = TestClient(create_app(settings, engine=sessions.kw["bind"]))
    rh, wh = {"X-API-Key": read}, {"X-API-Key": write}
    period = f"?start={day}&end={day}"
    before = client.get(f"/themes{period}", headers=rh).json()["total_volume"]
    assert client.get(f"/themes{period}", headers=rh).json()["total_volume"] == before  # cached
    assert client.delete(f"/feedback/{fid}").status_code == 401
    assert client.delete(f"/feedback/{fid}", headers=rh).status_code == 403

    def busy(*args: object, **kwargs: object) -> None:
        raise AggregatesBusy("the aggregates are being rebuilt: retry in a moment")

    with monkeypatch.context() as m:
        m.setattr(module, "lock_aggregates", busy)
        res = client.delete(f"/feedback/{fid}", headers=wh)
        assert res.status_code == 503 and res.headers["Retry-After"], res.text
    assert client.get(f"/feedback/{fid}", headers=rh).status_code == 200  # nothing erased

    res = client.delete(f"/feedback/{fid}", headers=wh)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["verbatims"] == 1 and body["corrections"] == 1 and body["embeddings"] == 1
    assert body["topic_examples"] == 1 and body["incident_examples"] == 1
    assert body["messages"] == 1 and body["reaggregated_days"] == [day.isoformat()]
    # The next reads count the rows left: no cached view, no in-memory day table kept it.
    assert client.get(f"/themes{period}", headers=rh).json()["total_volume"] == before - 1
    assert client.get(f"/feedback/{fid}", headers=rh).status_code == 404
    res = client.delete(f"/feedback/{fid}", headers=wh)
    assert res.status_code == 404 and res.json()["field"] == "feedback_id"
    with session_scope(sessions) as s:
        assert s.get(Feedback, fid) is None
        assert _count(s, Analysis, Analysis.feedback_id == fid) == 0
        assert sum(_volumes(s).values()) == _french_analysed(s)
        payload = json.dumps(s.scalars(select(OutboxMessage)).one().payload, ensure_ascii=False)
        assert "zqxwv" not in payload
    lines = (settings.data_dir / AUDIT_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2  # started, done: the 503 and the 404s wrote none
    assert json.loads(lines[0])["status"] == "started"
    line = json.loads(lines[1])
    assert line["status"] == "done"
    assert line["action"] == "forget" and line["by"] == "api:dpo" and line["criteria"] == ["id"]
    assert line["verbatims"] == 1 and line["days"] == 1
    assert "zqxwv" not in lines[0] and "AV-7781" not in lines[0]  # anonymous


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_erased_verbatim_is_never_answered_from_a_stale_view(
    tmp_path: Path, settings: Settings, request: pytest.FixtureRequest, analyzer, db: str
) -> None:
    # Erased by `verbatim forget` (or by another API worker), the verbatim's text was still
    # answered once from the kept view (stale-while-revalidate: only job data had changed).
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.auth import create_key

    sessions = request.getfixturevalue("sessions" if db == "sqlite" else "pg_sessions")
    _run(settings, sessions, analyzer, _feed(tmp_path))
    with session_scope(sessions) as s:
        fid = s.scalar(select(Feedback.id).where(Feedback.external_id == "AV-7781"))
        _, read = create_key(s, "lecture", "read")
    day = TODAY - timedelta(days=2)
    url = f"/themes/livraison/verbatims?start={day}&end={day}&limit=200"
    h = {"X-API-Key": read}
    with TestClient(create_app(settings, engine=sessions.kw["bind"])) as client:
        assert fid in [v["feedback_id"] for v in client.get(url, headers=h).json()["items"]]
        with session_scope(sessions) as s:
            assert erase(s, Target(ids=[fid])).verbatims == 1
        res = client.get(url, headers=h)
        assert "cache-status" not in res.headers
        assert fid not in [v["feedback_id"] for v in res.json()["items"]]
        assert "zqxwv" not in res.text


def test_a_correction_racing_an_erasure_is_a_404(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer
) -> None:
    # SQLite: a correction that read the verbatim before a DELETE /feedback/{id} (or a
    # `verbatim forget`) committed wrote a correction of nothing: a 500 (FOREIGN KEY
    # constraint failed) and a traceback, where the verbatim is simply gone.
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.auth import create_key

    _run(settings, sessions, analyzer, _feed(tmp_path))
    with session_scope(sessions) as s:
        fid = s.scalar(select(Feedback.id).where(Feedback.external_id == "AV-7781"))
        _, write = create_key(s, "dpo", "write")
    client = TestClient(create_app(settings, engine=sessions.kw["bind"]))

    def erased_meanwhile(note: str) -> str:  # runs after the verbatim was read
        with session_scope(sessions) as other:
            erase(other, Target(ids=(fid,)))
        return note

    client.app.state.verbatim.pii_masker = erased_meanwhile  # type: ignore[attr-defined]
    res = client.post(
        f"/feedback/{fid}/corrections",
        json={"sentiment": "positive", "note": "vu"},
        headers={"X-API-Key": write},
    )
    assert res.status_code == 404 and res.json()["field"] == "feedback_id", res.text
    with session_scope(sessions) as s:
        assert s.get(Feedback, fid) is None and _count(s, Correction) == 0


def test_a_purged_verbatim_is_never_answered_from_a_stale_view(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer
) -> None:
    # Retention purges personal data too, but only bumped the aggregates (job data): the
    # kept list of a purged day was still answered once, texts included, marked stale.
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.auth import create_key

    _run(settings, sessions, analyzer, _feed(tmp_path))
    with session_scope(sessions) as s:
        _, read = create_key(s, "lecture", "read")
    day = TODAY - timedelta(days=2)
    url = f"/themes/livraison/verbatims?start={day}&end={day}&limit=200"
    h = {"X-API-Key": read}
    with TestClient(create_app(settings, engine=sessions.kw["bind"])) as client:
        assert "zqxwv" in client.get(url, headers=h).text
        with session_scope(sessions) as s:
            assert purge(s, before=day + timedelta(days=1)).verbatims
        res = client.get(url, headers=h)
        assert "cache-status" not in res.headers
        assert res.json()["items"] == [] and "zqxwv" not in res.text


def test_verbatim_run_applies_retention_days(
    tmp_path: Path, settings: Settings, sessions: sessionmaker, analyzer, monkeypatch
) -> None:
    # Only the scheduler and `verbatim purge` applied `retention_days`: a `verbatim run` from
    # cron (the README's main job) kept every verbatim for ever.
    from verbatim_cli import app

    src = _feed(tmp_path)
    _run(settings, sessions, analyzer, src)
    config = tmp_path / "verbatim.toml"
    config.write_text(
        f'[[sources]]\npath = "{src.path}"\nsource = "boutique"\n'
        '[sources.mapping]\nchannel = "channel"\nid = "id"\ncustomer = "customer"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("VERBATIM_CONFIG", str(config))
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("VERBATIM_RETENTION_DAYS", "5")
    with session_scope(sessions) as s:
        volumes = _volumes(s)
    res = CliRunner().invoke(app, ["run", "--no-report", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "retention (5 days): deleted" in res.output, res.output
    with session_scope(sessions) as s:
        assert _count(s, Feedback, Feedback.created_at < datetime.now(UTC) - timedelta(days=6)) == 0
        assert _volumes(s) == volumes  # the purged days keep their counts
    line = json.loads((settings.data_dir / AUDIT_FILE).read_text("utf-8").splitlines()[-1])
    assert line["action"] == "purge" and line["by"].startswith("cli")
