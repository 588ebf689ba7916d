"""`verbatim evaluate` metrics on a small labelled file written here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from jobs import cli_models
from jobs.evaluate import (
    gold_sentiment,
    read_rows,
    sentiment_metrics,
    stars_to_label,
    theme_metrics,
)
from jobs.train_sentiment import add_rows, read_labelled
from jobs.train_themes import read_examples
from nlp.taxonomy import load_taxonomy
from nlp.types import POLARITIES

ROWS = [
    {
        "id": 1,
        "text": "Livraison rapide, produit parfait",
        "sentiment": "positive",
        "themes": {"livraison": "positive", "qualite_produit": "positive"},
    },
    {
        "id": 2,
        "text": "Colis jamais reçu, remboursement refusé",
        "stars": 1,
        "themes": {"livraison": "negative", "retours_remboursements": "negative"},
    },
    {
        "id": 3,
        "text": "Prix trop élevé pour ce que c'est",
        "stars": 2,
        "themes": {"prix": "negative"},
    },
    {"id": 4, "text": "Bof, moyen", "stars": 3, "themes": {}},
]


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer config leaks in: default lexicon backend, packaged taxonomy."""
    for key in list(os.environ):
        if key.startswith("VERBATIM_") and not key.startswith("VERBATIM_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VERBATIM_CONFIG", os.devnull)


def test_label_mapping() -> None:
    assert [stars_to_label(s) for s in (1, 2, 3, 4, 5)] == [
        "negative",
        "negative",
        "neutral",
        "positive",
        "positive",
    ]
    assert gold_sentiment({"sentiment": "neutral", "stars": 5}) == "neutral"
    assert gold_sentiment({"text": "x"}) is None


def test_metric_functions() -> None:
    m = sentiment_metrics(
        ["negative", "neutral", "positive", "positive"],
        ["negative", "positive", "positive", "positive"],
    )
    assert m["accuracy"] == 0.75
    assert m["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    assert m["per_class"]["positive"]["precision"] == pytest.approx(2 / 3, abs=1e-3)
    t = theme_metrics(
        [{"a": "positive", "b": "negative"}, {}], [{"a": "negative"}, {"b": "neutral"}], ["a", "b"]
    )
    # TP=1 (a), FP=1 (b in doc 2), FN=1 (b in doc 1): micro-F1 = 0.5
    assert t["micro_f1"] == 0.5
    assert t["polarity_accuracy"] == 0.0 and t["polarity_n"] == 1
    # Polarity confusion (rows = gold) and per-theme polarity accuracy on the found themes.
    assert t["polarity_labels"] == ["negative", "neutral", "positive"]
    assert t["polarity_confusion"] == [[0, 0, 0], [0, 0, 0], [1, 0, 0]]
    assert t["per_theme"]["a"]["polarity_accuracy"] == 0.0
    assert t["per_theme"]["a"]["polarity_n"] == 1 and t["per_theme"]["b"]["polarity_n"] == 0
    # A theme missed where another was predicted, twice: the pair a team should read first.
    t = theme_metrics(
        [
            {"emballage": "negative"},
            {"emballage": "negative", "prix": "positive"},
            {"a": "neutral"},
        ],
        [{"qualite": "negative"}, {"qualite": "negative", "prix": "positive"}, {"b": "neutral"}],
        ["emballage", "qualite", "prix"],
    )
    assert t["confusions"] == [{"gold": "emballage", "predicted": "qualite", "count": 2}]
    assert t["per_theme"]["prix"]["polarity_accuracy"] == 1.0


def test_cli_evaluate_json_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "dev.jsonl"
    data.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n", encoding="utf-8"
    )
    app = typer.Typer()
    cli_models.register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--data", str(data), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert result["rows"] == 4
    assert result["sentiment"]["n"] == 4 and 0.0 <= result["sentiment"]["macro_f1"] <= 1.0
    assert result["themes"]["per_theme"]["livraison"]["support"] == 2
    assert result["themes"]["micro_f1"] > 0.5
    res = runner.invoke(app, ["evaluate", "--data", str(data)])
    assert res.exit_code == 0 and "macro-F1" in res.output and "micro-F1" in res.output
    assert "polarity on found themes" in res.output and "pol-acc" in res.output
    res = runner.invoke(app, ["evaluate", "--data", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 2 and "not found" in res.output


def test_cli_evaluate_aspects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "resto.jsonl"
    rows = [
        {
            "text": "Serveur adorable, plats délicieux",
            "stars": 5,
            "aspects": {"service": "positive", "cuisine": "positive"},
        },
        {
            "text": "Addition salée et cadre bruyant",
            "stars": 2,
            "aspects": {"prix": "negative", "ambiance": "negative"},
        },
    ]
    data.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    app = typer.Typer()
    cli_models.register(app)
    res = CliRunner().invoke(
        app, ["evaluate", "--data", str(data), "--taxonomy", "restaurant", "--json"]
    )
    assert res.exit_code == 0, res.output
    themes = json.loads(res.output)["themes"]
    assert set(themes["per_theme"]) == {"cuisine", "service", "ambiance", "prix"}
    assert themes["micro_f1"] >= 0.75


def test_cli_evaluate_on_a_csv_says_it_reads_jsonl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CSV export with a text column was refused as "no usable rows (need a non-empty
    'text')": the team looked for the column their file has, not for the format."""
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    cli_models.register(app)
    path = tmp_path / "labels.csv"
    path.write_bytes("\ufeffid;text;stars\n1;Livraison rapide;5\n2;Colis cassé;1\n".encode())
    res = CliRunner().invoke(app, ["evaluate", "--data", str(path), "--backend", "lexicon"])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1, res.output
    assert "labels.csv is not JSONL" in res.output, res.output
    # A JSON array on one line (a "save as JSON" export) is no JSONL either: it has texts.
    path = tmp_path / "labels.json"
    rows = [{"text": "Livraison rapide", "stars": 5}, {"text": "Colis cassé", "stars": 1}]
    path.write_text(json.dumps(rows, ensure_ascii=False) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["evaluate", "--data", str(path), "--backend", "lexicon"])
    assert res.exit_code == 2 and "labels.json is not JSONL" in res.output, res.output


def test_stars_off_the_scale_are_no_label_and_french_labels_are_read() -> None:
    """0, 6, a 0-10 score or NaN (json.loads reads `NaN`) were mapped to negative/positive:
    a wrong gold label, silently. French and capitalised labels were silently dropped."""
    assert [stars_to_label(s) for s in ("4", 4.5, 2.5, "1")] == [
        "positive",
        "positive",
        "neutral",
        "negative",
    ]
    for off in (0, 6, 10, -1, float("nan"), float("inf"), True, "", "4 étoiles"):
        assert stars_to_label(off) is None, off
    for text, label in [("Positif", "positive"), ("négatif", "negative"), (" NEUTRE", "neutral")]:
        assert gold_sentiment({"sentiment": text}) == label
    assert gold_sentiment({"sentiment": "Negative", "stars": 5}) == "negative"


def test_sentiment_macro_f1_ignores_a_class_absent_from_gold_and_predictions() -> None:
    """A perfect run on a file without neutral rows scored macro-F1 0.667: neutral (no gold,
    never predicted) counted as an F1 of 0."""
    m = sentiment_metrics(["negative", "positive"], ["negative", "positive"])
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0
    # A class predicted but absent from gold still counts (its false positives are errors).
    m = sentiment_metrics(["negative", "positive"], ["neutral", "positive"])
    assert m["macro_f1"] == pytest.approx((0 + 0 + 1) / 3, abs=1e-4)


def test_theme_macro_f1_counts_a_theme_only_predicted() -> None:
    """A theme the labelled file never has but the model finds on every row (all false
    positives) was left out of the theme macro-F1: a perfect 1.0 beside a micro-F1 of 0.667."""
    gold = [{"livraison": "negative"}, {"livraison": "positive"}]
    pred = [
        {"livraison": "negative", "site_appli": "negative"},
        {"livraison": "positive", "site_appli": "neutral"},
    ]
    t = theme_metrics(gold, pred, ["livraison", "site_appli", "prix"])
    assert t["micro_f1"] == pytest.approx(2 / 3, abs=1e-4)
    # livraison 1.0, site_appli 0.0; prix (neither labelled nor found) is no error.
    assert t["macro_f1"] == 0.5
    assert t["per_theme"]["site_appli"]["predicted"] == 2


def test_labelled_files_from_spreadsheets_read_the_same_everywhere(tmp_path: Path) -> None:
    """A UTF-8 BOM (Excel, Notepad) made the first row unreadable JSON: evaluate and train
    sentiment dropped it silently, train themes refused the file; French or capitalised
    polarities were refused by train themes."""
    rows = [
        {
            "id": 1,
            "text": "Colis en retard",
            "sentiment": "Négatif",
            "themes": {"livraison": "NEGATIVE"},
        },
        {"id": 2, "text": "Prix correct", "stars": "4", "themes": {"prix": "positif"}},
    ]
    path = tmp_path / "excel.jsonl"
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    read = read_rows(path)
    assert (len(read.texts), read.skipped) == (2, 0)
    assert read.sentiment == ["negative", "positive"]
    assert read.themes == [{"livraison": "negative"}, {"prix": "positive"}]
    labelled = read_labelled([path])
    assert (len(labelled.rows.texts), labelled.skipped) == (2, 0)
    texts, labels, _ = read_examples(path, load_taxonomy("ecommerce"))
    assert texts == ["Colis en retard", "Prix correct"]
    assert labels == [{"livraison": "negative"}, {"prix": "positive"}]


def test_train_sentiment_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    """Train sentiment skipped a given but unreadable label (a 0-10 score kept its 1-5 rows
    as stars, 'neg' dropped half a file) and read a cp1252 file with replaced bytes, training
    on mangled texts; `verbatim evaluate` refuses both, naming the file."""
    from jobs.evaluate import LabelError

    good = json.dumps({"id": 1, "text": "Colis en retard", "stars": 1}) + "\n"
    for body, expected in (
        (good + json.dumps({"id": 2, "text": "Top", "stars": 9}) + "\n", "scores.jsonl:2:"),
        (good + json.dumps({"id": 2, "text": "Nul", "sentiment": "bof"}) + "\n", "'bof'"),
        ('{"text": "Très déçu", "stars": 1}\n'.encode("cp1252"), "not UTF-8"),
    ):
        path = tmp_path / "scores.jsonl"
        path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
        with pytest.raises(LabelError, match=expected):
            read_labelled([path])
    # Rows with no label at all (or not JSON) are still skipped and counted, as before.
    path.write_text(good + "not json\n" + json.dumps({"text": "sans note"}) + "\n", "utf-8")
    labelled = read_labelled([path])
    assert (len(labelled.rows.texts), labelled.skipped) == (1, 2)


def test_cli_evaluate_unreadable_input_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cp1252 file, a theme polarity the metrics cannot read ('neg': sklearn raised) or a
    list of theme ids were tracebacks or silently unscored; --errors pointing at a directory
    failed only after the whole analysis."""
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    cli_models.register(app)
    runner = CliRunner()
    good = json.dumps({"text": "Livraison rapide", "sentiment": "positive"})
    cases = {
        "cp1252": ('{"text": "Très bien", "sentiment": "positive"}\n'.encode("cp1252"), "UTF-8"),
        "pol": (
            (
                good + "\n" + json.dumps({"text": "Colis perdu", "themes": {"livraison": "nope"}})
            ).encode(),
            "pol.jsonl:2: theme 'livraison' has polarity 'nope'",
        ),
        "list": (json.dumps({"text": "Colis perdu", "themes": ["livraison"]}).encode(), "object"),
        "stars": (json.dumps({"text": "Bien", "stars": 8}).encode(), "from 1 to 5"),
    }
    for name, (body, expected) in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(body)
        res = runner.invoke(app, ["evaluate", "--data", str(path), "--backend", "lexicon"])
        assert res.exit_code == 2, (name, res.output)
        assert res.output.startswith("error: ") and res.output.count("\n") == 1, res.output
        assert expected in res.output, res.output
    path = tmp_path / "ok.jsonl"
    path.write_text(good + "\n", encoding="utf-8")
    res = runner.invoke(
        app, ["evaluate", "--data", str(path), "--backend", "lexicon", "--errors", str(tmp_path)]
    )
    assert res.exit_code == 2 and "--errors is a directory" in res.output, res.output


def test_cli_evaluate_errors_onto_the_labelled_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--errors` naming the `--data` file (or a link to it) replaced the team's labelled
    file with the misclassified rows, its labels lost for good; refused before the analysis,
    the file as it was."""
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    cli_models.register(app)
    path = tmp_path / "gold.jsonl"
    body = json.dumps({"text": "Colis perdu, service injoignable", "sentiment": "positive"})
    path.write_text(body + "\n", encoding="utf-8")
    (tmp_path / "link.jsonl").symlink_to(path)
    for errors in ("gold.jsonl", "link.jsonl"):
        res = CliRunner().invoke(
            app, ["evaluate", "--data", str(path), "--backend", "lexicon", "--errors", errors]
        )
        assert res.exit_code == 2, res.output
        assert res.output.startswith("error: --errors: ") and "input file itself" in res.output
        assert path.read_text(encoding="utf-8") == body + "\n"


def test_cli_evaluate_refuses_a_theme_the_taxonomy_does_not_know(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gold theme id the taxonomy does not know ('Livraison', another taxonomy's id) was
    scored as a missed theme and the right prediction beside it as a false one, with no word
    of why; `verbatim train themes` refuses the same file naming the line."""
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    cli_models.register(app)
    rows = [
        {"text": "Livraison rapide", "themes": {"livraison": "positive"}},
        {"text": "Colis en retard", "themes": {"Livraison": "negative"}},
    ]
    path = tmp_path / "typo.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = CliRunner().invoke(app, ["evaluate", "--data", str(path), "--backend", "lexicon"])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1, res.output
    assert "typo.jsonl:2: unknown theme id 'Livraison'" in res.output, res.output
    path.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["evaluate", "--data", str(path), "--backend", "lexicon"])
    assert res.exit_code == 0 and "THEMES  n=1" in res.output, res.output


def test_a_sentiment_correction_replaces_every_copy_of_its_text(tmp_path: Path) -> None:
    """Only the last same-text row took the analyst's label: a file holding the text twice
    still trained on the stale label once (the README: a correction wins over a row)."""
    text = "Colis arrivé ouvert, service client injoignable"
    path = tmp_path / "dups.jsonl"
    rows = [
        {"id": "a", "text": text, "stars": 5},
        {"id": "b", "text": "Parfait", "stars": 5},
        {"id": "c", "text": text, "sentiment": "positive"},
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    labelled = read_labelled([path])
    add_rows(labelled, [{"id": "correction:7", "text": text, "sentiment": "negative"}])
    assert labelled.rows.labels == [0, 2, 0]  # negative, positive, negative
    assert len(labelled.rows.texts) == 3


def test_train_sentiment_too_small_says_which_part_is_short(tmp_path: Path) -> None:
    """40 labelled rows over 3 classes were refused as "need at least 25 labelled rows
    covering 2+ classes (got 40; ...)": the default --val-percent 8 left under 5
    validation rows, which the message did not say."""
    from verbatim_cli import app

    path = tmp_path / "forty.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "text": f"avis numéro {i}", "stars": 1 + i % 5}) + "\n"
            for i in range(40)
        ),
        encoding="utf-8",
    )
    res = CliRunner().invoke(
        app, ["train", "sentiment", "--data", str(path), "--out", str(tmp_path / "out")]
    )
    assert res.exit_code == 2, res.output
    assert "got 40 labelled rows" in res.output and "validation at --val-percent 8" in res.output
    assert "raise --val-percent" in res.output


def test_short_and_french_sentiment_labels_are_read_everywhere(tmp_path: Path) -> None:
    """neg/neu/pos (the DEFT convention) were refused by evaluate and train sentiment as
    unreadable labels; theme polarities too. One parser reads every labelled file; junk is
    still an error naming the file and line."""
    from jobs.evaluate import LabelError

    forms = {
        "negative": ["neg", "NEG", " nég ", "négatif", "negatif", "Négative", "negative"],
        "neutral": ["neu", "Neu", "neutre", "neutral"],
        "positive": ["pos", "POS", "positif", "positive"],
    }
    for label, written in forms.items():
        for w in written:
            assert gold_sentiment({"sentiment": w}) == label, w
    rows = [
        {"id": i, "text": f"avis {i}", "sentiment": w, "themes": {"livraison": w}}
        for i, w in enumerate(["neg", "neu", "pos", "Négatif", "neutre", "POSITIF"])
    ]
    path = tmp_path / "deft.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    want = ["negative", "neutral", "positive"] * 2
    read = read_rows(path)
    assert read.sentiment == want and read.skipped == 0
    assert [t["livraison"] for t in read.themes if t] == want
    labelled = read_labelled([path])
    assert [POLARITIES[i] for i in labelled.rows.labels] == want and labelled.skipped == 0
    _, labels, _ = read_examples(path, load_taxonomy("ecommerce"))
    assert [t["livraison"] for t in labels] == want
    path.write_text(
        json.dumps(rows[0]) + "\n" + json.dumps({"text": "x", "sentiment": "bof"}) + "\n", "utf-8"
    )
    for read_file in (read_rows, lambda p: read_labelled([p])):
        with pytest.raises(LabelError, match=r"deft.jsonl:2: .*'bof'.*neg/neu/pos"):
            read_file(path)


def test_sentiment_and_stars_that_disagree_are_counted_and_junk_sentiment_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "positive" with stars 1 was scored and trained as positive without a word; an
    unreadable `sentiment` beside valid stars silently fell back to the stars. Now the
    disagreements are one warning line (count, first line) in evaluate and train sentiment,
    and an unreadable `sentiment` is an error naming its line, stars or not."""
    from jobs.evaluate import LabelError
    from verbatim_cli import app

    monkeypatch.chdir(tmp_path)
    rows = [
        {"id": 1, "text": "Parfait", "sentiment": "positive", "stars": 5},
        {"id": 2, "text": "Bof", "sentiment": "positive", "stars": 1},
        {"id": 3, "text": "Nul", "sentiment": "neg", "stars": 1},
        {"id": 4, "text": "Moyen", "sentiment": "négatif", "stars": 3},
        {"id": 5, "text": "Sans note", "sentiment": "neutral"},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    read = read_rows(path)
    assert read.sentiment == ["positive", "positive", "negative", "negative", "neutral"]
    assert (read.conflicts.count, read.conflicts.first) == (2, f"{path}:2")
    labelled = read_labelled([path])
    assert (labelled.conflicts.count, labelled.conflicts.first) == (2, f"{path}:2")
    warning = (
        f"warning: 2 row(s) have a 'sentiment' that disagrees with their 'stars' "
        f"(first: {path}:2); 'sentiment' was used"
    )
    app_eval = typer.Typer()
    cli_models.register(app_eval)
    res = CliRunner().invoke(app_eval, ["evaluate", "--data", str(path), "--backend", "lexicon"])
    assert res.exit_code == 0, res.output
    assert res.output.count(warning) == 1, res.output
    res = CliRunner().invoke(
        app, ["train", "sentiment", "--data", str(path), "--out", str(tmp_path / "out")]
    )
    assert res.exit_code == 2 and res.output.count(warning) == 1, res.output  # too few rows

    bad = tmp_path / "typo.jsonl"
    bad.write_text(
        json.dumps(rows[0]) + "\n" + json.dumps({"text": "Top", "sentiment": "postive", "stars": 5})
    )
    for read_file in (read_rows, lambda p: read_labelled([p])):
        with pytest.raises(LabelError, match=r"typo.jsonl:2: .*'postive'"):
            read_file(bad)
    res = CliRunner().invoke(app_eval, ["evaluate", "--data", str(bad), "--backend", "lexicon"])
    assert res.exit_code == 2 and "typo.jsonl:2:" in res.output, res.output


def test_blank_lines_are_no_rows_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trailing blank line (or a blank line between rows) printed "skipped: 1" in evaluate
    and train sentiment, as if a row had been dropped; train themes ignored it."""
    from verbatim_cli import app

    monkeypatch.chdir(tmp_path)
    rows = [
        {
            "id": 1,
            "text": "Colis en retard",
            "sentiment": "negative",
            "themes": {"livraison": "neg"},
        },
        {"id": 2, "text": "Prix correct", "stars": 4, "themes": {"prix": "positive"}},
    ]
    path = tmp_path / "blank.jsonl"
    path.write_text(
        "\n" + json.dumps(rows[0]) + "\n  \n" + json.dumps(rows[1]) + "\n\n\r\n", "utf-8"
    )
    read = read_rows(path)
    assert (len(read.texts), read.skipped, read.lines) == (2, 0, [2, 4])
    labelled = read_labelled([path])
    assert (len(labelled.rows.texts), labelled.skipped) == (2, 0)
    assert (labelled.files[0]["rows_read"], labelled.files[0]["rows_skipped"]) == (2, 0)
    assert len(read_examples(path, load_taxonomy("ecommerce"))[0]) == 2
    app_eval = typer.Typer()
    cli_models.register(app_eval)
    res = CliRunner().invoke(app_eval, ["evaluate", "--data", str(path), "--backend", "lexicon"])
    assert res.exit_code == 0 and "rows: 2  skipped: 0" in res.output, res.output
    res = CliRunner().invoke(
        app, ["train", "sentiment", "--data", str(path), "--out", str(tmp_path / "out")]
    )
    assert res.exit_code == 2 and "0 skipped" in res.output, res.output


def test_a_model_card_edit_keeps_the_model_version(tmp_path: Path) -> None:
    """`train` writes MODEL_CARD.md beside the weights; the model version's digest covers the
    weights only, so correcting the card does not make `enrich --reanalyze` re-score all."""
    from core.analysis import weights_digest

    model = tmp_path / "model"
    model.mkdir()
    (model / "heads.npz").write_bytes(b"weights")
    (model / "MODEL_CARD.md").write_text("# card\n", encoding="utf-8")
    before = weights_digest([model])
    (model / "MODEL_CARD.md").write_text("# card, licence line fixed\n", encoding="utf-8")
    assert weights_digest([model]) == before
    (model / "heads.npz").write_bytes(b"retrained")
    assert weights_digest([model]) != before


def test_cli_evaluate_errors_to_dev_stderr_appended_to_a_log_keeps_the_log(
    tmp_path: Path,
) -> None:
    """`verbatim evaluate --errors /dev/stderr 2>> log`: the errors file was reopened with "w",
    which truncated the log (its earlier lines lost). Written through stderr."""
    import os
    import subprocess
    import sys

    data = tmp_path / "gold.jsonl"
    data.write_text(
        json.dumps({"text": "Colis perdu, service client injoignable", "sentiment": "positive"})
        + "\n",
        encoding="utf-8",
    )
    log = tmp_path / "log.txt"
    log.write_text("previous\n", encoding="utf-8")
    env = {
        **os.environ,
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    command = ["evaluate", "--data", str(data), "--backend", "lexicon", "--errors", "/dev/stderr"]
    with log.open("a", encoding="utf-8") as err:
        run = subprocess.run(
            [sys.executable, "-m", "verbatim_cli", *command],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
            timeout=180,
        )
    assert run.returncode == 0, log.read_text(encoding="utf-8")
    written = log.read_text(encoding="utf-8")
    assert written.startswith("previous\n"), written
    assert "Colis perdu" in written  # the misread row, after the log's own line


def test_train_themes_skips_rows_without_themes_instead_of_reading_no_theme(
    tmp_path: Path,
) -> None:
    """A sentiment-only row (a default `verbatim corrections export`) was read by the theme
    trainer as « no theme », teaching every head "not this theme" on a complaint about a
    delivery; it is skipped and counted, while `themes: {}` still means no theme."""
    rows = [
        {"id": 1, "text": "Colis en retard", "themes": {"livraison": "negative"}},
        {"id": 2, "text": "Livraison jamais arrivée", "sentiment": "negative"},
        {"id": 3, "text": "Rien à signaler", "themes": {}},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    texts, labels, unlabelled = read_examples(path, load_taxonomy("ecommerce"))
    assert texts == ["Colis en retard", "Rien à signaler"]
    assert labels == [{"livraison": "negative"}, {}]
    assert unlabelled == [2]
    only_sentiment = tmp_path / "sentiment.jsonl"
    only_sentiment.write_text(json.dumps(rows[1], ensure_ascii=False) + "\n", "utf-8")
    with pytest.raises(ValueError, match="no line has 'themes'"):
        read_examples(only_sentiment, load_taxonomy("ecommerce"))


def test_cli_evaluate_says_why_rows_were_skipped_and_which_have_no_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """« skipped: 3 » alone: a labelled row cut short in the export (not JSON), a row without
    text and one whose score sat in a column evaluate does not read (`note`) were dropped or
    scored on nothing without a word; a file with no label at all was refused only after the
    whole analysis."""
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    cli_models.register(app)
    runner = CliRunner()
    data = tmp_path / "gold.jsonl"
    data.write_text(
        "\n".join(
            [
                json.dumps({"text": "Colis arrivé écrasé", "sentiment": "negative"}),
                '{"text": "Service client nul", "sentiment": "négatif"',
                json.dumps({"text": "", "sentiment": "positive"}),
                json.dumps({"text": "Remboursement reçu", "note": 9}),
                json.dumps({"text": "Livraison rapide", "stars": 5}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    res = runner.invoke(app, ["evaluate", "--data", str(data), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["skipped"] == 2
    assert (
        f"2 row(s) of {data} skipped: 1 not JSON (first: line 2), "
        "1 without a non-empty 'text' (first: line 3)"
    ) in res.stderr
    assert f"1 row(s) of {data} have no label" in res.stderr and "line 4" in res.stderr

    def no_analysis(*_args: object) -> None:
        raise AssertionError("the analyzer was built for a file without labels")

    monkeypatch.setattr(cli_models, "_analyzer", no_analysis)
    data.write_text(json.dumps({"text": "Remboursement reçu", "note": 9}) + "\n", "utf-8")
    res = runner.invoke(app, ["evaluate", "--data", str(data)])
    assert res.exit_code == 2 and "no labels found" in res.output, res.output
