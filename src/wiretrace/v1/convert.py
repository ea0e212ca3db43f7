"""Conversions between wiretrace.v1 messages and the engine's dataclasses.

Shared by server and client, so a MatchResult that went over the wire is the
same value the in-process engine returned (evaluation code works on both).
"""

from __future__ import annotations

import dataclasses
from typing import cast

from wiretrace.config import IndexSettings
from wiretrace.types import BackendStats, MatchResult, PassageMatch, SourceMatch, StoryRecord, Verdict
from wiretrace.v1 import syndication_pb2 as pb

NS_PER_S = 1_000_000_000


def _wire_verdict(v: Verdict) -> pb.Verdict:
    """scoring.Verdict mirrors the proto enum number for number."""
    return cast(pb.Verdict, int(v))


def story_to_proto(rec: StoryRecord) -> pb.Story:
    msg = pb.Story(
        story_id=rec.story_id,
        headline=rec.headline,
        body=rec.body,
        source=rec.source,
        metadata=rec.metadata,
    )
    if rec.published_at_ns is not None:
        msg.published_at.seconds, msg.published_at.nanos = divmod(rec.published_at_ns, NS_PER_S)
    return msg


def story_from_proto(msg: pb.Story) -> StoryRecord:
    published = None
    if msg.HasField("published_at"):
        published = msg.published_at.seconds * NS_PER_S + msg.published_at.nanos
    return StoryRecord(
        story_id=msg.story_id,
        body=msg.body,
        headline=msg.headline,
        source=msg.source,
        published_at_ns=published,
        metadata=dict(msg.metadata),
    )


def match_to_proto(result: MatchResult, request_id: str = "") -> pb.MatchResponse:
    return pb.MatchResponse(
        request_id=request_id,
        verdict=_wire_verdict(result.verdict),
        original_fraction=result.original_fraction,
        candidates_checked=result.candidates_checked,
        matches=[
            pb.SourceMatch(
                story_id=m.story_id,
                headline=m.headline,
                containment=m.containment,
                coverage=m.coverage,
                jaccard=m.jaccard,
                verdict=_wire_verdict(m.verdict),
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
            )
            for m in msg.matches
        ),
        original_fraction=msg.original_fraction,
        candidates_checked=msg.candidates_checked,
    )


def stats_to_proto(stats: BackendStats, index: IndexSettings) -> pb.GetStatsResponse:
    return pb.GetStatsResponse(
        story_count=stats.stories,
        index_settings={f.name: str(getattr(index, f.name)) for f in dataclasses.fields(index)},
        index_entries=stats.index_entries,
        index_bytes=stats.index_bytes,
        disk_bytes=stats.disk_bytes,
        rebuild_seconds=stats.rebuild_seconds,
    )


def stats_from_proto(msg: pb.GetStatsResponse) -> tuple[BackendStats, dict[str, str]]:
    """Engine BackendStats and the index settings map (name -> value as text)."""
    stats = BackendStats(msg.story_count, msg.index_entries, msg.index_bytes, msg.disk_bytes, msg.rebuild_seconds)
    return stats, dict(msg.index_settings)
