"""The taxonomy's life cycle as a CX team lives it: export/import round trips, repeated and
concurrent edits, renames and merges undone, re-detection after a change."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from api_seed import Seeded, seed
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from core import taxonomy_store
from core.db import session_scope
from core.models import TaxonomyVersion
from core.settings import Settings
from nlp.taxonomy import Taxonomy, TaxonomyError, Theme, load_taxonomy, parse_taxonomy
from service.app import create_app
from verbatim_cli import app as cli


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    yield TestClient(create_app(settings, engine=engine))


@pytest.fixture
def runner(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("VERBATIM_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("VERBATIM_DATA_DIR", str(settings.data_dir))
    return CliRunner()


def rh(keys: dict[str, str]) -> dict[str, str]:
    return {"X-API-Key": keys["read"]}


def wh(keys: dict[str, str], **extra: str) -> dict[str, str]:
    return {"X-API-Key": keys["write"], **extra}


def _versions(sessions: sessionmaker[Session]) -> list[int]:
    with session_scope(sessions) as session:
        return [r.version for r in taxonomy_store.history(session)]


NASTY = ["no", "on", "null", "~", "123", "1e3", ": x", "#c", " lead", "é€😀", "multi\nline", "*a"]


def _rich() -> dict:
    """Every field set, unicode and YAML look-alikes, a retired theme, aliases, alerts."""
    return {
        "name": "cx « équipe »",
        "language": "fr",
        "alarm_terms": ["arnaque", *NASTY],
        "positive_cues": [r"\bnickel\b"],
        "negative_cues": [r"\bplus jamais\b"],
        "themes": [
            {
                "id": "livraison",
                "label": "Livraison — délais",
                "description": "Colis, retards\n« transporteur »",
                "team": "logistique",
                "stage": "delivery",
                "severity_weight": 2.5,
                "seeds": ["colis", "livreur", *NASTY],
                "patterns": [r"\bretard(s)?\b"],
                "examples": ["Colis arrivé en retard 😡"],
                "positive_cues": [r"\bà l'heure\b"],
                "negative_cues": [r"\bjamais reçu\b"],
                "alarm_terms": ["perdu"],
                "alerts": {"min_volume": 3, "alpha": 0.001, "cooldown_days": 2, "enabled": False},
                "aliases": ["expedition"],
            },
            {"id": "prix", "label": "Prix", "seeds": ["cher"]},
            {"id": "ancien", "label": "Ancien", "retired": True},
        ],
    }


# --- export / import ------------------------------------------------------------------------


def test_export_import_round_trip_is_lossless_and_idempotent(
    settings: Settings, sessions: sessionmaker[Session], runner: CliRunner, tmp_path: Path
) -> None:
    """Importing the document just exported (or the same file twice) stored a new version
    each time, summary "no change", and asked for a re-detection."""
    source = tmp_path / "rich.yaml"
    source.write_text(yaml.safe_dump(_rich(), allow_unicode=True), encoding="utf-8")
    res = runner.invoke(cli, ["taxonomy", "import", str(source), "--no-retheme"])
    assert res.exit_code == 0 and "version 2 stored" in res.output, res.output
    exported = tmp_path / "export.yaml"
    assert runner.invoke(cli, ["taxonomy", "export", "-o", str(exported)]).exit_code == 0
    back = parse_taxonomy(exported.read_text(encoding="utf-8"))
    expected = Taxonomy.model_validate(_rich())
    assert back.same_content(expected)
    assert [t.id for t in back.themes] == ["livraison", "prix", "ancien"]  # order kept
    assert back.themes[0] == expected.themes[0]  # every field, unicode, cues, alerts
    for path in (exported, source):  # the export, and the same file again
        again = runner.invoke(cli, ["taxonomy", "import", str(path)])
        assert again.exit_code == 0, again.output
        assert "no change" in again.output and "re-detected" not in again.output, again.output
    assert _versions(sessions) == [2, 1]
    with session_scope(sessions) as session:
        assert not taxonomy_store.import_yaml(session, settings, back.to_yaml(), "t").changed


def test_an_import_warns_of_a_theme_never_found_and_of_a_team_without_webhook(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A theme added with `seeds: []` and no patterns, and `emballage` moved to a team the
    settings have no webhook for, were stored without a word: the theme never had a mention,
    and the team's alerts went to the `default` channel (or, without one, stayed queued)."""
    monkeypatch.setenv("VERBATIM_SLACK_WEBHOOKS__LOGISTICS", "https://hooks.example/l")
    doc = yaml.safe_load(runner.invoke(cli, ["taxonomy", "export"]).output)
    for theme in doc["themes"]:
        if theme["id"] == "emballage":
            theme["team"] = "packaging"
    doc["themes"].append({"id": "cadeau", "label": "Cadeau", "seeds": ["~"], "team": "logistics"})
    path = tmp_path / "edit.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    res = runner.invoke(cli, ["taxonomy", "import", str(path), "--no-retheme"])
    assert res.exit_code == 0 and "version 2 stored" in res.output, res.output
    assert "warning: theme 'cadeau' has no seeds nor patterns: no verbatim is found" in res.output
    assert (
        "warning: theme 'emballage': team 'packaging' has no Slack webhook "
        "(slack_webhooks.packaging) nor a 'default' one: its alerts will stay queued"
    ) in res.output
    # Said of what this version changes: a theme whose team did not move is not repeated.
    assert "'livraison'" not in res.output and res.output.count("warning:") == 2
    monkeypatch.setenv("VERBATIM_SLACK_WEBHOOKS__DEFAULT", "https://hooks.example/d")
    doc["themes"][-1]["seeds"] = ["coffret cadeau"]
    for theme in doc["themes"]:
        if theme["id"] == "prix":
            theme["team"] = "Logistics"  # a webhook's name matches whatever its case
        if theme["id"] == "qualite_produit":
            theme["team"] = "qualite"
    doc.pop("version", None)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    res = runner.invoke(cli, ["taxonomy", "import", str(path), "--no-retheme"])
    assert res.exit_code == 0 and "version 3 stored" in res.output, res.output
    assert res.output.count("warning:") == 1, res.output
    assert (
        "warning: theme 'qualite_produit': team 'qualite' has no Slack webhook "
        "(slack_webhooks.qualite): its alerts will go to the 'default' webhook"
    ) in res.output


def test_an_edit_that_changes_nothing_stores_no_version(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    full = client.get("/taxonomy", headers=rh(keys)).json()["taxonomy"]
    res = client.put("/taxonomy", json={"taxonomy": full}, headers=wh(keys))
    assert res.status_code == 200 and res.json()["version"] == 1, res.text
    retire = {"operations": [{"op": "retire", "id": "prix"}]}
    assert client.put("/taxonomy", json=retire, headers=wh(keys)).json()["version"] == 2
    res = client.put("/taxonomy", json=retire, headers=wh(keys))  # already retired
    assert res.status_code == 200 and res.json()["version"] == 2
    assert _versions(sessions) == [2, 1]


def test_moving_a_former_id_or_reordering_is_not_summarised_as_no_change(
    settings: Settings, sessions: sessionmaker[Session], runner: CliRunner, tmp_path: Path
) -> None:
    """A former id moved to another theme (its stored mentions and alerts now count there)
    was stored as a new version summarised "no change", in the CLI and the history."""
    with session_scope(sessions) as session:
        cur = taxonomy_store.current(session, settings).taxonomy
        taxonomy_store.save(session, settings, cur.merge("prix", "commande_paiement"), "t")
    doc = yaml.safe_load(runner.invoke(cli, ["taxonomy", "export"]).output)
    for theme in doc["themes"]:
        if theme["id"] in ("commande_paiement", "qualite_produit"):
            theme["aliases"] = ["prix"] if theme["id"] == "qualite_produit" else []
    path = tmp_path / "moved.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    res = runner.invoke(cli, ["taxonomy", "import", str(path), "--no-retheme"])
    summary = "edited qualite_produit (aliases +prix); edited commande_paiement (aliases -prix)"
    assert res.exit_code == 0 and f"version 3 stored ({summary})" in res.output, res.output
    doc["themes"].reverse()
    doc["version"] = 3
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    res = runner.invoke(cli, ["taxonomy", "import", str(path), "--no-retheme"])
    assert res.exit_code == 0 and "version 4 stored (reordered themes)" in res.output, res.output
    with session_scope(sessions) as session:
        assert taxonomy_store.history(session)[1].summary == summary


def test_retheme_off_is_not_read_as_no_stored_verbatims(
    settings: Settings,
    sessions: sessionmaker[Session],
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With `retheme_days = 0` (re-detection off) an edit said « no stored verbatims to
    re-detect yet » over a database full of them."""
    from datetime import UTC, datetime

    from core.models import Analysis, Feedback, ThemeMention

    now = datetime.now(UTC)
    with session_scope(sessions) as session:
        fb = Feedback(
            source="boutique",
            channel="review",
            dedup_key="id:1",
            text="Carton écrasé à l'arrivée",
            created_at=now,
            ingested_at=now,
            content_hash="h1",
            meta={},
            analyzed=True,
        )
        session.add(fb)
        session.flush()
        an = Analysis(
            feedback_id=fb.id,
            model_version="t",
            sentiment="negative",
            sentiment_score=0.9,
            analyzed_at=now,
        )
        an.mentions.append(
            ThemeMention(
                feedback_id=fb.id,
                theme="emballage",
                polarity="negative",
                score=0.8,
                day=now.date(),
            )
        )
        session.add(an)
        cur = taxonomy_store.current(session, settings).taxonomy
        taxonomy_store.save(session, settings, cur.retire("prix"), "t")
    monkeypatch.setenv("VERBATIM_RETHEME_DAYS", "0")
    res = runner.invoke(cli, ["taxonomy", "retheme"])
    assert res.exit_code == 0, res.output
    assert "no stored verbatims" not in res.output
    assert "retheme_days = 0" in res.output


def test_merge_then_rename_in_one_edit_is_summarised_as_it_was_made(
    client: TestClient, keys: dict[str, str]
) -> None:
    """The history said "renamed prix -> achat; merged commande_paiement into achat" for
    prix merged into commande_paiement, then commande_paiement renamed achat."""
    ops = [
        {"op": "merge", "source": "prix", "target": "commande_paiement"},
        {"op": "rename", "id": "commande_paiement", "new_id": "achat"},
    ]
    assert client.put("/taxonomy", json={"operations": ops}, headers=wh(keys)).status_code == 200
    history = client.get("/taxonomy/history", headers=rh(keys)).json()["items"]
    assert history[0]["summary"] == "renamed commande_paiement -> achat; merged prix into achat"


def test_a_stale_export_is_refused_unless_forced_and_history_is_kept(
    settings: Settings, sessions: sessionmaker[Session], runner: CliRunner, tmp_path: Path
) -> None:
    """A file exported at v1, edited while a colleague renamed a theme (v2), was imported
    over v2: the rename (and its alias) silently undone, and the history replaced by the
    file's."""
    exported = tmp_path / "v1.yaml"
    assert runner.invoke(cli, ["taxonomy", "export", "-o", str(exported)]).exit_code == 0
    with session_scope(sessions) as session:
        cur = taxonomy_store.current(session, settings)
        taxonomy_store.save(session, settings, cur.taxonomy.rename("prix", "tarif"), "alice")
    doc = yaml.safe_load(exported.read_text(encoding="utf-8"))
    doc["themes"].append({"id": "fidelite", "label": "Fidélité"})
    exported.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    res = runner.invoke(cli, ["taxonomy", "import", str(exported), "--no-retheme"])
    assert res.exit_code == 1, res.output
    assert "based on taxonomy version 1" in res.output and "--force" in res.output
    assert "renamed prix -> tarif" in res.output  # what would be undone
    assert _versions(sessions) == [2, 1]
    res = runner.invoke(cli, ["taxonomy", "import", str(exported), "--no-retheme", "--force"])
    assert res.exit_code == 0 and "version 3 stored" in res.output, res.output
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
    assert [h.action for h in tax.history] == ["rename", "update"]  # v2's entry kept
    # A file without `version` is a deliberate replacement: no check.
    del doc["version"]
    doc["themes"].append({"id": "retour", "label": "Retours"})
    exported.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    res = runner.invoke(cli, ["taxonomy", "import", str(exported), "--no-retheme"])
    assert res.exit_code == 0 and "version 4 stored" in res.output, res.output


# --- concurrent edits -----------------------------------------------------------------------


def test_rolling_back_to_a_version_before_a_rename_keeps_the_new_id_resolvable(
    settings: Settings,
    sessions: sessionmaker[Session],
    runner: CliRunner,
    client: TestClient,
    keys: dict[str, str],
    seeded: Seeded,
    tmp_path: Path,
) -> None:
    """`export --version 1` then `import --force` (a roll back past a rename) dropped the
    renamed id: the mentions, alerts and incidents stored under it since the rename counted
    for a removed theme, out of the restored theme's figures for good."""
    ops = [{"op": "rename", "id": "livraison", "new_id": "delivery"}]
    assert client.put("/taxonomy", json={"operations": ops}, headers=wh(keys)).status_code == 200
    with session_scope(sessions) as session:  # what was stored under the new id since
        tax = taxonomy_store.current(session, settings).taxonomy
        taxonomy_store.save(session, settings, tax.add(Theme(id="neuf", label="Neuf")), "t")
    old = tmp_path / "v1.yaml"
    res = runner.invoke(cli, ["taxonomy", "export", "--version", "1", "-o", str(old)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["taxonomy", "import", str(old), "--force", "--no-retheme"])
    assert res.exit_code == 0, res.output
    assert "renamed delivery -> livraison" in res.output and "removed" in res.output, res.output
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
    assert tax.current_id("delivery") == "livraison" and tax.resolve("neuf") is None
    assert client.get("/themes/delivery", headers=rh(keys)).json()["id"] == "livraison"


def test_if_match_refuses_an_edit_of_a_version_changed_since(
    client: TestClient, keys: dict[str, str], settings: Settings, engine: Engine
) -> None:
    got = client.get("/taxonomy", headers=rh(keys))
    etag, doc = got.headers["etag"], got.json()["taxonomy"]
    other = TestClient(create_app(settings, engine=engine))  # a colleague, another replica
    rename = {"operations": [{"op": "rename", "id": "prix", "new_id": "tarif"}]}
    assert other.put("/taxonomy", json=rename, headers=wh(keys)).status_code == 200
    doc["themes"].append({"id": "fidelite", "label": "Fidélité"})
    res = client.put("/taxonomy", json={"taxonomy": doc}, headers=wh(keys, **{"If-Match": etag}))
    assert res.status_code == 412, res.text
    assert res.json()["field"] == "If-Match" and "version 2" in res.json()["detail"]
    current = client.get("/taxonomy", headers=rh(keys))
    assert "tarif" in {t["id"] for t in current.json()["taxonomy"]["themes"]}  # not undone
    add = {"operations": [{"op": "add", "theme": {"id": "fidelite", "label": "Fidélité"}}]}
    res = client.put(
        "/taxonomy", json=add, headers=wh(keys, **{"If-Match": current.headers["etag"]})
    )
    assert res.status_code == 200 and res.json()["version"] == 3, res.text
    again = {"operations": [{"op": "retire", "id": "fidelite"}]}
    res = client.put("/taxonomy", json=again, headers=wh(keys, **{"If-Match": '"2"'}))
    assert res.status_code == 412, res.text  # a version number works too: 3 is current
    res = client.put("/taxonomy", json=again, headers=wh(keys, **{"If-Match": "3"}))
    assert res.status_code == 200 and res.json()["version"] == 4, res.text


def test_an_edit_made_from_a_version_no_longer_current_is_not_stored_over_it(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """Read v1, a colleague stores v2, store the edit of v1: it was saved as v3 and v2's
    change vanished (the API read its copy from the cache before the colleague's commit)."""
    with session_scope(sessions) as session:
        v1 = taxonomy_store.current(session, settings)
        taxonomy_store.save(session, settings, v1.taxonomy.retire("prix"), "bob")
    with session_scope(sessions) as session, pytest.raises(taxonomy_store.TaxonomyConflict):
        taxonomy_store.save(
            session, settings, v1.taxonomy.retire("emballage"), "ann", base=v1.version
        )
    assert _versions(sessions) == [2, 1]


def test_concurrent_operation_lists_all_apply(
    client: TestClient, keys: dict[str, str], settings: Settings, engine: Engine
) -> None:
    replica = TestClient(create_app(settings, engine=engine))
    ids = ["livraison", "emballage", "prix", "sav", "qualite_produit", "site_appli"]
    known = {
        t["id"] for t in client.get("/taxonomy", headers=rh(keys)).json()["taxonomy"]["themes"]
    }
    ids = [i for i in ids if i in known][:6]
    codes: list[int] = []

    def retire(i: int) -> None:
        body = {"operations": [{"op": "retire", "id": ids[i]}]}
        codes.append(
            (client if i % 2 else replica).put("/taxonomy", json=body, headers=wh(keys)).status_code
        )

    threads = [threading.Thread(target=retire, args=(i,)) for i in range(len(ids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * len(ids)
    tax = client.get("/taxonomy", headers=rh(keys)).json()
    assert tax["version"] == 1 + len(ids)
    assert {t["id"] for t in tax["taxonomy"]["themes"] if t["retired"]} == set(ids)


# --- undoing an edit ------------------------------------------------------------------------


def test_rename_then_rename_back() -> None:
    tax = load_taxonomy("ecommerce")
    back = tax.rename("livraison", "delivery").rename("delivery", "livraison")
    theme = back.get("livraison")
    assert theme.id == "livraison" and theme.aliases == ["delivery"]
    assert back.get("delivery").id == "livraison"  # mentions stored meanwhile still count
    assert parse_taxonomy(back.to_yaml()) == back


def test_merge_then_unmerge_by_adding_the_theme_again() -> None:
    tax = load_taxonomy("ecommerce").merge("emballage", "livraison")
    assert tax.get("emballage").id == "livraison"
    split = tax.add(Theme(id="emballage", label="Emballage", seeds=["carton"]))
    assert split.get("emballage").id == "emballage"
    assert "emballage" not in split.get("livraison").aliases
    assert parse_taxonomy(split.to_yaml()) == split


def test_retire_then_add_the_same_id_again() -> None:
    tax = load_taxonomy("ecommerce").rename("prix", "tarif").retire("tarif")
    back = tax.add(Theme(id="tarif", label="Tarifs", seeds=["cher"]))
    theme = back.get("tarif")
    assert not theme.retired and theme.label == "Tarifs" and theme.aliases == ["prix"]
    assert back.get("prix").id == "tarif"
    with pytest.raises(ValueError, match="already exists"):
        back.add(Theme(id="tarif", label="Doublon"))  # an active theme stays unique


def test_rename_onto_another_themes_former_id_is_refused_clearly() -> None:
    tax = load_taxonomy("ecommerce").rename("livraison", "delivery")
    with pytest.raises(ValueError, match="former id of theme 'delivery'"):
        tax.rename("prix", "livraison")


def test_merge_into_a_retired_theme_is_refused() -> None:
    """The source's mentions would resolve to a retired theme: hidden everywhere."""
    tax = load_taxonomy("ecommerce").retire("prix")
    with pytest.raises(ValueError, match="retired"):
        tax.merge("livraison", "prix")


def test_operations_apply_to_the_previous_operations_result(
    client: TestClient, keys: dict[str, str]
) -> None:
    ops = [
        {"op": "add", "theme": {"id": "fidelite", "label": "Fidélité"}},
        {"op": "rename", "id": "fidelite", "new_id": "programme"},
        {"op": "merge", "source": "emballage", "target": "programme"},
        {"op": "rename", "id": "livraison", "new_id": "delivery"},
        {"op": "rename", "id": "delivery", "new_id": "livraison"},  # back
        {"op": "retire", "id": "prix"},
        {"op": "add", "theme": {"id": "prix", "label": "Prix bis"}},  # again
        {"op": "add", "theme": {"id": "emballage", "label": "Emballage"}},  # un-merge
    ]
    res = client.put("/taxonomy", json={"operations": ops}, headers=wh(keys))
    assert res.status_code == 200, res.text
    themes = {t["id"]: t for t in res.json()["taxonomy"]["themes"]}
    assert res.json()["version"] == 2
    assert themes["programme"]["aliases"] == ["fidelite"]
    assert themes["livraison"]["aliases"] == ["delivery"]
    assert themes["prix"]["label"] == "Prix bis" and not themes["prix"]["retired"]
    assert not themes["emballage"]["retired"]


@pytest.mark.parametrize(
    ("op", "detail"),
    [
        ({"op": "rename", "id": "prix", "new_id": "tarif", "label": "   "}, "label is empty"),
        ({"op": "rename", "id": "prix", "new_id": "t" * 65}, "at most 64"),
        ({"op": "rename", "id": "prix", "new_id": "tarif", "label": "a\u0000b"}, "not text"),
        ({"op": "merge", "source": "livraison", "target": "prix"}, "retired"),
    ],
)
def test_an_edit_is_checked_as_the_loader_reads_it(
    client: TestClient,
    keys: dict[str, str],
    settings: Settings,
    engine: Engine,
    op: dict,
    detail: str,
) -> None:
    """A rename to a blank label was stored (`model_copy` skips the checks), then every
    process that read that version from the database answered 500."""
    retire = {"operations": [{"op": "retire", "id": "prix"}]} if op["op"] == "merge" else None
    if retire:
        assert client.put("/taxonomy", json=retire, headers=wh(keys)).status_code == 200
    res = client.put("/taxonomy", json={"operations": [op]}, headers=wh(keys))
    assert res.status_code == 422, res.text
    assert res.json()["field"] == "operations[0]" and detail in res.json()["detail"], res.text
    fresh = TestClient(create_app(settings, engine=engine), raise_server_exceptions=False)
    assert fresh.get("/taxonomy", headers=rh(keys)).status_code == 200


# --- after a change: re-detection, history, alerts -------------------------------------------


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> Seeded:
    return seed(sessions)


def test_retheme_settles_every_version_imported_without_it(
    settings: Settings, sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    """v2 added a theme (`import --no-retheme`), v3 edited again, then `retheme`: only v3
    was settled, so v2's theme kept "" (not re-detected) and detection skipped it for good."""
    from jobs.retheme import retheme

    with session_scope(sessions) as session:
        cur = taxonomy_store.current(session, settings).taxonomy
        v2 = cur.add(Theme(id="fidelite", label="Fidélité", seeds=["carte fidélité"]))
        taxonomy_store.save(session, settings, v2, "t")
        taxonomy_store.save(session, settings, v2.retire("prix"), "t")
    result = retheme(settings, sessions)
    assert result is not None and result.version == 3 and result.start is not None
    with session_scope(sessions) as session:
        assert taxonomy_store.theme_since(session)["fidelite"] == result.start.isoformat()
        rows = session.execute(select(TaxonomyVersion)).scalars().all()
        assert all(r.rethemed_at is not None for r in rows)
    assert retheme(settings, sessions) is None  # idempotent: nothing pending


def test_retheme_gives_no_theme_to_a_text_with_nothing_to_judge(
    settings: Settings, sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    """`enrich` gives a text with nothing to judge (a link, placeholders) no theme; the
    re-detection after a taxonomy edit gave « https://www.colissimo.fr/suivi » `livraison`
    and « <CARD> » `qualite_produit`, mentions no analysis of them has."""
    from datetime import timedelta

    from api_seed import LAST_DAY

    from core.models import Analysis, Feedback, ThemeMention
    from jobs.retheme import retheme

    created = datetime.combine(LAST_DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    ids = []
    with session_scope(sessions) as session:
        for n, text in enumerate(("https://www.colissimo.fr/suivi-colis", "<CARD> <EMAIL>")):
            fb = Feedback(
                source="tests",
                channel="email",
                dedup_key=f"id:empty{n}",
                created_at=created,
                ingested_at=created,
                text=text,
                language="fr",
                is_french=True,
                content_hash=f"empty{n}",
                meta={},
                analyzed=True,
            )
            session.add(fb)
            session.flush()
            session.add(
                Analysis(
                    feedback_id=fb.id,
                    model_version="t",
                    sentiment="neutral",
                    sentiment_score=0.3333,
                    severity=0.0,
                    analyzed_at=created,
                )
            )
            ids.append(fb.id)
        cur = taxonomy_store.current(session, settings).taxonomy
        added = cur.add(Theme(id="fidelite", label="Fidélité", seeds=["carte fidélité"]))
        taxonomy_store.save(session, settings, added, "t")
    result = retheme(settings, sessions)
    assert result is not None and result.verbatims > 0
    with session_scope(sessions) as session:
        found = session.execute(
            select(ThemeMention.theme).where(ThemeMention.feedback_id.in_(ids))
        ).all()
    assert found == []


def test_detect_applies_an_edit_not_re_detected_yet(
    settings: Settings, sessions: sessionmaker[Session], seeded: Seeded
) -> None:
    """A theme added through `PUT /taxonomy` kept `theme_since` "" when the pipeline runs
    `enrich` + `detect` (the scheduler's separate jobs) rather than `run`: detection skipped
    it for good. `detect` re-detects a pending edit's window first."""
    from jobs.detect import run_detect

    with session_scope(sessions) as session:
        cur = taxonomy_store.current(session, settings).taxonomy
        added = cur.add(Theme(id="fidelite", label="Fidélité", seeds=["carte fidélité"]))
        taxonomy_store.save(session, settings, added, "api:t")
        assert taxonomy_store.theme_since(session)["fidelite"] == ""
    run_detect(settings, sessions)
    with session_scope(sessions) as session:
        assert taxonomy_store.theme_since(session)["fidelite"] != ""
        assert taxonomy_store.pending_retheme(session) is None


def test_retheme_outside_run_uses_the_analysis_encoder(
    settings: Settings,
    sessions: sessionmaker[Session],
    seeded: Seeded,
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`taxonomy import` (and `taxonomy retheme`, `detect`) re-detected with no encoder: the
    heads' encoder-free variant, where `run` and `enrich` use the embedded backend's, so a
    team-only edit moved the window's figures (the demo's qualite_produit 251 -> 278)."""
    import core.analysis
    import nlp.sentiment

    class Backend:  # what the embedded backend gives the theme heads: its encoder
        encoder = object()

    handed: list[object] = []
    build = core.analysis.build_theme_model

    def spy(taxonomy: Taxonomy, model: object, sentiment: object, *rest: object) -> object:
        handed.append(getattr(sentiment, "encoder", None))
        return build(taxonomy, None, None, *rest)  # type: ignore[arg-type]

    settings.sentiment_backend = "embedded"
    monkeypatch.setenv("VERBATIM_SENTIMENT_BACKEND", "embedded")
    monkeypatch.setitem(nlp.sentiment.REGISTRY, "embedded", lambda **kw: Backend())
    monkeypatch.setattr(core.analysis, "build_theme_model", spy)
    doc = load_taxonomy(None).model_dump(mode="json", exclude={"version"})
    doc["themes"][0]["team"] = "logistique"
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    res = runner.invoke(cli, ["taxonomy", "import", str(path)])
    assert res.exit_code == 0 and "re-detected" in res.output, res.output
    assert handed == [Backend.encoder]


@pytest.mark.postgres
def test_two_re_detections_at_once_do_not_store_every_mention_twice(
    settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    """PostgreSQL: an import's re-detection while the scheduler's `detect` applied the same
    edit; each deleted the window's mentions then inserted its own, the other's inserts
    unseen by its delete (READ COMMITTED): every mention of the window stored twice."""
    from sqlalchemy import func

    from core.models import ThemeMention
    from jobs.retheme import retheme, theme_model_for

    seed(pg_sessions)
    with session_scope(pg_sessions) as session:
        edited = taxonomy_store.current(session, settings).taxonomy.retire("prix")
        taxonomy_store.save(session, settings, edited, "t")
    model = theme_model_for(settings, edited)
    both_predicted = threading.Barrier(2)

    class Lockstep:  # both runs reach their delete together
        def predict(self, texts: list[str]) -> list[object]:
            out = model.predict(texts)
            # Broken when the other run waits for this one's batch (the fix).
            with contextlib.suppress(threading.BrokenBarrierError):
                both_predicted.wait(timeout=2)
            return out

    runs = [
        threading.Thread(
            target=retheme, args=(settings, pg_sessions), kwargs={"theme_model": Lockstep()}
        )
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    with session_scope(pg_sessions) as session:
        twice = session.execute(
            select(ThemeMention.analysis_id, ThemeMention.theme)
            .group_by(ThemeMention.analysis_id, ThemeMention.theme)
            .having(func.count() > 1)
        ).all()
        assert session.execute(select(func.count()).select_from(ThemeMention)).scalar()
    assert twice == []


def test_a_renamed_theme_keeps_its_detection_history(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """A rename marked the new id as a theme added by the edit: its series started at the
    re-detected window, and the mentions under its former id were no baseline any more."""
    with session_scope(sessions) as session:
        cur = taxonomy_store.current(session, settings).taxonomy
        taxonomy_store.save(session, settings, cur.rename("livraison", "delivery"), "t")
        added = cur.rename("livraison", "delivery").add(Theme(id="neuf", label="Neuf"))
        taxonomy_store.save(session, settings, added, "t")
        assert taxonomy_store.theme_since(session) == {"neuf": ""}


def test_history_is_readable_after_100_versions(
    settings: Settings,
    sessions: sessionmaker[Session],
    runner: CliRunner,
    client: TestClient,
    keys: dict[str, str],
) -> None:
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        for i in range(100):
            tax = tax.rename(tax.ids[0], f"theme_{i}")
            taxonomy_store.save(session, settings, tax, "t")
    res = runner.invoke(cli, ["taxonomy", "history"])
    assert res.exit_code == 0 and len(res.output.splitlines()) == 101, res.output[-500:]
    assert res.output.splitlines()[0].startswith("v101")
    items = client.get("/taxonomy/history", headers=rh(keys)).json()["items"]
    assert len(items) == 101 and items[0]["summary"].startswith("renamed theme_98 -> theme_99")
    assert client.get("/themes/livraison", headers=rh(keys)).json()["id"] == "theme_99"


def test_incidents_of_a_renamed_then_restored_theme_stay_reachable(
    client: TestClient, keys: dict[str, str], seeded: Seeded
) -> None:
    def incidents(theme: str) -> list[int]:
        items = client.get(f"/incidents?theme={theme}", headers=rh(keys)).json()["items"]
        return [i["id"] for i in items]

    before = incidents("livraison")
    assert before  # the seed's open incident
    ops = [{"op": "rename", "id": "livraison", "new_id": "delivery"}]
    assert client.put("/taxonomy", json={"operations": ops}, headers=wh(keys)).status_code == 200
    assert incidents("delivery") == before
    ops = [{"op": "rename", "id": "delivery", "new_id": "livraison"}]
    assert client.put("/taxonomy", json={"operations": ops}, headers=wh(keys)).status_code == 200
    assert incidents("livraison") == incidents("delivery") == before
    assert client.get("/themes/delivery", headers=rh(keys)).json()["id"] == "livraison"


def test_a_taxonomy_near_the_limits_round_trips_through_the_api(
    client: TestClient, keys: dict[str, str]
) -> None:
    themes = [
        {"id": f"t{i}", "label": f"Thème {i} é", "patterns": [rf"\bmot{i}x{j}\b" for j in range(5)]}
        for i in range(200)
    ]
    doc = {"name": "grand", "themes": themes}
    res = client.put("/taxonomy", json={"taxonomy": doc}, headers=wh(keys))
    assert res.status_code == 200, res.text[:300]
    res = client.put(
        "/taxonomy",
        json={"operations": [{"op": "rename", "id": "t0", "new_id": "u0"}]},
        headers=wh(keys),
    )
    assert res.status_code == 200 and res.json()["version"] == 3
    too_many = {"name": "grand", "themes": [*themes, {"id": "z", "label": "Z"}]}
    res = client.put("/taxonomy", json={"taxonomy": too_many}, headers=wh(keys))
    assert res.status_code == 422 and "at most 200" in res.json()["detail"]
    assert client.get("/taxonomy", headers=rh(keys)).json()["version"] == 3


def test_a_pattern_matching_every_text_and_a_huge_label_are_refused_but_old_versions_load(
    client: TestClient, keys: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    """ "" or "a*" put the theme in every verbatim (an alert storm at the next run), and a
    100,000-character label went out in every /themes answer, export and Slack message. Both
    are refused where a taxonomy is written; a version stored before the check still reads."""
    doc = _rich()
    for theme_patch, field in (
        ({"patterns": [""]}, "patterns"),
        ({"negative_cues": ["(jamais)?"]}, "negative_cues"),
        ({"patterns": [r"retard|\b"]}, "patterns"),  # empty at every word boundary
        ({"label": "L" * 201}, "label"),
    ):
        bad = {**doc, "themes": [{**doc["themes"][1], **theme_patch}, *doc["themes"][::2]]}
        res = client.put("/taxonomy", json={"taxonomy": bad}, headers=wh(keys))
        assert res.status_code == 422, res.text
        assert field in res.text and ("empty string" in res.text or "at most 200" in res.text)
    old = {**doc, "themes": [{**doc["themes"][1], "label": "P" * 300, "patterns": ["x*"]}]}
    with pytest.raises(TaxonomyError, match="at most 200"):
        parse_taxonomy(yaml.safe_dump(old))
    with session_scope(sessions) as session:
        session.add(
            TaxonomyVersion(
                version=99,
                name=old["name"],
                author="an older Verbatim",
                created_at=datetime.now(UTC),
                summary="stored before the checks",
                body=yaml.safe_dump(old, allow_unicode=True),
            )
        )
    current = client.get("/taxonomy", headers=rh(keys))
    assert current.status_code == 200, current.text
    assert current.json()["taxonomy"]["themes"][0]["label"] == "P" * 300
    assert client.get("/themes", headers=rh(keys)).status_code == 200
    # Editing such a version: what the edit changes is checked, not what it keeps (the
    # rename was refused over the stored label and pattern).
    rename = {"operations": [{"op": "rename", "id": "prix", "new_id": "tarifs"}]}
    res = client.put("/taxonomy", json=rename, headers=wh(keys))
    assert res.status_code == 200, res.text
    # The renamed-away id still has its page (former versions are read as stored).
    assert client.get("/themes/prix", headers=rh(keys)).status_code == 200


def test_export_to_dev_stdout_appended_to_a_file_keeps_the_file(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """`verbatim taxonomy export -o /dev/stdout >> all.txt` reopened /dev/stdout with
    truncation: the file's earlier content was lost. Written through stdout."""
    import os
    import subprocess
    import sys

    out_file = tmp_path / "all.txt"
    out_file.write_text("previous\n", encoding="utf-8")
    env = {
        **os.environ,
        "VERBATIM_DATA_DIR": str(settings.data_dir),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    with out_file.open("a", encoding="utf-8") as out:
        run = subprocess.run(
            [sys.executable, "-m", "verbatim_cli", "taxonomy", "export", "-o", "/dev/stdout"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    previous, rest = out_file.read_text(encoding="utf-8").split("\n", 1)
    assert previous == "previous" and yaml.safe_load(rest)["themes"]


def test_file_commands_read_the_databases_taxonomy(
    settings: Settings,
    sessions: sessionmaker[Session],
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One taxonomy: a theme added through the API (or `taxonomy import`) was unknown to
    `verbatim evaluate` and `verbatim analyze`, which read the taxonomy_path setting: the
    team's gold file with its new theme was refused, and analyze never found it, while enrich
    and detect did. Without a database they read the setting and create no database."""
    with session_scope(sessions) as session:
        tax = taxonomy_store.current(session, settings).taxonomy
        added = tax.model_dump()
        added["themes"].append(
            {"id": "fidelite", "label": "Fidélité", "seeds": ["carte de fidélité"]}
        )
        body = yaml.safe_dump(added, allow_unicode=True)
        assert taxonomy_store.import_yaml(session, settings, body, "t", force=True).changed
    text = "Ma carte de fidélité n'a pas été créditée."
    feed = tmp_path / "in.jsonl"
    feed.write_text(json.dumps({"text": text}) + "\n", encoding="utf-8")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps({"text": text, "themes": {"fidelite": "negative"}}) + "\n", encoding="utf-8"
    )
    monkeypatch.setenv("VERBATIM_SENTIMENT_BACKEND", "lexicon")
    out = tmp_path / "out.jsonl"
    res = runner.invoke(cli, ["analyze", str(feed), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "fidelite" in [t["id"] for t in json.loads(out.read_text())["themes"]]
    res = runner.invoke(cli, ["evaluate", "--data", str(gold)])
    assert res.exit_code == 0 and "fidelite" in res.output, res.output
    # No database: the setting, and nothing created.
    monkeypatch.setenv("VERBATIM_DATABASE_URL", f"sqlite:///{tmp_path / 'none' / 'v.db'}")
    res = runner.invoke(cli, ["analyze", str(feed), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "fidelite" not in [t["id"] for t in json.loads(out.read_text())["themes"]]
    assert not (tmp_path / "none").exists()
