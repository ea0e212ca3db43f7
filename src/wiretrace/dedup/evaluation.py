"""How well clusters agree with labels: adjusted Rand index and pair precision, recall and F1.

Users measure de-duplication on a labelled sample of their own archive
(``wiretrace eval-dedup`` or ``wiretrace dedup … --labels FILE``): a JSONL file
of ``{"id": …, "label": …}``, documents with one label being copies of each
other. Only labelled documents are scored; one that is in no cluster of
``clusters.jsonl`` is a cluster by itself.

Every figure comes from the pair counts of the contingency table (exact
integers, no floating sums): a pair of documents is *predicted* together
when they share a cluster and *truly* together when they share a label.

* pair precision = pairs together in both / pairs predicted together,
* pair recall = pairs together in both / pairs truly together, F1 their mean,
* adjusted Rand index (Hubert & Arabie 1985), written with the pair counts as
  scikit-learn's ``adjusted_rand_score`` is: 1 for identical partitions, about
  0 for random ones, 1 as well when both put every document alone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


@dataclass(frozen=True)
class ClusterScore:
    """Pair counts of a predicted against a true partition of the same documents, and the scores."""

    documents: int
    together_both: int  # pairs in one cluster and with one label (true positives)
    together_predicted: int  # pairs in one cluster
    together_true: int  # pairs with one label

    @property
    def all_pairs(self) -> int:
        return _pairs(self.documents)

    @property
    def precision(self) -> float:
        return self.together_both / self.together_predicted if self.together_predicted else 1.0

    @property
    def recall(self) -> float:
        return self.together_both / self.together_true if self.together_true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def adjusted_rand_index(self) -> float:
        tp = self.together_both
        fp = self.together_predicted - tp
        fn = self.together_true - tp
        tn = self.all_pairs - tp - fp - fn
        if fp == 0 and fn == 0:
            return 1.0
        return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "adjusted_rand_index": round(self.adjusted_rand_index, 4),
            "pair_precision": round(self.precision, 4),
            "pair_recall": round(self.recall, 4),
            "pair_f1": round(self.f1, 4),
            "pairs_together_both": self.together_both,
            "pairs_together_predicted": self.together_predicted,
            "pairs_together_true": self.together_true,
        }


def score_partition(predicted: Mapping[str, Hashable], true: Mapping[str, Hashable]) -> ClusterScore:
    """Score `predicted` cluster ids against `true` labels over the documents of `true` (a document
    missing from `predicted` is alone)."""
    cells: Counter[tuple[Hashable, Hashable]] = Counter()
    for doc, label in true.items():
        cluster = predicted.get(doc, ("alone", doc))
        cells[(cluster, label)] += 1
    rows: Counter[Hashable] = Counter()
    cols: Counter[Hashable] = Counter()
    for (cluster, label), n in cells.items():
        rows[cluster] += n
        cols[label] += n
    return ClusterScore(
        documents=len(true),
        together_both=sum(_pairs(n) for n in cells.values()),
        together_predicted=sum(_pairs(n) for n in rows.values()),
        together_true=sum(_pairs(n) for n in cols.values()),
    )


def read_clusters(path: Path) -> dict[str, int]:
    """Member id -> cluster id, from a clusters.jsonl."""
    out: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                for member in rec["members"]:
                    out[member] = rec["cluster_id"]
    return out


class LabelsError(ValueError):
    """The labels file cannot be read; the message says where and why."""


def read_labels(path: Path, id_field: str = "id", label_field: str = "label") -> dict[str, str]:
    """Document id -> label from JSONL lines ``{"id": …, "label": …}`` (ids and labels as strings)."""
    out: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise LabelsError(f"{path}:{no}: not JSON ({err.msg})") from None
            if not isinstance(rec, dict) or id_field not in rec or label_field not in rec:
                raise LabelsError(f"{path}:{no}: expected an object with {id_field!r} and {label_field!r}")
            doc = str(rec[id_field])
            if doc in out:
                raise LabelsError(f"{path}:{no}: id {doc!r} is labelled twice")
            out[doc] = str(rec[label_field])
    return out


def score_files(clusters: Path, labels: Path) -> ClusterScore:
    """`score_partition` of a clusters.jsonl against a labels file."""
    return score_partition(read_clusters(clusters), read_labels(labels))


def format_score(score: ClusterScore) -> str:
    """The lines `eval-dedup` prints."""
    return "\n".join(
        [
            f"documents labelled   {score.documents}",
            f"adjusted Rand index  {score.adjusted_rand_index:.4f}",
            f"pair precision       {score.precision:.4f}  ({score.together_both} of {score.together_predicted} pairs)",
            f"pair recall          {score.recall:.4f}  ({score.together_both} of {score.together_true} pairs)",
            f"pair F1              {score.f1:.4f}",
        ]
    )
