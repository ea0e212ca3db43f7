"""``wiretrace dedup --against``: tag every article of an archive with the wire stories it derives from.

The archive is read as de-duplication reads it (``dedup.input``) and each
article is matched against a wire index: a running server (through the gRPC
client), or a store opened in this process (``backend.open_store``: a
``redis://`` URL or an index directory).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from wiretrace.backend import SHARED_SCHEMES, open_store
from wiretrace.client import MatchQuery, WiretraceClient
from wiretrace.config import Settings
from wiretrace.dedup.input import RECORD_MASK, Skipped, parse_record, raw_id, read_records
from wiretrace.dedup.output import OutputWriter
from wiretrace.dedup.params import DedupParams
from wiretrace.types import MatchResult


def run_against(
    paths: Sequence[str],
    out_dir: Path,
    params: DedupParams,
    target: str,
    settings: Settings | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Tag every archive article with its wire sources instead of clustering.

    `target` is a running server (HOST:PORT, through the gRPC client), a
    ``redis://`` store, or an index directory (the embedded store, opened here).
    Writes ``tags.jsonl``: id, verdict, original_fraction, sources.
    """
    settings = settings or Settings.load()
    started = time.perf_counter()
    writer = OutputWriter(out_dir, clusters=False)
    articles: list[tuple[str, str]] = []

    def records() -> Iterator[tuple[str, str]]:
        for key, path, payload in read_records(paths, params):
            parsed = parse_record(payload, params)
            if isinstance(parsed, str):
                writer.skip(Skipped(path, key & RECORD_MASK, raw_id(payload, params), parsed))
            else:
                yield parsed

    results: Iterator[tuple[str, MatchResult]]
    closer: Any
    if Path(target).is_dir() or target.startswith(SHARED_SCHEMES):
        from wiretrace.engine import Detector

        detector = Detector(settings, open_store(target, settings.index.fingerprint()))
        results = ((doc_id, detector.match(text)) for doc_id, text in records())
        closer = detector
    else:
        client = WiretraceClient(target)
        results = client.match_stream(MatchQuery(text, request_id=doc_id) for doc_id, text in records())
        closer = client
    counts: Counter[str] = Counter()
    try:
        with (out_dir / "tags.jsonl").open("w", encoding="utf-8") as fh:
            for doc_id, res in tqdm(results, desc="match", unit="doc", disable=not progress):
                counts[res.verdict.name] += 1
                sources = [
                    {
                        "story_id": m.story_id,
                        "containment": m.containment,
                        "coverage": m.coverage,
                        "verdict": m.verdict.name,
                    }
                    for m in res.matches
                ]
                line = {"id": doc_id, "verdict": res.verdict.name, "original_fraction": round(res.original_fraction, 4)}
                fh.write(json.dumps({**line, "sources": sources}, ensure_ascii=False) + "\n")
                articles.append((doc_id, res.verdict.name))
    finally:
        closer.close()
    seconds = time.perf_counter() - started
    return writer.finish(
        len(articles),
        {"engine": "against", "target": target, "verdicts": dict(sorted(counts.items())), "seconds": round(seconds, 3)},
    )
