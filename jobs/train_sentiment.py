"""`verbatim train sentiment`: fine-tune the embedded encoder on a company's own rated feedback.

Input: JSONL lines with `text` and `stars` (1-5) or `sentiment` (negative/neutral/positive,
neg/neu/pos or négatif/neutre/positif, any case).
A validation split (by a hash of each row's id or text, so it is stable across runs) picks the
best epoch and fits the calibration. Output: a small delta directory loadable with
`VERBATIM_SENTIMENT_MODEL_PATH=DIR` (or settings `sentiment_model_path`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from nlp.sentiment.labelled import IGNORE, LabelConflicts, LabelledTexts, star_index
from nlp.types import POLARITIES


def stable_bucket(key: str, buckets: int = 100) -> int:
    """Deterministic bucket of a row key (ids or texts), independent of PYTHONHASHSEED."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % buckets


@dataclass
class LabelledFile:
    rows: LabelledTexts = field(default_factory=lambda: LabelledTexts([], [], [], []))
    keys: list[str] = field(default_factory=list)
    skipped: int = 0
    # One entry per file read: path as given, sha256, rows read / used / skipped (model card).
    files: list[dict[str, Any]] = field(default_factory=list)
    conflicts: LabelConflicts = field(default_factory=LabelConflicts)


def read_labelled(paths: list[Path]) -> LabelledFile:
    """Rows with a usable text and label; others (not JSON, no text, no label) are counted in
    `skipped`, blank lines ignored. As in `verbatim evaluate`, a label that is given but cannot
    be read (stars 8, 'bof') and a file that is not UTF-8 are a LabelError naming the file:
    skipped rows trained on part of the file (a 0-10 score kept its 1-5 rows), replaced bytes
    on mangled texts."""
    from jobs.evaluate import LabelError, checked_sentiment, labels_disagree
    from jobs.model_card import file_entry

    out = LabelledFile()
    for path in paths:
        used, skipped, read = len(out.keys), out.skipped, 0
        try:
            # utf-8-sig: a BOM (Excel, Notepad) would make the first row unreadable JSON.
            with path.open(encoding="utf-8-sig") as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():  # a blank line is no row (nor a skipped one)
                        continue
                    read += 1
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        out.skipped += 1
                        continue
                    text = row.get("text") if isinstance(row, dict) else None
                    try:
                        label = checked_sentiment(row) if isinstance(row, dict) else None
                    except LabelError as exc:
                        raise LabelError(f"{path}:{n}: {exc}") from None
                    if not isinstance(text, str) or not text.strip() or label is None:
                        out.skipped += 1
                        continue
                    if labels_disagree(row):
                        out.conflicts.add(f"{path}:{n}")
                    out.rows.texts.append(text)
                    out.rows.labels.append(POLARITIES.index(label))
                    out.rows.stars.append(star_index(row.get("stars")))
                    out.rows.groups.append(str(row.get("source") or path.name))
                    out.keys.append(str(row.get("id") or f"{path.name}:{n}:{text}"))
        except UnicodeDecodeError:
            raise LabelError(f"{path} is not UTF-8 text: save it as UTF-8 and run again") from None
        out.files.append(file_entry(path, read, len(out.keys) - used, out.skipped - skipped))
    return out


def add_rows(out: LabelledFile, rows: list[dict]) -> None:
    """Append in-memory rows (e.g. corrections) in the same way as file rows; a row whose
    text is already there replaces its label (an analyst's correction wins), every copy of
    it: a file may hold the same text twice, and one stale copy would still teach the old label.
    Texts match as ingested (the row's `content_hash`) or as stored (core.store.text_hash): a
    corrected verbatim's text is normalised and masked, the file's is as written."""
    from core.store import text_hash

    positions: dict[str, list[int]] = {}
    for i, t in enumerate(out.rows.texts):
        positions.setdefault(text_hash(t), []).append(i)
    for row in rows:
        label = _label(row)
        if label is None or not str(row.get("text") or "").strip():
            out.skipped += 1
            continue
        # As ingested (a file of the raw texts) or as stored (one exported from Verbatim).
        keys = dict.fromkeys(k for k in (row.get("content_hash"), text_hash(row["text"])) if k)
        same = sorted({i for k in keys for i in positions.get(k, ())})
        if same:
            for i in same:
                out.rows.labels[i] = POLARITIES.index(label)
            continue
        out.rows.texts.append(row["text"])
        out.rows.labels.append(POLARITIES.index(label))
        out.rows.stars.append(star_index(row.get("stars")))
        out.rows.groups.append(str(row.get("source") or "corrections"))
        out.keys.append(str(row["id"]))


def _label(row: dict) -> str | None:
    from jobs.evaluate import gold_sentiment

    return gold_sentiment(row)


def split_rows(data: LabelledFile, val_percent: int) -> tuple[LabelledTexts, LabelledTexts]:
    train, val = LabelledTexts([], [], [], []), LabelledTexts([], [], [], [])
    rows = data.rows
    for i, key in enumerate(data.keys):
        part = val if stable_bucket("val:" + key) < val_percent else train
        part.texts.append(rows.texts[i])
        part.labels.append(rows.labels[i])
        part.stars.append(rows.stars[i])
        part.groups.append(rows.groups[i] if rows.groups else "")
    return train, val


def _student_layers(spec: str, teacher: Path | None) -> list[int]:
    """--student-layers as increasing indices (exits with a clear error otherwise)."""
    if not spec and teacher is None:
        return []
    if teacher is None or not spec:
        typer.echo("error: --teacher and --student-layers go together", err=True)
        raise typer.Exit(code=2)
    if not (teacher / "meta.json").is_file():
        typer.echo(f"error: --teacher {teacher} is not a trained delta (no meta.json)", err=True)
        raise typer.Exit(code=2)
    try:
        keep = [int(x) for x in spec.split(",")]
    except ValueError:
        keep = []
    if not keep or keep != sorted(set(keep)) or keep[0] < 0:
        typer.echo(
            f"error: --student-layers must be increasing layer indices, e.g. 0,2,4: {spec!r}",
            err=True,
        )
        raise typer.Exit(code=2)
    return keep


def register_sentiment(group: typer.Typer) -> None:
    @group.command("sentiment")
    def train_sentiment_cmd(
        data: list[Path] = typer.Option([], "--data", help="Labelled JSONL (repeatable)."),
        corrections: bool = typer.Option(
            False,
            "--corrections",
            help="Also train on the analysts' sentiment corrections stored in the database.",
        ),
        out: Path = typer.Option(..., "--out", help="Directory for the trained delta."),
        epochs: int = typer.Option(2, "--epochs", min=1),
        trainable_layers: int = typer.Option(4, "--trainable-layers", min=1),
        max_length: int = typer.Option(160, "--max-length", min=16, max=512),
        batch_size: int = typer.Option(32, "--batch-size", min=1),
        lr: float = typer.Option(1e-4, "--lr"),
        val_percent: int = typer.Option(8, "--val-percent", min=1, max=50),
        encoder_name: str = typer.Option(
            "embedded", "--encoder", help="'embedded' or a local/HF encoder."
        ),
        delta_dtype: str = typer.Option(
            "int8", "--delta-dtype", help="Storage of the trained layers: int8 or fp16."
        ),
        calibration: str = typer.Option(
            "skewed",
            "--calibration",
            help="What the class biases maximise: mean per-source macro-F1 'natural', "
            "'skewed' (a source dominated by one class scored as stratified) or "
            "'balanced' (every source scored as stratified).",
        ),
        init: Path | None = typer.Option(
            None, "--init", help="Continue training from this delta (same encoder)."
        ),
        neutral_boost: float = typer.Option(
            1.0, "--neutral-boost", min=0.1, help="Extra weight of the neutral class."
        ),
        teacher: Path | None = typer.Option(
            None,
            "--teacher",
            help="Distil a smaller student from this trained delta (e.g. the packaged one).",
        ),
        student_layers: str = typer.Option(
            "",
            "--student-layers",
            help="With --teacher: the teacher's layers the student keeps, e.g. 0,1,3,5,7,9,10,11.",
        ),
        distill_weight: float = typer.Option(
            0.9, "--distill-weight", min=0.0, max=1.0, help="Weight of the teacher's logits."
        ),
        vector_weight: float = typer.Option(
            20.0,
            "--vector-weight",
            min=0.0,
            help="With --teacher: weight of 1 - cosine between the student's and the teacher's "
            "document vectors, which the theme heads read (0: logits only).",
        ),
    ) -> None:
        """Fine-tune the encoder's top layers + heads on rated texts (CPU-friendly), or distil
        a student with fewer layers from a trained delta (--teacher, --student-layers)."""
        from core.settings import load_settings
        from nlp.encoder import EncoderConfig, load_encoder
        from nlp.sentiment.embedded import SentimentHeadConfig
        from nlp.sentiment.training import CALIBRATIONS, TrainConfig, fit_sentiment

        if calibration not in CALIBRATIONS:
            typer.echo(f"error: --calibration must be one of {', '.join(CALIBRATIONS)}", err=True)
            raise typer.Exit(code=2)
        if init is not None and not (init / "meta.json").is_file():
            typer.echo(f"error: --init {init} is not a trained delta (no meta.json)", err=True)
            raise typer.Exit(code=2)
        keep = _student_layers(student_layers, teacher)
        if teacher is not None and init is not None:
            typer.echo(
                "error: --init continues a model, --teacher starts a student: not both", err=True
            )
            raise typer.Exit(code=2)
        from jobs.cli_train import out_problem

        problem = out_problem(out, "config", "sentiment delta")  # minutes before saving it
        if problem:
            typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(code=2)
        missing = [p for p in data if not p.is_file()]
        if missing:
            typer.echo(f"error: data file not found: {missing[0]}", err=True)
            raise typer.Exit(code=2)
        if not data and not corrections:
            typer.echo("error: give --data FILE and/or --corrections", err=True)
            raise typer.Exit(code=2)
        from jobs.evaluate import LabelError

        try:
            labelled = read_labelled(data)
        except LabelError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        conflicts = labelled.conflicts.warning()
        if conflicts:
            typer.echo(conflicts, err=True)
        merged: int | None = None
        if corrections:
            from jobs.corrections import corrected_rows

            rows, _ = corrected_rows("sentiment")
            add_rows(labelled, rows)
            merged = len(rows)
            typer.echo(f"{len(rows)} corrected verbatims merged", err=True)
        train, val = split_rows(labelled, val_percent)
        if len(train.texts) < 20 or len(val.texts) < 5 or len(set(train.labels)) < 2:
            # The split, not only the total: 40 rows "got 40" against "need at least 25" read
            # as a contradiction when --val-percent 8 left 3 validation rows.
            typer.echo(
                "error: need at least 20 training and 5 validation rows covering 2+ classes "
                f"(got {len(labelled.rows.texts)} labelled rows, {labelled.skipped} skipped: "
                f"{len(train.texts)} train / {len(val.texts)} validation at --val-percent "
                f"{val_percent}, {len(set(train.labels))} class(es) in train); add rows"
                + (
                    " or raise --val-percent"
                    if len(val.texts) < 5 and len(train.texts) >= 20
                    else ""
                ),
                err=True,
            )
            raise typer.Exit(code=2)
        typer.echo(
            f"{len(train.texts)} train / {len(val.texts)} validation rows "
            f"({labelled.skipped} skipped); stars known for "
            f"{sum(s != IGNORE for s in train.stars)}",
            err=True,
        )
        settings = load_settings()
        encoder = load_encoder(
            encoder_name,
            cache_dir=settings.resolved_model_dir,
            config=EncoderConfig(max_length=max_length),
        )
        from nlp.themes.embed import fingerprint

        base_model: dict[str, Any] = {"encoder": encoder.name, "fingerprint": fingerprint(encoder)}
        init_heads, teacher_logits, teacher_vectors, encoder_layers = None, None, None, None
        if teacher is not None:  # the student keeps `keep` of its layers and learns its logits
            from nlp.sentiment.embedded import EmbeddedSentiment, keep_layers

            teacher_model = EmbeddedSentiment.load(teacher, encoder, inference_dtype="float32")
            n_teacher = len(encoder.model.encoder.layer)
            if keep[-1] >= n_teacher:
                typer.echo(f"error: --student-layers must be below {n_teacher}", err=True)
                raise typer.Exit(code=2)
            init_heads = teacher_model.heads  # built before inference mode: trainable
            typer.echo(f"teacher logits over {len(train.texts)} rows", err=True)
            t_sent, t_stars, teacher_vectors = teacher_model.logits_and_vectors(train.texts)
            teacher_logits = (t_sent, t_stars)
            base = teacher_model.config.encoder_layers or list(range(n_teacher))
            encoder_layers = [base[i] for i in keep]
            keep_layers(encoder.model, keep, name=encoder.name)
            encoder.num_layers = trainable_layers = len(keep)
        head_config = SentimentHeadConfig(
            trainable_layers=trainable_layers,
            max_length=max_length,
            encoder=encoder.name,
            delta_dtype=delta_dtype,
            encoder_layers=encoder_layers,
        )
        if init is not None:  # its layers replace the encoder's; its heads are warm-started
            from nlp.sentiment.embedded import EmbeddedSentiment

            init_heads = EmbeddedSentiment.load(init, encoder, inference_dtype="float32").heads
        model = fit_sentiment(
            encoder,
            train,
            val,
            head_config,
            TrainConfig(
                epochs=epochs,
                batch_size=batch_size,
                lr_layers=lr,
                class_boost=(1.0, neutral_boost, 1.0),
                calibration=calibration,
                distill_weight=distill_weight if teacher is not None else 0.0,
                vector_weight=vector_weight if teacher is not None else 0.0,
            ),
            report=lambda msg: typer.echo(msg, err=True),
            init_heads=init_heads,
            teacher_logits=teacher_logits,
            teacher_vectors=teacher_vectors,
        )
        start = len(encoder.model.encoder.layer) - trainable_layers
        model.save(out, start_layer=start)
        _write_card(
            out,
            labelled,
            merged,
            base_model,
            init=init,
            teacher=teacher,
            settings={
                "epochs": epochs,
                "trainable_layers": trainable_layers,
                "max_length": max_length,
                "batch_size": batch_size,
                "lr": lr,
                "val_percent": val_percent,
                "delta_dtype": delta_dtype,
                "calibration": calibration,
                "neutral_boost": neutral_boost,
                **(
                    {
                        "student_layers": student_layers,
                        "distill_weight": distill_weight,
                        "vector_weight": vector_weight,
                    }
                    if teacher is not None
                    else {}
                ),
            },
            training=model.config.training,
        )
        typer.echo(
            f"saved {out} (val macro-F1 {model.config.training['val_macro_f1_calibrated']:.4f})"
        )


def _write_card(
    out: Path,
    labelled: LabelledFile,
    corrections: int | None,
    base: dict[str, Any],
    *,
    init: Path | None,
    teacher: Path | None,
    settings: dict[str, Any],
    training: dict[str, Any],
) -> None:
    """MODEL_CARD.md + meta.json's `training_record`: the data this delta inherits its terms
    from, the base encoder, the settings and the validation figures printed at the end."""
    from jobs.model_card import add_to_meta, build_record, write_card
    from nlp.sentiment.embedded import delta_digest

    for key, path in (("init", init), ("teacher", teacher)):
        if path is not None:
            base[key] = str(path)
            base[f"{key}_digest"] = delta_digest(path)
    record = build_record(
        kind="sentiment",
        files=labelled.files,
        corrections=corrections,
        base=base,
        settings=settings,
        validation={
            "train_rows": training.get("train_rows"),
            "val_rows": training.get("val_rows"),
            **{k: v for k, v in training.items() if k.startswith("val_") and "macro_f1" in k},
        },
    )
    add_to_meta(out, record)
    write_card(out, record, f"sentiment delta trained on your data (`{out.name}`)")
