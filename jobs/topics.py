"""`verbatim topics`: discover topics over stored French verbatims; store them with stable ids.

Thin orchestration: read verbatims (a date window, the most recent N), embed them (the
encoder for the BERTopic path, distilled static embeddings for the fast path), fit, flag
emerging topics against the taxonomy, match topics to the stored ones so ids stay stable,
then replace these verbatims' assignments and refresh every topic's size in one transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from core.aggregate import bump_version
from core.db import session_scope
from core.models import Analysis, Feedback, ThemeMention, Topic, TopicAssignment
from core.queries import latest_analysis
from core.store import as_utc, utcnow
from core.taxonomy_store import close_retired
from nlp.taxonomy import Taxonomy
from nlp.topics import (
    OUTLIER,
    BertopicConfig,
    BertopicTopicModel,
    DiscoveredTopic,
    EmergingConfig,
    FastTopicConfig,
    FastTopicModel,
    MatchConfig,
    StaticConfig,
    StaticEmbedder,
    ThemeMatch,
    ThemeMatcher,
    TopicRef,
    lexicon_valence,
    make_vectorizer,
    match_topics,
    member_jaccard,
    theme_prototypes,
)

log = logging.getLogger(__name__)
Method = Literal["bertopic", "fast"]
CHUNK = 500  # ids per IN (...) clause
MAX_EXAMPLE_CHARS = 300


@dataclass(frozen=True)
class TopicJobConfig:
    method: Method = "bertopic"
    since: date | None = None  # first day (UTC) of the verbatims to model
    until: date | None = None  # last day, inclusive
    max_docs: int | None = None  # keep the most recent N of the window
    min_docs: int = 20  # fewer verbatims: nothing to discover, nothing written
    rules_for_unanalysed: bool = True  # theme evidence for verbatims without an analysis
    bertopic: BertopicConfig = field(default_factory=BertopicConfig)
    fast: FastTopicConfig = field(default_factory=FastTopicConfig)
    static: StaticConfig = field(default_factory=StaticConfig)
    emerging: EmergingConfig = field(default_factory=EmergingConfig)
    matching: MatchConfig = field(default_factory=MatchConfig)


@dataclass(frozen=True)
class Doc:
    feedback_id: int
    text: str
    day: date


@dataclass(frozen=True)
class StoredTopic:
    id: int
    label: str
    size: int  # verbatims of this run in the topic
    is_emerging: bool
    theme: str | None
    status: Literal["new", "kept"]
    keywords: tuple[str, ...]


@dataclass
class TopicJobResult:
    method: str
    documents: int = 0
    outliers: int = 0
    topics: list[StoredTopic] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None  # why nothing was written
    from_store: int = 0  # document vectors read from the enrich-time store (not re-encoded)
    closed: int = 0  # incidents of topics left without a verbatim, closed


# --- reading --------------------------------------------------------------------------------
def load_documents(
    session: Session,
    *,
    since: date | None = None,
    until: date | None = None,
    max_docs: int | None = None,
) -> list[Doc]:
    """French verbatims of the window, oldest first (the most recent `max_docs` of it)."""
    stmt = select(Feedback.id, Feedback.text, Feedback.created_at).where(
        Feedback.is_french.is_(True)
    )
    if since is not None:
        stmt = stmt.where(Feedback.created_at >= datetime.combine(since, dtime(), UTC))
    if until is not None:
        end = datetime.combine(until + timedelta(days=1), dtime(), UTC)
        stmt = stmt.where(Feedback.created_at < end)
    stmt = stmt.order_by(Feedback.created_at.desc(), Feedback.id.desc())
    if max_docs is not None:
        stmt = stmt.limit(max_docs)
    rows = list(session.execute(stmt))
    rows.reverse()
    return [Doc(fid, text, as_utc(created).date()) for fid, text, created in rows]


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]


def stored_themes(session: Session, feedback_ids: Sequence[int]) -> dict[int, set[str]]:
    """Themes of each verbatim's latest analysis (verbatims never analysed are absent)."""
    latest = latest_analysis()
    out: dict[int, set[str]] = {}
    for chunk in _chunks(feedback_ids):
        for fid in session.execute(
            select(Analysis.feedback_id).where(Analysis.feedback_id.in_(chunk), latest)
        ).scalars():
            out.setdefault(fid, set())
        rows = session.execute(
            select(ThemeMention.feedback_id, ThemeMention.theme)
            .join(Analysis, Analysis.id == ThemeMention.analysis_id)
            .where(ThemeMention.feedback_id.in_(chunk), latest)
        )
        for fid, theme in rows:
            out.setdefault(fid, set()).add(theme)
    return out


def previous_topics(session: Session, live_only: bool = False) -> list[TopicRef]:
    """Stored topics, largest first (`live_only`: those that still have verbatims)."""
    stmt = select(Topic).order_by(Topic.size.desc(), Topic.id)
    if live_only:
        stmt = stmt.where(Topic.size > 0)
    refs = []
    for topic in session.execute(stmt).scalars():
        centroid = np.asarray(topic.centroid, dtype=np.float32) if topic.centroid else None
        refs.append(TopicRef(topic.id, tuple(topic.keywords or ()), centroid))
    return refs


def previous_assignments(session: Session, feedback_ids: Sequence[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for chunk in _chunks(feedback_ids):
        rows = session.execute(
            select(TopicAssignment.feedback_id, TopicAssignment.topic_id).where(
                TopicAssignment.feedback_id.in_(chunk)
            )
        )
        out.update({fid: tid for fid, tid in rows})
    return out


# --- modelling ------------------------------------------------------------------------------
def doc_theme_sets(
    docs: Sequence[Doc], stored: dict[int, set[str]], taxonomy: Taxonomy, use_rules: bool
) -> list[set[str]]:
    """Stored themes where the verbatim was analysed, the taxonomy rules elsewhere."""
    missing = [i for i, d in enumerate(docs) if d.feedback_id not in stored]
    ruled: dict[int, set[str]] = {}
    if missing and use_rules:
        from nlp.themes import RuleThemeDetector

        detector = RuleThemeDetector(taxonomy)
        found = detector.predict([docs[i].text for i in missing])
        ruled = {i: {m.theme for m in mentions} for i, mentions in zip(missing, found, strict=True)}
    return [stored.get(d.feedback_id, ruled.get(i, set())) for i, d in enumerate(docs)]


def has_topic_words(texts: Iterable[str], config: TopicJobConfig) -> bool:
    """Does any text have a keyword candidate for the BERTopic path (not only stop words)?"""
    analyzer = make_vectorizer(config.bertopic.vectorizer).analyzer
    return any(analyzer(t) for t in texts)


def embed_documents(
    texts: Sequence[str],
    encoder: Any,
    config: TopicJobConfig,
    static_cache: Path | None = None,
    stored: Sequence[np.ndarray | None] | None = None,
) -> tuple[Any, np.ndarray]:
    """(embedder, unit embeddings): the encoder for BERTopic, distilled static vectors for
    the fast path (piece vectors cached in `static_cache`). `stored` (BERTopic, aligned with
    `texts`): vectors enrich already stored with this encoder's weights; only the missing
    ones are encoded."""
    if config.method == "fast":
        embedder: Any = StaticEmbedder(encoder, config.static, cache_path=static_cache)
        return embedder, embedder.fit_transform(texts)
    if config.method == "bertopic":
        if stored is None:
            return encoder, encoder.encode(list(texts))
        missing = [i for i, v in enumerate(stored) if v is None]
        out = np.zeros((len(texts), encoder.hidden_size), dtype=np.float32)
        for i, v in enumerate(stored):
            if v is not None:
                out[i] = v
        if missing:
            out[missing] = encoder.encode([texts[i] for i in missing])
        return encoder, out
    raise ValueError(f"unknown topic method {config.method!r} (bertopic or fast)")


def fit_model(
    texts: Sequence[str],
    embeddings: np.ndarray,
    config: TopicJobConfig,
    previous: Sequence[TopicRef] = (),
) -> Any:
    """The fitted topic model. The fast path starts k-means from the previous topics'
    centroids (`previous`, largest first, in this run's space), which keeps re-runs close
    to the last run."""
    if config.method == "fast":
        seeds = [
            r.centroid
            for r in previous
            if r.centroid is not None and len(r.centroid) == embeddings.shape[1]
        ]
        return FastTopicModel(config.fast).fit(
            texts, embeddings, init_centroids=np.stack(seeds) if seeds else None
        )
    return BertopicTopicModel(config.bertopic).fit(texts, embeddings)


def recentred(
    refs: Sequence[TopicRef],
    before: dict[int, int],
    docs: Sequence[Doc],
    embeddings: np.ndarray,
    min_docs: int = 3,
) -> list[TopicRef]:
    """Previous topics with their centroid recomputed in this run's embedding space from
    the documents they held that this run embeds again. Stored centroids are in the space
    of the run that made them (encoder or static vectors): after a change of method they
    compare with nothing, while these always do."""
    rows: dict[int, list[int]] = {}
    for i, d in enumerate(docs):
        if d.feedback_id in before:
            rows.setdefault(before[d.feedback_id], []).append(i)
    out = []
    for ref in refs:
        members = rows.get(ref.id, [])
        if len(members) >= min_docs:
            mean = embeddings[members].mean(axis=0)
            ref = TopicRef(
                ref.id,
                ref.keywords,
                (mean / max(1e-12, float(np.linalg.norm(mean)))).astype(np.float32),
            )
        out.append(ref)
    return out


# --- writing --------------------------------------------------------------------------------
def _examples(topic: DiscoveredTopic, docs: Sequence[Doc]) -> list[dict[str, Any]]:
    return [
        {"feedback_id": docs[i].feedback_id, "text": docs[i].text[:MAX_EXAMPLE_CHARS]}
        for i in topic.representatives
    ]


def store_topics(
    session: Session,
    docs: Sequence[Doc],
    labels: np.ndarray,
    probabilities: np.ndarray,
    topics: Sequence[DiscoveredTopic],
    matches: Sequence[ThemeMatch],
    config: MatchConfig,
    now: datetime,
    embeddings: np.ndarray | None = None,
    settle: Callable[[ThemeMatch, str | None], ThemeMatch] | None = None,
) -> list[StoredTopic]:
    """Give topics stable ids, upsert them, replace these verbatims' assignments and refresh
    every topic's size (all its stored assignments), in the caller's transaction.

    `embeddings` (this run's, row per doc) lets previous topics be compared in this run's
    space (see `recentred`). `settle(match, stored theme)` (`ThemeMatcher.settle_theme`)
    decides the theme of a topic that continues a stored one: a re-run's reshuffle of the
    evidence near a threshold does not flip it."""
    ids = [d.feedback_id for d in docs]
    before = previous_assignments(session, ids)
    # Live topics (holding verbatims) first: a topic continues the one whose verbatims it
    # took over; a retired topic is revived only by a topic that continues no live one.
    refs = previous_topics(session)
    if embeddings is not None:
        refs = recentred(refs, before, docs, embeddings)
    live_ids = {tid for (tid,) in session.execute(select(Topic.id).where(Topic.size > 0))}
    live = [r for r in refs if r.id in live_ids]
    pairs = [(before.get(fid), int(label)) for fid, label in zip(ids, labels, strict=True)]
    kept = match_topics(live, topics, config, member_jaccard(live, topics, pairs))
    rest = [t for t in topics if t.index not in kept]
    kept.update(match_topics([r for r in refs if r.id not in live_ids], rest, config))
    stored: list[StoredTopic] = []
    topic_ids: dict[int, int] = {}
    for topic, match in zip(topics, matches, strict=True):
        row = session.get(Topic, kept[topic.index]) if topic.index in kept else None
        if row is not None and settle is not None:
            match = settle(match, row.theme)
        values = {
            "label": topic.label,
            "keywords": list(topic.keywords),
            "representatives": _examples(topic, docs),
            "theme": match.theme,
            "is_emerging": match.is_emerging,
            "centroid": [round(float(v), 6) for v in topic.centroid],
            "last_seen": now,
        }
        if row is None:
            row = Topic(first_seen=now, size=0, **values)
            session.add(row)
            session.flush()
        else:
            for key, value in values.items():
                setattr(row, key, value)
        if not topic.keywords:
            # describe() names it after its rank in this run, which moves from run to run
            # and says another topic's id: the stored id is the name that stays.
            row.label = f"Sujet n°{row.id}"
        topic_ids[topic.index] = row.id
        stored.append(
            StoredTopic(
                row.id,
                row.label,
                topic.size,
                match.is_emerging,
                match.theme,
                "kept" if topic.index in kept else "new",
                topic.keywords,
            )
        )
    for chunk in _chunks(ids):
        session.execute(delete(TopicAssignment).where(TopicAssignment.feedback_id.in_(chunk)))
    rows = [
        {
            "feedback_id": d.feedback_id,
            "topic_id": topic_ids[int(label)],
            "day": d.day,
            "probability": round(float(p), 4),
        }
        for d, label, p in zip(docs, labels, probabilities, strict=True)
        if label != OUTLIER
    ]
    if rows:
        session.execute(cast(Table, TopicAssignment.__table__).insert(), rows)
    # Topics are French only: a verbatim that `enrich --reanalyze` found foreign since an
    # earlier run is in no run's window any more, and its assignment would count for ever.
    session.execute(
        delete(TopicAssignment).where(
            TopicAssignment.feedback_id.in_(
                select(Feedback.id).where(Feedback.is_french.is_(False))
            )
        )
    )
    sizes = {
        tid: n
        for tid, n in session.execute(
            select(TopicAssignment.topic_id, func.count()).group_by(TopicAssignment.topic_id)
        )
    }
    for row in session.execute(select(Topic)).scalars():
        row.size = int(sizes.get(row.id, 0))
    bump_version(session, "topics")  # the API's cached /topics pages (core.versions)
    return stored


def run_topics(
    sessions: sessionmaker[Session],
    *,
    encoder: Any,
    taxonomy: Taxonomy,
    config: TopicJobConfig | None = None,
    static_cache: Path | None = None,
    now: datetime | None = None,
    embedding_key: str | None = None,
    language: str = "fr",
) -> TopicJobResult:
    """Discover topics over the configured window and store them (one transaction); the
    incidents of topics left without a verbatim are closed
    (`core.taxonomy_store.close_retired`, also run by an erasure).

    `embedding_key`: the weights key of `encoder` (nlp/analyzer.Analyzer.embedding_key):
    vectors enrich stored under it are reused instead of encoding those verbatims again.
    `language`: of the closing message sent to Slack (`alert_language`)."""
    cfg = config or TopicJobConfig()
    now = now or utcnow()
    result = TopicJobResult(method=cfg.method)
    with session_scope(sessions) as session:
        docs = load_documents(session, since=cfg.since, until=cfg.until, max_docs=cfg.max_docs)
        result.documents = len(docs)
        if len(docs) < cfg.min_docs:
            result.skipped = f"{len(docs)} verbatims in the window, at least {cfg.min_docs} needed"
            return result
        if cfg.method == "bertopic" and not has_topic_words([d.text for d in docs], cfg):
            # BERTopic names its topics with c-TF-IDF, which fails on an empty vocabulary
            # after the whole clustering; the fast path groups such a window unnamed.
            result.skipped = (
                "no word to name a topic by in the window, only stop words or emoji; "
                "--method fast groups them without names"
            )
            return result
        themes_stored = stored_themes(session, [d.feedback_id for d in docs])
        before = previous_assignments(session, [d.feedback_id for d in docs])
        live = previous_topics(session, live_only=True)
        stored = None
        if embedding_key and cfg.method == "bertopic":
            from jobs.enrich import stored_embeddings

            found = stored_embeddings(session, [d.feedback_id for d in docs], embedding_key)
            stored = [found.get(d.feedback_id) for d in docs]
            result.from_store = len(found)
    texts = [d.text for d in docs]
    start = time.perf_counter()
    embedder, embeddings = embed_documents(texts, encoder, cfg, static_cache, stored)
    result.seconds["embed"] = time.perf_counter() - start
    start = time.perf_counter()
    model = fit_model(texts, embeddings, cfg, recentred(live, before, docs, embeddings))
    result.seconds["cluster"] = time.perf_counter() - start
    start = time.perf_counter()
    doc_themes = doc_theme_sets(docs, themes_stored, taxonomy, cfg.rules_for_unanalysed)
    # Prototypes cost an encoder pass over the taxonomy: only when similarity is used.
    protos = (
        theme_prototypes(taxonomy, embedder) if cfg.emerging.min_similarity is not None else None
    )
    matcher = ThemeMatcher(taxonomy, cfg.emerging, protos, valence=lexicon_valence())
    matches = matcher.match(model.topics_, model.labels_, doc_themes)
    result.seconds["themes"] = time.perf_counter() - start
    start = time.perf_counter()
    with session_scope(sessions) as session:
        result.topics = store_topics(
            session,
            docs,
            model.labels_,
            model.probabilities_,
            model.topics_,
            matches,
            cfg.matching,
            now,
            embeddings,
            settle=matcher.settle_theme,
        )
        result.closed = close_retired(session, now, language)
    result.seconds["store"] = time.perf_counter() - start
    result.outliers = int((model.labels_ == OUTLIER).sum())
    return result
