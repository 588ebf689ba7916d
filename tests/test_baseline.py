"""TfidfSentiment: fit / predict / save / load on sentences written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.sentiment import build_sentiment
from nlp.sentiment.baseline import TfidfSentiment

POS = [
    "livraison rapide, produit parfait",
    "très bon produit je recommande",
    "super qualité, ravi de mon achat",
    "excellent service, merci",
    "parfait, rien à redire",
    "produit conforme et très pratique",
]
NEG = [
    "colis jamais reçu, arnaque",
    "produit cassé, très déçu",
    "service client nul",
    "horrible, à éviter",
    "remboursement refusé, scandaleux",
    "ne fonctionne pas, nul",
]
NEU = [
    "produit correct sans plus",
    "moyen, ni bon ni mauvais",
    "bof, c'est correct",
    "ça fait le job sans plus",
    "qualité moyenne, correct",
    "passable, sans plus",
]


def test_fit_predict_save_load(tmp_path: Path) -> None:
    texts = POS + NEG + NEU
    labels = ["positive"] * 6 + ["negative"] * 6 + ["neutral"] * 6
    model = TfidfSentiment(C=10.0).fit(texts, labels)
    preds = model.predict(["produit parfait, je recommande", "arnaque, colis jamais reçu"])
    assert [p.label for p in preds] == ["positive", "negative"]
    assert abs(sum(preds[0].probs.values()) - 1.0) < 1e-3
    model.save(tmp_path / "m")
    again = build_sentiment("tfidf", path=tmp_path / "m")
    assert [p.label for p in again.predict(["arnaque, colis jamais reçu"])] == ["negative"]


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        TfidfSentiment().predict(["x"])
    with pytest.raises(ValueError):
        TfidfSentiment().fit(["a", "b"], ["good", "bad"])
    with pytest.raises(FileNotFoundError):
        TfidfSentiment.load(tmp_path)
