"""Topic discovery on 20k French reviews: BERTopic path vs fast path (wall time, peak RSS,
quality). Reviews are read at run time from ../shared/data (Trustpilot-fr + MARC-fr).

    nice -n 10 python benchmarks/bench_topics.py [--data ../shared/data] [--n 20000]
        [--cache /tmp/bench_topics] [--paths encode,bertopic,fast-cold,fast-warm,kmeans-encoder]

Each step runs in its own process, so its peak RSS is its own:
- encode: the encoder over every review (the BERTopic path's first step). Embeddings are
  kept in --cache with the time and RSS measured, so re-runs reuse them (the figures printed
  then are those of the run that made the cache, and say so).
- bertopic: BERTopic (UMAP + HDBSCAN + c-TF-IDF) over those embeddings.
- fast-cold: static piece vectors distilled from the encoder (no cache yet) + k-means.
- fast-warm: the same with the piece cache the cold run left (the steady state of a job).
- kmeans-encoder: the fast clustering over the encoder embeddings (isolates the
  embeddings' share of any quality gap).
Quality: NPMI coherence of each path's top-10 keywords on the corpus, theme purity (share
of a topic's reviews that the rule detector puts in the topic's majority theme, over
reviews with a theme), agreement between paths (adjusted Rand / NMI). Timings are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PATHS = ("encode", "bertopic", "fast-cold", "fast-warm", "kmeans-encoder")


def load_reviews(data: Path, n: int = 20_000, seed: int = 13) -> list[str]:
    """n distinct reviews: 40% MARC-fr (product reviews), the rest Trustpilot-fr (title +
    body, as `prepare_feedback` stores them)."""
    from nlp.text import normalize_text

    def read(path: Path) -> list[str]:
        out = []
        for line in path.open(encoding="utf-8"):
            r = json.loads(line)
            text = r.get("text") or ""
            title = (r.get("title") or "").strip()
            text = f"{title}. {text}" if title and text.strip() else (title or text)
            text = normalize_text(text)
            if text:
                out.append(text)
        return out

    rng = random.Random(seed)
    tp = read(data / "trustpilot_fr" / "reviews.jsonl")
    marc = read(data / "marc_fr" / "train.jsonl")
    rng.shuffle(tp)
    rng.shuffle(marc)
    seen: set[str] = set()
    out: list[str] = []
    for text in marc[: min(len(marc), (n * 2) // 5)] + tp:
        if len(out) >= n:
            break
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


class Phase:
    """Wall and CPU seconds (all threads of this process) of a block, into out[name_s] and
    out[name_cpu]: on a shared machine wall time says how long one waited, CPU time how
    much work it was."""

    def __init__(self, out: dict, name: str) -> None:
        self.out, self.name = out, name

    def __enter__(self) -> Phase:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.out[f"{self.name}_s"] = time.perf_counter() - self.wall
        self.out[f"{self.name}_cpu"] = time.process_time() - self.cpu


def texts_key(texts: list[str]) -> str:
    return hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()[:16]


# --- child steps ------------------------------------------------------------------------------
def _load_encoder(out: dict) -> object:
    from core.settings import load_settings
    from nlp.encoder import load_encoder

    with Phase(out, "load"):
        return load_encoder("embedded", cache_dir=load_settings().resolved_model_dir)


def _topics_out(model: object, prefix: Path) -> dict:
    labels = model.labels_  # type: ignore[attr-defined]
    np.save(prefix.with_suffix(".labels.npy"), labels)
    topics = model.topics_  # type: ignore[attr-defined]
    prefix.with_suffix(".keywords.json").write_text(
        json.dumps([list(t.keywords) for t in topics], ensure_ascii=False), encoding="utf-8"
    )
    return {
        "topics": len(topics),
        "outliers": int((labels < 0).sum()),
        "labels": [t.label for t in topics[:8]],
    }


def child(step: str, args: argparse.Namespace) -> dict:
    texts = load_reviews(args.data, args.n)
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    emb_file = cache / f"encoder-{texts_key(texts)}.npz"
    out: dict = {"step": step, "docs": len(texts)}
    if step == "encode":
        enc = _load_encoder(out)
        with Phase(out, "embed"):
            x = enc.encode(texts)  # type: ignore[attr-defined]
        out["peak_rss_mb"] = peak_rss_mb()
        np.savez(emb_file, emb=x, meta=json.dumps(out))
        return out
    if step in ("bertopic", "kmeans-encoder"):
        with np.load(emb_file) as data:
            x = data["emb"]
        if step == "bertopic":
            from nlp.topics import BertopicConfig, BertopicTopicModel

            with Phase(out, "import"):
                import bertopic  # noqa: F401 - timed apart: numba compiles UMAP/pynndescent
            model: object = BertopicTopicModel(BertopicConfig(min_topic_size=args.min_size))
        else:
            from nlp.topics import FastTopicConfig, FastTopicModel

            model = FastTopicModel(FastTopicConfig(min_topic_size=args.min_size))
        with Phase(out, "cluster"):
            model.fit(texts, x)  # type: ignore[attr-defined]
    else:  # fast-cold / fast-warm
        from nlp.topics import FastTopicConfig, FastTopicModel, StaticEmbedder

        static_cache = cache / "static-pieces.npz"
        if step == "fast-cold":
            static_cache.unlink(missing_ok=True)
        enc = _load_encoder(out)
        with Phase(out, "embed"):
            embedder = StaticEmbedder(enc, cache_path=static_cache)
            x = embedder.fit_transform(texts)
        out["distilled_pieces"] = embedder.distilled_
        np.save(cache / f"{step}.emb.npy", x)
        model = FastTopicModel(FastTopicConfig(min_topic_size=args.min_size))
        with Phase(out, "cluster"):
            model.fit(texts, x)  # type: ignore[attr-defined]
    out.update(_topics_out(model, cache / step))
    out["peak_rss_mb"] = peak_rss_mb()
    return out


# --- quality ------------------------------------------------------------------------------
def npmi_coherence(texts: list[str], keyword_lists: list[list[str]], top: int = 10) -> float:
    """Mean NPMI over pairs of each topic's top words (document co-occurrence)."""
    from nlp.topics import FrenchAnalyzer

    analyzer = FrenchAnalyzer(ngram_max=1)
    docs = [set(analyzer(t)) for t in texts]
    n = len(docs)
    scores = []
    for keywords in keyword_lists:
        words = []
        for kw in keywords:
            for w in kw.split():
                if w not in words:
                    words.append(w)
        words = words[:top]
        sets = {w: {i for i, d in enumerate(docs) if w in d} for w in words}
        pair = []
        for a in range(len(words)):
            for b in range(a + 1, len(words)):
                da, db = sets[words[a]], sets[words[b]]
                both = len(da & db)
                if not da or not db:
                    continue
                if both == 0:
                    pair.append(-1.0)
                    continue
                pmi = np.log(both * n / (len(da) * len(db)))
                pair.append(pmi / -np.log(both / n) if both < n else 1.0)
        if pair:
            scores.append(float(np.mean(pair)))
    return float(np.mean(scores)) if scores else float("nan")


def theme_purity(labels: np.ndarray, doc_themes: list[set[str]]) -> tuple[float, float]:
    """(purity over reviews that have a theme, share of topics whose majority theme covers
    at least half of their themed reviews)."""
    agree = total = good = n_topics = 0
    for k in sorted(set(labels.tolist()) - {-1}):
        counts: dict[str, int] = {}
        members = np.flatnonzero(labels == k)
        themed = [doc_themes[i] for i in members if doc_themes[i]]
        for themes in themed:
            for t in themes:
                counts[t] = counts.get(t, 0) + 1
        n_topics += 1
        if not themed:
            continue
        best = max(counts.values())
        agree += sum(1 for themes in themed if max(counts, key=counts.get) in themes)
        total += len(themed)
        good += best / len(themed) >= 0.5
    return (agree / total if total else float("nan"), good / n_topics if n_topics else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/bench_topics"))
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--min-size", type=int, default=15)
    ap.add_argument("--child", choices=PATHS, default=None)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args)))
        return

    texts = load_reviews(args.data, args.n)
    args.cache.mkdir(parents=True, exist_ok=True)
    emb_file = args.cache / f"encoder-{texts_key(texts)}.npz"
    print(f"{len(texts)} reviews, mean {np.mean([len(t) for t in texts]):.0f} characters")
    results: dict[str, dict] = {}
    for step in args.paths.split(","):
        if step == "encode" and emb_file.is_file():
            with np.load(emb_file) as data:
                results[step] = {**json.loads(str(data["meta"])), "cached": True}
            print(f"[encode] reused {emb_file} (figures from the run that made it)")
            continue
        cmd = [
            sys.executable,
            __file__,
            "--child",
            step,
            "--data",
            str(args.data),
            "--n",
            str(args.n),
            "--cache",
            str(args.cache),
            "--min-size",
            str(args.min_size),
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(f"[{step}] failed:\n{proc.stderr[-3000:]}")
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["process_s"] = wall
        results[step] = res
        print(f"[{step}] {json.dumps(res, ensure_ascii=False)}", flush=True)

    print("\n== per step: wall s / CPU s, peak RSS (MiB)")
    for step, r in results.items():
        parts = ", ".join(
            f"{k[:-2]} {r[k]:.1f}/{r.get(k[:-2] + '_cpu', float('nan')):.1f}"
            for k in r
            if k.endswith("_s") and k != "process_s"
        )
        print(
            f"{step:<15} {parts}  peak RSS {r.get('peak_rss_mb', 0):.0f} MiB"
            + ("  (cached)" if r.get("cached") else "")
        )

    def work(r: dict, suffix: str = "_s", load: bool = True) -> float:
        phases = ("load", "embed", "import", "cluster") if load else ("embed", "import", "cluster")
        return sum(r.get(p + suffix, 0.0) or 0.0 for p in phases)

    if "encode" in results and "bertopic" in results:
        enc, bt = results["encode"], results["bertopic"]
        rss = max(enc["peak_rss_mb"], bt["peak_rss_mb"])
        print(f"\nBERTopic path (encode + BERTopic): peak RSS {rss:.0f} MiB")
        for name in ("fast-cold", "fast-warm"):
            if name not in results:
                continue
            r = results[name]
            print(
                f"{name} path (static embed + k-means, {r['distilled_pieces']} pieces "
                f"distilled): peak RSS {r['peak_rss_mb']:.0f} MiB"
            )
            for suffix, what in (("_s", "wall"), ("_cpu", "CPU")):
                for load in (True, False):
                    b = work(enc, suffix, load) + work(bt, suffix, load)
                    f = work(r, suffix, load)
                    print(
                        f"  {what:<4} {'with' if load else 'w/o '} model load: BERTopic "
                        f"{b:.1f}s vs {name} {f:.1f}s -> {b / f:.1f}x"
                    )

    print("\n== quality")
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from nlp.taxonomy import load_taxonomy
    from nlp.themes import RuleThemeDetector

    start = time.perf_counter()
    detector = RuleThemeDetector(load_taxonomy("ecommerce"))
    doc_themes = [{m.theme for m in ms} for ms in detector.predict(texts)]
    print(
        f"rule themes on {len(texts)} reviews in {time.perf_counter() - start:.0f}s; "
        f"{sum(1 for t in doc_themes if t) / len(texts):.0%} have one"
    )
    labels: dict[str, np.ndarray] = {}
    for step in ("bertopic", "fast-warm", "fast-cold", "kmeans-encoder"):
        lab_file = args.cache / f"{step}.labels.npy"
        kw_file = args.cache / f"{step}.keywords.json"
        if step not in results or not lab_file.is_file():
            continue
        labels[step] = np.load(lab_file)
        keywords = json.loads(kw_file.read_text(encoding="utf-8"))
        purity, good = theme_purity(labels[step], doc_themes)
        coherence = npmi_coherence(texts, keywords)
        accented = sum(1 for kws in keywords for k in kws if not k.isascii())
        print(
            f"{step:<15} topics {len(keywords):>3}  outliers {(labels[step] < 0).mean():5.1%}"
            f"  NPMI {coherence:+.3f}  theme purity {purity:.3f}  topics >=50% one theme "
            f"{good:.0%}  accented keywords {accented}"
        )
    names = list(labels)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = (labels[a] >= 0) & (labels[b] >= 0)
            print(
                f"{a} vs {b}: ARI {adjusted_rand_score(labels[a][both], labels[b][both]):.3f}"
                f"  NMI {normalized_mutual_info_score(labels[a][both], labels[b][both]):.3f}"
                f"  (on {both.sum()} reviews both assign)"
            )


if __name__ == "__main__":
    main()
