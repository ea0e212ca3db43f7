"""Figure 5: index settings -> candidate recall/precision against exact truth, and Match latency.

For every (num_perm, bands, rows, shingle size, window) in the profile's grid, on one generated
corpus and query sample:

* exact truth by brute force: a story is a true source of a query when they share at least
  ``TRUTH_MIN_SHARED`` distinct shingles making up at least ``TRUTH_MIN_FRACTION`` of the query or
  of the story (same shingle size as the setting; an inverted list over every story, no LSH);
* the generator's known provenance (the ``sources`` of each derived query), which does not
  depend on the shingle size and so compares settings fairly;
* LSH candidates exactly as Match computes them (story windows stepped by ``window``, query
  windows stepped by ``query_step``), all of them and the ``max_candidates`` most-hit;
* Match latency and the attribution rate of a detector built with the setting (in-process);
* S-curves: P(two windows share a band) measured on windows of known Jaccard vs 1-(1-s^r)^b.

Tokenising is shared by all settings (it does not depend on them), so the sweep is cheap.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Profile, log, percentiles
from wiretrace.config import IndexSettings, MatchSettings, Settings
from wiretrace.corpusgen import KINDS_DERIVED, CorpusGenerator
from wiretrace.embedded_backend import EmbeddedBackend
from wiretrace.engine import Detector
from wiretrace.evaluation import score
from wiretrace.index import LSHIndex
from wiretrace.shingling import U32, shingle_hashes, window_bounds
from wiretrace.signatures import MinHasher
from wiretrace.text import Tokens, tokenize
from wiretrace.types import StoryRecord

TRUTH_MIN_SHARED = 8
TRUTH_MIN_FRACTION = 0.05


def exact_sources(story_sh: list[U32], query_sh: list[U32]) -> list[set[int]]:
    """True sources of each query by brute force over every story (an exact inverted list)."""
    uniq = [np.unique(s) for s in story_sh]
    sizes = np.array([u.size for u in uniq], dtype=np.int64)
    values = np.concatenate(uniq)
    owner = np.repeat(np.arange(len(uniq), dtype=np.int64), sizes)
    order = np.argsort(values, kind="stable")
    values, owner = values[order], owner[order]
    out: list[set[int]] = []
    for q in query_sh:
        qu = np.unique(q)
        if qu.size == 0:
            out.append(set())
            continue
        lo = np.searchsorted(values, qu, "left")
        hi = np.searchsorted(values, qu, "right")
        counts = hi - lo
        nz = counts > 0
        if not nz.any():
            out.append(set())
            continue
        idx = np.repeat(lo[nz] - np.concatenate(([0], np.cumsum(counts[nz])[:-1])), counts[nz]) + np.arange(
            int(counts.sum())
        )
        stories, shared = np.unique(owner[idx], return_counts=True)
        ok = (shared >= TRUTH_MIN_SHARED) & (
            (shared / qu.size >= TRUTH_MIN_FRACTION) | (shared / np.maximum(1, sizes[stories]) >= TRUTH_MIN_FRACTION)
        )
        out.append(set(stories[ok].tolist()))
    return out


def scurve(num_perm: int, bands: int, rows: int, window: int, trials: int, seed: int = 7) -> dict[str, list[float]]:
    """Measured P(share >= 1 band) for window pairs of Jaccard (w-j)/(w+j), j = 0..w."""
    rng = np.random.default_rng(seed)
    hasher = MinHasher(num_perm, bands, rows, 1)
    sims, measured = [], []
    for j in range(window + 1):
        a = rng.integers(0, 1 << 32, size=(trials, window), dtype=np.uint64).astype(np.uint32)
        b = a.copy()
        b[:, :j] = rng.integers(0, 1 << 32, size=(trials, j), dtype=np.uint64).astype(np.uint32)
        flat = np.concatenate([a.reshape(-1), b.reshape(-1)])
        starts = np.arange(0, 2 * trials * window, window, dtype=np.int64)
        keys = hasher.band_keys(hasher.signatures(flat, starts, starts + window))
        hit = (keys[:trials] == keys[trials:]).any(axis=1)
        sims.append((window - j) / (window + j))
        measured.append(float(hit.mean()))
    s = np.array(sims)
    theory = 1 - (1 - s**rows) ** bands
    return {"similarity": sims, "measured": measured, "theory": theory.tolist()}


def _keys(hasher: MinHasher, shingles: list[U32], window: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Band keys of every window of every document, and the document each key belongs to."""
    starts, ends, owners, off = [], [], [], 0
    for i, sh in enumerate(shingles):
        s, e = window_bounds(sh.size, window, step)
        starts.append(s + off)
        ends.append(e + off)
        owners.append(np.full(s.size, i, dtype=np.int64))
        off += sh.size
    flat = np.concatenate(shingles)
    keys = hasher.band_keys(hasher.signatures(flat, np.concatenate(starts), np.concatenate(ends)))
    owner = np.repeat(np.concatenate(owners), hasher.bands)
    return keys.reshape(-1), owner


@contextlib.contextmanager
def memo_tokenize(cache: dict[str, Tokens]) -> Iterator[None]:
    """Serve ``tokenize`` from a cache while stories are indexed for each setting.

    Tokens do not depend on the index settings, so re-tokenising the corpus for every point of
    the grid would only measure the tokenizer again. Match latency is measured outside this.
    """
    import wiretrace.pipeline as pl

    original = pl.tokenize  # type: ignore[attr-defined]

    def cached(text: str, **kw: Any) -> Tokens:
        hit = cache.get(text) if not kw else None
        return hit if hit is not None else original(text, **kw)

    pl.tokenize = cached  # type: ignore[attr-defined]
    try:
        yield
    finally:
        pl.tokenize = original  # type: ignore[attr-defined]


def _evaluate(
    settings: Settings,
    records: list[StoryRecord],
    cache: dict[str, Tokens],
    queries: list[dict[str, Any]],
    work_dir: Path,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        det = Detector(settings, EmbeddedBackend(Path(tmp), settings.index.fingerprint()))
        with memo_tokenize(cache):
            for i in range(0, len(records), 1000):
                det.upsert(records[i : i + 1000])
        lat, pairs = [], []
        for q in queries:
            t0 = time.perf_counter()
            r = det.match(q["text"], 5)
            lat.append(time.perf_counter() - t0)
            pairs.append((q, r))
        entries = det.stats().index_entries
        det.close()
    rep = score(pairs)
    derived = [rep.kinds[k].rate for k in KINDS_DERIVED if rep.kinds[k].n]
    original = [rep.kinds[k].rate for k in ("unrelated", "local") if rep.kinds[k].n]
    return {
        "latency": percentiles(lat),
        "attribution_rate": float(np.mean(derived)) if derived else float("nan"),
        "min_kind_rate": float(min(derived)) if derived else float("nan"),
        "unrelated_rate": float(np.mean(original)) if original else float("nan"),
        "index_bytes_per_story": entries * 12 / len(records),
        "by_kind": {k: round(v.rate, 4) for k, v in rep.kinds.items()},
    }


def run(profile: Profile, gen: CorpusGenerator, work_dir: Path) -> dict[str, Any]:
    n = profile.sweep_stories
    stories = list(gen.stories(n))
    queries = list(gen.queries(n, profile.sweep_queries))
    number = {s.story_id: i for i, s in enumerate(stories)}
    records = [StoryRecord(s.story_id, s.body, s.headline) for s in stories]
    t0 = time.perf_counter()
    story_tok: list[Tokens] = [tokenize(s.body) for s in stories]
    query_tok: list[Tokens] = [tokenize(q["text"]) for q in queries]
    tok_cache = {s.body: t for s, t in zip(stories, story_tok, strict=True)}
    log(f"sweep: {n} stories, {len(queries)} queries tokenised in {time.perf_counter() - t0:.1f}s")
    known = [{number[a] for src in q["sources"] for a in src["accept"] if a in number} for q in queries]
    primary = [{number[q["sources"][0]["story_id"]]} if q["sources"] else set() for q in queries]
    match_defaults = MatchSettings()
    rows_out: list[dict[str, Any]] = []
    by_k: dict[int, tuple[list[U32], list[U32], list[set[int]]]] = {}
    for p, b, r, k, w in profile.sweep_grid:
        if k not in by_k:
            ssh = [shingle_hashes(t.hashes, k) for t in story_tok]
            qsh = [shingle_hashes(t.hashes, k) for t in query_tok]
            by_k[k] = (ssh, qsh, exact_sources(ssh, qsh))
        ssh, qsh, truth = by_k[k]
        hasher = MinHasher(p, b, r, 1)
        t0 = time.perf_counter()
        skeys, sowner = _keys(hasher, ssh, w, w)
        index = LSHIndex()
        index.insert(skeys, sowner.astype(np.uint32))
        build_s = time.perf_counter() - t0
        qkeys, qowner = _keys(hasher, qsh, w, match_defaults.query_step)
        tp = fp = fn = tp_top = fn_top = known_hit = known_n = prim_hit = prim_n = 0
        n_cand = []
        for i in range(len(queries)):
            hits = index.query(qkeys[qowner == i])
            cand, counts = np.unique(hits, return_counts=True)
            top = set(cand[np.argsort(-counts, kind="stable")[: match_defaults.max_candidates]].tolist())
            cset = set(cand.tolist())
            n_cand.append(len(cset))
            tp += len(cset & truth[i])
            fp += len(cset - truth[i])
            fn += len(truth[i] - cset)
            tp_top += len(top & truth[i])
            fn_top += len(truth[i] - top)
            known_hit += len(top & known[i]) > 0 if known[i] else 0
            known_n += bool(known[i])
            prim_hit += len(top & primary[i])
            prim_n += len(primary[i])
        settings = Settings(
            index=IndexSettings(shingle_size=k, window=w, num_perm=p, bands=b, rows=r), match=match_defaults
        )
        ev = _evaluate(settings, records, tok_cache, queries, work_dir)
        row = {
            "num_perm": p,
            "bands": b,
            "rows": r,
            "shingle": k,
            "window": w,
            "threshold_approx": (1 / b) ** (1 / r),
            "recall": tp / max(1, tp + fn),
            "precision": tp / max(1, tp + fp),
            "recall_top": tp_top / max(1, tp_top + fn_top),
            "provenance_recall": prim_hit / max(1, prim_n),
            "any_known_source_found": known_hit / max(1, known_n),
            "candidates_mean": float(np.mean(n_cand)),
            "index_build_s": build_s,
            **ev,
        }
        rows_out.append(row)
        log(
            f"sweep p={p} b={b} r={r} k={k} w={w}: recall {row['recall']:.3f} precision {row['precision']:.3f} "
            f"prov {row['provenance_recall']:.3f} attr {row['attribution_rate']:.3f} "
            f"p50 {row['latency']['p50_ms']:.2f} ms"
        )
    curves = {}
    for p, b, r in sorted({(p, b, r) for p, b, r, _, _ in profile.sweep_grid}):
        curves[f"{p}/{b}x{r}"] = scurve(p, b, r, IndexSettings().window, profile.scurve_trials)
    return {
        "stories": n,
        "queries": len(queries),
        "truth": {"min_shared": TRUTH_MIN_SHARED, "min_fraction": TRUTH_MIN_FRACTION},
        "rows": rows_out,
        "scurves": curves,
        "recommendation": recommend(rows_out),
    }


def _setting(row: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (row["num_perm"], row["bands"], row["rows"], row["shingle"], row["window"])


def _index_settings(key: tuple[int, int, int, int, int]) -> IndexSettings:
    p, b, r, k, w = key
    return IndexSettings(num_perm=p, bands=b, rows=r, shingle_size=k, window=w)


def recommend(rows: list[dict[str, Any]], shortlist: int = 3) -> dict[str, Any]:
    """Stage 1, on the generated corpus: settings within 1 point of the best
    recall and attribution, cheapest (index bytes x latency) first. The
    generated queries are too easy to tell good settings apart on accuracy,
    so the first few go on to `confirm` on a real dev set."""
    if not rows:
        return {}
    best_prov = max(r["provenance_recall"] for r in rows)
    best_attr = max(r["attribution_rate"] for r in rows)
    ok = [r for r in rows if r["provenance_recall"] >= best_prov - 0.01 and r["attribution_rate"] >= best_attr - 0.01]
    ok.sort(key=lambda r: (r["index_bytes_per_story"] * r["latency"]["p50_ms"], -r["recall"]))
    pick = ok[0]
    d = IndexSettings()
    defaults = (d.num_perm, d.bands, d.rows, d.shingle_size, d.window)
    current = next((r for r in rows if _setting(r) == defaults), None)
    return {
        "pick": {k: pick[k] for k in ("num_perm", "bands", "rows", "shingle", "window")},
        "pick_row": pick,
        "shortlist": [list(_setting(r)) for r in ok[:shortlist]],
        "current_defaults_row": current,
        "rule": "within 0.01 of the best provenance recall and attribution rate, then the smallest "
        "index-bytes x p50-latency product",
    }


# Run-to-run spread of in-process matches/s on this shared 2-core machine: two
# full runs an hour apart put the same two settings 5% apart in opposite orders.
SPEED_NOISE = 0.10


def confirm(
    rec: dict[str, Any], wire: Path, queries_path: Path, work_dir: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Stage 2, on a real dev set: the shortlist and the current defaults are
    scored against the core issue's targets; the pick is the setting with the
    most headroom over every target (accuracy first: a detector that misses
    its targets is not made better by being fast), then the fastest matcher,
    keeping the defaults (and every data dir made with them) when the gain is
    within the machine's noise."""
    d = IndexSettings()
    keys: list[tuple[int, int, int, int, int]] = [(p, b, r, k, w) for p, b, r, k, w in rec.get("shortlist", [])]
    defaults = (d.num_perm, d.bands, d.rows, d.shingle_size, d.window)
    if defaults not in keys:
        keys.append(defaults)
    evals = eval_shared(wire, queries_path, [_index_settings(k) for k in keys], work_dir)
    for key, e in zip(keys, evals, strict=True):
        e["key"] = list(key)
        e["is_default"] = key == defaults
    top = max(round(e["headroom"], 3) for e in evals)
    tied = [e for e in evals if round(e["headroom"], 3) == top]
    best = max(tied, key=lambda e: e["match_per_s"])
    kept = next((e for e in tied if e["is_default"]), None)
    if kept is not None and best["match_per_s"] < (1 + SPEED_NOISE) * kept["match_per_s"]:
        best = kept  # a speed difference this machine's noise can make is no reason to change
    return evals, {
        "pick": best["key"],
        "is_default": best["is_default"],
        "rule": (
            "most headroom over every synthetic-dev target (rounded to 0.001), then most matches/s;"
            f" the defaults stay unless another setting is {SPEED_NOISE:.0%} faster"
        ),
    }


def eval_shared(
    wire: Path, queries_path: Path, settings_list: list[IndexSettings], work_dir: Path
) -> list[dict[str, Any]]:
    """The core issue's synthetic-dev figures at the given settings (in-process detector)."""
    from wiretrace.corpus import read_jsonl, story_from_json

    out = []
    recs = [story_from_json(o) for o in read_jsonl(wire)]
    qs = list(read_jsonl(queries_path))
    for idx in settings_list:
        settings = replace(Settings(), index=idx)
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            det = Detector(settings, EmbeddedBackend(Path(tmp), idx.fingerprint()))
            t0 = time.perf_counter()
            for i in range(0, len(recs), 1000):
                det.upsert(recs[i : i + 1000])
            t_index = time.perf_counter() - t0
            t0 = time.perf_counter()
            pairs = [(q, det.match(q["text"], 5)) for q in qs]
            t_match = time.perf_counter() - t0
            det.close()
        rep = score(pairs)
        out.append(
            {
                "settings": idx.fingerprint(),
                "table": rep.render(),
                "by_kind": {k: round(v.rate, 4) for k, v in rep.kinds.items()},
                "headroom": rep.headroom(),
                "index_stories_s": len(recs) / t_index,
                "match_per_s": len(qs) / t_match,
            }
        )
        log(f"synthetic-dev at {idx.fingerprint()}:\n{rep.render()}")
    return out
