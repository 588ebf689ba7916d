"""`verbatim analyze` throughput and peak RSS, run as the real CLI in a subprocess.

    nice -n 10 python benchmarks/bench_analyze.py                      # 20k demo rows, lexicon
    nice -n 10 python benchmarks/bench_analyze.py --rows 5000 --backend embedded
    nice -n 10 python benchmarks/bench_analyze.py --input ../shared/data/marc_fr/dev.jsonl
    python benchmarks/bench_analyze.py --backend embedded --input ../shared/data/marc_fr/dev.jsonl \
        --reference --reference-rev bf744b6      # + the former paths, same run: ratios

`--reference` also runs the in-tree former path (VERBATIM_ONE_PASS=0: separate encoder passes
for sentiment and themes, torch runtime, spaCy tagger lemmas); `--reference-rev REV` runs the
code of an older commit (a temporary `git worktree`), i.e. exactly the path of that time.
Ratios measured in one run are the figures to quote on a shared machine; the CPU model and
the kernels each runtime reaches are printed with them.

Input: a synthetic demo feed (`jobs.demo`, generated here), or any JSONL with a `text` field
given by `--input` (read in place, never copied). The CLI runs twice: on the first 50 lines
(start-up: imports, taxonomy, model load; one warm-up run, then the fastest of `--repeats`)
and on all of them; docs/s is reported both end to end and net of start-up (omitted when the
input is too small for the difference to mean anything). Peak RSS is each child process's own
maximum resident set (os.wait4). PII masking is off (`--no-mask`) unless `--mask`: the figure is
the analysis as `verbatim enrich` runs it (ingest masked the text), comparable with older
trees, whose `verbatim analyze` never masked. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


REFERENCE_ENV = {
    "VERBATIM_ONE_PASS": "0",
    "VERBATIM_ENCODER_RUNTIME": "torch",
    "VERBATIM_LEMMATIZER": "spacy",
}


def run_cli(
    feed: Path,
    out: Path,
    backend: str,
    batch_size: int,
    *,
    root: Path = ROOT,
    env: dict[str, str] | None = None,
    mask: bool = False,
) -> dict[str, float]:
    """One `verbatim analyze` child: wall s, user+sys CPU s, max RSS MB (of that child).

    The child is timed with os.wait4, so its peak RSS is its own (not the largest so far).
    Without `mask` it analyses as `verbatim enrich` does (the text was masked at ingest):
    `--no-mask` where the tree has it (trees before 2026-12-06 never masked here)."""
    cmd = [
        sys.executable,
        "-m",
        # The CLI's module: verbatim_cli since 0.2, jobs.cli in older trees (--reference-rev).
        "verbatim_cli" if (root / "verbatim_cli").is_dir() else "jobs.cli",
        "analyze",
        str(feed),
        "-o",
        str(out),
        "--backend",
        backend,
        "--batch-size",
        str(batch_size),
    ]
    if not mask and "--no-mask" in (root / "jobs" / "cli_models.py").read_text(encoding="utf-8"):
        cmd.append("--no-mask")
    child_env = dict(os.environ, PYTHONPATH=str(root), **(env or {}))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=root, env=child_env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"verbatim analyze failed (exit {proc.returncode}) in {root}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024,
    }


def measure(
    feed: Path,
    small: Path,
    n: int,
    n_small: int,
    out: Path,
    backend: str,
    batch_size: int,
    *,
    root: Path = ROOT,
    env: dict[str, str] | None = None,
    repeats: int = 3,
    mask: bool = False,
) -> dict[str, float]:
    """Start-up = the fastest of `repeats` runs on the first 50 lines, after one unmeasured run
    that warms the page cache (a cold first run measured the disk, not the start-up, and a
    full run faster than it gave a meaningless "net of start-up")."""

    def run(path: Path) -> dict[str, float]:
        return run_cli(path, out, backend, batch_size, root=root, env=env, mask=mask)

    run(small)  # warm-up, not measured
    starts = [run(small) for _ in range(repeats)]
    start = min(starts, key=lambda r: r["wall_s"])
    full = run(feed)
    net_wall = full["wall_s"] - start["wall_s"]
    net_cpu = full["cpu_s"] - start["cpu_s"]
    figures = {
        "startup_wall_s (50 docs, min of repeats)": round(start["wall_s"], 2),
        "startup_wall_s_all": [round(r["wall_s"], 2) for r in starts],
        "startup_peak_rss_mb": round(start["max_rss_mb"], 0),
        "total_wall_s": round(full["wall_s"], 2),
        "total_cpu_s": round(full["cpu_s"], 2),
        "docs_per_s_end_to_end": round(n / full["wall_s"], 1),
        "peak_rss_mb": round(full["max_rss_mb"], 0),
    }
    if n > n_small and net_wall > 0.05 * full["wall_s"]:
        figures["docs_per_s_net_of_startup"] = round((n - n_small) / net_wall, 1)
        figures["docs_per_cpu_s_net_of_startup"] = round((n - n_small) / max(net_cpu, 1e-9), 1)
    else:  # too few documents for the difference to mean anything
        figures["docs_per_s_net_of_startup"] = None  # type: ignore[assignment]
        figures["docs_per_cpu_s_net_of_startup"] = None  # type: ignore[assignment]
    return figures


def machine() -> dict[str, object]:
    from nlp.encoder.runtime import cpu_description, kernel_path

    info: dict[str, object] = {
        "cpu": cpu_description(),
        "kernels": kernel_path(),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }
    try:
        import torch

        info["torch"] = {
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def runtime_choice() -> str:
    """The encoder runtime `verbatim setup` recorded for the packaged model (or torch)."""
    try:
        from core.settings import load_settings
        from nlp.encoder.runtime import RUNTIME_FORMAT

        root = load_settings().resolved_model_dir / "runtime"
        records = [json.loads(p.read_text(encoding="utf-8")) for p in root.glob("*/runtime.json")]
        current = {r["chosen"] for r in records if r.get("format") == RUNTIME_FORMAT}
        return ", ".join(sorted(current)) or "torch (no current runtime build)"
    except (OSError, ValueError):
        return "unknown"


@contextlib.contextmanager
def reference_tree(rev: str, where: Path) -> Iterator[Path]:
    """A checkout of git revision `rev` at `where` (a worktree), removed afterwards."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), rev], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False
        )


def head(src: Path, dst: Path, n: int) -> int:
    with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8") as fout:
        lines = list(itertools.islice(fin, n))
        fout.writelines(lines)
    return len(lines)


def count_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000, help="demo rows (ignored with --input)")
    ap.add_argument("--input", type=Path, default=None, help="JSONL with a 'text' field")
    ap.add_argument("--backend", default="lexicon")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--limit", type=int, default=None, help="only the first N lines of --input")
    ap.add_argument("--repeats", type=int, default=3, help="start-up runs (the fastest counts)")
    ap.add_argument(
        "--reference",
        action="store_true",
        help="also run the in-tree former path (one pass off, torch, spaCy)",
    )
    ap.add_argument(
        "--reference-rev",
        default=None,
        help="also run this git revision's code (e.g. bf744b6, before issue 12)",
    )
    ap.add_argument(
        "--mask",
        action="store_true",
        help="mask PII as `verbatim analyze` does by default (without: the analysis as "
        "`verbatim enrich` runs it on text ingest masked; older trees never mask)",
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="verbatim-bench-analyze-") as tmp:
        root = Path(tmp)
        if args.input is not None and args.limit:
            feed = root / "input.jsonl"  # a temporary head, deleted with the directory
            head(args.input.resolve(), feed, args.limit)
        elif args.input is not None:
            feed = args.input.resolve()
        else:
            from jobs.demo import DemoSpec, write_demo

            feed = root / "feed.jsonl"
            days = 60
            per_day = max(1, round(args.rows / days / 0.97))
            write_demo(feed, DemoSpec(days=days, seed=11, per_day=per_day))
        n = count_lines(feed)
        small = root / "small.jsonl"
        n_small = head(feed, small, 50)
        out = root / "out.jsonl"

        figures: dict[str, object] = {
            "machine": machine(),
            "backend": args.backend,
            "input": str(args.input) if args.input else f"demo feed ({n} rows)",
            "docs": n,
            "runtime_recorded_by_setup": runtime_choice(),
            "pii_masking": "on (this tree only)" if args.mask else "off (as verbatim enrich)",
        }
        # One input and settings for every run; only the tree, its environment and masking vary.
        timed = functools.partial(
            measure, feed, small, n, n_small, out, args.backend, args.batch_size
        )
        runs = {"default": timed(repeats=args.repeats, mask=args.mask)}
        with out.open(encoding="utf-8") as fh:
            written = sum(1 for _ in fh)
            fh.seek(0)
            first = json.loads(fh.readline())
        assert {"sentiment", "themes"} <= set(first), "unexpected output record"
        figures["written"] = written
        if args.reference:
            runs["reference (in-tree, ONE_PASS=0, torch, spaCy)"] = timed(
                env=REFERENCE_ENV, repeats=args.repeats, mask=args.mask
            )
        if args.reference_rev:
            with reference_tree(args.reference_rev, root / "ref") as ref_root:
                runs[f"reference rev {args.reference_rev}"] = timed(
                    root=ref_root, repeats=args.repeats
                )
        base = runs["default"]
        for name, run in runs.items():
            if name != "default":
                run["default_speed-up_end_to_end"] = round(
                    base["docs_per_s_end_to_end"] / max(run["docs_per_s_end_to_end"], 1e-9), 2
                )
                run["default_speed-up_startup"] = round(
                    run["startup_wall_s (50 docs, min of repeats)"]
                    / max(base["startup_wall_s (50 docs, min of repeats)"], 1e-9),
                    2,
                )
                if base["docs_per_cpu_s_net_of_startup"] and run["docs_per_cpu_s_net_of_startup"]:
                    run["default_speed-up_per_cpu_s"] = round(
                        base["docs_per_cpu_s_net_of_startup"]
                        / run["docs_per_cpu_s_net_of_startup"],
                        2,
                    )
        figures["runs"] = runs
        figures["load_average_1m_after"] = round(os.getloadavg()[0], 1)
        print(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
