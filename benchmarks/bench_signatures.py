"""Figure 1: signature throughput, ours vs datasketch, on the same documents and num_perm.

Ours is the whole ingest path of a story (tokenize -> shingle -> windows -> MinHash -> band
keys, ``TextPipeline.stories``), so the ratio is conservative: datasketch only has to hash
one whole-document signature per story from whitespace 4-grams. Everything runs on one core
(single thread), so docs/s is docs/s per core. The stage breakdown and a pyinstrument profile
say where our time goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from datasketch import MinHash

from benchmarks.common import Profile, log, timed
from wiretrace.config import IndexSettings
from wiretrace.pipeline import TextPipeline
from wiretrace.shingling import shingle_hashes, window_bounds
from wiretrace.signatures import MinHasher
from wiretrace.text import content_spans, token_hashes_batch, tokenize
from wiretrace.text.batch import Joined, content_ranges, token_bounds
from wiretrace.text.normalize import TOKEN_RE
from wiretrace.text.xxh32 import xxh32_ascii_tokens

# Best of this many runs for every contender alike: the machine is shared, and one run of
# ours on the quick profile's 300 stories lasts ~15 ms, short enough for one stall to halve it.
REPEATS = 3


def _ds_shingles(text: str, k: int) -> list[bytes]:
    words = text.lower().split()
    return [" ".join(words[i : i + k]).encode("utf-8") for i in range(max(1, len(words) - k + 1))]


def ds_loop(docs: list[str], num_perm: int, k: int) -> None:
    for d in docs:
        m = MinHash(num_perm=num_perm)
        for s in _ds_shingles(d, k):
            m.update(s)


def ds_batch(docs: list[str], num_perm: int, k: int) -> None:
    for d in docs:
        m = MinHash(num_perm=num_perm)
        m.update_batch(_ds_shingles(d, k))


def _ours(pipe: TextPipeline, docs: list[str], batch: int) -> None:
    for i in range(0, len(docs), batch):
        pipe.stories(docs[i : i + batch])


def breakdown(docs: list[str], settings: IndexSettings) -> dict[str, float]:
    """Seconds per document in each stage (each stage timed alone on the same docs)."""
    n = len(docs)
    hasher = MinHasher(settings.num_perm, settings.bands, settings.rows, settings.seed)
    tokenize(docs[0])  # warm the token-hash cache as a long-running server has it
    for d in docs:
        tokenize(d)
    toks = [tokenize(d) for d in docs]
    shingled = [shingle_hashes(t.hashes, settings.shingle_size) for t in toks]
    bounds = [window_bounds(s.size, settings.window, settings.window) for s in shingled]
    sigs = [hasher.signatures(s, a, b) for s, (a, b) in zip(shingled, bounds, strict=True)]

    def regex_only() -> None:
        for d in docs:
            for s, e in content_spans(d):
                for _ in TOKEN_RE.finditer(d, s, e):
                    pass

    out = {
        "content_spans (boilerplate regexes)": timed(lambda: [content_spans(d) for d in docs], 2) / n,
        "content_spans + token regex scan": timed(regex_only, 2) / n,
        "tokenize (total, warm hash cache)": timed(lambda: [tokenize(d) for d in docs], 2) / n,
        "shingle_hashes": timed(lambda: [shingle_hashes(t.hashes, settings.shingle_size) for t in toks], 3) / n,
        "window_bounds": timed(lambda: [window_bounds(s.size, settings.window, settings.window) for s in shingled], 3)
        / n,
        "signatures (per doc)": timed(
            lambda: [hasher.signatures(s, a, b) for s, (a, b) in zip(shingled, bounds, strict=True)], 3
        )
        / n,
        "band_keys (per doc)": timed(lambda: [hasher.band_keys(s) for s in sigs], 3) / n,
    }
    # The stories path works on whole batches (one numpy pass over the text of 256 stories).
    batches = [docs[i : i + 256] for i in range(0, n, 256)]
    pipe = TextPipeline(settings)
    out["token_hashes_batch (stories path, batches of 256)"] = (
        timed(lambda: [token_hashes_batch(b) for b in batches], 3) / n
    )
    # ...and its parts, each alone on the same batches.
    joined = [Joined.of(b) for b in batches]
    ascii_bounds = [(j, *token_bounds(j)) for j in joined if j.cp.dtype == np.uint8]
    out["stories path, batched: code points and word classes"] = timed(lambda: [Joined.of(b) for b in batches], 3) / n
    out["stories path, batched: token bounds"] = timed(lambda: [token_bounds(j) for j in joined], 3) / n
    out["stories path, batched: boilerplate lines (vectorised pre-tests + regexes)"] = (
        timed(lambda: [content_ranges(j) for j in joined], 3) / n
    )
    if ascii_bounds:
        out["stories path, batched: xxh32 of ASCII tokens"] = (
            timed(lambda: [xxh32_ascii_tokens(j.cp, a, b - a) for j, a, b in ascii_bounds], 3) / n  # type: ignore[arg-type]
        )
    prints = [token_hashes_batch(b) for b in batches]
    out["stories path, batched: window prints (tokens + shingles + window MinHash + band keys)"] = (
        timed(lambda: [pipe.window_prints(b) for b in batches], 3) / n
    )
    out["stories path, batched: whole-document MinHash + band keys"] = (
        timed(lambda: [pipe._topic_keys_batch(t, o) for t, o in prints], 3) / n
    )
    out["TextPipeline.stories (batches of 256)"] = timed(lambda: [pipe.stories(b) for b in batches], 3) / n
    flat = np.concatenate(shingled)
    starts, ends, off = [], [], 0
    for s, (a, b) in zip(shingled, bounds, strict=True):
        starts.append(a + off)
        ends.append(b + off)
        off += s.size
    st, en = np.concatenate(starts), np.concatenate(ends)
    out["signatures (one batch of all docs)"] = timed(lambda: hasher.signatures(flat, st, en), 3) / n
    return out


def profile_text(docs: list[str], settings: IndexSettings, out_dir: Path) -> str:
    """pyinstrument's call tree of ``TextPipeline.stories`` (also written to profile_signatures.txt)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "(pyinstrument not installed)"
    pipe = TextPipeline(settings)
    prof = Profiler(interval=0.0005)
    prof.start()
    for _ in range(2):
        _ours(pipe, docs, 256)
    prof.stop()
    text = prof.output_text(unicode=False, color=False, show_all=False)
    (out_dir / "profile_signatures.txt").write_text(text)
    return text


def run(profile: Profile, docs: list[str], out_dir: Path) -> dict[str, Any]:
    base = IndexSettings()
    k = base.shingle_size
    res: dict[str, Any] = {
        "n_docs": len(docs),
        "mean_words": float(np.mean([len(d.split()) for d in docs])),
        "by_num_perm": {},
    }
    loop_docs = docs[: profile.ds_loop_docs]
    batch_docs = docs[: profile.ds_batch_docs]
    for p in profile.sig_num_perms:
        bands = min(base.bands, p // base.rows)
        settings = IndexSettings(shingle_size=k, window=base.window, num_perm=p, bands=bands, rows=base.rows)
        pipe = TextPipeline(settings)
        _ours(pipe, docs[:64], 64)  # warm-up: permutations, token-hash cache
        t_ours = timed(lambda pipe=pipe: _ours(pipe, docs, 256), REPEATS)  # type: ignore[misc]
        t_single = timed(lambda pipe=pipe: [pipe.story(d) for d in docs[:400]], REPEATS)  # type: ignore[misc]
        t_loop = timed(lambda p=p: ds_loop(loop_docs, p, k), REPEATS)  # type: ignore[misc]
        t_batch = timed(lambda p=p: ds_batch(batch_docs, p, k), REPEATS)  # type: ignore[misc]
        row = {
            "ours_docs_s": len(docs) / t_ours,
            "ours_single_docs_s": min(400, len(docs)) / t_single,
            "ds_update_docs_s": len(loop_docs) / t_loop,
            "ds_update_batch_docs_s": len(batch_docs) / t_batch,
        }
        row["ratio_vs_update"] = row["ours_docs_s"] / row["ds_update_docs_s"]
        row["ratio_vs_update_batch"] = row["ours_docs_s"] / row["ds_update_batch_docs_s"]
        res["by_num_perm"][str(p)] = row
        log(
            f"signatures num_perm={p}: ours {row['ours_docs_s']:.0f} docs/s, datasketch update "
            f"{row['ds_update_docs_s']:.0f}, update_batch {row['ds_update_batch_docs_s']:.0f}"
        )
    res["breakdown_s_per_doc"] = breakdown(docs[: min(len(docs), 600)], base)
    res["profile"] = profile_text(docs[: min(len(docs), 600)], base, out_dir)
    return res
