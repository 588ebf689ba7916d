"""API tests over a real SQLite file seeded through the ORM + the real aggregate job."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from api_seed import FIRST_DAY, KNOWN_EVIDENCE, KNOWN_TEXT, LAST_DAY, Seeded, seed
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.models import Analysis, Feedback, IngestionRun, Quarantine, ThemeMention
from core.settings import Settings
from service.app import create_app
from service.auth import create_key, revoke_key


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> Seeded:
    return seed(sessions)


@pytest.fixture
def client(settings: Settings, engine: Engine, seeded: Seeded) -> Iterator[TestClient]:
    # No lifespan: the analyzer is built lazily, only by the /analyze tests.
    yield TestClient(create_app(settings, engine=engine))


def rh(keys: dict[str, str]) -> dict[str, str]:
    return {"X-API-Key": keys["read"]}


def wh(keys: dict[str, str]) -> dict[str, str]:
    return {"X-API-Key": keys["write"]}


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/themes"),
        ("GET", "/themes/livraison"),
        ("GET", "/themes/livraison/verbatims"),
        ("GET", "/topics"),
        ("GET", "/alerts"),
        ("GET", "/taxonomy"),
        ("PUT", "/taxonomy"),
        ("GET", "/taxonomy/history"),
        ("GET", "/incidents"),
        ("POST", "/incidents/1/acknowledge"),
        ("POST", "/incidents/1/resolve"),
        ("POST", "/feedback"),
        ("POST", "/analyze"),
        ("DELETE", "/feedback/1"),
    ],
)
def test_protected_endpoints_need_a_key(client: TestClient, method: str, path: str) -> None:
    res = client.request(method, path, json={})
    assert res.status_code == 401
    assert res.json()["field"] == "X-API-Key"
    bad = client.request(method, path, json={}, headers={"X-API-Key": "vb_not-a-key"})
    assert bad.status_code == 401
    assert "invalid" in bad.json()["detail"]


def test_read_key_cannot_write(client: TestClient, keys: dict[str, str]) -> None:
    body = {"source": "api", "items": [{"text": "Très bien"}]}
    assert client.post("/feedback", json=body, headers=rh(keys)).status_code == 403
    assert client.put("/taxonomy", json={"operations": []}, headers=rh(keys)).status_code == 403
    res = client.post("/analyze", json={"items": [{"text": "ok"}]}, headers=rh(keys))
    assert res.status_code == 403
    assert res.json() == {"detail": "this API key has no 'write' scope", "field": "X-API-Key"}
    assert client.delete("/feedback/1", headers=rh(keys)).status_code == 403
    # A write key also reads.
    assert client.get("/themes", headers=wh(keys)).status_code == 200


def test_revoked_key_stops_working(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    assert client.get("/topics", headers=rh(keys)).status_code == 200
    with session_scope(sessions) as session:
        _, token = create_key(session, "temp", "read")
    assert client.get("/topics", headers={"X-API-Key": token}).status_code == 200
    with session_scope(sessions) as session:
        key_id = [k.id for k in __import__("service.auth").auth.list_keys(session)][-1]
        assert revoke_key(session, key_id)
    assert client.get("/topics", headers={"X-API-Key": token}).status_code == 401


def test_keys_are_stored_hashed(keys: dict[str, str], sessions: sessionmaker[Session]) -> None:
    from core.models import ApiKey

    with sessions() as session:
        stored = list(session.execute(select(ApiKey.key_hash, ApiKey.prefix)))
    assert all(token not in {h for h, _ in stored} for token in keys.values())
    assert {p for _, p in stored} == {t[:10] for t in keys.values()}


def test_open_read_mode(settings: Settings, engine: Engine, seeded: Seeded) -> None:
    open_settings = settings.model_copy(update={"dashboard_read_without_key": True})
    client = TestClient(create_app(open_settings, engine=engine), base_url="http://127.0.0.1")
    assert client.get("/themes").status_code == 200
    assert client.get("/alerts").status_code == 200
    # Writes still need a write key.
    res = client.post("/feedback", json={"source": "x", "items": [{"text": "Bien"}]})
    assert res.status_code == 401


def test_open_reads_answer_only_requests_addressed_to_this_machine(
    settings: Settings, engine: Engine, seeded: Seeded, keys: dict[str, str]
) -> None:
    """DNS rebinding: with reads open (`verbatim serve --open-read`), any web page the analyst
    opened could read every verbatim, its own name resolved to 127.0.0.1 again (the browser
    then sends that name as Host and hands the page the answers). Only requests addressed to
    an IP address, localhost or a name of `open_read_hosts` are answered now, kept views too."""
    open_settings = settings.model_copy(update={"dashboard_read_without_key": True})
    app = create_app(open_settings, engine=engine)
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "192.168.1.20", "localhost."):
        assert TestClient(app, base_url=f"http://{host}").get("/themes").status_code == 200, host
    rebound = TestClient(app, base_url="http://evil.example:8000")
    for _ in range(2):  # the second time the view is kept (front cache): no way around it
        res = rebound.get("/themes")
        assert res.status_code == 400, res.text
        assert res.json() == {
            "detail": "host 'evil.example' is not this server's name: reads are open without "
            "a key (--open-read), so only localhost, an IP address or a name in "
            "open_read_hosts is answered",
            "field": "Host",
        }
    assert rebound.get("/").status_code == 400
    # Open in every mode (no verbatim in them): a scraper's name for this server needs no setting.
    assert rebound.get("/health").status_code == 200
    assert rebound.get("/metrics").status_code == 200
    named = open_settings.model_copy(update={"open_read_hosts": ["Verbatim.Intra.example"]})
    listed = TestClient(create_app(named, engine=engine), base_url="http://verbatim.intra.example")
    assert listed.get("/themes").status_code == 200
    # A key required: a rebound page has nothing to read, and a proxy's name needs no setting.
    keyed = TestClient(create_app(settings, engine=engine), base_url="http://cx.example.fr")
    assert keyed.get("/themes", headers=rh(keys)).status_code == 200


def test_open_read_hosts_written_with_a_port_or_a_final_dot(
    settings: Settings, engine: Engine, seeded: Seeded
) -> None:
    """A name of `open_read_hosts` copied from the address bar, « verbatim.intra:8000 » (or
    « verbatim.intra. »), was kept as written, so every request addressed to verbatim.intra
    was a 400 telling the user to list the name they had listed. It is read as a Host is."""
    named = settings.model_copy(
        update={
            "dashboard_read_without_key": True,
            "open_read_hosts": [" Verbatim.Intra:8000 ", "tableau.intra."],
        }
    )
    app = create_app(named, engine=engine)
    for host in ("verbatim.intra:8000", "verbatim.intra", "tableau.intra:8000"):
        assert TestClient(app, base_url=f"http://{host}").get("/themes").status_code == 200, host
    assert TestClient(app, base_url="http://evil.example").get("/themes").status_code == 400


def test_auth_me_says_the_keys_name_and_scope(
    client: TestClient, keys: dict[str, str], settings: Settings, engine: Engine
) -> None:
    """The dashboard could not tell a read key from a write one: it offered « Corriger » and
    « Résoudre » to a read key and the server refused only the save. /auth/me says the key's
    name and scope (never the token); no key: a 401, or reading only where reads are open."""
    read = client.get("/auth/me", headers=rh(keys))
    assert read.status_code == 200 and read.json() == {"name": "lecture", "scope": "read"}
    write = client.get("/auth/me", headers=wh(keys))
    assert write.json() == {"name": "ecriture", "scope": "write"}
    assert keys["write"] not in write.text and keys["write"][:10] not in write.text
    assert client.get("/auth/me").status_code == 401
    assert client.get("/auth/me", headers={"X-API-Key": "vb_not-a-key"}).status_code == 401
    spec = client.get("/openapi.json").json()["paths"]["/auth/me"]["get"]
    assert spec["security"] == [{"ApiKey": []}] and "401" in spec["responses"]
    open_settings = settings.model_copy(update={"dashboard_read_without_key": True})
    open_client = TestClient(create_app(open_settings, engine=engine), base_url="http://127.0.0.1")
    assert open_client.get("/auth/me").json() == {"name": None, "scope": "read"}
    assert open_client.get("/auth/me", headers=wh(keys)).json()["scope"] == "write"


def test_health_metrics_dashboard_are_open(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    head = client.head("/health")  # uptime checkers probe with HEAD
    assert head.status_code == 200 and head.content == b""
    assert client.get("/metrics").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "Thèmes" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_health_and_metrics_name_what_analyses_run(settings: Settings, engine: Engine) -> None:
    """An operator could not tell from the running API which model version, encoder runtime
    or theme heads it analysed with (/health had status, database, version and jobs; /metrics
    nothing of the analyzer): only by reading runtime.json in the model cache, which says
    what `verbatim setup` chose, not what the fallback on another CPU runs."""
    app = create_app(settings, engine=engine, analyzer=None, build_analyzer_at_startup=False)
    client = TestClient(app)
    assert client.get("/health").json()["analyzer"] is None  # /health never builds it
    assert "verbatim_analyzer_info{" not in client.get("/metrics").text
    version = app.state.verbatim.get_analyzer().model_version  # the first write builds it
    assert version.startswith("lexicon-")
    health = client.get("/health").json()["analyzer"]
    # Lexicon backend: no encoder, hence no runtime and the encoder-free theme heads.
    assert health == {
        "model_version": version,
        "encoder_runtime": None,
        "kernels": None,
        "theme_heads": "lite",
    }
    metrics = client.get("/metrics").text
    assert (
        f'verbatim_analyzer_info{{encoder_runtime="",kernels="",model_version="{version}",'
        'theme_heads="lite"} 1.0'
    ) in metrics


def test_openapi_declares_api_key_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["ApiKey"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert spec["paths"]["/themes"]["get"]["security"] == [{"ApiKey": []}]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_openapi_declares_the_error_statuses_of_each_write(
    client: TestClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A correction answered a 503 (aggregates being rebuilt) and every body-taking endpoint
    a 413 (over `max_body_bytes`) that its OpenAPI operation did not list: a client
    generated from the schema had no type for them."""
    spec = client.get("/openapi.json").json()
    with_body = [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if "requestBody" in op
    ]
    assert {(p, m) for p, m, _ in with_body} >= {
        ("/feedback/{feedback_id}/corrections", "post"),
        ("/incidents/{incident_id}/acknowledge", "post"),
        ("/incidents/{incident_id}/resolve", "post"),
        ("/taxonomy", "put"),
        ("/feedback", "post"),
        ("/analyze", "post"),
    }
    wanted = [(p, m, op, code) for p, m, op in with_body for code in ("413", "422")]
    corrections = spec["paths"]["/feedback/{feedback_id}/corrections"]["post"]
    wanted.append(("/feedback/{feedback_id}/corrections", "post", corrections, "503"))
    erasure = spec["paths"]["/feedback/{feedback_id}"]["delete"]
    wanted += [("/feedback/{feedback_id}", "delete", erasure, code) for code in ("404", "503")]
    for path, method, op, code in wanted:
        declared = op["responses"].get(code)
        assert declared is not None, (method, path, code)
        ref = declared["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorOut"), (method, path, code, ref)
    # ... and they do answer them.
    big = {"note": "x" * 6_000_000}
    assert client.post("/incidents/1/resolve", json=big, headers=wh(keys)).status_code == 413
    assert client.post("/feedback/1/corrections", json=big, headers=wh(keys)).status_code == 413

    from core.db import AggregatesBusy
    from service.routers import corrections as module

    def busy(*args: object, **kwargs: object) -> None:
        raise AggregatesBusy("the aggregates are being rebuilt: retry in a minute")

    monkeypatch.setattr(module, "lock_aggregates", busy)
    res = client.post("/feedback/1/corrections", json={"sentiment": "positive"}, headers=wh(keys))
    assert res.status_code == 503, res.text


# --- /themes --------------------------------------------------------------------------------


def test_themes_default_period_and_figures(
    client: TestClient, keys: dict[str, str], seeded: Seeded
) -> None:
    data = client.get("/themes", headers=rh(keys)).json()
    assert data["period"]["end"] == LAST_DAY.isoformat()
    assert data["period"]["start"] == (LAST_DAY - timedelta(days=6)).isoformat()
    assert data["period"]["previous_end"] == (LAST_DAY - timedelta(days=7)).isoformat()
    themes = {t["id"]: t for t in data["themes"]}
    # Every active theme of the taxonomy is listed, even at zero volume.
    assert {"livraison", "emballage", "prix", "site_appli"} <= set(themes)
    liv = themes["livraison"]
    assert data["themes"][0]["id"] == "livraison"  # most negatives first
    assert liv["label"] == "Livraison"
    assert liv["volume"] == seeded.livraison_current
    assert liv["negatives"] == seeded.livraison_current_negative
    assert liv["negative_share"] == pytest.approx(
        seeded.livraison_current_negative / seeded.livraison_current, abs=1e-4
    )
    assert liv["previous_volume"] == 21
    assert liv["volume_change"] == pytest.approx((64 - 21) / 21, abs=1e-3)
    assert liv["spike"]["alert_id"] == seeded.alert_id and liv["spike"]["severity"] == "high"
    assert themes["prix"]["spike"] is None  # its alert is resolved
    assert "retard" in liv["keywords"]
    assert len(liv["trend"]) == 7 and sum(liv["trend"]) == liv["volume"]
    assert liv["stage"] == "delivery"
    assert themes["site_appli"]["volume"] == 0 and themes["site_appli"]["keywords"] == []


def test_themes_filters(client: TestClient, keys: dict[str, str]) -> None:
    all_ = {t["id"]: t["volume"] for t in client.get("/themes", headers=rh(keys)).json()["themes"]}
    social = client.get("/themes?channel=social", headers=rh(keys)).json()
    assert social["channel"] == "social"
    vols = {t["id"]: t["volume"] for t in social["themes"]}
    assert 0 < vols["livraison"] < all_["livraison"]
    # A known source without data in the period: zeros (a misspelt one is a 422, below).
    early = f"start={LAST_DAY - timedelta(days=400)}&days=7"
    other = client.get(f"/themes?source=tests&{early}", headers=rh(keys)).json()
    assert other["source"] == "tests" and all(t["volume"] == 0 for t in other["themes"])
    explicit = client.get(
        f"/themes?start={LAST_DAY - timedelta(days=1)}&end={LAST_DAY}", headers=rh(keys)
    ).json()
    assert explicit["period"]["previous_start"] == (LAST_DAY - timedelta(days=3)).isoformat()
    resto = client.get("/themes?taxonomy=restaurant", headers=rh(keys)).json()
    assert resto["taxonomy"] == "restaurant"


@pytest.mark.parametrize(
    ("path", "field", "known"),
    [
        ("/themes?source=test", "source", "tests"),
        ("/themes?source=test&format=csv", "source", "tests"),
        ("/themes/livraison?source=test", "source", "tests"),
        ("/themes/livraison/trend?source=test", "source", "tests"),
        ("/themes/livraison/breakdown?source=test", "source", "tests"),
        ("/themes/livraison/verbatims?source=test", "source", "tests"),
        ("/themes/livraison/verbatims?source=test&format=csv", "source", "tests"),
        ("/themes/livraison/verbatims?language=fre", "language", "fr"),
        ("/overview?source=test", "source", "tests"),
        ("/drivers?source=test", "source", "tests"),
        ("/alerts?theme=livraisn", "theme", "livraison"),
        ("/alerts?theme=livraisn&format=csv", "theme", "livraison"),
        ("/incidents?theme=livraisn", "theme", "livraison"),
    ],
)
def test_a_misspelt_filter_is_a_422_naming_the_known_values(
    client: TestClient, keys: dict[str, str], path: str, field: str, known: str
) -> None:
    """`/themes?source=trustpilt` answered 200 with every figure 0 (and `/alerts?theme=`
    an empty list): read as « no complaint ». A known value without data answers zeros."""
    res = client.get(path, headers=rh(keys))
    assert res.status_code == 422, res.text
    body = res.json()
    wrong = path.split(f"{field}=")[1].split("&")[0]
    assert body["field"] == field
    assert body["detail"].startswith(f"unknown {field} '{wrong}'; known: ")
    assert known in body["detail"].split("known: ")[1].split(", ")
    right = path.replace(f"{field}={wrong}", f"{field}={known}")
    assert client.get(right, headers=rh(keys)).status_code == 200, right


def test_a_known_filter_without_data_answers_zeros(
    client: TestClient, keys: dict[str, str]
) -> None:
    early = f"start={LAST_DAY - timedelta(days=400)}&days=7"
    themes = client.get(f"/themes?source=tests&{early}", headers=rh(keys))
    assert themes.status_code == 200 and themes.json()["total_volume"] == 0
    overview = client.get(f"/overview?source=tests&{early}", headers=rh(keys))
    assert overview.status_code == 200 and overview.json()["verbatims"] == 0
    # A language the detector names, none stored (the dashboard offers « Anglais »).
    english = client.get("/themes/livraison/verbatims?language=en", headers=rh(keys))
    assert english.status_code == 200 and english.json()["items"] == []
    assert client.get("/alerts?theme=site_appli", headers=rh(keys)).json()["items"] == []
    assert client.get("/incidents?theme=site_appli", headers=rh(keys)).json()["items"] == []


def test_overview_has_no_previous_share_without_a_previous_period(
    client: TestClient, keys: dict[str, str]
) -> None:
    """The first week of data answered `previous_negative_share: 0.0` (« 0 % of negatives the
    week before »), a week that had no verbatim; `/themes` answers null in that case."""
    first = client.get(f"/overview?start={FIRST_DAY}&days=7", headers=rh(keys)).json()
    assert first["verbatims"] > 0 and first["previous_verbatims"] == 0
    assert first["previous_negative_share"] is None
    later = client.get(f"/overview?start={FIRST_DAY + timedelta(days=7)}&days=7", headers=rh(keys))
    body = later.json()
    assert body["previous_verbatims"] > 0 and body["previous_negative_share"] > 0, body


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("channel=fax", "channel"),
        ("days=0", "days"),
        ("days=abc", "days"),
        ("start=2026-13-01", "start"),
        ("start=2026-03-10&end=2026-03-01", "end"),
        ("start=2020-01-01&end=2026-01-01", "start"),
        ("taxonomy=bogus", "taxonomy"),
    ],
)
def test_themes_validation_names_the_field(
    client: TestClient, keys: dict[str, str], query: str, field: str
) -> None:
    res = client.get(f"/themes?{query}", headers=rh(keys))
    assert res.status_code == 422
    body = res.json()
    assert body["field"] == field
    assert field in body["detail"] or body["detail"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        # The verbatims list answered 200 with no items where /themes says 422.
        ("/themes/livraison/verbatims?start=2026-03-10&end=2026-03-01", "end"),
        # An empty source filtered on a source named "" (zero rows) instead of being refused.
        ("/themes?source=", "source"),
        ("/themes/livraison/verbatims?source=", "source"),
    ],
)
def test_filters_that_select_nothing_by_mistake_are_a_422(
    client: TestClient, keys: dict[str, str], path: str, field: str
) -> None:
    res = client.get(path, headers=rh(keys))
    assert res.status_code == 422, res.text
    assert res.json()["field"] == field


def test_etag_and_304(client: TestClient, keys: dict[str, str]) -> None:
    first = client.get("/themes", headers=rh(keys))
    etag = first.headers["etag"]
    assert "max-age" in first.headers["cache-control"]
    again = client.get("/themes", headers={**rh(keys), "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = client.get("/themes?channel=social", headers={**rh(keys), "If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    for path in ("/themes/livraison", "/topics", "/alerts", "/taxonomy"):
        res = client.get(path, headers=rh(keys))
        cached = client.get(path, headers={**rh(keys), "If-None-Match": res.headers["etag"]})
        assert cached.status_code == 304, path


def test_theme_detail_series(client: TestClient, keys: dict[str, str], seeded: Seeded) -> None:
    data = client.get("/themes/livraison?days=14", headers=rh(keys)).json()
    assert data["id"] == "livraison" and data["label"] == "Livraison"
    assert len(data["series"]) == 14
    assert data["series"][-1]["day"] == LAST_DAY.isoformat()
    assert data["series"][-1]["volume"] == 10  # 9 templated + the known verbatim
    assert data["series"][0]["volume"] == 3  # before the spike week
    assert data["summary"]["spike"]["alert_id"] == seeded.alert_id


def test_unknown_theme_is_404_naming_it(client: TestClient, keys: dict[str, str]) -> None:
    for path in ("/themes/nope", "/themes/nope/verbatims"):
        res = client.get(path, headers=rh(keys))
        assert res.status_code == 404
        assert res.json() == {"detail": "unknown theme 'nope'", "field": "theme_id"}


# --- verbatims ------------------------------------------------------------------------------


def test_verbatims_masked_text_evidence_and_pagination(
    client: TestClient, keys: dict[str, str], seeded: Seeded
) -> None:
    first = client.get("/themes/livraison/verbatims?limit=5", headers=rh(keys)).json()
    top = first["items"][0]
    assert top["text"] == KNOWN_TEXT
    assert top["evidence"]["text"] == KNOWN_EVIDENCE
    assert top["text"][top["evidence"]["start"] : top["evidence"]["end"]] == KNOWN_EVIDENCE
    assert top["created_at"].endswith(("Z", "+00:00"))
    seen = [i["feedback_id"] for i in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(
            f"/themes/livraison/verbatims?limit=50&cursor={cursor}", headers=rh(keys)
        ).json()
        seen += [i["feedback_id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 28 * 3 + 6 * 7 + 1  # all livraison mentions, once


def test_verbatims_filters(client: TestClient, keys: dict[str, str]) -> None:
    neg = client.get("/themes/livraison/verbatims?polarity=negative&limit=200", headers=rh(keys))
    assert {i["polarity"] for i in neg.json()["items"]} == {"negative"}
    pos = client.get("/themes/livraison/verbatims?polarity=positive&limit=200", headers=rh(keys))
    assert {i["polarity"] for i in pos.json()["items"]} == {"positive"}
    severe = client.get("/themes/prix/verbatims?severity_min=0.5&limit=200", headers=rh(keys))
    assert {i["severity"] >= 0.5 for i in severe.json()["items"]} == {True}
    social = client.get("/themes/prix/verbatims?channel=social&limit=200", headers=rh(keys))
    assert {i["channel"] for i in social.json()["items"]} == {"social"}
    for query, field in (
        ("polarity=bad", "polarity"),
        ("severity_min=2", "severity_min"),
        ("limit=0", "limit"),
        ("cursor=%%%", "cursor"),
        # An id beyond a database integer: a 422, not an overflow (found by schemathesis).
        ("cursor=MjAyNi0wMS0wMXw5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk", "cursor"),
        # 2026-01-01|2147483648: past PostgreSQL's 32-bit INTEGER ids (a 500 there).
        ("cursor=MjAyNi0wMS0wMXwyMTQ3NDgzNjQ4", "cursor"),
    ):
        res = client.get(f"/themes/prix/verbatims?{query}", headers=rh(keys))
        assert res.status_code == 422, query
        assert res.json()["field"] == field
    # NaN was refused as « Input should be less than or equal to 1 » (NaN fails every bound).
    for value in ("nan", "NaN", "inf"):
        res = client.get(f"/themes/prix/verbatims?severity_min={value}", headers=rh(keys))
        assert res.status_code == 422, value
        assert res.json()["detail"] == "severity_min: Input should be a finite number", value


# One day's verbatims out of order three ways: times, verbatim ids (ingest order) and
# mention ids (analysis order) disagree, three share one time.
SAME_DAY = FIRST_DAY - timedelta(days=10)
SAME_DAY_TIMES = (time(9), time(18), time(12), time(12), time(23, 59), time(0), time(12))


def _same_day_verbatims(sessions: sessionmaker[Session]) -> list[int]:
    """Livraison verbatims of SAME_DAY, their ids newest first (by time, then id)."""
    with session_scope(sessions) as session:
        rows = []
        for i, at in enumerate(SAME_DAY_TIMES):
            created = datetime.combine(SAME_DAY, at, tzinfo=UTC)
            fb = Feedback(
                source="tests",
                channel="review",
                external_id=f"same{i}",
                dedup_key=f"id:same{i}",
                created_at=created,
                ingested_at=created,
                text=f"Livraison en retard, commande {i}.",
                language="fr",
                is_french=True,
                content_hash=f"same{i}".ljust(64, "0"),
                meta={},
                analyzed=True,
            )
            session.add(fb)
            session.flush()
            rows.append((created, fb.id))
        for created, fid in reversed(rows):  # analysed last to first: mention ids reversed
            analysis = Analysis(
                feedback_id=fid,
                model_version="seed",
                sentiment="negative",
                sentiment_score=0.9,
                severity=0.8,
                analyzed_at=created,
            )
            analysis.mentions.append(
                ThemeMention(
                    feedback_id=fid, theme="livraison", polarity="negative", score=0.9, day=SAME_DAY
                )
            )
            session.add(analysis)
    return [fid for _, fid in sorted(rows, reverse=True)]


def _walk_same_day(client: TestClient, read: str, write: str, expected: list[int]) -> None:
    url = f"/themes/livraison/verbatims?start={SAME_DAY}&end={SAME_DAY}"
    page = client.get(f"{url}&limit=2", headers={"X-API-Key": read}).json()
    seen = [i["feedback_id"] for i in page["items"]]
    # An analyst corrects a verbatim of a later page (a new analysis, new mentions): it
    # stays in its place, read once, as every other.
    res = client.post(
        f"/feedback/{expected[4]}/corrections",
        json={"sentiment": "neutral"},
        headers={"X-API-Key": write},
    )
    assert res.status_code == 201, res.text
    while page["next_cursor"]:
        page = client.get(
            f"{url}&limit=2&cursor={page['next_cursor']}", headers={"X-API-Key": read}
        ).json()
        seen += [i["feedback_id"] for i in page["items"]]
    assert seen == expected
    whole = client.get(f"{url}&limit=200", headers={"X-API-Key": read}).json()["items"]
    assert [i["feedback_id"] for i in whole] == expected
    times = [i["created_at"] for i in whole]
    assert times == sorted(times, reverse=True)
    csv = client.get(f"{url}&format=csv", headers={"X-API-Key": read}).text
    assert [line.split(",")[0] for line in csv.splitlines()[1:]] == [str(i) for i in expected]


def test_verbatims_of_one_day_are_newest_first_page_after_page(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """Within a day the list followed the mention ids (the analysis order): 00:00 above
    23:59, and a verbatim corrected while an analyst paged jumped to the top of its day,
    skipped by the next pages. By time, then verbatim id, then mention id."""
    _walk_same_day(client, keys["read"], keys["write"], _same_day_verbatims(sessions))
    for cursor in (
        "2026-01-01|5",  # an earlier version's
        "2026-01-01|2026-01-01T10:00:00+00:00|1|2147483648",  # past a database integer
        "2026-01-01|2026-01-01T10:00:00|1|2",  # no offset
        "9999-12-31|9999-12-31T23:59:59-23:59|1|2",  # past year 9999 in UTC
    ):
        token = base64.urlsafe_b64encode(cursor.encode()).decode()
        res = client.get(f"/themes/livraison/verbatims?cursor={token}", headers=rh(keys))
        assert res.status_code == 422 and res.json()["field"] == "cursor", cursor


def test_verbatims_of_one_day_are_newest_first_page_after_page_postgres(
    settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    seed(pg_sessions)
    with session_scope(pg_sessions) as session:
        _, read = create_key(session, "lecture", "read")
        _, write = create_key(session, "ecriture", "write")
    expected = _same_day_verbatims(pg_sessions)
    client = TestClient(create_app(settings, engine=pg_sessions.kw["bind"]))
    _walk_same_day(client, read, write, expected)


# --- topics / alerts ------------------------------------------------------------------------


def test_topics(client: TestClient, keys: dict[str, str]) -> None:
    all_ = client.get("/topics", headers=rh(keys)).json()
    assert all_["total"] == 2 and all_["items"][0]["is_emerging"] is True
    emerging = client.get("/topics?emerging=true", headers=rh(keys)).json()
    assert [t["label"] for t in emerging["items"]] == ["retard colis transporteur"]
    assert client.get("/topics?emerging=false", headers=rh(keys)).json()["total"] == 1
    assert client.get("/topics?limit=1&offset=1", headers=rh(keys)).json()["items"][0]["size"] == 12


def test_topics_carry_their_daily_sizes(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    from datetime import date

    from sqlalchemy import select

    from core.models import Feedback, Topic, TopicAssignment

    with sessions() as s:
        topic = s.execute(select(Topic).where(Topic.label == "carton trop grand")).scalar_one()
        ids = s.execute(select(Feedback.id).order_by(Feedback.id).limit(5)).scalars().all()
        days = [
            date(2026, 3, 1),
            date(2026, 3, 1),
            date(2026, 3, 3),
            date(2026, 3, 3),
            date(2026, 3, 3),
        ]
        s.add_all(
            [
                TopicAssignment(feedback_id=f, topic_id=topic.id, day=d)
                for f, d in zip(ids, days, strict=True)
            ]
        )
        s.commit()
    items = client.get("/topics?emerging=false", headers=rh(keys)).json()["items"]
    assert items[0]["trend"] == [
        {"day": "2026-03-01", "count": 2},
        {"day": "2026-03-03", "count": 3},
    ]
    recent = client.get("/topics?emerging=false&trend_days=1", headers=rh(keys)).json()
    assert recent["items"][0]["trend"] == [{"day": "2026-03-03", "count": 3}]
    emerging = client.get("/topics?emerging=true", headers=rh(keys)).json()["items"]
    assert emerging[0]["trend"] == []


def test_alerts(client: TestClient, keys: dict[str, str], seeded: Seeded) -> None:
    data = client.get("/alerts", headers=rh(keys)).json()
    assert [a["status"] for a in data["items"]] == ["open", "resolved"]
    opened = client.get("/alerts?status=open", headers=rh(keys)).json()["items"]
    assert [a["id"] for a in opened] == [seeded.alert_id]
    page = client.get("/alerts?limit=1", headers=rh(keys)).json()
    assert page["next_cursor"] is not None
    rest = client.get(f"/alerts?limit=1&cursor={page['next_cursor']}", headers=rh(keys)).json()
    assert rest["items"][0]["theme"] == "prix" and rest["next_cursor"] is None
    assert client.get("/alerts?status=closed", headers=rh(keys)).json()["field"] == "status"
    huge = client.get("/alerts?cursor=" + "9" * 19, headers=rh(keys))  # beyond an integer
    assert huge.status_code == 422 and huge.json()["field"] == "cursor"
    # Past PostgreSQL's 32-bit INTEGER ids: a DataError (500) there.
    int32 = client.get(f"/alerts?cursor={2**31}", headers=rh(keys))
    assert int32.status_code == 422 and int32.json()["field"] == "cursor"


# --- taxonomy -------------------------------------------------------------------------------


def test_taxonomy_rename_and_merge_keep_old_ids(
    client: TestClient, keys: dict[str, str], settings: Settings, engine: Engine, seeded: Seeded
) -> None:
    before = client.get("/taxonomy", headers=rh(keys)).json()
    assert before["version"] == 1 and before["taxonomy"]["name"]
    replica = TestClient(create_app(settings, engine=engine))  # a second API process
    assert replica.get("/taxonomy", headers=rh(keys)).json()["version"] == 1
    ops = {
        "operations": [
            {"op": "rename", "id": "livraison", "new_id": "delivery", "label": "Expédition"},
            {"op": "merge", "source": "emballage", "target": "delivery"},
        ]
    }
    res = client.put("/taxonomy", json=ops, headers=wh(keys))
    assert res.status_code == 200, res.text
    tax = res.json()["taxonomy"]
    assert res.json()["version"] == tax["version"] == 2  # one edit, one version
    assert [h["action"] for h in tax["history"][-2:]] == ["rename", "merge"]
    assert not (settings.data_dir / "taxonomy.yaml").exists()  # the database holds it
    history = client.get("/taxonomy/history", headers=rh(keys)).json()["items"]
    assert [h["version"] for h in history] == [2, 1]
    assert history[0]["author"].startswith("api:") and history[1]["author"] == "seed"
    assert history[0]["summary"] == "renamed livraison -> delivery; merged emballage into delivery"
    # The other replica sees the edit at its next request (version check, no restart).
    assert replica.get("/taxonomy", headers=rh(keys)).json()["version"] == 2
    assert "delivery" in {
        t["id"] for t in replica.get("/themes", headers=rh(keys)).json()["themes"]
    }

    # Old ids resolve to the new theme; stored mentions under the old ids are folded in.
    old = client.get("/themes/livraison", headers=rh(keys)).json()
    assert old["id"] == "delivery" and old["label"] == "Expédition"
    assert set(old["aliases"]) >= {"livraison", "emballage"}
    themes = {t["id"]: t for t in client.get("/themes", headers=rh(keys)).json()["themes"]}
    assert "livraison" not in themes and "emballage" not in themes
    assert themes["delivery"]["volume"] == seeded.livraison_current + 14
    verb = client.get("/themes/emballage/verbatims?limit=1", headers=rh(keys)).json()
    assert verb["theme"] == "delivery"

    # An edit through the replica is seen by the first app; a fresh app loads it too.
    res = replica.put(
        "/taxonomy", json={"operations": [{"op": "retire", "id": "prix"}]}, headers=wh(keys)
    )
    assert res.status_code == 200
    assert client.get("/taxonomy", headers=rh(keys)).json()["version"] == 3
    fresh = TestClient(create_app(settings, engine=engine))
    got = fresh.get("/taxonomy", headers=rh(keys)).json()["taxonomy"]
    assert got["version"] == tax["version"] + 1
    assert "prix" not in {t["id"] for t in fresh.get("/themes", headers=rh(keys)).json()["themes"]}


def test_taxonomy_add_and_full_replace(client: TestClient, keys: dict[str, str]) -> None:
    add = {"operations": [{"op": "add", "theme": {"id": "fidelite", "label": "Fidélité"}}]}
    assert client.put("/taxonomy", json=add, headers=wh(keys)).status_code == 200
    ids = {t["id"] for t in client.get("/themes", headers=rh(keys)).json()["themes"]}
    assert "fidelite" in ids
    full = client.get("/taxonomy", headers=rh(keys)).json()["taxonomy"]
    full["themes"] = [t for t in full["themes"] if t["id"] != "fidelite"]
    full["negative_cues"] = [*full.get("negative_cues", []), r"\bplus jamais\b"]
    res = client.put("/taxonomy", json={"taxonomy": full}, headers=wh(keys))
    assert res.status_code == 200
    assert res.json()["taxonomy"]["history"][-1]["action"] == "update"
    # The document's taxonomy-wide cues are kept (a full replace dropped them).
    kept = client.get("/taxonomy", headers=rh(keys)).json()["taxonomy"]
    assert kept["negative_cues"] == full["negative_cues"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"operations": [{"op": "rename", "id": "inconnu", "new_id": "x"}]}, "operations[0]"),
        (
            {
                "operations": [
                    {"op": "retire", "id": "prix"},
                    {"op": "merge", "source": "prix", "target": "prix"},
                ]
            },
            "operations[1]",
        ),
        ({"operations": [{"op": "rename", "id": "prix", "new_id": "Bad Id"}]}, "operations[0]"),
        ({"operations": [{"op": "explode", "id": "prix"}]}, "operations[0]"),
        (
            {"operations": [{"op": "add", "theme": {"id": "prix", "label": "Doublon"}}]},
            "operations[0]",
        ),
        ({"taxonomy": {"name": "x", "themes": []}}, "taxonomy"),
        ({}, "operations"),
    ],
)
def test_taxonomy_errors_name_the_field(
    client: TestClient, keys: dict[str, str], settings: Settings, body: dict, field: str
) -> None:
    res = client.put("/taxonomy", json=body, headers=wh(keys))
    assert res.status_code == 422, res.text
    assert res.json()["field"].startswith(field)
    assert not (settings.data_dir / "taxonomy.yaml").exists()  # nothing saved


@pytest.mark.parametrize(
    ("theme", "detail"),
    [
        # The audit's write-key request: stored, then every `verbatim detect` crashed.
        (
            {"alerts": {"cooldown_days": 1000000000000, "alpha": 7, "min_volume": -5}},
            "-5 is out of range for min_volume",
        ),
        ({"alerts": {"cooldown_days": 1000000000000}}, "out of range for cooldown_days"),
        ({"alerts": {"alpha": 5}}, "strictly between 0 and 1"),
        ({"alerts": {"cooldown_days": -3}}, "out of range for cooldown_days"),
        ({"alerts": {"alpah": 0.01}}, "unknown key 'alpah' (did you mean 'alpha'?)"),
        ({"seed": ["carte"], "patern": ["x"]}, "unknown key"),
        ({"id": "f" * 65}, "at most 64"),
        ({"team": "t" * 65}, "at most 64"),
        ({"team": ""}, "team is empty"),
    ],
)
def test_taxonomy_put_refuses_what_the_loader_refuses(
    client: TestClient, keys: dict[str, str], theme: dict, detail: str
) -> None:
    """Both forms of PUT /taxonomy (an `add` operation, a full document) answer 422 with the
    loader's message, and store nothing."""
    before = client.get("/taxonomy", headers=rh(keys)).json()
    bad = {"id": "fidelite", "label": "Fidélité", "seeds": ["carte"], **theme}
    add = client.put(
        "/taxonomy", json={"operations": [{"op": "add", "theme": bad}]}, headers=wh(keys)
    )
    assert add.status_code == 422, add.text
    assert add.json()["field"] == "operations[0]" and detail in add.json()["detail"], add.text
    full = {**before["taxonomy"], "themes": [*before["taxonomy"]["themes"], bad]}
    res = client.put("/taxonomy", json={"taxonomy": full}, headers=wh(keys))
    assert res.status_code == 422, res.text
    assert res.json()["field"] == "taxonomy" and detail in res.json()["detail"], res.text
    assert client.get("/taxonomy", headers=rh(keys)).json()["version"] == before["version"]


def test_taxonomy_put_refuses_unknown_top_level_keys(
    client: TestClient, keys: dict[str, str]
) -> None:
    full = client.get("/taxonomy", headers=rh(keys)).json()["taxonomy"]
    res = client.put("/taxonomy", json={"taxonomy": {**full, "themse": []}}, headers=wh(keys))
    assert res.status_code == 422 and "unknown key 'themse'" in res.json()["detail"], res.text


def test_taxonomy_patterns_cannot_freeze_the_server(
    client: TestClient, keys: dict[str, str]
) -> None:
    """The audit's ReDoS: `(a+)+$` through PUT /taxonomy then a 27+ character /analyze. User
    patterns run on RE2 (linear time); what RE2 cannot run is refused with a 422."""
    import threading
    import time

    lookahead = {
        "operations": [
            {"op": "add", "theme": {"id": "lent", "label": "Lent", "patterns": ["(?:a+)+(?=!)"]}}
        ]
    }
    res = client.put("/taxonomy", json=lookahead, headers=wh(keys))
    assert res.status_code == 422 and "linear-time" in res.json()["detail"], res.text
    assert res.json()["field"] == "operations[0]"

    evil = {
        "operations": [
            {"op": "add", "theme": {"id": "redos", "label": "ReDoS", "patterns": ["(a+)+$"]}}
        ]
    }
    assert client.put("/taxonomy", json=evil, headers=wh(keys)).status_code == 200
    results: dict[str, int] = {}

    def analyze() -> None:
        body = {"items": [{"text": "a" * 40 + "!"}]}
        results["analyze"] = client.post("/analyze", json=body, headers=wh(keys)).status_code

    worker = threading.Thread(target=analyze)
    start = time.perf_counter()
    worker.start()
    results["health"] = client.get("/health").status_code
    worker.join(timeout=120)
    # Generous bound: with a backtracking engine this input takes hours.
    assert not worker.is_alive() and time.perf_counter() - start < 120
    assert results == {"analyze": 200, "health": 200}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "PUT",
            "/taxonomy",
            '{"operations": [{"op": "add", "theme": {"id": "x", "label": "L \\ud800"}}]}',
            "operations[0].theme.label",
        ),
        (
            "POST",
            "/analyze",
            '{"items": [{"text": "colis ab\\udfff\\u00eem\\u00e9"}]}',
            "items[0].text",
        ),
        (
            "POST",
            "/feedback",
            '{"source": "s \\ud83d", "items": [{"id": "a", "text": "ok"}]}',
            "source",
        ),
    ],
)
def test_lone_surrogates_are_a_422_not_a_broken_store(
    client: TestClient, keys: dict[str, str], method: str, path: str, body: str, field: str
) -> None:
    """The audit's 500s: JSON may spell a lone UTF-16 surrogate, which cannot be encoded as
    UTF-8. A taxonomy saved with one made every later /taxonomy and /themes a 500."""
    headers = {**wh(keys), "content-type": "application/json"}
    res = client.request(method, path, content=body, headers=headers)
    assert res.status_code == 422, res.text
    assert res.json()["field"] == field and "surrogate" in res.json()["detail"]
    assert client.get("/taxonomy", headers=rh(keys)).status_code == 200
    assert client.get("/themes", headers=rh(keys)).status_code == 200
    # A surrogate pair (an emoji written as two escapes) is text and goes through.
    paired = '{"items": [{"text": "colis perdu \\ud83d\\ude44"}]}'
    res = client.post("/analyze", content=paired, headers=headers)
    assert res.status_code == 200 and "\U0001f644" in res.json()["items"][0]["text"], res.text


@pytest.mark.parametrize(
    "query",
    [
        "start=0001-01-01",
        "end=9999-12-31",
        "start=0001-01-02&days=1",
        "start=1899-12-31",
        "end=3000-01-01",
        "start=2024-01-01&end=3000-01-01",
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/themes",
        "/overview",
        "/drivers",
        "/themes/livraison/trend",
        "/themes/livraison",
        "/themes/livraison/breakdown",
        "/themes/livraison/verbatims",
    ],
)
def test_dates_at_the_calendar_edges_are_a_422(
    client: TestClient, keys: dict[str, str], path: str, query: str
) -> None:
    # Day arithmetic around 0001-01-01 overflowed Python's date: a 500 on every period view.
    # /themes/{id}/verbatims took any day from year 1 to 9999: one bound for every endpoint.
    res = client.get(f"{path}?{query}", headers=rh(keys))
    assert res.status_code == 422, res.text
    field = "end" if "end=" in query else "start"
    assert res.json() == {
        "detail": f"{field}: dates run from 1900-01-01 to 2999-12-31",
        "field": field,
    }
    assert client.get(f"{path}?start=1900-01-01", headers=rh(keys)).status_code == 200
    assert client.get(f"{path}?end=2999-12-31", headers=rh(keys)).status_code == 200


@pytest.mark.parametrize(
    "since", ["0", "86400", "1764979200", "2026-03-01T00:00:00+05:00", "2026-03-01T00:00:00"]
)
def test_corrections_since_is_a_day_as_every_day_parameter(
    client: TestClient, keys: dict[str, str], since: str
) -> None:
    """`/corrections?since=` read a number as a Unix time (`since=0`: 1970-01-01, every
    correction; `since=86400`: 1970-01-02) and a midnight with an offset as that day, zone
    dropped, where every other day parameter (`start`, `end`) takes YYYY-MM-DD only."""
    res = client.get("/corrections", params={"since": since}, headers=rh(keys))
    assert res.status_code == 422, res.text
    assert res.json()["field"] == "since"
    assert res.json()["detail"] == "since: Value error, expected a day as YYYY-MM-DD"
    ok = client.get("/corrections", params={"since": "2026-03-01"}, headers=rh(keys))
    assert ok.status_code == 200, ok.text


# --- /feedback ------------------------------------------------------------------------------


def _count(sessions: sessionmaker[Session], source: str) -> int:
    with sessions() as session:
        return session.execute(
            select(func.count()).select_from(Feedback).where(Feedback.source == source)
        ).scalar_one()


def test_feedback_ratings_are_stored_out_of_5(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """A client posting an internal 0-10 note had « 8/10 » stored as 8 stars out of 5 (and a
    bare 8 too): the dashboard's « x / 5 » came out above what customers gave."""
    items = [
        {"id": "r1", "text": "Colis abîmé", "rating": "8/10"},
        {"id": "r2", "text": "Très bien", "rating": 8},
        {"id": "r3", "text": "Correct", "rating": "80 %"},
        {"id": "r4", "text": "Parfait", "rating": "4,5/5"},
    ]
    res = client.post("/feedback", json={"source": "interne", "items": items}, headers=wh(keys))
    assert res.status_code == 200, res.text
    rows = res.json()["rows"]
    assert [r["status"] for r in rows] == ["stored", "rejected", "stored", "stored"]
    assert rows[1]["field"] == "rating" and "8 is above 5" in rows[1]["reason"], rows[1]
    with sessions() as session:
        ratings = session.scalars(
            select(Feedback.rating).where(Feedback.source == "interne").order_by(Feedback.id)
        ).all()
    assert ratings == [4.0, 4.0, 4.5]


def test_a_float_id_re_posted_is_a_duplicate_also_of_a_row_keyed_before(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """`{"id": 77.0}` (a pandas float column) was keyed `id:77.0`: the same review posted with
    `"id": 77` was stored a second time. Rows stored with that key are still found."""
    items = [{"id": 77.0, "text": "Colis reçu cassé"}, {"id": 78.0, "text": "Livré en retard"}]
    first = client.post("/feedback", json={"source": "b", "items": items}, headers=wh(keys))
    assert first.json()["stored"] == 2, first.text
    with sessions() as session:  # as an earlier version keyed the id 78.0
        row = session.scalars(select(Feedback).where(Feedback.dedup_key == "id:78")).one()
        row.dedup_key = "id:78.0"
        session.commit()
    again = [{"id": 77, "text": "Colis reçu cassé"}, {"id": 78, "text": "Livré en retard"}]
    body = client.post("/feedback", json={"source": "b", "items": again}, headers=wh(keys)).json()
    assert [r["status"] for r in body["rows"]] == ["duplicate", "duplicate"]
    assert body["rows"][1]["feedback_id"] == first.json()["rows"][1]["feedback_id"]
    assert _count(sessions, "b") == 2


def test_feedback_batch_is_idempotent(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    batch = {
        "source": "boutique",
        "channel": "review",
        "items": [
            {
                "id": "a1",
                "text": "Colis reçu cassé, appelez-moi au 06 12 34 56 78",
                "created_at": "2026-03-20",
                "rating": 1,
                "commande": "X42",
            },
            {"text": "Très bon service client 👍", "created_at": "21/03/2026 10:30"},
            {"id": "a3", "text": "   "},
            {"id": "a4", "text": "Parfait", "created_at": "pas une date"},
            {"id": "a1", "text": "Colis reçu cassé (copie)"},
            {"id": "a6", "text": "Site lent", "rating": "12"},
            {"id": "a7", "text": "Bien", "channel": "fax"},
        ],
    }
    res = client.post("/feedback", json=batch, headers=wh(keys))
    assert res.status_code == 200, res.text
    body = res.json()
    statuses = [(r["index"], r["status"], r["field"]) for r in body["rows"]]
    assert statuses == [
        (0, "stored", None),
        (1, "stored", None),
        (2, "rejected", "text"),
        (3, "rejected", "created_at"),
        (4, "duplicate", None),
        (5, "rejected", "rating"),
        (6, "rejected", "channel"),
    ]
    assert body["rows"][3]["reason"].startswith("bad_date")
    assert body["rows"][4]["feedback_id"] == body["rows"][0]["feedback_id"]
    assert (body["stored"], body["duplicates"], body["rejected"]) == (2, 1, 4)
    assert _count(sessions, "boutique") == 2
    with sessions() as session:
        stored = session.get(Feedback, body["rows"][0]["feedback_id"])
        assert stored is not None and "06 12 34 56 78" not in stored.text  # PII masked
        assert stored.meta.get("commande") == "X42"
        assert session.execute(select(func.count()).select_from(Quarantine)).scalar_one() == 4
        run = session.get(IngestionRun, body["run_id"])
        assert run is not None and run.location == "api" and run.status == "done"

    again = client.post("/feedback", json=batch, headers=wh(keys)).json()
    assert [r["status"] for r in again["rows"]] == [
        "duplicate",
        "duplicate",
        "rejected",
        "rejected",
        "duplicate",
        "rejected",
        "rejected",
    ]
    assert again["stored"] == 0
    assert _count(sessions, "boutique") == 2
    with sessions() as session:  # the retried batch's rejected rows are quarantined once
        assert session.execute(select(func.count()).select_from(Quarantine)).scalar_one() == 4


def test_feedback_refuses_a_source_that_is_personal_data(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """The source is answered unmasked everywhere (it names a tool): an e-mail there came
    back in clear from /themes/{id}/verbatims and its CSV."""
    for source in ("jean.dupont@gmail.com", "+33 6 12 34 56 78"):
        body = {"source": source, "items": [{"text": "Colis abîmé"}]}
        res = client.post("/feedback", json=body, headers=wh(keys))
        assert res.status_code == 422 and res.json()["field"] == "source", res.text
        assert "personal data" in res.json()["detail"]
    ok = {"source": "zendesk-2026", "items": [{"text": "Colis abîmé"}]}
    assert client.post("/feedback", json=ok, headers=wh(keys)).status_code == 200
    assert _count(sessions, "jean.dupont@gmail.com") == 0


def test_a_nul_in_a_stored_body_string_never_reaches_the_database(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """PostgreSQL refuses a NUL in text: a source or a note with one was a 500 there (SQLite
    stored it). Texts drop NULs (core.masking.storable_text); the source, an identifier, is a
    422."""
    body = {"source": "zen\x00desk", "items": [{"text": "Colis abîmé"}]}
    res = client.post("/feedback", json=body, headers=wh(keys))
    assert res.status_code == 422 and res.json()["field"] == "source", res.text
    assert "U+0000" in res.json()["detail"]
    ack = client.post("/incidents/1/acknowledge", json={"note": "vu\x00"}, headers=wh(keys))
    assert ack.status_code == 200 and ack.json()["ack_note"] == "vu", ack.text
    with sessions() as session:
        fid = session.execute(select(func.min(Feedback.id))).scalar_one()
    fix = {"sentiment": "positive", "note": "relu\x00"}
    res = client.post(f"/feedback/{fid}/corrections", json=fix, headers=wh(keys))
    assert res.status_code == 201 and res.json()["correction"]["note"] == "relu", res.text


def test_an_unknown_body_key_is_refused_naming_it(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """`{"sentiment": "positive", "themse": [...]}` stored the sentiment alone and answered
    201: the analyst's misspelt theme fix was lost without a word. Every request body (and
    its nested objects) refuses a key it does not know; the rows of POST /feedback keep
    theirs as metadata."""
    with sessions() as session:
        fid = session.execute(select(func.min(Feedback.id))).scalar_one()
    themes = [{"theme": "livraison", "polarity": "negative"}]
    cases = [
        (f"/feedback/{fid}/corrections", {"sentiment": "positive", "themse": themes}, "themse"),
        (
            f"/feedback/{fid}/corrections",
            {"themes": [{**themes[0], "polarite": "positive"}]},
            "themes[0].polarite",
        ),
        ("/incidents/1/acknowledge", {"nte": "vu par le support"}, "nte"),
        ("/incidents/1/resolve", {"note": "ok", "status": "resolved"}, "status"),
        ("/feedback", {"source": "api", "chanel": "social", "items": [{"text": "Bien"}]}, "chanel"),
        ("/analyze", {"items": [{"text": "Bien"}], "lang": "fr"}, "lang"),
    ]
    for path, body, field in cases:
        res = client.post(path, json=body, headers=wh(keys))
        assert res.status_code == 422, (path, res.text)
        assert res.json()["field"] == field, res.text
        assert res.json()["detail"].startswith(f"{field}: unknown key"), res.text
    rename = {"operations": [{"op": "rename", "id": "livraison", "new_id": "x", "lable": "X"}]}
    res = client.put("/taxonomy", json=rename, headers=wh(keys))
    assert res.status_code == 422 and res.json()["field"] == "operations[0].rename.lable", res.text
    with sessions() as session:  # nothing was stored by the refused correction
        from core.models import Correction

        assert session.scalar(select(func.count()).select_from(Correction)) == 0
    # Row keys stay metadata, as documented.
    body = {"source": "api", "items": [{"text": "Très bien", "magasin": "Lyon"}]}
    res = client.post("/feedback", json=body, headers=wh(keys))
    assert res.status_code == 200 and res.json()["stored"] == 1, res.text


def test_an_unreadable_body_names_its_cause(client: TestClient, keys: dict[str, str]) -> None:
    """A body FastAPI could not decode got its generic 400 "There was an error parsing the
    body", then one catch-all message ("send uncompressed JSON ... nested at most 32
    levels") whatever the cause, while malformed JSON was a 422. Each cause is named now,
    with the 422 of malformed JSON."""
    import gzip
    import json

    body = json.dumps({"source": "x", "items": [{"text": "Bien"}]}).encode()
    headers = {**wh(keys), "Content-Type": "application/json"}
    latin1 = json.dumps({"source": "x", "items": [{"text": "Très bien"}]}, ensure_ascii=False)
    cases = [
        (gzip.compress(body), {"Content-Encoding": "gzip"}, "compressed (Content-Encoding 'gzip')"),
        (gzip.compress(body), {}, "compressed (gzip data)"),
        (latin1.encode("latin-1"), {}, "not UTF-8 (byte 0xe8 at offset 38)"),
        (b'{"source": "x", "items": [{"text": "\xff"}]}', {}, "not UTF-8 (byte 0xff"),
        (b'{"source": "x", "items": [{"n": ' + b"9" * 5000 + b"}]}", {}, "4300 digits"),
        (b"[" * 5000 + b"]" * 5000, {}, "nested too deep"),
    ]
    for content, extra, cause in cases:
        res = client.post("/feedback", content=content, headers={**headers, **extra})
        assert res.status_code == 422 and res.json()["field"] == "body", res.text
        assert cause in res.json()["detail"], res.text
        assert "nested at most 32" not in res.json()["detail"]
    for path in ("/feedback/1/corrections", "/incidents/1/resolve"):  # every body, every route
        res = client.post(path, content=latin1.encode("latin-1"), headers=headers)
        assert res.status_code == 422 and "not UTF-8" in res.json()["detail"], res.text
    res = client.put("/taxonomy", content=b'{"operations": ' + b"1" * 4400 + b"}", headers=headers)
    assert res.status_code == 422 and "digits" in res.json()["detail"], res.text
    # Malformed JSON: the same status, and still FastAPI's position of the error.
    broken = client.post("/feedback", content=b'{"source": ', headers=headers)
    assert broken.status_code == 422 and broken.json()["field"] == "body", broken.text
    # Well-formed UTF-8 with a BOM is read.
    ok = client.post("/feedback", content=b"\xef\xbb\xbf" + body, headers=headers)
    assert ok.status_code == 200, ok.text


def test_malformed_json_names_the_body_in_every_error_entry(
    client: TestClient, keys: dict[str, str]
) -> None:
    """A JSON syntax error answered `field: "body"` but `errors[0].field: "[10]"` (FastAPI's
    character offset): the two must agree; the offset is said in the message."""
    headers = {**wh(keys), "Content-Type": "application/json"}
    for path in ("/feedback", "/feedback/1/corrections", "/incidents/1/resolve"):
        res = client.post(path, content=b'{"source": }', headers=headers)
        assert res.status_code == 422, res.text
        data = res.json()
        assert data["field"] == "body"
        assert [e["field"] for e in data["errors"]] == ["body"], data
        assert data["errors"][0]["type"] == "json_invalid"
        assert "Expecting value at character 11" in data["detail"], data
        assert data["detail"] == f"body: {data['errors'][0]['message']}"


def test_feedback_rejects_a_row_with_a_lone_surrogate_alone(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """One row with "\\ud800" made the whole batch a 422 (rows 0 and 2 lost); the README
    promises per-row status, as for a list-typed text."""
    body = (
        '{"source": "sur", "items": ['
        '{"id": "a", "text": "premier avis"},'
        '{"id": "b", "text": "bad \\ud800"},'
        '{"id": "c", "text": "troisième avis"},'
        '{"id": "d", "text": "ok", "extra": {"\\ud83d": 1}},'
        '{"id": "e", "text": ["une", "liste"]},'
        '{"id": {"x": 1}, "text": "un avis"},'
        '{"id": "g", "customer": ["a"], "text": "un autre avis"}]}'
    )
    headers = {**wh(keys), "content-type": "application/json"}
    res = client.post("/feedback", content=body, headers=headers)
    assert res.status_code == 200, res.text
    out = res.json()
    assert [(r["status"], r["field"]) for r in out["rows"]] == [
        ("stored", None),
        ("rejected", "text"),
        ("stored", None),
        ("rejected", "extra"),
        ("rejected", "text"),
        ("rejected", "id"),  # was stored with the id "{'x': 1}"
        ("rejected", "customer"),
    ]
    assert out["rows"][1]["reason"].startswith("encoding_error")
    assert out["rows"][3]["reason"].startswith("encoding_error")
    assert out["rows"][5]["reason"].startswith("bad_id: id must be a string or a number")
    assert (out["stored"], out["duplicates"], out["rejected"]) == (2, 0, 5)
    assert _count(sessions, "sur") == 2
    with sessions() as session:
        reasons = session.scalars(select(Quarantine.reason).where(Quarantine.source == "sur"))
        assert sorted(r.split(":")[0] for r in reasons) == [
            "bad_customer",
            "bad_id",
            "bad_text",
            "encoding_error",
            "encoding_error",
        ]


def test_feedback_refuses_a_true_or_false_id_or_customer(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """A form's checkbox mapped to `id` (`"id": true`) stored the first row under the id
    "True" and answered every later row `duplicate` of it: a batch of different complaints
    kept one. A true/false `id` or `customer` is rejected as an object or a list is."""
    body = {
        "source": "bools",
        "items": [
            {"id": True, "text": "Colis jamais reçu"},
            {"id": True, "text": "Remboursement toujours en attente"},
            {"id": False, "text": "Très bon accueil en boutique"},
            {"id": "4", "customer": True, "text": "Appli lente"},
            {"id": 5, "text": "Livraison rapide"},
        ],
    }
    res = client.post("/feedback", json=body, headers=wh(keys))
    assert res.status_code == 200, res.text
    out = res.json()
    assert [(r["status"], r["field"]) for r in out["rows"]] == [
        ("rejected", "id"),
        ("rejected", "id"),
        ("rejected", "id"),
        ("rejected", "customer"),
        ("stored", None),
    ]
    assert out["rows"][0]["reason"] == "bad_id: id must be a string or a number, not true"
    assert out["rows"][2]["reason"] == "bad_id: id must be a string or a number, not false"
    assert (out["stored"], out["duplicates"], out["rejected"]) == (1, 0, 4)
    assert _count(sessions, "bools") == 1


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_feedback_deeply_nested_rows_are_rejected_per_row(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """500 levels in an extra field was a 500 (RecursionError masking it)."""
    items = [
        {"id": "a", "text": "premier"},
        {"id": "b", "text": "profond", "meta": _nested(500)},
        {"id": "c", "text": "limite", "meta": _nested(32)},
        {"id": "d", "text": "identifiant profond", "customer": _nested(900)},
    ]
    body = {"source": "deep", "items": items}
    res = client.post("/feedback", json=body, headers=wh(keys))
    assert res.status_code == 200, res.text
    out = res.json()
    assert [(r["status"], r["field"]) for r in out["rows"]] == [
        ("stored", None),
        ("rejected", "meta"),
        ("stored", None),
        ("rejected", "customer"),
    ]
    assert out["rows"][1]["reason"].startswith("too_deep")
    assert (out["stored"], out["rejected"]) == (2, 2)
    assert _count(sessions, "deep") == 2
    # Deeper than the JSON parser goes: a clear 4xx, not a 500.
    raw = '{"source": "deep", "items": [{"text": "x", "m": ' + "[" * 5000 + "]" * 5000 + "}]}"
    res = client.post(
        "/feedback", content=raw, headers={**wh(keys), "content-type": "application/json"}
    )
    assert 400 <= res.status_code < 500, res.text


def test_feedback_masks_metadata_keys_and_rejection_reasons(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    iban = "FR76 3000 6000 0112 3456 7890 189"
    items = [
        {
            "id": "k",
            "text": "Très bien",
            "marie.curie@orange.fr": "ok",
            "contact": {"jean.dupont@gmail.com": "06 12 34 56 78"},
        },
        {"id": "c", "text": "ok", "channel": f"ab {iban}"},
    ]
    res = client.post("/feedback", json={"source": "keys", "items": items}, headers=wh(keys))
    assert res.status_code == 200, res.text
    rows = res.json()["rows"]
    assert rows[0]["status"] == "stored"
    reason = rows[1]["reason"]
    assert reason.startswith("bad_channel") and "<IBAN>" in reason and "3000" not in reason
    with sessions() as session:
        stored = session.get(Feedback, rows[0]["feedback_id"])
        assert stored is not None
        dumped = str(stored.meta)
        assert "@" not in dumped and "curie" not in dumped and "dupont" not in dumped, dumped
        assert stored.meta["<EMAIL>"] == "ok"
        quarantined = session.scalars(select(Quarantine.reason).where(Quarantine.source == "keys"))
        assert all("3000" not in r and "<IBAN>" in r for r in quarantined)


def test_analyze_masks_echoed_keys_and_refuses_deep_fields(
    client: TestClient, keys: dict[str, str]
) -> None:
    item = {
        "id": 1,
        "text": "Colis en retard",
        "marie.curie@orange.fr": "ok",
        "client": {"jean.dupont@gmail.com": "06 12 34 56 78"},
    }
    res = client.post("/analyze", json={"items": [item]}, headers=wh(keys))
    assert res.status_code == 200, res.text
    echoed = res.json()["items"][0]
    assert "@" not in str(echoed) and "06 12" not in str(echoed), echoed
    assert echoed["<EMAIL>"] == "ok" and echoed["client"] == {"<EMAIL>": "<PHONE>"}
    deep = {"items": [{"text": "ok"}, {"text": "profond", "meta": _nested(300)}]}
    res = client.post("/analyze", json=deep, headers=wh(keys))
    assert res.status_code == 422, res.text
    assert res.json()["field"] == "items[1]" and "nested" in res.json()["detail"]


def test_feedback_limits(settings: Settings, engine: Engine, keys: dict[str, str]) -> None:
    small = settings.model_copy(update={"max_batch_rows": 3, "max_body_bytes": 2_000})
    client = TestClient(create_app(small, engine=engine))
    rows = [{"text": f"avis {i}"} for i in range(4)]
    res = client.post("/feedback", json={"source": "s", "items": rows}, headers=wh(keys))
    assert res.status_code == 413
    assert res.json() == {"detail": "batch of 4 rows exceeds max_batch_rows=3", "field": "items"}
    big = {"source": "s", "items": [{"text": "x" * 3_000}]}
    res = client.post("/feedback", json=big, headers=wh(keys))
    assert res.status_code == 413 and res.json()["field"] == "body"

    # A chunked body with no Content-Length is counted as it streams.
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 500

    res = client.post(
        "/feedback", content=chunks(), headers={**wh(keys), "Content-Type": "application/json"}
    )
    assert res.status_code == 413


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": [{"text": "a"}]}, "source"),
        ({"source": "", "items": [{"text": "a"}]}, "source"),
        ({"source": "s", "channel": "fax", "items": [{"text": "a"}]}, "channel"),
        ({"source": "s", "items": "nope"}, "items"),
        ({"source": "s", "items": [1]}, "items[0]"),
        ({"source": "s", "items": []}, "items"),
    ],
)
def test_feedback_validation_names_the_field(
    client: TestClient, keys: dict[str, str], body: dict, field: str
) -> None:
    res = client.post("/feedback", json=body, headers=wh(keys))
    assert res.status_code == 422, res.text
    assert res.json()["field"] == field


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/themes/liv%00raison", "theme_id"),
        ("/themes/livraison/verbatims?source=a%00b", "source"),
        ("/themes/livraison/verbatims?format=csv&language=f%00", "language"),
        ("/alerts?theme=a%00b", "theme"),
        ("/incidents?theme=a%00b", "theme"),
    ],
)
def test_a_nul_in_a_parameter_is_a_422(
    client: TestClient, keys: dict[str, str], path: str, field: str
) -> None:
    """PostgreSQL refuses a NUL in any text comparison: these were 500s there."""
    res = client.get(path, headers=rh(keys))
    assert res.status_code == 422, res.text
    assert res.json()["field"] == field and "U+0000" in res.json()["detail"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/themes?start=2026-03-01&end=2026-03-28&start=2026-03-20", "start"),
        ("/themes?channel=review&channel=social", "channel"),
        ("/overview?source=demo&source=demo", "source"),
        ("/themes/livraison/verbatims?polarity=negative&polarity=positive", "polarity"),
        ("/themes/livraison/verbatims?format=csv&language=fr&language=en", "language"),
        ("/alerts?status=open&status=resolved", "status"),
        ("/incidents?limit=1&limit=50", "limit"),
    ],
)
def test_a_parameter_given_twice_is_a_422(
    client: TestClient, keys: dict[str, str], path: str, field: str
) -> None:
    """`?channel=review&channel=social` answered the social channel's figures alone (the
    last value won), read as the two channels' total; `start` given twice took the second
    day without a word. Every parameter takes one value: a repeated one is a 422 naming it."""
    res = client.get(path, headers=rh(keys))
    assert res.status_code == 422, res.text
    assert res.json()["field"] == field
    assert res.json()["detail"] == f"{field}: given 2 times; send it once"
    # A parameter the endpoint does not read is still ignored, repeated or not.
    assert client.get("/themes?x=1&x=2", headers=rh(keys)).status_code == 200


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/csv", None])
def test_a_body_not_sent_as_json_names_the_content_type(
    client: TestClient, keys: dict[str, str], content_type: str | None
) -> None:
    """JSON sent as a form (curl -d), CSV or without a Content-Type was answered "body: Input
    should be a valid dictionary", the body being one: the field at fault is the header."""
    body = b'{"source": "s", "items": [{"text": "Bien"}]}'
    headers = {**wh(keys), "Content-Type": content_type or ""}
    for path in ("/feedback", "/incidents/1/acknowledge"):
        res = client.post(path, content=body, headers=headers)
        assert res.status_code == 422, res.text
        assert res.json()["field"] == "Content-Type"
        assert "Content-Type: application/json" in res.json()["detail"]


def test_invalid_json_body(client: TestClient, keys: dict[str, str]) -> None:
    res = client.post(
        "/feedback", content=b"{not json", headers={**wh(keys), "Content-Type": "application/json"}
    )
    assert res.status_code == 422 and res.json()["field"] == "body"


# --- /analyze -------------------------------------------------------------------------------


def test_analyze_a_text_left_empty_by_masking_is_neutral(
    client: TestClient, keys: dict[str, str]
) -> None:
    # Masked first (« <EMAIL> »), then nothing to judge: it was positive with a high score.
    items = [{"text": "jean.dupont@gmail.com"}, {"text": "👍"}]
    res = client.post("/analyze", json={"items": items}, headers=wh(keys))
    assert res.status_code == 200, res.text
    empty, emoji = res.json()["items"]
    assert empty["text"] == "<EMAIL>" and empty["themes"] == [] and empty["severity"] == 0.0
    assert empty["sentiment"]["label"] == "neutral" and empty["sentiment"]["no_content"] is True
    assert emoji["sentiment"]["label"] == "positive" and "no_content" not in emoji["sentiment"]


@pytest.mark.slow
def test_analyze_matches_the_cli_record_format(client: TestClient, keys: dict[str, str]) -> None:
    items = [
        {"id": 1, "text": "Livraison en retard de deux semaines, colis jamais arrivé !"},
        {"id": "b", "text": "Super produit, je recommande.", "stars": 5},
    ]
    res = client.post("/analyze", json={"items": items}, headers=wh(keys))
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["model_version"]
    first, second = body["items"]
    assert first["id"] == 1 and second["stars"] == 5  # input fields echoed
    for rec in (first, second):
        assert rec["sentiment"]["label"] in {"negative", "neutral", "positive"}
        assert 0.0 <= rec["sentiment"]["score"] <= 1.0
        assert all({"id", "polarity", "score"} <= set(t) for t in rec["themes"])
    assert first["sentiment"]["label"] == "negative"
    assert "livraison" in {t["id"] for t in first["themes"]}
    # Same analyzer object reused across requests.
    analyzer = client.app.state.verbatim.analyzer  # type: ignore[attr-defined]
    client.post("/analyze", json={"items": [{"text": "Bof"}]}, headers=wh(keys))
    assert client.app.state.verbatim.analyzer is analyzer  # type: ignore[attr-defined]
    bad = client.post("/analyze", json={"items": [{"text": 3}]}, headers=wh(keys))
    assert bad.status_code == 422 and bad.json()["field"] == "items[0].text"


# --- metrics / CORS -------------------------------------------------------------------------


def test_metrics_prometheus_format(
    client: TestClient, keys: dict[str, str], seeded: Seeded
) -> None:
    client.get("/themes", headers=rh(keys))
    client.get("/themes/nope", headers=rh(keys))
    client.post("/feedback", json={"source": "m", "items": [{"text": "Nickel"}]}, headers=wh(keys))
    res = client.get("/metrics")
    assert res.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(res.text)}
    requests = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["verbatim_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("/themes", "200")] == 1
    assert requests[("/themes/{theme_id}", "404")] == 1
    assert "verbatim_http_request_duration_seconds" in families
    stored = families["verbatim_feedback_stored"].samples[0].value
    assert stored == seeded.feedback + 1
    rows = {
        s.labels["status"]: s.value
        for s in families["verbatim_api_feedback_rows"].samples
        if s.name.endswith("_total")
    }
    assert rows["stored"] == 1


def test_cors_from_settings(settings: Settings, engine: Engine, keys: dict[str, str]) -> None:
    cors = settings.model_copy(update={"cors_origins": ["http://intranet.local"]})
    client = TestClient(create_app(cors, engine=engine))
    res = client.options(
        "/themes",
        headers={
            "Origin": "http://intranet.local",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key",
        },
    )
    assert res.headers["access-control-allow-origin"] == "http://intranet.local"
    other = client.get("/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_cors_origins_are_read_as_the_browser_sends_them(
    settings: Settings, engine: Engine
) -> None:
    """`https://Intranet.local/` (copied from the address bar) matched no request: every
    preflight a 400 "Disallowed CORS origin"; a bare host name was accepted and never matched."""
    from pydantic import ValidationError

    origins = Settings(cors_origins=["http://Intranet.local/", "*"]).cors_origins
    assert origins == ["http://intranet.local", "*"]
    cors = settings.model_copy(update={"cors_origins": origins[:1]})
    client = TestClient(create_app(cors, engine=engine))
    res = client.options(
        "/themes",
        headers={"Origin": "http://intranet.local", "Access-Control-Request-Method": "GET"},
    )
    assert res.status_code == 200 and res.headers["access-control-allow-origin"] == (
        "http://intranet.local"
    )
    for bad in ("intranet.local", "http://intranet.local/dashboard"):
        with pytest.raises(ValidationError, match="is not an origin: scheme://host"):
            Settings(cors_origins=[bad])


def test_cors_allows_the_conditional_requests(
    settings: Settings, engine: Engine, keys: dict[str, str]
) -> None:
    """`If-Match` was not an allowed header: a browser on another origin could not make the
    documented conditional `PUT /taxonomy` (its preflight failed). The ETag it sends back
    must be readable, and `If-None-Match` allowed, for the 304s."""
    cors = settings.model_copy(update={"cors_origins": ["http://intranet.local"]})
    client = TestClient(create_app(cors, engine=engine))
    origin = {"Origin": "http://intranet.local"}
    for method, path, header in (
        ("PUT", "/taxonomy", "x-api-key, content-type, if-match"),
        ("GET", "/themes", "x-api-key, if-none-match, cache-control"),
        ("DELETE", "/feedback/1", "x-api-key"),  # the erasure: was refused at preflight
    ):
        res = client.options(
            path,
            headers={
                **origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": header,
            },
        )
        assert res.status_code == 200, (method, res.text)
        allowed = {
            h.strip().lower() for h in res.headers["access-control-allow-headers"].split(",")
        }
        assert set(header.split(", ")) <= allowed, allowed
    got = client.get("/taxonomy", headers={**origin, **rh(keys)})
    exposed = {h.strip().lower() for h in got.headers["access-control-expose-headers"].split(",")}
    assert "etag" in exposed and got.headers["etag"]
    edit = {"operations": [{"op": "add", "theme": {"id": "fidelite", "label": "Fidélité"}}]}
    put = client.put("/taxonomy", json=edit, headers={**origin, **wh(keys), "If-Match": "nope"})
    assert put.status_code == 412 and put.headers["access-control-allow-origin"] == origin["Origin"]


# --- CLI ------------------------------------------------------------------------------------


def test_apikey_cli(settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    runner = CliRunner()
    created = runner.invoke(app, ["apikey", "create", "grafana", "--scope", "write"])
    assert created.exit_code == 0, created.output
    token = created.output.split("token (shown once, keep it safe): ")[1].split()[0]
    listed = runner.invoke(app, ["apikey", "list"])
    assert "grafana" in listed.output and "read,write" in listed.output
    assert token not in listed.output
    client = TestClient(create_app(settings, engine=engine))
    ok = client.post(
        "/feedback",
        json={"source": "cli", "items": [{"text": "Bien reçu"}]},
        headers={"X-API-Key": token},
    )
    assert ok.status_code == 200
    key_id = listed.output.split("\t")[0].strip()
    assert runner.invoke(app, ["apikey", "revoke", key_id]).exit_code == 0
    assert client.get("/themes", headers={"X-API-Key": token}).status_code == 401
    assert runner.invoke(app, ["apikey", "revoke", key_id]).exit_code == 1
    bad = runner.invoke(app, ["apikey", "create", "x", "--scope", "admin"])
    assert bad.exit_code == 2 and "scope" in bad.output


def test_apikey_revoke_of_an_id_out_of_range_is_no_such_key(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An id past the column's range was an OverflowError traceback (SQLite, from 2**63)."""
    from typer.testing import CliRunner

    from verbatim_cli import app

    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    res = CliRunner().invoke(app, ["apikey", "revoke", str(2**64)])
    assert res.exit_code == 1, (res.output, res.exception)
    assert res.stderr.strip() == f"error: no active API key with id {2**64}"


@pytest.mark.postgres
def test_revoke_key_of_an_id_out_of_range_on_postgresql(
    pg_sessions: sessionmaker[Session],
) -> None:
    """PostgreSQL's INTEGER ends at 2**31 - 1: `apikey revoke 9999999999` was a DataError."""
    with pg_sessions() as session:
        assert not revoke_key(session, 9_999_999_999)
        assert not revoke_key(session, 0)


def test_empty_database(settings: Settings, engine: Engine) -> None:
    client = TestClient(
        create_app(settings.model_copy(update={"dashboard_read_without_key": True}), engine=engine),
        base_url="http://127.0.0.1",
    )
    data = client.get("/themes").json()
    assert data["total_volume"] == 0 and all(t["volume"] == 0 for t in data["themes"])
    assert all(t["trend"] == [0] * 7 for t in data["themes"])
    assert len(client.get("/themes/prix").json()["series"]) == 30
    assert client.get("/themes/prix/verbatims").json() == {
        "theme": "prix",
        "label": "Prix",
        "items": [],
        "next_cursor": None,
    }
    assert client.get("/alerts").json()["items"] == []
    assert client.get("/topics").json()["total"] == 0


def test_retired_theme_is_hidden_from_list_but_resolvable(
    client: TestClient, keys: dict[str, str]
) -> None:
    res = client.put(
        "/taxonomy", json={"operations": [{"op": "retire", "id": "prix"}]}, headers=wh(keys)
    )
    assert res.status_code == 200
    ids = {t["id"] for t in client.get("/themes", headers=rh(keys)).json()["themes"]}
    assert "prix" not in ids
    detail = client.get("/themes/prix?days=7", headers=rh(keys)).json()
    assert detail["retired"] is True and detail["summary"]["volume"] == 14


def test_theme_removed_from_the_taxonomy_is_listed_nowhere(
    client: TestClient, keys: dict[str, str]
) -> None:
    """A new taxonomy version without a theme (full document) left its stored mentions
    listed by /themes (and its CSV, the drivers) under the bare id, as if still a theme."""
    full = client.get("/taxonomy", headers=rh(keys)).json()["taxonomy"]
    assert "prix" in {t["id"] for t in client.get("/themes", headers=rh(keys)).json()["themes"]}
    full["themes"] = [t for t in full["themes"] if t["id"] != "prix"]
    res = client.put("/taxonomy", json={"taxonomy": full}, headers=wh(keys))
    assert res.status_code == 200
    listing = client.get("/themes", headers=rh(keys)).json()
    assert {t["id"] for t in listing["themes"]} == {t["id"] for t in full["themes"]}
    assert listing["total_volume"] > 0  # the verbatims themselves still count
    csv_ids = [
        line.split(",")[0].lstrip("\ufeff")
        for line in client.get("/themes?format=csv", headers=rh(keys)).text.splitlines()[1:]
    ]
    assert "prix" not in csv_ids and csv_ids[-1] == "*"
    movers = client.get("/overview", headers=rh(keys)).json()["top_movers"]
    assert "prix" not in {m["id"] for m in movers}
    drivers = client.get("/drivers?score=nps&min_mentions=5", headers=rh(keys)).json()
    assert "prix" not in {d["theme"] for d in drivers["drivers"]}
    # Its history stays reachable by id (an old alert's link), as a retired theme's.
    detail = client.get("/themes/prix?days=7", headers=rh(keys)).json()
    assert detail["retired"] is True and detail["label"] == "Prix"
    assert detail["summary"]["volume"] == 14
    for path in ("/themes/prix/verbatims?limit=1", "/themes/prix/trend", "/themes/prix/breakdown"):
        assert client.get(path, headers=rh(keys)).status_code == 200, path
    assert client.get("/themes/nope", headers=rh(keys)).status_code == 404
    # Added back, it is listed again with its history.
    full["themes"].append({"id": "prix", "label": "Prix"})
    assert client.put("/taxonomy", json={"taxonomy": full}, headers=wh(keys)).status_code == 200
    back = {t["id"]: t for t in client.get("/themes", headers=rh(keys)).json()["themes"]}
    assert back["prix"]["label"] == "Prix" and back["prix"]["volume"] == 14


def test_theme_named_like_a_view_gets_its_own_page(
    client: TestClient, keys: dict[str, str]
) -> None:
    """The view cache keyed a theme's page by its id alone: a theme "themes" was answered the
    theme list of the same period (or the list, the theme's page, whichever came first)."""
    add = {"operations": [{"op": "add", "theme": {"id": "themes", "label": "Thèmes"}}]}
    assert client.put("/taxonomy", json=add, headers=wh(keys)).status_code == 200
    period = {"start": str(LAST_DAY - timedelta(days=6)), "end": str(LAST_DAY)}
    listing = client.get("/themes", params=period, headers=rh(keys)).json()
    assert "themes" in {t["id"] for t in listing["themes"]}
    page = client.get("/themes/themes", params=period, headers=rh(keys)).json()
    assert page["id"] == "themes" and page["summary"]["volume"] == 0
    assert len(page["series"]) == 7


def test_cached_views_follow_the_data(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    from datetime import UTC, datetime

    from core.models import Alert
    from jobs.aggregate import aggregate_all

    first = client.get("/themes", headers=rh(keys)).json()
    liv = next(t for t in first["themes"] if t["id"] == "livraison")
    assert liv["spike"] is not None
    with session_scope(sessions) as session:
        alert = session.execute(select(Alert).where(Alert.status == "open")).scalar_one()
        alert.status = "resolved"
        alert.updated_at = datetime.now(UTC)
    second = client.get("/themes", headers=rh(keys)).json()
    assert next(t for t in second["themes"] if t["id"] == "livraison")["spike"] is None
    with session_scope(sessions) as session:
        session.execute(Feedback.__table__.delete().where(Feedback.channel == "social"))
        aggregate_all(session)
    # A job's write may be answered a few seconds late (stale-while-revalidate), unless the
    # reader asks for current data (tests/test_response_cache.py covers both).
    current = {**rh(keys), "Cache-Control": "no-cache"}
    third = client.get("/themes", headers=current).json()
    assert next(t for t in third["themes"] if t["id"] == "livraison")["volume"] < liv["volume"]
    detail = client.get("/themes/livraison", headers=current).json()
    assert detail["summary"]["volume"] < 127


def test_unexpected_errors_are_json_500(
    settings: Settings, engine: Engine, keys: dict[str, str]
) -> None:
    app = create_app(settings, engine=engine)

    def broken_sessions() -> None:
        raise RuntimeError("database exploded")

    app.state.verbatim.sessions = broken_sessions
    client = TestClient(app, raise_server_exceptions=False)
    res = client.get("/themes", headers=rh(keys))
    assert res.status_code == 500
    assert res.json() == {"detail": "internal server error", "field": None}
    assert "exploded" not in res.text
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "degraded"


# --- incidents ------------------------------------------------------------------------------


def test_incidents_and_alerts_of_a_renamed_theme_show_its_current_id(
    client: TestClient, keys: dict[str, str]
) -> None:
    """After livraison -> transport, /incidents and /alerts showed `livraison` (the id stored
    when they opened) and linked to it, beside /themes and the digest saying `transport`."""
    rename = {"operations": [{"op": "rename", "id": "livraison", "new_id": "transport"}]}
    assert client.put("/taxonomy", json=rename, headers=wh(keys)).status_code == 200
    items = client.get("/incidents", headers=rh(keys)).json()["items"]
    assert [i["theme"] for i in items] == ["transport"]
    assert "#theme=transport&" in items[0]["link"]
    alerts = client.get("/alerts", headers=rh(keys)).json()["items"]
    assert {a["theme"] for a in alerts} == {"transport", "prix"}
    # Filtering by the former id still finds them.
    by_old = client.get("/alerts", params={"theme": "livraison"}, headers=rh(keys)).json()
    assert [a["theme"] for a in by_old["items"]] == ["transport"]


def test_incidents_empty_theme_filters_nothing_as_alerts_do(
    client: TestClient, keys: dict[str, str]
) -> None:
    """`/alerts?theme=` lists every alert; `/incidents?theme=` (a client's empty theme
    select) listed none, an empty answer read as "no incident"."""
    every = client.get("/incidents", headers=rh(keys)).json()["items"]
    assert every
    empty = client.get("/incidents?theme=", headers=rh(keys))
    assert empty.status_code == 200 and empty.json()["items"] == every
    alerts = client.get("/alerts?theme=", headers=rh(keys)).json()["items"]
    assert alerts == client.get("/alerts", headers=rh(keys)).json()["items"]
    # The same bound as /alerts' theme: a theme id is at most 64 characters.
    long = client.get("/incidents", params={"theme": "x" * 65}, headers=rh(keys))
    assert long.status_code == 422 and long.json()["field"] == "theme"


def _more_incidents(sessions: sessionmaker[Session]) -> list[int]:
    """Nine more incidents: three share a last day (ties on the sort key), one is open and
    the others resolved and historical. Returns every incident id, newest first."""
    from core.models import Incident

    now = datetime.now(UTC)
    with session_scope(sessions) as session:
        for n, (back, status) in enumerate(
            [(1, "resolved"), (1, "resolved"), (1, "open")]
            + [(5 + k, "resolved") for k in range(6)]
        ):
            last = LAST_DAY - timedelta(days=back)
            session.add(
                Incident(
                    theme=("prix", "emballage", "livraison")[n % 3],
                    team="logistique",
                    status=status,
                    first_day=last - timedelta(days=1),
                    last_day=last,
                    severity="medium",
                    kinds=["volume"],
                    signals={},
                    drivers=[],
                    examples=[],
                    historical=status == "resolved",
                    revision=1,
                    notified_severity="medium",
                    created_at=now,
                    updated_at=now,
                )
            )
    with sessions() as session:
        rows = session.execute(
            select(Incident.id).order_by(Incident.last_day.desc(), Incident.id.desc())
        )
        return [int(i) for (i,) in rows]


def _walk_incidents(client: TestClient, read: str, query: str, limit: int) -> list[int]:
    seen: list[int] = []
    cursor = None
    for _ in range(20):
        params = f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        res = client.get(f"/incidents?{params}", headers={"X-API-Key": read})
        assert res.status_code == 200, res.text
        body = res.json()
        assert len(body["items"]) <= limit
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("no last page")


def _check_incident_pages(client: TestClient, read: str, every: list[int]) -> None:
    # Every incident once, in the list's own order, whatever the page size (2 splits the
    # three incidents of one last day across two pages).
    for limit in (1, 2, 4, len(every), 500):
        assert _walk_incidents(client, read, "x=1", limit) == every, limit
    resolved = client.get("/incidents?status=resolved&limit=500", headers={"X-API-Key": read})
    expected = [i["id"] for i in resolved.json()["items"]]
    assert len(expected) == 8
    assert _walk_incidents(client, read, "status=resolved", 3) == expected
    # The last page says so; a cursor is checked, not taken as a filter.
    whole = client.get("/incidents?limit=500", headers={"X-API-Key": read}).json()
    assert whole["next_cursor"] is None and [i["id"] for i in whole["items"]] == every
    # Only the form next_cursor has: Python would read « 20260328 », a week date or a
    # full-width digit (« ２ ») as a day and an id.
    bad_cursors = ("x", "2026-03-28", "2026-02-30.1", "2026-03-28.99999999999", "2026-03-28.-1")
    for bad in (*bad_cursors, "20260328.2", "2026-W13-6.2", "2026-03-28.\uff12", "2026-03-28.+2"):
        res = client.get(f"/incidents?cursor={bad}", headers={"X-API-Key": read})
        assert res.status_code == 422 and res.json()["field"] == "cursor", bad
        assert "next_cursor" in res.json()["detail"]


def test_incidents_are_paged_with_a_cursor(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """`/incidents` answered at most `limit` (500) incidents and no way to the older ones,
    though the dashboard says « les autres : API /incidents »: a sync of a year of incidents
    lost everything past the 500th. `next_cursor` pages through them, ties included."""
    every = _more_incidents(sessions)
    assert len(every) == 10
    _check_incident_pages(client, keys["read"], every)


def test_incidents_are_paged_with_a_cursor_postgres(
    settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    seed(pg_sessions)
    with session_scope(pg_sessions) as session:
        _, read = create_key(session, "lecture", "read")
    every = _more_incidents(pg_sessions)
    client = TestClient(create_app(settings, engine=pg_sessions.kw["bind"]))
    _check_incident_pages(client, read, every)


def test_incidents_list_acknowledge_resolve(client: TestClient, keys: dict[str, str]) -> None:
    items = client.get("/incidents", headers=rh(keys)).json()["items"]
    assert [i["theme"] for i in items] == ["livraison"]
    inc = items[0]
    assert inc["status"] == "open" and inc["drivers"][0]["value"] == "Colissimo"
    assert inc["link"].endswith("/#theme=livraison&start=2026-03-19&end=2026-03-28")
    path = f"/incidents/{inc['id']}"
    # Reading keys cannot act; unknown ids are a 404 naming the field.
    assert client.post(path + "/acknowledge", json={}, headers=rh(keys)).status_code == 403
    missing = client.post("/incidents/999/resolve", json={"note": "x"}, headers=wh(keys))
    assert missing.status_code == 404 and missing.json()["field"] == "incident_id"
    ack = client.post(path + "/acknowledge", headers=wh(keys))  # no body: the note is optional
    assert ack.status_code == 200, ack.text
    body = ack.json()
    assert (body["status"], body["acknowledged_by"], body["ack_note"]) == (
        "acknowledged",
        "ecriture",
        None,
    )
    assert body["acknowledged_at"] is not None
    open_before = client.get("/overview", headers=rh(keys)).json()["open_alerts"]
    livraison = next(
        t
        for t in client.get("/themes", headers=rh(keys)).json()["themes"]
        if t["id"] == "livraison"
    )
    assert open_before >= 1 and livraison["spike"] is not None
    note = "transporteur changé, vu avec marc@shop.fr"
    done = client.post(path + "/resolve", json={"note": note}, headers=wh(keys))
    # Its alerts are handled: out of the open count and the theme's spike badge, and the
    # alerts list says why they are still "open" (the detector closes them, not a person).
    assert client.get("/overview", headers=rh(keys)).json()["open_alerts"] == open_before - 1
    livraison = next(
        t
        for t in client.get("/themes", headers=rh(keys)).json()["themes"]
        if t["id"] == "livraison"
    )
    assert livraison["spike"] is None
    alerts = client.get("/alerts?theme=livraison&status=open", headers=rh(keys)).json()["items"]
    assert alerts and {a["incident_status"] for a in alerts} == {"resolved"}
    assert done.json()["status"] == "resolved" and done.json()["resolved_by"] == "ecriture"
    assert done.json()["resolve_note"] == "transporteur changé, vu avec <EMAIL>"  # PII-masked
    # An action already taken is a 409 naming who took it, never a silent overwrite (a second
    # note was dropped under a 200; a late acknowledgement replaced the first one's note).
    for action in ("acknowledge", "resolve"):
        again = client.post(f"{path}/{action}", json={"note": "autre"}, headers=wh(keys))
        assert again.status_code == 409, again.text
        assert "ecriture" in again.json()["detail"]
    kept = client.get("/incidents?status=resolved", headers=rh(keys)).json()["items"][0]
    assert (kept["resolve_note"], kept["ack_note"]) == (done.json()["resolve_note"], None)
    assert client.get("/incidents?status=open", headers=rh(keys)).json()["items"] == []
    by_theme = client.get("/incidents?theme=livraison&status=resolved", headers=rh(keys)).json()
    assert len(by_theme["items"]) == 1
    too_long = client.post(path + "/resolve", json={"note": "x" * 3000}, headers=wh(keys))
    assert too_long.status_code == 422
