"""A match answer as an editor reads it (text) and as a program reads it (JSON).

The text view is short on purpose: the verdict and why, then each source
with its agency and date, what share of the article it makes up and what
share of it the article uses, in words, and its longest passages quoted at
word boundaries. Offsets and every passage are for `--passages all` and
`--json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wiretrace.types import MatchResult, PassageMatch, SourceMatch, StoryRecord, Verdict

DIGITS = 4  # every fraction in --json
QUOTE_CHARS = 200

SIMILARITY = (
    "similarity: the share of a passage's word sequences (shingles) found word for word in the story; "
    "1.00 is an exact copy, less means changed words or OCR noise inside the passage"
)
OFFSETS = "offsets: Unicode code points, [start, end), in the article and in the stored story"


@dataclass(frozen=True)
class PassageView:
    """How many passages to quote per source: the `limit` longest, or all with offsets."""

    limit: int | None  # None: all

    @classmethod
    def parse(cls, value: str) -> PassageView:
        if value.strip().lower() == "all":
            return cls(None)
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"--passages takes a number or 'all', not {value!r}") from None
        if n < 0:
            raise ValueError("--passages takes a number of 0 or more, or 'all'")
        return cls(n)


def quote(text: str, start: int, end: int, width: int = QUOTE_CHARS) -> str:
    """The text of [start, end) on one line, shortened in the middle at word boundaries, in curly quotes."""
    words = text[start:end].split()
    s = " ".join(words)
    if len(s) > width:
        head: list[str] = []
        for w in words:
            if len(" ".join([*head, w])) > width * 2 // 3:
                break
            head.append(w)
        tail: list[str] = []
        for w in reversed(words[len(head) :]):
            if len(" ".join([w, *tail])) > width // 3:
                break
            tail.insert(0, w)
        s = " ".join(head or words[:1]) + " … " + " ".join(tail or words[-1:])
    return f"“{s}”"


def percent(x: float) -> str:
    """A share as a person says it: '62%', '<1%' for a trace, never '0%' for something."""
    if 0 < x < 0.005:
        return "<1%"
    if 0.995 <= x < 1:
        return ">99%"
    return f"{x:.0%}"


def published(ns: int | None) -> str:
    if ns is None:
        return ""
    dt = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    midnight = (dt.hour, dt.minute, dt.second) == (0, 0, 0)
    return dt.strftime("%Y-%m-%d") if midnight else dt.strftime("%Y-%m-%d %H:%M UTC")


def _published_iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def verdict_reason(result: MatchResult) -> str:
    """The server's reason; from a server too old to give one, what the numbers themselves say."""
    if result.reason:
        return result.reason
    wire = 1.0 - result.original_fraction
    if result.verdict == Verdict.UNRELATED:
        return "no indexed story shares enough text with the article"
    best = max((m.verdict for m in result.matches), default=Verdict.UNRELATED)
    if result.verdict > best:
        return (
            f"{len(result.matches)} stories together make up {percent(wire)} of the article, "
            "though none alone makes up most of it"
        )
    return f"{percent(wire)} of the article is wire copy"


def source_summary(m: SourceMatch) -> str:
    """Containment and coverage in words."""
    if not m.passages:
        return (
            f"reworded: no passage copied word for word, but {percent(m.containment)} of the article's word pairs "
            "(weighted by rarity) are this story's"
        )
    n = len(m.passages)
    return (
        f"{percent(m.containment)} of the article is from this story; the article uses {percent(m.coverage)} of it "
        f"({n} passage{'s' if n != 1 else ''})"
    )


def _longest(m: SourceMatch, limit: int) -> list[PassageMatch]:
    """The `limit` longest passages, in article order."""
    chosen = sorted(m.passages, key=lambda p: (p.article_start - p.article_end, p.article_start))[:limit]
    return sorted(chosen, key=lambda p: p.article_start)


def render_text(
    result: MatchResult, text: str, stories: dict[str, StoryRecord], view: PassageView = PassageView(3)
) -> str:
    lines = [f"verdict: {result.verdict.name} — {verdict_reason(result)}"]
    if result.matches or result.verdict != Verdict.UNRELATED:
        lines.append(
            f"original text: {percent(result.original_fraction)} of the article is in no indexed story "
            f"({result.candidates_checked} candidate stories checked)"
        )
    for i, m in enumerate(result.matches, 1):
        record = stories.get(m.story_id)
        headline = f" “{m.headline}”" if m.headline else ""
        agency = m.source or "source not recorded"
        date = published(m.published_at_ns) or "date not recorded"
        lines.append(f"\n{i}. {m.story_id}{headline}\n   {agency}, {date}")
        lines.append(f"   {m.verdict.name}: {source_summary(m)}")
        if m.editions:
            lines.append(f"   other editions of this story: {', '.join(m.editions)}")
        body = record.body if record is not None else ""
        if view.limit is None:
            for j, p in enumerate(m.passages, 1):
                lines.append(
                    f"   [{j}] article {p.article_start}-{p.article_end}, story {p.story_start}-{p.story_end}, "
                    f"similarity {p.similarity:.2f}"
                )
                lines.append(f"       article: {quote(text, p.article_start, p.article_end)}")
                if body:
                    lines.append(f"       story:   {quote(body, p.story_start, p.story_end)}")
        else:
            for p in _longest(m, view.limit):
                exact = "" if p.similarity >= 1 else f" (not word for word: {percent(p.similarity)} matches exactly)"
                lines.append(f"   {quote(text, p.article_start, p.article_end)}{exact}")
    if not result.matches:
        pass  # the verdict's reason says why
    elif view.limit is None:
        lines.append(f"\n{OFFSETS}\n{SIMILARITY}")
    elif any(len(m.passages) > view.limit for m in result.matches):
        lines.append(f"\n(the {view.limit} longest passages of each source; every one with --passages all or --json)")
    return "\n".join(lines)


def _round(x: float) -> float:
    return round(float(x), DIGITS)


def render_json(result: MatchResult, text: str, stories: dict[str, StoryRecord]) -> dict[str, Any]:
    """Everything, fractions rounded to 4 digits, passages quoted from both texts."""
    out: dict[str, Any] = {
        "verdict": result.verdict.name,
        "reason": verdict_reason(result),
        "original_fraction": _round(result.original_fraction),
        "candidates_checked": result.candidates_checked,
        "matches": [],
    }
    for m in result.matches:
        record = stories.get(m.story_id)
        body = record.body if record is not None else ""
        out["matches"].append(
            {
                "story_id": m.story_id,
                "headline": m.headline,
                "source": m.source,
                "published_at": _published_iso(m.published_at_ns),
                "editions": list(m.editions),
                "verdict": m.verdict.name,
                "containment": _round(m.containment),
                "coverage": _round(m.coverage),
                "jaccard": _round(m.jaccard),
                "passages": [
                    {
                        "article_start": p.article_start,
                        "article_end": p.article_end,
                        "story_start": p.story_start,
                        "story_end": p.story_end,
                        "similarity": _round(p.similarity),
                        "article_text": text[p.article_start : p.article_end],
                        "story_text": body[p.story_start : p.story_end],
                    }
                    for p in m.passages
                ],
            }
        )
    return out
