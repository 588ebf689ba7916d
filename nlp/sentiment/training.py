"""Fine-tune the top layers of a TextEncoder for 3-class sentiment + 5-class stars.

CPU-first recipe: the frozen lower layers run once over the data (bf16 where the CPU has it) and
their outputs are cached; each epoch then only runs and back-propagates the top layers. Batches
group texts of similar length, so short reviews cost little. The best epoch on the validation
split is kept; a temperature and per-class biases are then fitted on that split (the biases
maximise macro-F1: the neutral class is under-predicted otherwise).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nlp.encoder import TextEncoder, mean_pool
from nlp.sentiment.embedded import (
    STARS,
    EmbeddedSentiment,
    SentimentHeadConfig,
    autocast,
    calibrated_probs,
    class_probs,
    irony_shift,
    make_heads,
    mixed_log_probs,
    run_bottom_layers,
    run_top_layers,
    softmax,
    star_classes,
)
from nlp.sentiment.labelled import IGNORE, LabelledTexts  # LabelledTexts: re-exported
from nlp.text.normalize import encoder_text
from nlp.types import POLARITIES

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 2
    batch_size: int = 32
    lr_layers: float = 1e-4
    lr_heads: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    stars_weight: float = 0.5  # weight of the star head's loss
    # Multiplies the 1/sqrt(frequency) class weights (negative, neutral, positive): the 3-star
    # class is the one every source under-predicts.
    class_boost: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # What the calibration maximises (grouped_macro_f1's `balance`): "skewed" scores a source
    # dominated by one class as if stratified, so its rare complaints and 3-star reviews are
    # not traded away for the dominant class.
    calibration: str = "skewed"
    seed: int = 13
    device: str = "auto"  # "auto": the GPU when torch sees one, else the CPU
    # Distillation (with fit_sentiment's `teacher_logits`): the loss is (1 - w) x the labels'
    # loss + w x T^2 x KL(teacher || student) on both heads' logits softened by T.
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    # With fit_sentiment's `teacher_vectors`: + v x (1 - cosine) between the student's pooled
    # vector and the teacher's, so what reads the document vector (the theme heads) keeps
    # working on a student's vectors.
    vector_weight: float = 0.0


def _class_f1(g: np.ndarray, p: np.ndarray, w: np.ndarray, c: int) -> float:
    tp = w[(g == c) & (p == c)].sum()
    fp = w[(g != c) & (p == c)].sum()
    fn = w[(g == c) & (p != c)].sum()
    return 0.0 if tp == 0 else float(2 * tp / (2 * tp + fp + fn))


def macro_f1(
    gold: Sequence[int] | np.ndarray,
    pred: Sequence[int] | np.ndarray,
    n: int = len(POLARITIES),
    weights: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Macro-F1 over the classes (of `n`) present in gold or predictions, as `verbatim
    evaluate` scores: a class absent from both (no neutral in 1/5-star data, none predicted)
    is no error and does not count as an F1 of 0. The validation figures printed and recorded
    by training; `weights` weigh rows."""
    g, p = np.asarray(gold), np.asarray(pred)
    w = np.ones(len(g)) if weights is None else np.asarray(weights, dtype=float)
    seen = [c for c in range(n) if (g == c).any() or (p == c).any()]
    return float(np.mean([_class_f1(g, p, w, c) for c in seen])) if seen else 0.0


def macro_f1_all_classes(
    gold: Sequence[int] | np.ndarray,
    pred: Sequence[int] | np.ndarray,
    n: int = len(POLARITIES),
    weights: Sequence[float] | np.ndarray | None = None,
) -> float:
    """Macro-F1 over all `n` classes, an absent class counting as 0; `weights` weigh rows
    (class-balanced scoring). What the calibration maximises (grouped_macro_f1, fit_biases):
    kept as it was so that a re-fit (benchmarks/recalibrate_sentiment.py) finds the same
    biases as before; not the figure to report (see macro_f1)."""
    g, p = np.asarray(gold), np.asarray(pred)
    w = np.ones(len(g)) if weights is None else np.asarray(weights, dtype=float)
    return float(np.mean([_class_f1(g, p, w, c) for c in range(n)]))


def class_balanced_weights(gold: Sequence[int]) -> np.ndarray:
    """Row weights that give every class the same total weight (a stratified test set)."""
    g = np.asarray(gold)
    counts = np.bincount(g, minlength=int(g.max(initial=0)) + 1).astype(float)
    return 1.0 / counts[g]


class _Cache:
    """Per-example hidden states after the frozen layers (fp16/bf16 on CPU memory)."""

    def __init__(self, states: list[Any]) -> None:
        self.states = states
        self.lengths = [int(s.shape[0]) for s in states]

    def batch(self, rows: Sequence[int], device: str = "cpu") -> tuple[Any, Any]:
        import torch

        width = max(self.lengths[i] for i in rows)
        hidden = torch.zeros((len(rows), width, self.states[rows[0]].shape[1]))
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            hidden[r, : self.lengths[i]] = self.states[i].float()
            mask[r, : self.lengths[i]] = 1
        return hidden.to(device), mask.to(device)


def cache_frozen(
    encoder: TextEncoder,
    texts: Sequence[str],
    stop: int,
    max_length: int,
    progress: Callable[[int, int], None] | None = None,
) -> _Cache:
    import torch

    ids = encoder.token_ids([encoder_text(t) for t in texts], max_length)
    states: list[Any] = [None] * len(ids)
    done = 0
    device = str(next(encoder.model.parameters()).device)
    with torch.inference_mode(), autocast(device):
        for rows, input_ids, mask in encoder.batches(ids):
            hidden = run_bottom_layers(encoder.model, input_ids.to(device), mask.to(device), stop)
            for r, i in enumerate(rows):  # cached in host memory, bf16: half of fp32
                states[i] = hidden[r, : len(ids[i])].to("cpu", torch.bfloat16).clone()
            done += len(rows)
            if progress:
                progress(done, len(ids))
    return _Cache(states)


def _length_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length rows (sorted inside chunks of 50 batches)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _pooled(
    encoder: TextEncoder, heads: Any, cache: _Cache, rows: Sequence[int], start: int
) -> Any:
    hidden, mask = cache.batch(rows, str(next(heads.parameters()).device))
    top = run_top_layers(encoder.model, hidden, mask, start)
    return mean_pool(top.float(), mask)


def _forward(
    encoder: TextEncoder, heads: Any, cache: _Cache, rows: Sequence[int], start: int
) -> tuple[Any, Any]:
    return heads(_pooled(encoder, heads, cache, rows, start))


def _predict_logits(
    encoder: TextEncoder, heads: Any, cache: _Cache, start: int, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(sentiment, stars) logits of cached rows."""
    import torch

    encoder.model.eval()
    heads.eval()
    order = sorted(range(len(cache.lengths)), key=lambda i: cache.lengths[i])
    out = np.zeros((len(order), len(POLARITIES)), dtype=np.float32)
    out_stars = np.zeros((len(order), len(STARS)), dtype=np.float32)
    device = str(next(heads.parameters()).device)
    with torch.inference_mode(), autocast(device):
        for j in range(0, len(order), batch_size):
            rows = order[j : j + batch_size]
            logits, star_logits = _forward(encoder, heads, cache, rows, start)
            out[rows] = logits.float().cpu().numpy()
            out_stars[rows] = star_logits.float().cpu().numpy()
    return out, out_stars


MIN_GROUP_ROWS = 30  # smaller groups are pooled into one for calibration


SKEWED_SHARE = 0.8  # a group whose dominant class is above this share is "skewed"
CALIBRATIONS = ("natural", "skewed", "balanced")


def grouped_macro_f1(
    gold: Sequence[int] | np.ndarray,
    pred: Sequence[int] | np.ndarray,
    groups: Sequence[str] | None,
    balance: str = "natural",
) -> float:
    """Mean of per-group macro-F1 (one source must not drown the others), or plain macro-F1,
    each over all three classes (macro_f1_all_classes): the calibration's objective, unchanged.

    `balance` "balanced" scores every group as if its classes were equally frequent (what a test
    set stratified by class measures); "skewed" does so only for groups whose dominant class
    is over SKEWED_SHARE (a 97%-positive review site: its plain macro-F1 rests on a few dozen
    rare rows, which the calibration would otherwise trade away); "natural": as they come."""
    if balance not in CALIBRATIONS:
        raise ValueError(f"balance must be one of {CALIBRATIONS}: {balance!r}")
    keys = list(groups) if groups else [""] * len(gold)
    sizes: dict[str, int] = {}
    for g in keys:
        sizes[g] = sizes.get(g, 0) + 1
    keyed = np.asarray([g if sizes[g] >= MIN_GROUP_ROWS else "(small)" for g in keys])
    y, p = np.asarray(gold), np.asarray(pred)
    scores = []
    for key in sorted(set(keyed.tolist())):
        idx = keyed == key
        share = np.bincount(y[idx]).max() / idx.sum()
        weigh = balance == "balanced" or (balance == "skewed" and share > SKEWED_SHARE)
        w = class_balanced_weights(y[idx]) if weigh else None
        scores.append(macro_f1_all_classes(y[idx], p[idx], weights=w))
    return float(np.mean(scores))


def fit_temperature(probs: Callable[[float], np.ndarray], gold: Sequence[int]) -> float:
    """The temperature (0.5-3.0) whose probabilities have the lowest NLL on `gold`."""
    y = np.asarray(gold)
    best_t, best_nll = 1.0, math.inf
    for t in np.arange(0.5, 3.01, 0.05):
        p = probs(float(t))
        nll = -float(np.mean(np.log(p[np.arange(len(y)), y] + 1e-9)))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def fit_biases(
    log_probs: np.ndarray,
    gold: Sequence[int],
    groups: Sequence[str] | None = None,
    balance: str = "natural",
) -> list[float]:
    """Per-class shifts (negative, neutral; positive fixed at 0) that maximise the mean
    per-group macro-F1 (see grouped_macro_f1 for `balance`)."""
    y = np.asarray(gold)
    grid = np.arange(-1.0, 1.01, 0.1)
    best_bias, best_f1 = [0.0, 0.0, 0.0], -1.0
    for b_neg in grid:
        for b_neu in grid:
            bias = [float(b_neg), float(b_neu), 0.0]
            pred = (log_probs + np.asarray(bias)).argmax(1)
            f1 = grouped_macro_f1(y, pred, groups, balance)
            # Prefer small shifts on ties: they generalise better.
            if f1 > best_f1 + 1e-9 or (
                abs(f1 - best_f1) <= 1e-9 and abs(b_neg) + abs(b_neu) < sum(map(abs, best_bias))
            ):
                best_bias, best_f1 = bias, f1
    return [round(b, 2) for b in best_bias]


def fit_calibration(
    logits: np.ndarray,
    gold: Sequence[int],
    groups: Sequence[str] | None = None,
    balance: str = "natural",
) -> tuple[float, list[float]]:
    """Temperature (min NLL), then class biases (max mean per-group macro-F1, see
    grouped_macro_f1 for `balance`) on held-out logits."""
    t = fit_temperature(lambda t: calibrated_probs(logits, t, [0.0, 0.0, 0.0]), gold)
    return t, fit_biases(logits / t, gold, groups, balance)


STAR_WEIGHT = 0.5  # equal weights: validation macro-F1 is flat from 0.5 to 0.7


def fit_head_calibration(
    sent: np.ndarray,
    stars: np.ndarray,
    gold: Sequence[int],
    groups: Sequence[str] | None = None,
    balance: str = "natural",
    star_weight: float = STAR_WEIGHT,
) -> dict[str, Any]:
    """Temperatures of both heads (min NLL of their class probabilities), then the biases of
    their mix: the calibration fields of SentimentHeadConfig."""
    t_sent = fit_temperature(lambda t: softmax(sent / t), gold)
    t_star = fit_temperature(lambda t: star_classes(softmax(stars / t)), gold)
    mixed = mixed_log_probs(sent, stars, t_sent, t_star, star_weight)
    return {
        "temperature": t_sent,
        "star_temperature": t_star,
        "star_weight": star_weight,
        "class_bias": fit_biases(mixed, gold, groups, balance),
    }


def fit_sentiment(
    encoder: TextEncoder,
    train: LabelledTexts,
    val: LabelledTexts,
    head_config: SentimentHeadConfig | None = None,
    config: TrainConfig | None = None,
    report: Callable[[str], None] = log.info,
    init_heads: Any | None = None,
    teacher_logits: tuple[np.ndarray, np.ndarray] | None = None,
    teacher_vectors: np.ndarray | None = None,
) -> EmbeddedSentiment:
    """Fine-tune `encoder`'s top layers in place and return the calibrated model.

    `init_heads` warm-starts from trained heads (continued training of a loaded delta).
    `teacher_logits` (sentiment (n, 3), stars (n, 5), one row per training text) are what a
    student learns from with TrainConfig.distill_weight > 0; `teacher_vectors` (n, hidden), the
    teacher's pooled vectors, with TrainConfig.vector_weight > 0."""
    import torch

    hc = head_config or SentimentHeadConfig()
    tc = config or TrainConfig()
    n_layers = len(encoder.model.encoder.layer)
    if not 1 <= hc.trainable_layers <= n_layers:
        raise ValueError(f"trainable_layers must be in 1..{n_layers}")
    if not train.texts or not val.texts:
        raise ValueError("training and validation sets must not be empty")
    if teacher_logits is not None and any(len(t) != len(train.texts) for t in teacher_logits):
        raise ValueError("teacher_logits need one row per training text")
    if tc.distill_weight > 0 and teacher_logits is None:
        raise ValueError("distill_weight > 0 needs teacher_logits")
    if teacher_vectors is not None and len(teacher_vectors) != len(train.texts):
        raise ValueError("teacher_vectors need one row per training text")
    if tc.vector_weight > 0 and teacher_vectors is None:
        raise ValueError("vector_weight > 0 needs teacher_vectors")
    start = n_layers - hc.trainable_layers
    device = ("cuda" if torch.cuda.is_available() else "cpu") if tc.device == "auto" else tc.device
    encoder.model.to(device)
    torch.manual_seed(tc.seed)
    rng = random.Random(tc.seed)

    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done == total or done % 2000 < 64:
            report(f"caching frozen layers: {done}/{total} ({time.perf_counter() - t0:.0f}s)")

    train_cache = cache_frozen(encoder, train.texts, start, hc.max_length, progress)
    val_cache = cache_frozen(encoder, val.texts, start, hc.max_length)
    report(f"cached {len(train.texts)} + {len(val.texts)} texts in {time.perf_counter() - t0:.0f}s")

    for p in encoder.model.parameters():
        p.requires_grad_(False)
    top_params = [p for layer in encoder.model.encoder.layer[start:] for p in layer.parameters()]
    for p in top_params:
        p.requires_grad_(True)
    heads = (
        init_heads if init_heads is not None else make_heads(encoder.hidden_size, hc.dropout)
    ).to(device)
    optimizer = torch.optim.AdamW(
        [
            {"params": top_params, "lr": tc.lr_layers},
            {"params": list(heads.parameters()), "lr": tc.lr_heads},
        ],
        weight_decay=tc.weight_decay,
    )

    counts = np.bincount(np.asarray(train.labels), minlength=len(POLARITIES)) + 1
    class_weight = torch.tensor(
        (counts.sum() / counts) ** 0.5 * np.asarray(tc.class_boost), dtype=torch.float32
    )
    class_weight = class_weight / class_weight.mean()
    sent_loss = torch.nn.CrossEntropyLoss(weight=class_weight.to(device))
    star_loss = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)
    labels = torch.tensor(train.labels, device=device)
    stars = torch.tensor(train.stars, device=device)
    teacher = (
        [torch.tensor(t, dtype=torch.float32, device=device) for t in teacher_logits]
        if teacher_logits is not None and tc.distill_weight > 0
        else None
    )
    teacher_vec = (
        torch.tensor(teacher_vectors, dtype=torch.float32, device=device)
        if teacher_vectors is not None and tc.vector_weight > 0
        else None
    )

    steps_per_epoch = math.ceil(len(train.texts) / tc.batch_size)
    total = steps_per_epoch * tc.epochs
    warm = max(1, int(total * tc.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / (total - warm + 1))
    )

    best_f1, best_state, history = -1.0, None, []
    step = 0
    for epoch in range(tc.epochs):
        encoder.model.train()
        heads.train()
        t_epoch, running = time.perf_counter(), 0.0
        for b, rows in enumerate(_length_batches(train_cache.lengths, tc.batch_size, rng)):
            with autocast(device):
                pooled = _pooled(encoder, heads, train_cache, rows, start)
                s_logits, r_logits = heads(pooled)
            idx = torch.tensor(rows, device=device)
            loss = sent_loss(s_logits.float(), labels[idx])
            if (stars[idx] != IGNORE).any():
                loss = loss + tc.stars_weight * star_loss(r_logits.float(), stars[idx])
            if teacher is not None:
                soft = _distill_loss(s_logits, teacher[0][idx], tc.distill_temperature)
                soft = soft + tc.stars_weight * _distill_loss(
                    r_logits, teacher[1][idx], tc.distill_temperature
                )
                loss = (1 - tc.distill_weight) * loss + tc.distill_weight * soft
            if teacher_vec is not None:
                cosine = torch.nn.functional.cosine_similarity(pooled.float(), teacher_vec[idx])
                loss = loss + tc.vector_weight * (1 - cosine).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(top_params, 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            running += float(loss.detach())
            if (b + 1) % 100 == 0:
                rate = (b + 1) * tc.batch_size / (time.perf_counter() - t_epoch)
                report(
                    f"epoch {epoch + 1} step {b + 1}/{steps_per_epoch} "
                    f"loss {running / (b + 1):.4f} ({rate:.1f} ex/s)"
                )
        val_logits = _predict_logits(encoder, heads, val_cache, start)
        f1 = macro_f1(val.labels, val_logits[0].argmax(1).tolist())
        history.append(
            {
                "epoch": epoch + 1,
                "val_macro_f1": round(f1, 4),
                "seconds": round(time.perf_counter() - t_epoch),
            }
        )
        report(f"epoch {epoch + 1}: val macro-F1 {f1:.4f} ({time.perf_counter() - t_epoch:.0f}s)")
        if f1 > best_f1:
            best_f1 = f1
            best_state = (
                {
                    k: v.detach().clone()
                    for k, v in encoder.model.state_dict().items()
                    if _layer_index(k) >= start
                },
                {k: v.detach().clone() for k, v in heads.state_dict().items()},
                val_logits,
            )
    assert best_state is not None
    encoder.model.load_state_dict(best_state[0], strict=False)
    heads.load_state_dict(best_state[1])
    encoder.model.to("cpu")  # inference and saving happen on the host
    heads.to("cpu")
    for p in encoder.model.parameters():
        p.requires_grad_(False)
    # The star head joins the class probabilities only when it was trained (rows with stars).
    has_stars = any(s != IGNORE for s in train.stars)
    calibrated = _calibrate(hc, *best_state[2], val, tc.calibration, has_stars)
    temperature, bias = hc.temperature, hc.class_bias
    hc.training = {
        "train_rows": len(train.texts),
        "val_rows": len(val.texts),
        "epochs": tc.epochs,
        "history": history,
        "batch_size": tc.batch_size,
        "lr_layers": tc.lr_layers,
        **(
            {"distill_weight": tc.distill_weight, "distill_temperature": tc.distill_temperature}
            if teacher is not None
            else {}
        ),
        **({"vector_weight": tc.vector_weight} if teacher_vec is not None else {}),
        "device": device,
        "val_macro_f1_raw": round(best_f1, 4),
        "val_macro_f1_calibrated": round(macro_f1(val.labels, calibrated), 4),
        "val_group_macro_f1_calibrated": round(
            grouped_macro_f1(val.labels, calibrated, val.groups), 4
        ),
        "val_group_skewed_macro_f1_calibrated": round(
            grouped_macro_f1(val.labels, calibrated, val.groups, "skewed"), 4
        ),
        "calibration": tc.calibration,
        "seconds": round(time.perf_counter() - t0),
    }
    report(
        f"calibration: temperature {temperature:.2f}, biases {bias}; "
        f"val macro-F1 {hc.training['val_macro_f1_calibrated']:.4f}"
    )
    return EmbeddedSentiment(encoder, heads.eval(), hc)


def _distill_loss(student: Any, teacher: Any, temperature: float) -> Any:
    """T^2 x KL(teacher || student) of temperature-softened logits (Hinton et al., 2015)."""
    import torch.nn.functional as F

    log_p = F.log_softmax(student.float() / temperature, dim=-1)
    log_q = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_p, log_q, log_target=True, reduction="batchmean") * temperature**2


def _calibrate(
    hc: SentimentHeadConfig,
    sent: np.ndarray,
    stars: np.ndarray,
    val: LabelledTexts,
    balance: str,
    use_stars: bool,
) -> list[int]:
    """Fit hc's calibration fields on validation logits; returns the calibrated predictions."""
    sent = irony_shift(sent, val.texts, hc.irony_margin)
    stars = irony_shift(stars, val.texts, hc.irony_margin, stars=True)
    fitted = fit_head_calibration(
        sent, stars, val.labels, val.groups, balance, STAR_WEIGHT if use_stars else 0.0
    )
    for key, value in fitted.items():
        setattr(hc, key, value)
    return class_probs(sent, stars, hc).argmax(1).tolist()


def recalibrate(
    model: EmbeddedSentiment, val: LabelledTexts, balance: str = "skewed", use_stars: bool = True
) -> EmbeddedSentiment:
    """Re-fit a trained model's calibration (head temperatures, star weight, class biases) on
    held-out rows, in place; the encoder and the heads are unchanged."""
    sent, stars = model.logits(val.texts)
    pred = _calibrate(model.config, sent, stars, val, balance, use_stars)
    model.config.training.update(
        {
            "calibration": balance,
            "calibration_rows": len(val.texts),
            "val_macro_f1_calibrated": round(macro_f1(val.labels, pred), 4),
            "val_group_macro_f1_calibrated": round(
                grouped_macro_f1(val.labels, pred, val.groups), 4
            ),
            "val_group_skewed_macro_f1_calibrated": round(
                grouped_macro_f1(val.labels, pred, val.groups, "skewed"), 4
            ),
        }
    )
    return model


def _layer_index(name: str) -> int:
    parts = name.split(".")
    if parts[:2] == ["encoder", "layer"]:
        return int(parts[2])
    return -1
