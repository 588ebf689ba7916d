"""Property-based API fuzzing from the OpenAPI schema with every schemathesis check (server
errors, status codes and responses conforming to the schema, schema-valid data accepted,
invalid data rejected...), configured by the repository's schemathesis.toml like
`schemathesis run --checks all`."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_seed import seed
from conftest import REQUIRED

from core.db import make_engine, migrate, session_factory, session_scope
from core.settings import Settings
from service.app import create_app
from service.auth import create_key

if "schemathesis" in REQUIRED:  # CI: a missing dev dependency is an error, not a skip
    import schemathesis
else:
    schemathesis = pytest.importorskip("schemathesis", minversion="4.0")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - schemathesis schema
    data_dir: Path = tmp_path_factory.mktemp("schemathesis") / "data"
    cfg = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'verbatim.db'}",
        max_batch_rows=20,
        max_body_bytes=200_000,
        pii_ner=False,  # the schema is under test, not the NER (tests/test_pii.py)
        sentiment_backend="lexicon",  # nor the sentiment model
    )
    engine = make_engine(cfg.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    seed(sessions)
    with session_scope(sessions) as session:
        _, TOKEN["write"] = create_key(session, "fuzz", "write")
    app = create_app(cfg, engine=engine, build_analyzer_at_startup=False)
    app.state.verbatim.get_analyzer()  # built once here, not inside a request's timeout
    config = SchemathesisConfig.from_path(Path(__file__).parent.parent / "schemathesis.toml")
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@pytest.mark.slow
@pytest.mark.schemathesis
def test_api_conforms_to_its_schema(api_schema) -> None:  # noqa: ANN001 - schemathesis schema
    """Every operation, a bounded number of generated cases each (deterministic seed), all
    checks."""
    headers = {"X-API-Key": TOKEN["write"]}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    statuses: dict[str, list[int]] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers)  # every check
            statuses.setdefault(case.operation.label, []).append(response.status_code)

        run()

    # The generated cases reach the handlers, not only the validation layer.
    reached = {label for label, codes in statuses.items() if any(c < 300 for c in codes)}
    print({label: sorted(set(codes)) for label, codes in statuses.items()})
    assert len(reached) >= 6, statuses
