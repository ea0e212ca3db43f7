"""The match as a page: one self-contained HTML file an editor can read.

Editors and media researchers judge reuse by reading the two texts side by
side, not by offsets (Churnalism's view showed it). The page has the verdict
and a legend of the sources (colour, id, headline, source, date, scores,
editions), the article with every source's passages highlighted, then the
article beside each source story with their shared passages highlighted in
both, one colour per source. Everything is inline (no script, font, image or
network access), so the file can be mailed or archived as it is.

Each highlight is a ``<mark>`` with ``data-side`` (article or story),
``data-source`` (1-based rank of the source) and ``data-passages`` (the
1-based numbers of the passages it lies in; overlapping passages split a
mark); the marks of one passage, in order, spell its text exactly.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from wiretrace.types import NO_FILTER, MatchResult, SourceMatch, StoryFilter, StoryRecord

# Light tints that stay apart from each other and keep black text readable
# (Okabe-Ito hues, lightened); a source past the tenth reuses a colour.
PALETTE = (
    "#ffd27f",  # orange
    "#9fd8f5",  # sky blue
    "#a8e6c9",  # bluish green
    "#f7ef8a",  # yellow
    "#a9c8ef",  # blue
    "#f5b38f",  # vermillion
    "#e3b5d2",  # reddish purple
    "#d0d0d0",  # grey
    "#c9e59a",  # light green
    "#f2c6c6",  # pink
)

_CSS = """
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "Noto Sans", sans-serif; margin: 0; color: #1b1b1b;
       background: #fafafa; }
header, section { max-width: 1400px; margin: 0 auto; padding: 12px 24px; }
header { border-bottom: 1px solid #ddd; background: #fff; max-width: none; }
h1 { font-size: 22px; margin: 4px 0; }
h2 { font-size: 18px; margin: 18px 0 6px; }
h3 { font-size: 14px; margin: 0 0 6px; color: #444; text-transform: uppercase; letter-spacing: .04em; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; font-weight: 700; color: #fff; }
.v-VERBATIM { background: #8b1a1a; } .v-DERIVED { background: #c05a00; } .v-PARTIAL { background: #6b6b00; }
.v-UNRELATED { background: #2f6b2f; } .v-UNSPECIFIED { background: #666; }
.summary { color: #444; margin: 4px 0; }
table.legend { border-collapse: collapse; width: 100%; background: #fff; }
table.legend th, table.legend td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
table.legend th { background: #f0f0f0; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 1.2em; height: 1.2em; border: 1px solid #999; vertical-align: middle; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.text { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: 10px 14px; }
.body { white-space: pre-wrap; overflow-wrap: anywhere; }
mark { color: inherit; border-radius: 2px; padding: 0 1px; }
.meta { color: #555; font-size: 13px; }
.missing { color: #8b1a1a; font-style: italic; }
"""


def colour(rank: int) -> str:
    """The colour of the source at 1-based `rank`."""
    return PALETTE[(rank - 1) % len(PALETTE)]


def format_time(ns: int | None) -> str:
    if ns is None:
        return "—"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _marked(text: str, spans: Sequence[tuple[int, int, int, int]], side: str) -> str:
    """`text` as HTML with each span (start, end, source rank, passage number) marked.

    Where spans overlap, the text is cut at every boundary; a piece is marked
    in the colour of the best-ranked source covering it and lists every
    passage it lies in.
    """
    spans = [(max(0, s), min(len(text), e), r, p) for s, e, r, p in spans if e > s]
    cuts = sorted({0, len(text), *(s for s, _, _, _ in spans), *(e for _, e, _, _ in spans)})
    out: list[str] = []
    for a, b in itertools.pairwise(cuts):
        piece = html.escape(text[a:b], quote=False)
        inside = [(r, p) for s, e, r, p in spans if s <= a and b <= e]
        if not inside:
            out.append(piece)
            continue
        rank = min(r for r, _ in inside)
        sources = " ".join(str(r) for r in sorted({r for r, _ in inside}))
        passages = " ".join(str(p) for r, p in sorted(inside) if r == rank)
        out.append(
            f'<mark class="s{rank}" data-side="{side}" data-source="{sources}" data-passages="{passages}"'
            f' style="background:{colour(rank)}">{piece}</mark>'
        )
    return "".join(out)


def _legend(result: MatchResult, stories: Mapping[str, StoryRecord]) -> str:
    rows = []
    for rank, m in enumerate(result.matches, 1):
        story = stories.get(m.story_id)
        source = m.source or (story.source if story else "")
        published = m.published_at_ns if m.published_at_ns is not None else (story.published_at_ns if story else None)
        editions = ", ".join(html.escape(e) for e in m.editions) or "—"
        rows.append(
            f'<tr data-source="{rank}"><td><span class="swatch" style="background:{colour(rank)}"></span> {rank}</td>'
            f'<td><a href="#source-{rank}">{html.escape(m.story_id)}</a></td><td>{html.escape(m.headline)}</td>'
            f"<td>{html.escape(source) or '—'}</td><td>{format_time(published)}</td>"
            f'<td><span class="verdict v-{m.verdict.name}">{m.verdict.name}</span></td>'
            f'<td class="num">{m.containment:.3f}</td><td class="num">{m.coverage:.3f}</td>'
            f'<td class="num">{m.jaccard:.3f}</td><td class="num">{len(m.passages)}</td><td>{editions}</td></tr>'
        )
    if not rows:
        return '<p class="summary">No indexed story shares enough text with the article.</p>'
    head = (
        "<tr><th>colour</th><th>story</th><th>headline</th><th>source</th><th>published</th><th>verdict</th>"
        "<th>containment</th><th>coverage</th><th>jaccard</th><th>passages</th><th>editions</th></tr>"
    )
    return f'<table class="legend">{head}{"".join(rows)}</table>'


def _source_section(rank: int, m: SourceMatch, article: str, story: StoryRecord | None) -> str:
    art_spans = [(p.article_start, p.article_end, rank, i) for i, p in enumerate(m.passages, 1)]
    title = html.escape(m.headline or m.story_id)
    source = m.source or (story.source if story else "")
    published = m.published_at_ns if m.published_at_ns is not None else (story.published_at_ns if story else None)
    meta = [
        f"story {html.escape(m.story_id)}",
        html.escape(source) if source else "no source given",
        f"published {format_time(published)}",
        f"containment {m.containment:.3f}, coverage {m.coverage:.3f}, jaccard {m.jaccard:.3f}",
        f"{len(m.passages)} passage(s)",
    ]
    if m.editions:
        meta.append("editions: " + ", ".join(html.escape(e) for e in m.editions))
    if story is None:
        story_html = '<p class="missing">The story was deleted after the match; its text is not available.</p>'
    else:
        story_spans = [(p.story_start, p.story_end, rank, i) for i, p in enumerate(m.passages, 1)]
        story_html = f'<div class="body">{_marked(story.body, story_spans, "story")}</div>'
    return (
        f'<section class="source" id="source-{rank}" data-story-id="{html.escape(m.story_id)}">'
        f'<h2><span class="swatch" style="background:{colour(rank)}"></span> {rank}. {title} '
        f'<span class="verdict v-{m.verdict.name}">{m.verdict.name}</span></h2>'
        f'<p class="meta">{" · ".join(meta)}</p><div class="pair">'
        f'<div class="text"><h3>Article</h3><div class="body">{_marked(article, art_spans, "article")}</div></div>'
        f'<div class="text"><h3>Story {html.escape(m.story_id)}</h3>{story_html}</div></div></section>'
    )


def _filter_note(flt: StoryFilter) -> str:
    """The request's filters in words (the sources were sought among these stories only)."""
    parts = []
    if flt.published_after_ns is not None:
        parts.append(f"published from {format_time(flt.published_after_ns)}")
    if flt.published_before_ns is not None:
        parts.append(f"published until {format_time(flt.published_before_ns)}")
    if flt.sources:
        parts.append("from " + ", ".join(sorted(flt.sources)))
    if flt.exclude_sources:
        parts.append("not from " + ", ".join(sorted(flt.exclude_sources)))
    if not parts:
        return ""
    undated = "; undated stories left out" if flt.windowed else ""
    return f'<p class="summary" id="filters">Stories considered: {html.escape("; ".join(parts))}{undated}.</p>'


def render(
    result: MatchResult,
    article: str,
    stories: Mapping[str, StoryRecord],
    headline: str = "",
    story_filter: StoryFilter = NO_FILTER,
) -> str:
    """The page for one match: `stories` maps each source's story_id to the stored story
    (a missing one is shown as deleted); `story_filter` is the request's, shown in words."""
    all_spans = [
        (p.article_start, p.article_end, rank, i)
        for rank, m in enumerate(result.matches, 1)
        for i, p in enumerate(m.passages, 1)
    ]
    title = f"wiretrace: {result.verdict.name}" + (f" — {headline}" if headline else "")
    summary = (
        f'<span class="verdict v-{result.verdict.name}" id="verdict">{result.verdict.name}</span> '
        f"{len(result.matches)} source(s); {1 - result.original_fraction:.1%} of the article found in wire copy, "
        f"{result.original_fraction:.1%} original; {result.candidates_checked} candidate stories checked"
    )
    sections = "".join(_source_section(r, m, article, stories.get(m.story_id)) for r, m in enumerate(result.matches, 1))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{html.escape(headline or "Article")}</h1><p class="summary">{summary}</p>'
        f"{_filter_note(story_filter)}</header>"
        f'<section id="legend"><h2>Sources (legend)</h2>{_legend(result, stories)}</section>'
        f'<section id="article"><h2>The article, every source highlighted</h2><div class="text">'
        f'<div class="body">{_marked(article, all_spans, "overview")}</div></div></section>'
        f"{sections}</body></html>\n"
    )
