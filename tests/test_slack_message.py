"""Block Kit payload of an alert: French by default, fallback text, examples, link."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from core.models import Incident
from jobs.slack_message import AlertView, build_incident_payload, build_payload

ALERT = AlertView(
    theme="livraison",
    label="Livraison",
    kind="volume",
    severity="high",
    first_day=date(2026, 3, 2),
    last_day=date(2026, 3, 3),
    observed=64,
    expected=21.5,
    p_value=3.2e-9,
    revision=1,
    team="logistics",
)


def test_french_payload_has_fallback_blocks_examples_and_link() -> None:
    payload = build_payload(
        ALERT, ["Colis jamais reçu", "Livreur injoignable", "Retard", "x"], "http://dash.local/"
    )
    text = payload["text"]
    assert "Alerte élevée : Livraison" in text
    assert "64 contre 21,5 attendues" in text and "+198" in text  # French decimal comma
    assert "du 02/03/2026 au 03/03/2026" in text
    assert "http://dash.local/#theme=livraison" in text
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds[0] == "header" and "actions" in kinds
    examples = next(
        b for b in payload["blocks"] if b["type"] == "section" and "Exemples" in b["text"]["text"]
    )
    assert examples["text"]["text"].count("\n> ") == 3  # at most 3 examples
    button = payload["blocks"][-1]["elements"][0]
    assert button["url"] == "http://dash.local/#theme=livraison"


def test_negativity_update_and_english() -> None:
    neg = AlertView(
        theme="service_client",
        label="Service client",
        kind="negativity",
        severity="critical",
        first_day=date(2026, 3, 2),
        last_day=date(2026, 3, 2),
        observed=0.7,
        expected=0.2,
        p_value=None,
        revision=2,
    )
    fr = build_payload(neg, [], "http://d")
    assert "Mise à jour (rév. 2)" in fr["text"] and "70\u202f% de négatifs" in fr["text"]
    assert "+50 points" in fr["text"] and "Période : 02/03/2026" in fr["text"]
    assert any("Aucun exemple" in json_text(b) for b in fr["blocks"])
    en = build_payload(neg, ["Nobody answers"], "http://d", language="en")
    assert en["text"].startswith("Update (rev. 2) — critical alert: Service client")


def test_long_example_is_clipped() -> None:
    payload = build_payload(ALERT, ["mot " * 500], "http://d")
    section = next(
        b for b in payload["blocks"] if b["type"] == "section" and "Exemples" in b["text"]["text"]
    )
    assert len(section["text"]["text"]) < 400 and section["text"]["text"].endswith("…")


HOSTILE = "<!channel> colis perdu, suivi sur <https://phish.example|La Poste> & <EMAIL>"


def test_customer_text_cannot_ping_or_hide_links_in_slack() -> None:
    """Verbatims and metadata values are customer text: `<!channel>` in a review used to
    ping the whole channel, `<url|label>` made a disguised link and `<EMAIL>` vanished."""
    incident = Incident(
        id=7,
        theme="livraison",
        team="logistics",
        severity="high",
        revision=1,
        first_day=date(2026, 3, 2),
        last_day=date(2026, 3, 2),
        kinds=["volume"],
        signals={"volume": {"observed": 64, "expected": 21.5}},
        drivers=[{"field": "transporteur", "value": "<!here> Colis&Co", "share_of_extra": 0.8}],
        examples=[HOSTILE],
    )
    inc_payload = build_incident_payload(incident, "Livraison", "http://d/#theme=livraison")
    for payload in (build_payload(ALERT, [HOSTILE], "http://d"), inc_payload):
        dumped = json_text(payload)
        assert "<!" not in dumped and "<https://phish" not in dumped and "<EMAIL>" not in dumped
        assert (
            "> &lt;!channel&gt; colis perdu, suivi sur &lt;https://phish.example|La Poste&gt; "
            "&amp; &lt;EMAIL&gt;" in dumped
        )
    assert "transporteur « &lt;!here&gt; Colis&amp;Co »" in inc_payload["text"]
    # "Incident élevée" read as a typo: the adjective goes with "gravité".
    assert inc_payload["blocks"][0]["text"]["text"] == "Incident de gravité élevée : Livraison"
    assert "64 contre 21,5 attendues" in inc_payload["text"]


def test_labels_teams_and_channels_are_escaped_once_for_slack() -> None:
    """A theme label « Colis & <emballage> » (a taxonomy edit) and a channel or team name went
    into the mrkdwn texts as written: Slack dropped `<emballage>` as a bad link and a team
    `<!here>` pinged the channel. The plain_text header shows the label as written."""
    label = "Colis & <emballage>"
    incident = Incident(
        id=7,
        theme="emballage",
        team="<!here> R&D",
        severity="high",
        revision=2,
        first_day=date(2026, 3, 2),
        last_day=date(2026, 3, 2),
        kinds=["volume"],
        signals={"channels": {"<app>": {"volume": {"observed": 64, "expected": 21.5}}}},
        drivers=[],
        examples=[],
    )
    inc = build_incident_payload(incident, label, "http://d", previous_team="a&b")
    alert = build_payload(replace(ALERT, label="Prix > 20 €", team="<!channel>"), [], "http://d")
    for payload in (inc, alert):
        dumped = json_text({"text": payload["text"], "blocks": payload["blocks"][1:]})
        assert "<!" not in dumped and "<emballage>" not in dumped and "<app>" not in dumped
        assert "&amp;amp;" not in dumped and "&amp;lt;" not in dumped  # escaped once
    assert "« Colis &amp; &lt;emballage&gt; »" in inc["text"]
    assert "[&lt;app&gt;]" in inc["text"] and "&lt;!here&gt; R&amp;D" in inc["text"]
    assert "auparavant a&amp;b" in inc["text"]
    assert "• &lt;app&gt; : volume 64" in json_text(inc)
    assert inc["blocks"][0]["text"]["text"].endswith(": Colis & <emballage>")
    assert "« Prix &gt; 20 € »" in alert["text"]
    assert "Équipe : &lt;!channel&gt;" in json_text(alert)
    assert alert["blocks"][0]["text"]["text"] == "Alerte élevée : Prix > 20 €"


def json_text(block: dict) -> str:
    import json

    return json.dumps(block, ensure_ascii=False)


def test_negativity_points_are_the_difference_of_the_percentages_shown() -> None:
    """« 92 % de négatifs contre 28 % d'habitude (+63 points) »: the points came from the
    unrounded shares (0.917 - 0.284 = 63,3), and a reader computes 64."""
    neg = AlertView(
        theme="service_client",
        label="Service client",
        kind="negativity",
        severity="high",
        first_day=date(2026, 3, 2),
        last_day=date(2026, 3, 2),
        observed=0.917,
        expected=0.284,
        p_value=None,
    )
    fr = build_payload(neg, [], "http://d")["text"]
    assert "92\u202f% de négatifs contre 28\u202f% d'habitude (+64 points)" in fr, fr
    en = build_payload(neg, [], "http://d", language="en")["text"]
    assert "92% negative vs 28% usually (+64 pts)" in en, en
    incident = Incident(
        theme="service_client",
        team="default",
        first_day=date(2026, 3, 2),
        last_day=date(2026, 3, 2),
        severity="high",
        revision=1,
        kinds=["negativity"],
        signals={"negativity": {"observed": 0.917, "expected": 0.284}},
        drivers=[],
        examples=[],
    )
    text = build_incident_payload(incident, "Service client", "http://d")["text"]
    assert "92\u202f% de négatifs contre 28\u202f% d'habitude (+64 points)" in text, text
    # The other way round: 61,6 % and 28,4 % are shown 62 % and 28 %, so +34, not +33.
    half = build_payload(replace(neg, observed=0.616, expected=0.284), [], "http://d")["text"]
    assert "62\u202f% de négatifs contre 28\u202f% d'habitude (+34 points)" in half, half


def test_per_channel_breakdown_reads_as_the_lines_above_it() -> None:
    """« Par canal : • review : négativité 0.786 vs 0.338, volume 23 vs 4.12 » under « 79 % de
    négatifs contre 34 % »: a share as a bare decimal, with a point, in the French message."""
    incident = Incident(
        id=7,
        theme="emballage",
        team="logistics",
        first_day=date(2026, 11, 2),
        last_day=date(2026, 11, 3),
        severity="critical",
        revision=1,
        kinds=["volume", "negativity"],
        signals={
            "volume": {"observed": 33, "expected": 6.21},
            "channels": {
                "review": {
                    "volume": {"observed": 23, "expected": 4.125},
                    "negativity": {"observed": 0.786, "expected": 0.338},
                }
            },
        },
        drivers=[],
        examples=[],
    )
    fr = build_incident_payload(incident, "Emballage", "http://d")["blocks"][2]["text"]["text"]
    assert fr == (
        "Par canal :\n• review : négativité 79\u202f% contre 34\u202f%, volume 23 contre 4,1"
    ), fr
    en = build_incident_payload(incident, "Emballage", "http://d", "en")["blocks"][2]["text"]
    assert en["text"] == "By channel:\n• review: negativity 79% vs 34%, volume 23 vs 4.1", en


def test_long_driver_values_and_quotes_keep_every_section_within_slack_limits() -> None:
    """A metadata value is stored up to 1000 characters: an incident driven by three such
    values had a drivers section of 4,500 characters, over Slack's 3,000, and Slack refused
    the whole message (400 invalid_blocks: `dead`, the incident never told). Quotes full of
    `<` (escaped to `&lt;`) could overflow the examples section the same way."""
    value = " ".join(["Chronopost & Co <Express>"] * 40)
    incident = Incident(
        id=7,
        theme="livraison",
        team="logistics",
        severity="high",
        revision=1,
        first_day=date(2026, 3, 2),
        last_day=date(2026, 3, 3),
        kinds=["volume"],
        signals={"volume": {"observed": 40, "expected": 10}},
        drivers=[
            {"field": f"champ_{i}_" + "x" * 900, "value": value, "share_of_extra": 0.6}
            for i in range(3)
        ],
        examples=["<" * 400, "Colis & <EMAIL> " * 40, "> " * 200],
    )
    payload = build_incident_payload(incident, "Livraison", "http://d")
    alert = build_payload(ALERT, ["<" * 400] * 3, "http://d")
    for blocks in (payload["blocks"], alert["blocks"]):
        for block in blocks:
            texts = [block["text"]] if "text" in block else block.get("elements", [])
            for text in texts:
                if "text" in text and isinstance(text["text"], str):
                    assert len(text["text"]) <= 3000, (block["type"], len(text["text"]))
    drivers = next(b for b in payload["blocks"] if "Ce qui tire" in json_text(b))
    line = drivers["text"]["text"].splitlines()[1]
    # One short piece per value, cut between words and escaped once (no cut entity).
    assert "« Chronopost &amp; Co &lt;Express&gt; Chronopost" in line and line.endswith("… »")
    assert "&amp;…" not in line and "&…" not in json_text(payload)


def test_quotes_are_cut_between_words() -> None:
    """« … c'est inadmis… »: a long verbatim was cut in the middle of a word."""
    text = "Le colis est arrivé écrabouillé et personne ne répond, c'est inadmissible " * 6
    payload = build_payload(ALERT, [text], "http://d")
    section = next(b for b in payload["blocks"] if "Exemples" in json_text(b))
    quote = section["text"]["text"].splitlines()[1]
    assert quote.endswith("…") and len(quote) <= 282
    assert quote[:-1].split()[-1] in [w.strip(",") for w in text.split()], quote
    # A joined emoji cut after its joiner loses the dangling joiner, not the whole quote.
    assert not build_payload(ALERT, ["👨\u200d👩\u200d👧" * 200], "http://d")["text"].endswith(
        "\u200d…"
    )
