"""Scoring wiretrace's answers against labelled query sets.

Two label styles are understood:

* synthetic sets (``kind`` + ``sources`` with ``fraction`` and ``accept``):
  per-kind attribution rate, containment error and merged-source recall;
* real sets labelled WD / PD / ND with ``source_story_id`` (COUNTER):
  per label, and derived recall (right source first, verdict not UNRELATED),
  rejection (non-derived answered UNRELATED) and their mean, balanced
  accuracy; precision / recall / F1 of "derived from that source" too, though
  F1 flatters a set that is mostly derived;
* queries with ``passages`` (character offsets of each reused passage in the
  query and in its story): PAN-style character precision, recall,
  granularity and plagdet of the returned passages (``plagdet``).

Any synthetic kind is scored by its ``derived`` flag, so kinds added to a set
(``brief``, ``sibling``) need no change here.

It only sees (query, answer) pairs, so the same code scores answers that came
over gRPC or from an in-process detector.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from wiretrace.types import MatchResult, Verdict

DERIVED_KINDS = ("verbatim", "trimmed", "excerpt", "merged", "edited", "noisy", "brief")
ORIGINAL_KINDS = ("unrelated", "local", "sibling")
CONTAINMENT_KINDS = ("verbatim", "trimmed", "excerpt")
# A merged query's top match may be any source "nearly as large as the largest".
NEARLY_AS_LARGE = 0.8
MERGED_MIN_FRACTION = 0.2
# What the core issue asks of a synthetic set: attribution rate per derived
# kind, UNRELATED rate per original kind.
TARGETS = {**dict.fromkeys(DERIVED_KINDS, 0.97), **dict.fromkeys(ORIGINAL_KINDS, 0.98)}


@dataclass
class KindStats:
    n: int = 0
    ok: int = 0
    containment_error: float = 0.0
    containment_n: int = 0
    merged_all_sources: int = 0

    @property
    def rate(self) -> float:
        return self.ok / self.n if self.n else 0.0


@dataclass
class Report:
    kinds: dict[str, KindStats] = field(default_factory=lambda: defaultdict(KindStats))
    tp: int = 0
    fp: int = 0
    fn: int = 0
    # Labelled sets: per label, (queries, answered right).
    labels: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    derived_labels: set[str] = field(default_factory=set)
    failures: list[dict[str, Any]] = field(default_factory=list)
    true_passages: list[Annotation] = field(default_factory=list)
    found_passages: list[Annotation] = field(default_factory=list)

    def passages(self) -> Plagdet | None:
        """PAN-style scores of the returned passages, when the queries carry passage truth."""
        return plagdet(self.true_passages, self.found_passages) if self.true_passages else None

    def prf(self) -> tuple[float, float, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    def balanced(self) -> tuple[float, float, float]:
        """Derived recall, rejection and their mean over a labelled set (nan where a side is empty)."""
        d = [v for k, v in self.labels.items() if k in self.derived_labels]
        o = [v for k, v in self.labels.items() if k not in self.derived_labels]
        rec = sum(v[1] for v in d) / sum(v[0] for v in d) if d else float("nan")
        rej = sum(v[1] for v in o) / sum(v[0] for v in o) if o else float("nan")
        return rec, rej, (rec + rej) / 2

    def headroom(self) -> float:
        """Smallest margin of any kind's rate over its target (negative: a target missed)."""
        rates = [self.kinds[k].rate - t for k, t in TARGETS.items() if k in self.kinds and self.kinds[k].n]
        return min(rates) if rates else float("nan")

    def render(self) -> str:
        lines: list[str] = []
        if self.kinds:
            lines.append(f"{'kind':<10} {'n':>5} {'correct':>8} {'rate':>7} {'|Δcont|':>8} {'all srcs':>9}")
            for kind in dict.fromkeys((*DERIVED_KINDS, *ORIGINAL_KINDS, *self.kinds)):
                k = self.kinds.get(kind)
                if k is None or k.n == 0:
                    continue
                err = f"{k.containment_error / k.containment_n:.3f}" if k.containment_n else "-"
                allsrc = f"{k.merged_all_sources / k.n:.3f}" if kind == "merged" else "-"
                lines.append(f"{kind:<10} {k.n:>5} {k.ok:>8} {k.rate:>7.3f} {err:>8} {allsrc:>9}")
        if self.labels:
            lines.append(f"{'label':<10} {'n':>5} {'correct':>8} {'rate':>7}")
            for label in sorted(self.labels):
                n, ok = self.labels[label]
                side = "derived" if label in self.derived_labels else "not derived"
                lines.append(f"{label:<10} {n:>5} {ok:>8} {ok / n if n else 0.0:>7.3f}  ({side})")
            rec, rej, bal = self.balanced()
            lines.append(f"derived recall {rec:.3f}  rejection {rej:.3f}  balanced accuracy {bal:.3f}")
        if self.tp + self.fp + self.fn:
            p, r, f1 = self.prf()
            lines.append(f"precision {p:.3f}  recall {r:.3f}  F1 {f1:.3f}  (tp {self.tp}, fp {self.fp}, fn {self.fn})")
        scores = self.passages()
        if scores is not None:
            lines.append(scores.render())
        return "\n".join(lines)


def _is_derived(result: MatchResult) -> bool:
    return result.verdict not in (Verdict.UNRELATED, Verdict.UNSPECIFIED)


def score(pairs: Iterable[tuple[dict[str, Any], MatchResult]], keep_failures: int = 0) -> Report:
    rep = Report()
    for n, (query, result) in enumerate(pairs):
        if "passages" in query:
            cases, found = passage_annotations(query, result, str(query.get("query_id", n)))
            rep.true_passages.extend(cases)
            rep.found_passages.extend(found)
        ok: bool
        if "kind" in query:
            ok = _score_synthetic(rep, query, result)
        else:
            ok = _score_labelled(rep, query, result)
        if not ok and len(rep.failures) < keep_failures:
            rep.failures.append(
                {
                    "query_id": query.get("query_id"),
                    "kind": query.get("kind", query.get("label")),
                    "verdict": result.verdict.name,
                    "matches": [(m.story_id, m.containment, m.coverage) for m in result.matches[:3]],
                    "sources": query.get("sources", query.get("source_story_id")),
                }
            )
    return rep


def _score_synthetic(rep: Report, q: dict[str, Any], res: MatchResult) -> bool:
    kind = q["kind"]
    st = rep.kinds[kind]
    st.n += 1
    # The query's own flag when it has one; else any kind with no source is a negative.
    if not q.get("derived", kind not in ORIGINAL_KINDS and bool(q.get("sources"))):
        ok = not _is_derived(res)
        st.ok += ok
        return ok
    sources = q["sources"]
    largest = max(s["fraction"] for s in sources)
    acceptable: set[str] = set()
    for s in sources:
        if kind != "merged" and s is not sources[0]:
            continue
        if kind == "merged" and s["fraction"] < NEARLY_AS_LARGE * largest:
            continue
        acceptable.update(s["accept"])
    top = res.matches[0] if res.matches else None
    ok = top is not None and top.story_id in acceptable and _is_derived(res)
    st.ok += ok
    if kind in CONTAINMENT_KINDS:
        st.containment_n += 1
        st.containment_error += abs((top.containment if ok and top else 0.0) - sources[0]["fraction"])
    if kind == "merged":
        # Editions are named with the story they belong to: they are returned too.
        returned = {sid for m in res.matches for sid in (m.story_id, *m.editions)}
        st.merged_all_sources += all(
            returned & set(s["accept"]) for s in sources if s["fraction"] >= MERGED_MIN_FRACTION
        )
    return ok


def _score_labelled(rep: Report, q: dict[str, Any], res: MatchResult) -> bool:
    label = str(q.get("label", "derived" if q.get("derived") else "not derived"))
    truth_derived = q["derived"] if isinstance(q.get("derived"), bool) else label in ("WD", "PD")
    source = q.get("source_story_id")
    predicted = _is_derived(res) and bool(res.matches)
    top = res.matches[0].story_id if res.matches else None
    counts = rep.labels[label]
    counts[0] += 1
    if truth_derived:
        rep.derived_labels.add(label)
        if predicted and top == source:
            rep.tp += 1
            counts[1] += 1
            return True
        rep.fn += 1
        if predicted:
            rep.fp += 1
        return False
    if predicted:
        rep.fp += 1
        return False
    counts[1] += 1
    return True


# --- passages: PAN-style text alignment scores ---------------------------------


@dataclass(frozen=True, slots=True)
class Annotation:
    """Characters [start, end) of query `doc` reused from [source_start, source_end) of story `source`:
    a true case or a detection (code point offsets, end exclusive)."""

    doc: str
    start: int
    end: int
    source: str
    source_start: int
    source_end: int

    def __len__(self) -> int:
        return (self.end - self.start) + (self.source_end - self.source_start)

    def overlaps(self, other: Annotation) -> bool:
        """PAN's "detects": same query and story, and overlapping characters in both texts."""
        return (
            self.doc == other.doc
            and self.source == other.source
            and self.start < other.end
            and other.start < self.end
            and self.source_start < other.source_end
            and other.source_start < self.source_end
        )


@dataclass(frozen=True, slots=True)
class Plagdet:
    precision: float
    recall: float
    granularity: float
    plagdet: float
    cases: int
    detections: int

    def render(self) -> str:
        return (
            f"passages: plagdet {self.plagdet:.3f}  granularity {self.granularity:.3f}  "
            f"precision {self.precision:.3f}  recall {self.recall:.3f}  "
            f"({self.cases} true passages, {self.detections} returned)"
        )


def _covered(lo: int, hi: int, spans: Iterable[tuple[int, int]]) -> int:
    """Characters of [lo, hi) inside the union of `spans`."""
    total = 0
    reach = lo
    for a, b in sorted((max(a, lo), min(b, hi)) for a, b in spans):
        if b <= reach:
            continue
        total += b - max(a, reach)
        reach = b
    return total


def _macro_recall(cases: Sequence[Annotation], detections: Sequence[Annotation]) -> float:
    """Mean over cases of the share of each case's characters (query and story sides together)
    that overlapping detections cover; precision is the same with the roles swapped."""
    if not cases and not detections:
        return 1.0
    if not cases or not detections:
        return 0.0
    by_pair: dict[tuple[str, str], list[Annotation]] = defaultdict(list)
    for d in detections:
        by_pair[(d.doc, d.source)].append(d)
    total = 0.0
    for c in cases:
        hits = [d for d in by_pair.get((c.doc, c.source), ()) if c.overlaps(d)]
        if not hits or len(c) == 0:
            continue
        got = _covered(c.start, c.end, ((d.start, d.end) for d in hits))
        got += _covered(c.source_start, c.source_end, ((d.source_start, d.source_end) for d in hits))
        total += got / len(c)
    return total / len(cases)


def plagdet(cases: Sequence[Annotation], detections: Sequence[Annotation]) -> Plagdet:
    """Character precision, recall, granularity and plagdet of `detections` against the true `cases`,
    as PAN defines them (Potthast, Stein, Barrón-Cedeño and Rosso, COLING 2010), over a whole set:

    * recall: mean over cases of the share of the case's characters (both texts) covered by the
      detections that overlap it in both texts; precision: the same for detections against cases
      (a detection overlapping no case scores 0);
    * granularity: mean number of overlapping detections over the cases detected at all (1 is
      ideal: a reused passage reported in two pieces counts 2);
    * plagdet = F1(precision, recall) / log2(1 + granularity).
    """
    rec = _macro_recall(cases, detections)
    prec = _macro_recall(detections, cases)
    by_pair: dict[tuple[str, str], list[Annotation]] = defaultdict(list)
    for d in detections:
        by_pair[(d.doc, d.source)].append(d)
    per_case = [sum(c.overlaps(d) for d in by_pair.get((c.doc, c.source), ())) for c in cases]
    detected = [n for n in per_case if n > 0]
    gran = sum(detected) / len(detected) if detected else 1.0
    f1 = 2 * rec * prec / (rec + prec) if rec + prec > 0 else 0.0
    return Plagdet(prec, rec, gran, f1 / math.log2(1 + gran), len(cases), len(detections))


def passage_annotations(
    query: dict[str, Any], result: MatchResult, doc: str
) -> tuple[list[Annotation], list[Annotation]]:
    """A query's true passages and the passages the answer returned, as annotations of `doc`.

    A returned story that the query lists as the same text as a true source (a re-send, in
    ``sources[].accept``) stands for that source, since the truth names only one of them; only
    the first of such copies returned counts.
    """
    alias: dict[str, str] = {}
    for s in query.get("sources", ()):
        for other in s.get("accept", ()):
            alias.setdefault(other, s["story_id"])
    cases = [
        Annotation(doc, p["article_start"], p["article_end"], p["story_id"], p["story_start"], p["story_end"])
        for p in query.get("passages", ())
    ]
    found: list[Annotation] = []
    seen: set[str] = set()
    for m in result.matches:
        source = alias.get(m.story_id, m.story_id)
        if source in seen:  # a second copy of a story already shown explains nothing new
            continue
        seen.add(source)
        found.extend(
            Annotation(doc, p.article_start, p.article_end, source, p.story_start, p.story_end) for p in m.passages
        )
    return cases, found
