"""Conversions between wiretrace.v1 messages and the engine's dataclasses.

Shared by server and client, so a MatchResult that went over the wire is the
same value the in-process engine returned (evaluation code works on both).
"""

from __future__ import annotations

import dataclasses
from typing import cast

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from wiretrace.config import IndexSettings
from wiretrace.types import (
    BackendStats,
    Evidence,
    MatchResult,
    PassageMatch,
    SourceMatch,
    StoryFilter,
    StoryRecord,
    Verdict,
)
from wiretrace.v1 import syndication_pb2 as pb

NS_PER_S = 1_000_000_000


def _wire_verdict(v: Verdict) -> pb.Verdict:
    """scoring.Verdict mirrors the proto enum number for number."""
    return cast(pb.Verdict, int(v))


def timestamp(ns: int | None) -> Timestamp | None:
    """A Timestamp of ns since the epoch (None stays unset)."""
    if ns is None:
        return None
    seconds, nanos = divmod(ns, NS_PER_S)
    return Timestamp(seconds=seconds, nanos=nanos)


def ns_of(msg: Message, field: str) -> int | None:
    """A Timestamp field in ns since the epoch, or None when it is unset."""
    if not msg.HasField(field):
        return None
    ts = getattr(msg, field)
    return int(ts.seconds) * NS_PER_S + int(ts.nanos)


def story_to_proto(rec: StoryRecord) -> pb.Story:
    return pb.Story(
        story_id=rec.story_id,
        headline=rec.headline,
        body=rec.body,
        source=rec.source,
        published_at=timestamp(rec.published_at_ns),
        metadata=rec.metadata,
    )


def story_from_proto(msg: pb.Story) -> StoryRecord:
    return StoryRecord(
        story_id=msg.story_id,
        body=msg.body,
        headline=msg.headline,
        source=msg.source,
        published_at_ns=ns_of(msg, "published_at"),
        metadata=dict(msg.metadata),
    )


def filter_to_proto(flt: StoryFilter, req: pb.MatchRequest) -> None:
    """Set a request's filter fields."""
    for name, ns in (("published_after", flt.published_after_ns), ("published_before", flt.published_before_ns)):
        if ns is not None:
            getattr(req, name).CopyFrom(timestamp(ns))
    req.sources[:] = sorted(flt.sources)
    req.exclude_sources[:] = sorted(flt.exclude_sources)


def filter_from_proto(req: pb.MatchRequest) -> StoryFilter:
    return StoryFilter(
        published_after_ns=ns_of(req, "published_after"),
        published_before_ns=ns_of(req, "published_before"),
        sources=frozenset(req.sources),
        exclude_sources=frozenset(req.exclude_sources),
    )


def match_to_proto(result: MatchResult, request_id: str = "") -> pb.MatchResponse:
    return pb.MatchResponse(
        request_id=request_id,
        verdict=_wire_verdict(result.verdict),
        original_fraction=result.original_fraction,
        candidates_checked=result.candidates_checked,
        reason=result.reason,
        matches=[
            pb.SourceMatch(
                story_id=m.story_id,
                headline=m.headline,
                containment=m.containment,
                coverage=m.coverage,
                jaccard=m.jaccard,
                verdict=_wire_verdict(m.verdict),
                source=m.source,
                published_at=timestamp(m.published_at_ns),
                editions=m.editions,
                evidence=int(m.evidence),  # type: ignore[arg-type]
                rewrite_probability=m.rewrite_probability,
                passages=[
                    pb.Passage(
                        article_start=p.article_start,
                        article_end=p.article_end,
                        story_start=p.story_start,
                        story_end=p.story_end,
                        similarity=p.similarity,
                    )
                    for p in m.passages
                ],
            )
            for m in result.matches
        ],
    )


def match_from_proto(msg: pb.MatchResponse) -> MatchResult:
    return MatchResult(
        verdict=Verdict(msg.verdict),
        matches=tuple(
            SourceMatch(
                story_id=m.story_id,
                headline=m.headline,
                containment=m.containment,
                coverage=m.coverage,
                jaccard=m.jaccard,
                verdict=Verdict(m.verdict),
                passages=tuple(
                    PassageMatch(p.article_start, p.article_end, p.story_start, p.story_end, p.similarity)
                    for p in m.passages
                ),
                source=m.source,
                published_at_ns=ns_of(m, "published_at"),
                editions=tuple(m.editions),
                evidence=Evidence(m.evidence) if m.evidence in Evidence._value2member_map_ else Evidence.UNSPECIFIED,
                rewrite_probability=m.rewrite_probability,
            )
            for m in msg.matches
        ),
        original_fraction=msg.original_fraction,
        candidates_checked=msg.candidates_checked,
        reason=msg.reason,
    )


def stats_to_proto(stats: BackendStats, index: IndexSettings) -> pb.GetStatsResponse:
    return pb.GetStatsResponse(
        story_count=stats.stories,
        index_settings={f.name: str(getattr(index, f.name)) for f in dataclasses.fields(index)},
        index_entries=stats.index_entries,
        index_bytes=stats.index_bytes,
        disk_bytes=stats.disk_bytes,
        rebuild_seconds=stats.rebuild_seconds,
        oldest_published_at=timestamp(stats.oldest_published_ns),
        newest_published_at=timestamp(stats.newest_published_ns),
    )


def stats_from_proto(msg: pb.GetStatsResponse) -> tuple[BackendStats, dict[str, str]]:
    """Engine BackendStats and the index settings map (name -> value as text)."""
    stats = BackendStats(
        msg.story_count,
        msg.index_entries,
        msg.index_bytes,
        msg.disk_bytes,
        msg.rebuild_seconds,
        oldest_published_ns=ns_of(msg, "oldest_published_at"),
        newest_published_ns=ns_of(msg, "newest_published_at"),
    )
    return stats, dict(msg.index_settings)
