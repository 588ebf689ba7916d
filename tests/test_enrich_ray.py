"""`verbatim enrich --engine ray` on a local Ray instance (2 CPUs), against real SQLite and
PostgreSQL: every pending verbatim analysed once, re-runs and retried ranges count nothing
twice, the same results as the in-process engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core import taxonomy_store
from core.db import make_engine, migrate, session_factory
from core.models import Analysis, Feedback, ThemeMention
from core.settings import Settings
from core.store import insert_feedback, prepare_feedback
from nlp.taxonomy import Theme
from tests.pg_schema import pg_schema_url

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "Colis arrivé écrasé, le carton était déchiré",
    "Livraison rapide, produit conforme, merci !",
    "Le service client ne répond jamais, remboursement toujours pas reçu",
    "Prix trop élevé pour la qualité, déçu",
    "Site très lent, impossible de payer par carte",
]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    # Skipped per test (so VERBATIM_TEST_REQUIRE=ray turns a missing extra into a failure).
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    # Ray workers import jobs/ from the checkout, as a pip-installed package would be found.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # loopback-only test instance
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ray.db'}"
    else:
        with pg_schema_url() as url:
            yield url


def _seed(sessions: sessionmaker[Session], n: int, first: int = 0) -> None:
    start = datetime.now(UTC) - timedelta(days=5)
    rows = []
    for i in range(first, first + n):
        fields = {
            "id": f"r{i}",
            "text": f"{TEXTS[i % len(TEXTS)]} (commande {i})",
            "created_at": (start + timedelta(hours=2 * i)).isoformat(),
        }
        row = prepare_feedback(fields, source="s", channel="review", max_text_chars=5000)
        assert isinstance(row, dict)
        rows.append(row)
    with sessions.begin() as s:
        insert_feedback(s, rows)


def _counts(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions() as s:
        return (
            int(s.scalar(select(func.count()).select_from(Analysis)) or 0),
            int(s.scalar(select(func.count(func.distinct(Analysis.feedback_id)))) or 0),
            int(s.scalar(select(func.count()).select_from(ThemeMention)) or 0),
        )


def test_ray_engine_analyses_each_verbatim_once(
    local_ray: None, db_url: str, settings: Settings
) -> None:
    from jobs.enrich import enrich
    from jobs.enrich_ray import RayOptions, enrich_ray, pending_ranges

    settings = settings.model_copy(update={"database_url": db_url})
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions, 50)
    assert pending_ranges(sessions, 10)[0][1] - pending_ranges(sessions, 10)[0][0] == 9
    with sessions.begin() as s:  # an edited taxonomy: actors analyse with it, as enrich does
        tax = taxonomy_store.current(s, settings).taxonomy
        cartons = Theme(id="cartons", label="Cartons", seeds=["carton"])
        edited = tax.model_copy(update={"themes": [*tax.themes, cartons]})
        taxonomy_store.save(s, settings, edited, "test")

    result = enrich_ray(settings, sessions, options=RayOptions(workers=2, range_size=10))
    assert result.analyzed == 50 and result.failed == 0
    analyses, distinct, mentions = _counts(sessions)
    assert analyses == distinct == 50
    assert mentions == result.mentions > 0
    with sessions() as s:
        assert s.scalar(select(func.count()).where(ThemeMention.theme == "cartons")) == 10
    assert len(result.days) >= 4

    # A worker lost after its commit makes Ray run the range again; simulate it by flagging
    # 20 analysed rows as pending: the re-run writes no second analysis and no mention.
    with sessions.begin() as s:
        s.execute(update(Feedback).where(Feedback.id <= 20).values(analyzed=False))
    again = enrich_ray(settings, sessions, options=RayOptions(workers=1, range_size=10))
    # The 20 were stored already: none counted twice, said as the in-process engine says it.
    assert (again.stored, again.skipped, again.mentions) == (0, 20, 0)
    assert _counts(sessions) == (50, 50, mentions)
    assert enrich_ray(settings, sessions).analyzed == 0  # nothing pending: Ray not even used

    # Same analyses as the in-process engine (same lexicon backend, same model version).
    with sessions() as s:
        by_ray = dict(s.execute(select(Analysis.feedback_id, Analysis.sentiment)).all())
        s.execute(update(Feedback).values(analyzed=False))
        s.execute(Analysis.__table__.delete())
        s.commit()
    enrich(sessions, settings)
    with sessions() as s:
        local = dict(s.execute(select(Analysis.feedback_id, Analysis.sentiment)).all())
    assert local == by_ray
    assert _counts(sessions)[2] == mentions
    engine.dispose()


def test_verbatims_stored_during_a_ray_run_are_analysed_by_it(
    local_ray: None, db_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranges were cut once, at the start: verbatims ingested while the actors worked
    (the scheduler's ingest, POST /feedback) were past them and waited for the next run,
    where the in-process engine's next batch takes them."""
    import jobs.enrich_ray as enrich_ray_module
    from jobs.enrich_ray import RayOptions, enrich_ray

    settings = settings.model_copy(update={"database_url": db_url})
    engine = make_engine(db_url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions, 20)
    cut = enrich_ray_module.pending_ranges

    def cut_then_ingest(*args: object, **kwargs: object) -> list[tuple[int, int]]:
        ranges = cut(*args, **kwargs)  # type: ignore[arg-type]
        if ranges and ranges[0][0] == 1:  # the run's first cut: an ingest comes in
            _seed(sessions, 7, first=20)
        return ranges

    monkeypatch.setattr(enrich_ray_module, "pending_ranges", cut_then_ingest)
    result = enrich_ray(settings, sessions, options=RayOptions(workers=1, range_size=10))
    assert result.analyzed == 27 and result.failed == 0
    with sessions() as s:
        assert s.scalar(select(func.count()).where(Feedback.analyzed.is_(False))) == 0
    assert _counts(sessions)[:2] == (27, 27)
    engine.dispose()


def test_ray_engine_stores_the_document_vectors_as_enrich_does(
    local_ray: None, tmp_path: Path, settings: Settings
) -> None:
    """The embedded backend's vectors were stored by the in-process engine only: after a Ray
    run `verbatim topics` found none and encoded every verbatim again."""
    from core.models import Embedding
    from jobs.enrich import enrich
    from jobs.enrich_ray import RayOptions, enrich_ray

    settings = settings.model_copy(update={"sentiment_backend": "embedded"})
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions, 6)
    result = enrich_ray(settings, sessions, options=RayOptions(workers=1, range_size=10))
    assert result.analyzed == 6
    with sessions() as s:
        by_ray = dict(s.execute(select(Embedding.feedback_id, Embedding.model)).all())
        s.execute(update(Feedback).values(analyzed=False))
        s.execute(Analysis.__table__.delete())
        s.execute(Embedding.__table__.delete())
        s.commit()
    enrich(sessions, settings)
    with sessions() as s:
        local = dict(s.execute(select(Embedding.feedback_id, Embedding.model)).all())
    assert len(local) == 6 and by_ray == local
    engine.dispose()


def test_ray_engine_errors_are_one_line(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster that cannot be reached, a malformed --address and a bad --backend were Ray
    tracebacks (pages of them for the backend, once per dying actor): one `error:` line."""
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    from typer.testing import CliRunner

    from verbatim_cli import app

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    _seed(session_factory(engine), 3)
    engine.dispose()
    env = {
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_SENTIMENT_BACKEND": "lexicon",
    }
    started: list[object] = []

    def unreachable(address: str | None = None, **_: object) -> None:
        started.append(address)
        if address == "nonsense":
            raise ValueError("Invalid address format: nonsense")
        raise ConnectionError(f"Failed to connect to Ray cluster at {address}")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", unreachable)
    cases = [
        (["--address", "10.0.0.9:6379"], 1, "cannot reach the Ray cluster at 10.0.0.9:6379"),
        (["--address", "nonsense"], 2, "--address 'nonsense': Invalid address format"),
        (["--backend", "nope"], 2, "unknown sentiment backend 'nope'; known: embedded"),
    ]
    for args, code, expected in cases:
        res = CliRunner().invoke(app, ["enrich", "--engine", "ray", *args], env=env)
        assert res.exit_code == code, (args, res.output, res.exception)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert started == ["10.0.0.9:6379", "nonsense"]  # a bad backend starts no Ray at all


def test_an_address_where_nothing_answers_fails_in_seconds(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--address 127.0.0.1:<a closed port>`, a host that does not resolve, or such a
    $RAY_ADDRESS: Ray retried about 14 minutes, a warning every 40 s, before its own error.
    Refused before Ray starts."""
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    import socket

    from typer.testing import CliRunner

    from verbatim_cli import app

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    _seed(session_factory(engine), 3)
    engine.dispose()
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    started: list[object] = []

    def hangs(address: str | None = None, **_: object) -> None:
        started.append(address)  # the real one retries for minutes here
        raise ConnectionError(f"Failed to connect to Ray cluster at {address}")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", hangs)
    env = {
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_SENTIMENT_BACKEND": "lexicon",
    }
    for address in (f"127.0.0.1:{closed}", "nohost.invalid:6379"):
        res = CliRunner().invoke(app, ["enrich", "--engine", "ray", "--address", address], env=env)
        assert res.exit_code == 1, (address, res.output, res.exception)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert f"cannot reach the Ray cluster at {address}: nothing answers there" in lines[0]
    # No --address but $RAY_ADDRESS (set on a cluster's machines): Ray connects there.
    res = CliRunner().invoke(
        app, ["enrich", "--engine", "ray"], env={**env, "RAY_ADDRESS": f"127.0.0.1:{closed}"}
    )
    assert res.exit_code == 1, (res.output, res.exception)
    assert f"cannot reach the Ray cluster at 127.0.0.1:{closed}: nothing" in res.stderr
    assert started == []


def test_ray_engine_says_how_many_verbatims_failed(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows the analyzer raised on (left pending) were counted by the Ray engine but never
    shown: the run looked complete. The same warning as the in-process engine."""
    pytest.importorskip("ray", reason="the [ray] extra is not installed")
    from typer.testing import CliRunner

    import jobs.enrich_ray
    from jobs.enrich import EnrichResult
    from verbatim_cli import app

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    _seed(session_factory(engine), 3)
    engine.dispose()
    done = EnrichResult(analyzed=2, mentions=1, model_version="m", failed=1)
    monkeypatch.setattr(jobs.enrich_ray, "enrich_ray", lambda *a, **k: done)
    env = {
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_SENTIMENT_BACKEND": "lexicon",
    }
    res = CliRunner().invoke(app, ["enrich", "--engine", "ray"], env=env)
    assert res.exit_code == 0, res.output
    assert "analysed 2 verbatims on Ray" in res.stdout
    assert "1 verbatim(s) could not be analysed" in res.stderr


def test_ray_engine_reanalyzes_once_with_the_languages_detected_again(
    local_ray: None, tmp_path: Path, settings: Settings
) -> None:
    """`verbatim enrich --engine ray --reanalyze` was refused ("no --reanalyze"): a cluster
    could not re-score the verbatims after a model change, nor fix their stored language."""
    from core.analysis import build_analyzer
    from jobs.enrich_ray import RayOptions, enrich_ray

    settings = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'r.db'}"})
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions, 12)
    assert enrich_ray(settings, sessions, options=RayOptions(workers=1)).analyzed == 12
    with sessions.begin() as s:  # an older model's analyses, an older detector's language
        s.execute(update(Analysis).values(model_version="old-1"))
        s.execute(update(Feedback).where(Feedback.id == 1).values(language="en", is_french=False))
    version = build_analyzer(settings).model_version
    opts = RayOptions(workers=1, range_size=5)
    again = enrich_ray(settings, sessions, options=opts, reanalyze_as=version)
    assert (again.analyzed, again.relabelled, again.model_version) == (12, 1, version)
    assert _counts(sessions)[:2] == (24, 12)  # one analysis per version, none twice
    once_more = enrich_ray(settings, sessions, options=opts, reanalyze_as=version)
    assert (once_more.analyzed, once_more.relabelled) == (0, 0)
    assert _counts(sessions)[:2] == (24, 12)
    with sessions() as s:
        assert s.scalar(select(Feedback.language).where(Feedback.id == 1)) == "fr"


def test_ray_engine_cli_accepts_reanalyze(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI refused `--engine ray --reanalyze`; it now hands the workers' model version to
    the Ray engine and says how many verbatims changed language."""
    pytest.importorskip("ray", reason="the [ray] extra is not installed")
    from typer.testing import CliRunner

    import jobs.enrich_ray
    from core.analysis import build_analyzer
    from jobs.enrich import EnrichResult
    from verbatim_cli import app

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    _seed(session_factory(engine), 3)
    engine.dispose()
    calls: list[object] = []

    def fake(*_: object, reanalyze_as: str | None = None, **__: object) -> EnrichResult:
        calls.append(reanalyze_as)
        return EnrichResult(analyzed=3, model_version=str(reanalyze_as), relabelled=1)

    monkeypatch.setattr(jobs.enrich_ray, "enrich_ray", fake)
    env = {
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_SENTIMENT_BACKEND": "lexicon",
    }
    res = CliRunner().invoke(app, ["enrich", "--engine", "ray", "--reanalyze"], env=env)
    assert res.exit_code == 0, res.output
    assert calls == [build_analyzer(settings).model_version]
    assert "analysed 3 verbatims on Ray" in res.stdout
    assert "1 verbatim(s) changed language" in res.stdout
    res = CliRunner().invoke(app, ["enrich", "--engine", "ray", "--limit", "5"], env=env)
    assert res.exit_code == 2 and "no --limit" in res.output


def test_workers_that_cannot_load_the_analyzer_fail_the_run_in_one_line(
    local_ray: None, settings: Settings
) -> None:
    """A model missing where the actors run killed every actor: the driver got Ray's
    ActorDiedError, pages long. One line naming the worker's own error."""
    from jobs.enrich_ray import RayOptions, enrich_ray
    from nlp.errors import VerbatimError

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions, 3)
    with pytest.raises(VerbatimError) as caught:  # tfidf without a trained model path
        enrich_ray(settings, sessions, options=RayOptions(workers=1), backend="tfidf")
    message = str(caught.value)
    assert "\n" not in message and "needs a trained model path" in message, message
    assert caught.value.exit_code == 1
    engine.dispose()


def test_workers_accept_a_configuration_with_a_folder_source(
    local_ray: None, tmp_path: Path, settings: Settings
) -> None:
    """With a `[[sources]]` folder (as deploy/verbatim.toml has), every actor refused its
    settings: they were handed the source's defaults (`url`, `max_retries`…) as if given,
    which a folder does not read, and the run failed on « 1 validation error for Settings »."""
    from core.settings import SourceConfig
    from jobs.enrich_ray import RayOptions, enrich_ray

    inbox = SourceConfig(source="exports", kind="folder", path=tmp_path, pattern="*.*")
    settings = settings.model_copy(update={"sources": [inbox]})
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions, 3)
    assert enrich_ray(settings, sessions, options=RayOptions(workers=1)).analyzed == 3
    assert _counts(sessions)[:2] == (3, 3)
    engine.dispose()


def test_a_worker_without_the_sqlite_file_says_so(
    local_ray: None, tmp_path: Path, settings: Settings
) -> None:
    """SQLite on a cluster: a worker on a machine without the file created an empty database
    there (and its directory), then the run failed on "(Background on this error at: …)",
    SQLAlchemy's last line. The worker refuses and says why, and creates nothing."""
    from jobs.enrich_ray import RayOptions, enrich_ray
    from nlp.errors import VerbatimError

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions, 3)
    elsewhere = tmp_path / "other-machine" / "verbatim.db"  # the path the workers are given
    remote = settings.model_copy(update={"database_url": f"sqlite:///{elsewhere}"})
    with pytest.raises(VerbatimError) as caught:
        enrich_ray(remote, sessions, options=RayOptions(workers=1))
    message = str(caught.value)
    assert f"the SQLite database {elsewhere} is not on this Ray worker" in message, message
    assert "needs PostgreSQL" in message and "Background on this error" not in message
    assert not elsewhere.parent.exists()
    engine.dispose()


def test_ray_engine_reports_progress_and_starts_no_idle_actor(
    local_ray: None, tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The Ray engine said nothing until its last line (no `enrich: N rows…` progress with
    -v, no count on the spinner: hours of silence for a year of verbatims), and a pass with
    fewer ranges than --workers started every actor anyway, each loading the analyzer for
    nothing (Ray warned "the operator only received 1 input(s)")."""
    import logging
    import warnings

    from jobs.enrich_ray import RayOptions, enrich_ray

    settings = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'p.db'}"})
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions, 12)
    caplog.set_level(logging.INFO, logger="jobs.enrich")
    seen: list[int] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = enrich_ray(
            settings, sessions, options=RayOptions(workers=3, range_size=5), on_batch=seen.append
        )
    assert result.analyzed == 12
    assert seen == sorted(seen) and len(seen) == 3 and seen[-1] == 12
    assert "enrich: done, 12 rows" in caplog.text
    # Three ranges for three workers, then one range for three: no actor without a range.
    with sessions.begin() as s:
        s.execute(update(Feedback).where(Feedback.id > 10).values(analyzed=False))
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        enrich_ray(settings, sessions, options=RayOptions(workers=3, range_size=5))
    idle = [w for w in [*caught, *again] if "concurrent actors" in str(w.message)]
    assert idle == []
    engine.dispose()


def test_ray_engine_cli_prints_what_the_in_process_engine_prints(
    local_ray: None, settings: Settings
) -> None:
    """`verbatim enrich --engine ray` printed Ray Data's own lines ("INFO streaming_executor.py
    … Starting execution of Dataset …", "WARNING … Progress bars disabled. To enable, set
    `ray.data.DataContext…`") around its summary, and a re-run over verbatims another run had
    stored said "analysed 0 verbatims" where the in-process engine says "; N analysed
    meanwhile by another run"."""
    from typer.testing import CliRunner

    from verbatim_cli import app

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    _seed(sessions, 4)
    env = {
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "VERBATIM_SENTIMENT_BACKEND": "lexicon",
    }
    res = CliRunner().invoke(app, ["enrich", "--engine", "ray", "--workers", "1"], env=env)
    assert res.exit_code == 0, res.output
    assert "analysed 4 verbatims on Ray" in res.stdout
    assert "meanwhile" not in res.stdout
    assert "Starting execution" not in res.stderr and "Progress bars" not in res.stderr
    with sessions.begin() as s:  # as if another run stored them while this one analysed
        s.execute(update(Feedback).values(analyzed=False))
    res = CliRunner().invoke(app, ["enrich", "--engine", "ray", "--workers", "1"], env=env)
    assert res.exit_code == 0, res.output
    assert "analysed 0 verbatims on Ray" in res.stdout
    assert "4 analysed meanwhile by another run" in res.stdout
    assert _counts(sessions)[:2] == (4, 4)
    engine.dispose()
