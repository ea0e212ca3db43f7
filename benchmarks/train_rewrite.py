"""Fit the rewrite model (src/wiretrace/rewrite_model.json) on the labelled sets the team can see.

    make train-rewrite        # = python -m benchmarks.train_rewrite --write

For every query of each set, the detector's best rewrite candidate and its evidence
features (``Detector.evidence``) are computed with the settings in force; the label
is 1 when the query is derived and that candidate is one of its sources. A logistic
regression (scikit-learn, standardised features, classes balanced within each set and
the sets weighted equally) is cross-validated by query (5 folds, figures printed per
set and label), then fitted on everything and written as JSON. Only the sets given
are read, by path; nothing from them is stored but the model's few coefficients.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from wiretrace.config import Settings
from wiretrace.engine import Detector
from wiretrace.evidence import FEATURES, RewriteModel
from wiretrace.types import StoryRecord

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEFAULT_SETS = (
    f"{SHARED}/eval/synthetic-dev/wire.jsonl.gz:{SHARED}/eval/synthetic-dev/queries.jsonl.gz",
    f"{SHARED}/data/counter/wire.jsonl:{SHARED}/data/counter/queries-dev.jsonl",
)
MODEL_PATH = Path(__file__).resolve().parents[1] / "src" / "wiretrace" / "rewrite_model.json"


def _rows(path: str) -> Iterator[dict[str, Any]]:
    with (gzip.open if path.endswith(".gz") else open)(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _truth(q: dict[str, Any]) -> tuple[bool, set[str], str]:
    """(derived, acceptable source ids, label) of a synthetic or a WD/PD/ND query."""
    if "kind" in q:
        sources = q.get("sources") or []
        accept = set(sources[0]["accept"]) if sources and q["kind"] != "merged" else set()
        if q["kind"] == "merged":
            for s in sources:
                accept.update(s["accept"])
        return bool(q.get("derived")), accept, str(q["kind"])
    label = str(q.get("label", "ND"))
    return label in ("WD", "PD"), {str(q.get("source_story_id"))}, label


def features_of(wire: str, queries: str, settings: Settings) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """(features, label, query label, derived) for every query of one set."""
    with tempfile.TemporaryDirectory() as tmp:
        det = Detector.open(replace(settings, server=replace(settings.server, data_dir=Path(tmp))))
        try:
            batch: list[StoryRecord] = []
            for w in _rows(wire):
                batch.append(StoryRecord(story_id=str(w["story_id"]), headline=w.get("headline", ""), body=w["body"]))
                if len(batch) == 2000:
                    det.upsert(batch)
                    batch = []
            det.upsert(batch)
            xs, ys, labels, derived = [], [], [], []
            for q in _rows(queries):
                is_derived, accept, label = _truth(q)
                ev = det.evidence(q["text"])
                if ev is None:
                    continue  # no candidate at all: the model is never asked
                story_id, row = ev
                if row[FEATURES.index("containment")] >= settings.match.derived_containment:
                    continue  # copied passages already make it DERIVED: not the model's question
                xs.append(row)
                ys.append(is_derived and story_id in accept)
                labels.append(label)
                derived.append(is_derived)
        finally:
            det.close()
    return np.array(xs), np.array(ys), labels, np.array(derived)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", help="WIRE:QUERIES (repeatable; default: synthetic-dev and COUNTER dev)")
    ap.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    ap.add_argument(
        "--false-positive-rate",
        type=float,
        default=0.02,
        help="operating point: the share of non-derived training queries the model may attribute",
    )
    ap.add_argument("--write", action="store_true", help=f"write the fitted model to {MODEL_PATH}")
    ap.add_argument("--out", type=Path, help="write the fitted model here instead (for --rewrite-model)")
    ap.add_argument("--dump", type=Path, help="also save each set's features and labels here (.npz)")
    args = ap.parse_args(argv)
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    settings = Settings.load()
    sets = args.set or list(DEFAULT_SETS)
    parts = []
    for i, spec in enumerate(sets):
        wire, queries = spec.split(":")
        x, y, labels, derived = features_of(wire, queries, settings)
        # Each set weighs the same; within a set, both classes weigh the same.
        w = np.where(y, 0.5 / max(1, int(y.sum())), 0.5 / max(1, int((~y).sum())))
        parts.append((Path(queries).parent.name, x, y, labels, derived, w, np.full(y.size, i)))
        print(f"{spec}: {y.size} queries with a candidate, {int(y.sum())} positive", file=sys.stderr)
        if args.dump:
            np.savez(f"{args.dump}.{i}.npz", x=x, y=y, labels=np.array(labels), derived=derived)
    x = np.concatenate([p[1] for p in parts])
    y = np.concatenate([p[2] for p in parts])
    w = np.concatenate([p[5] for p in parts])
    w *= w.size / w.sum()  # weights of mean 1, so that C means what it says
    group = np.concatenate([p[6] for p in parts])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    prob = np.zeros(y.size)
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(z, y * 2 + group):
        m = LogisticRegression(C=args.c, max_iter=2000).fit(z[train], y[train], sample_weight=w[train])
        prob[test] = m.predict_proba(z[test])[:, 1]
    # The operating point: attribute at most this share of the non-derived queries (a newsroom
    # acts on a verdict; an independent report called a copy costs more than a missed brief).
    negatives = np.concatenate([~p[4] for p in parts])
    threshold = float(np.quantile(prob[negatives], 1.0 - args.false_positive_rate)) if negatives.any() else 0.5
    pred = prob > threshold
    print(f"cross-validated (5 folds), decision on the best candidate only, probability > {threshold:.3f}:")
    offset = 0
    for name, _, yy, labels, derived, _, _ in parts:
        pp = pred[offset : offset + yy.size]
        offset += yy.size
        rec = float(np.mean(pp[derived] & yy[derived])) if derived.any() else float("nan")
        rej = float(np.mean(~pp[~derived])) if (~derived).any() else float("nan")
        print(f"  {name}: derived recall {rec:.3f}, rejection {rej:.3f}, balanced {(rec + rej) / 2:.3f}")
        for lab in sorted(set(labels)):
            sel = np.array([lb == lab for lb in labels])
            ok = (pp & yy)[sel] if derived[sel].all() else ~pp[sel]
            print(f"    {lab:<10} {int(sel.sum()):>5} {float(ok.mean()):.3f}")
    model = LogisticRegression(C=args.c, max_iter=2000).fit(z, y, sample_weight=w)
    # Shift the intercept so that the operating point is probability 0.5 (the setting's default).
    fitted = RewriteModel(
        intercept=float(model.intercept_[0]) - float(np.log(threshold / (1.0 - threshold))),
        weights=tuple(float(c) for c in model.coef_[0]),
        means=tuple(float(v) for v in mean),
        scales=tuple(float(v) for v in scale),
    )
    print("model:", json.dumps(dict(zip(FEATURES, fitted.weights, strict=True))), "intercept", fitted.intercept)
    if args.write or args.out:
        target = args.out or MODEL_PATH
        target.write_text(json.dumps(fitted.as_json(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
