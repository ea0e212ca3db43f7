"""Scoring wiretrace's answers against labelled query sets.

Two label styles are understood:

* synthetic sets (``kind`` + ``sources`` with ``fraction`` and ``accept``):
  per-kind attribution rate, containment error and merged-source recall;
* real sets labelled WD / PD / ND with ``source_story_id`` (COUNTER):
  per label, and derived recall (right source first, verdict not UNRELATED),
  rejection (non-derived answered UNRELATED) and their mean, balanced
  accuracy; precision / recall / F1 of "derived from that source" too, though
  F1 flatters a set that is mostly derived.

Any synthetic kind is scored by its ``derived`` flag, so kinds added to a set
(``brief``, ``sibling``) need no change here.

It only sees (query, answer) pairs, so the same code scores answers that came
over gRPC or from an in-process detector.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
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
        return "\n".join(lines)


def _is_derived(result: MatchResult) -> bool:
    return result.verdict not in (Verdict.UNRELATED, Verdict.UNSPECIFIED)


def score(pairs: Iterable[tuple[dict[str, Any], MatchResult]], keep_failures: int = 0) -> Report:
    rep = Report()
    for query, result in pairs:
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
