"""Analyzer contract and `verbatim analyze` end to end on a JSONL file we write here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.analysis import analysis_record, build_analyzer
from core.settings import load_settings
from jobs import cli_models
from jobs.analyze import analyze_file
from nlp.analyzer import Analyzer, DocAnalysis
from nlp.sentiment.lexicon import LexiconSentiment
from nlp.taxonomy import load_taxonomy
from nlp.themes import RuleThemeDetector

ROWS = [
    {"id": "r1", "text": "Livraison rapide mais produit cassé 😡", "source": "test", "stars": 2},
    {"id": "r2", "text": "Colis jamais reçu, service client injoignable. Arnaque !"},
    {"id": "r3", "text": "Parfait, rien à redire, je recommande"},
]


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    tax = load_taxonomy("ecommerce")
    sentiment = LexiconSentiment()
    return Analyzer(sentiment, RuleThemeDetector(tax, scorer=sentiment), tax)


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer config leaks in: default lexicon backend, packaged taxonomy."""
    for key in list(os.environ):
        if key.startswith("VERBATIM_") and not key.startswith("VERBATIM_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("VERBATIM_CONFIG", os.devnull)


def test_analyzer_contract(analyzer: Analyzer) -> None:
    docs = analyzer.analyze([r["text"] for r in ROWS] + ["The parcel never arrived, awful"])
    assert all(isinstance(d, DocAnalysis) for d in docs)
    assert analyzer.model_version.startswith("lexicon-")
    r1, r2, r3, en = docs
    assert r1.is_french and r1.language == "fr"
    assert {m.theme: m.polarity for m in r1.themes} == {
        "livraison": "positive",
        "qualite_produit": "negative",
    }
    assert r2.sentiment.label == "negative" and r3.sentiment.label == "positive"
    assert r2.severity > r1.severity > r3.severity
    assert r2.severity >= 0.8  # alarm term + negative delivery/service
    assert not en.is_french and en.language == "en"
    record = analysis_record(r1)
    assert set(record["sentiment"]) >= {"label", "score", "stars"}
    assert record["themes"][0].keys() >= {"id", "polarity", "score", "evidence"}
    json.dumps(record)  # JSON-able


def test_analyze_file_keeps_fields_and_reports_bad_lines(
    analyzer: Analyzer, tmp_path: Path
) -> None:
    src = tmp_path / "in.jsonl"
    lines = [
        json.dumps(ROWS[0], ensure_ascii=False),
        '{"id": "broken", "text": "pas fini',
        json.dumps({"id": "no-text"}),
        json.dumps({"id": "empty", "text": "   "}),
        json.dumps({"id": "num", "text": 12}),
        "",
        # A lone surrogate escape (in the text, in an extra field) and nesting too deep for
        # the JSON reader: each stopped the run, and the lines after it were lost.
        '{"id": "lone", "text": "mauvais \\ud800 produit"}',
        '{"id": "lone-extra", "text": "colis ok", "note": "x \\udfff"}',
        '{"id": "deep", "text": "ok", "meta": ' + "[" * 5000 + "]" * 5000 + "}",
        # An escaped emoji is a valid surrogate pair: analysed as any text.
        '{"id": "pair", "text": "Colis abîmé \\ud83d\\ude21"}',
        json.dumps(ROWS[1], ensure_ascii=False),
        json.dumps(ROWS[2], ensure_ascii=False),
    ]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dst = tmp_path / "out.jsonl"
    summary = analyze_file(analyzer, src, dst, batch_size=2)
    out = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    ids = ["r1", "broken", "no-text", "empty", "num", "lone", "lone-extra", "deep", "pair"]
    assert [o.get("id") for o in out] == [*ids, "r2", "r3"]
    assert summary.total == 11 and summary.analyzed == 4 and summary.errors == 7
    assert out[0]["source"] == "test" and out[0]["stars"] == 2  # input fields kept
    assert out[0]["sentiment"]["label"] in ("negative", "neutral", "positive")
    ev = out[0]["themes"][0]["evidence"]
    assert ROWS[0]["text"][ev["start"] : ev["end"]] == ev["text"]
    for bad in out[1:8]:
        assert "error" in bad and "sentiment" not in bad
    assert "invalid JSON" in out[1]["error"]
    assert all("surrogate" in o["error"] for o in out[5:7])
    assert "nested too deeply" in out[7]["error"]
    assert out[8]["text"] == "Colis abîmé 😡" and out[8]["sentiment"]["label"] == "negative"


def test_analyze_invisible_text_is_an_empty_line(analyzer: Analyzer, tmp_path: Path) -> None:
    """A text of zero-width or control characters only is no text (ingest rejects it): it was
    analysed, "positive" with a high score, in the JSONL and CSV paths alike."""
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"id": "zw", "text": " \u200b\u200b "}, {"id": "ctl", "text": "\x00\x07"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    summary = analyze_file(analyzer, src, dst)
    out = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert summary.analyzed == 0 and summary.errors == 2
    assert all(o["error"] == "field 'text' is empty" and "sentiment" not in o for o in out)
    csv = tmp_path / "in.csv"
    csv.write_text("id;texte\n1;\u200b\n2;Colis perdu\n", encoding="utf-8")
    summary = analyze_file(analyzer, csv, dst)
    out = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert summary.analyzed == 1 and out[0]["error"] == "field 'texte' is empty"


# After masking, a verbatim can be placeholders only; others are punctuation, a link, a mention
# or a number. Every backend read them as praise (« <EMAIL> » positive 0.94 with the default
# model, 0.5 with the lexicon), inflating the positive share of every figure.
NOTHING_TO_JUDGE = [
    "<EMAIL>",
    "<PHONE>",
    "<IBAN>",
    "<PHONE> <EMAIL>",
    "...",
    "??",
    "!!!",
    "https://www.example.com/commande/123",
    "@SNCF",
    "12345",
    "06 12 34 56 78",
]


def test_texts_with_nothing_to_judge_are_neutral_without_content(analyzer: Analyzer) -> None:
    docs = analyzer.analyze(NOTHING_TO_JUDGE)
    for text, doc in zip(NOTHING_TO_JUDGE, docs, strict=True):
        assert doc.sentiment.label == "neutral" and doc.sentiment.score < 0.5, text
        assert doc.no_content, text
        assert doc.themes == [] and doc.severity == 0.0, text
        record = analysis_record(doc)
        assert record["sentiment"]["no_content"] is True and "stars" not in record["sentiment"]
    # Emoji, emoticons and marks carry an opinion: scored as before.
    scored = analyzer.analyze(["😡😡", "👍", ":)", ":-(", "5/5", "Mon numéro : <PHONE>"])
    assert not any(d.no_content for d in scored)
    assert [d.sentiment.label for d in scored[:2]] == ["negative", "positive"]
    assert "no_content" not in analysis_record(scored[0])["sentiment"]
    # Named in the version: `enrich --reanalyze` re-scores the analyses stored before the rule.
    assert analyzer.model_version.endswith("+nc1")


def test_cli_analyze_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray verbatim.toml
    app = typer.Typer()
    cli_models.register(app)
    runner = CliRunner()
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps(ROWS[0], ensure_ascii=False)
        + "\n{oops\n"
        + json.dumps(ROWS[2], ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    dst = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["analyze", str(src), "-o", str(dst)])
    assert res.exit_code == 0, res.output
    out = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert len(out) == 3 and "error" in out[1] and out[2]["sentiment"]["label"] == "positive"
    assert "1 bad line" in res.output

    res = runner.invoke(app, ["analyze", str(tmp_path / "missing.jsonl"), "-o", str(dst)])
    assert res.exit_code == 2 and "input file not found" in res.output
    bad_tax = tmp_path / "bad.yaml"
    bad_tax.write_text("name: x\nthemes: []\n", encoding="utf-8")
    res = runner.invoke(app, ["analyze", str(src), "-o", str(dst), "--taxonomy", str(bad_tax)])
    assert res.exit_code == 2 and "bad taxonomy" in res.output
    res = runner.invoke(app, ["analyze", str(src), "-o", str(dst), "--backend", "nope"])
    assert res.exit_code == 2 and "unknown sentiment backend" in res.output


def test_cli_analyze_masks_personal_data_as_ingest_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`verbatim analyze` wrote every input field back as given: the text with its phone
    number and e-mail, an `auteur` column, a `{"jean@x.fr": …}` key, while ingest and
    `POST /analyze` mask them before the analysis. Masked now (the `id` kept, to join the
    output to the input), evidence spans cut from the masked text; `--no-mask` as given."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VERBATIM_PII_NER", "false")  # the rules are enough here, and faster
    app = typer.Typer()
    cli_models.register(app)
    text = "Livraison en retard, rappelez-moi au 06 12 34 56 78 ou jean.dupont@free.fr"
    row = {"id": "0612345678", "text": text, "auteur": "jean.dupont@free.fr",
           "extra": {"marie@x.fr": ["06 98 76 54 32"]}, "stars": 2}  # fmt: skip
    broken = {"id": "b", "text": 12, "contact": "paul@x.fr"}
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps(row) + "\n" + json.dumps(broken) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["analyze", str(src), "-o", str(dst)])
    assert res.exit_code == 0, res.output
    out, bad = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert out["text"] == "Livraison en retard, rappelez-moi au <PHONE> ou <EMAIL>"
    assert out["auteur"] == "<EMAIL>" and out["extra"] == {"<EMAIL>": ["<PHONE>"]}
    assert out["id"] == "0612345678" and out["stars"] == 2
    ev = out["themes"][0]["evidence"]
    assert out["text"][ev["start"] : ev["end"]] == ev["text"]
    assert "error" in bad and bad["contact"] == "<EMAIL>"  # an error line too
    assert "free.fr" not in dst.read_text(encoding="utf-8")
    # CSV alike.
    csv = tmp_path / "in.csv"
    csv.write_text(f"id;avis;auteur\n1;{text};jean.dupont@free.fr\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["analyze", str(csv), "-o", str(dst)])
    assert res.exit_code == 0, res.output
    (out,) = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert out["avis"].endswith("<PHONE> ou <EMAIL>") and out["auteur"] == "<EMAIL>"
    res = CliRunner().invoke(app, ["analyze", str(src), "-o", str(dst), "--no-mask"])
    assert res.exit_code == 0, res.output
    out, bad = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert out["text"] == text and out["auteur"] == "jean.dupont@free.fr"
    assert bad["contact"] == "paul@x.fr"


def test_build_analyzer_restaurant() -> None:
    analyzer = build_analyzer(load_settings(), taxonomy=load_taxonomy("restaurant"))
    doc = analyzer.analyze(["Serveur très aimable mais plats froids et addition salée"])[0]
    got = {m.theme: m.polarity for m in doc.themes}
    assert got.get("service") == "positive" and got.get("cuisine") == "negative"


def test_analyze_refuses_an_xlsx_workbook(analyzer: Analyzer, tmp_path: Path) -> None:
    """`verbatim ingest` reads .xlsx now, so the binary-file check lets workbooks through:
    `analyze` (CSV or JSONL only) must still refuse one, not read the archive as JSONL."""
    from openpyxl import Workbook

    from jobs.analyze import InputError

    src = tmp_path / "avis.xlsx"
    book = Workbook()
    assert book.active is not None
    book.active.append(["text"])
    book.active.append(["Très bien"])
    book.save(src)
    with pytest.raises(InputError, match="Excel workbook"):
        analyze_file(analyzer, src, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
