"""The clustering score (adjusted Rand index, pair precision / recall / F1) on hand-checked cases, and its CLI."""

from __future__ import annotations

import json
from fractions import Fraction
from math import comb
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from wiretrace.cli import main
from wiretrace.dedup.evaluation import LabelsError, read_labels, score_partition


def test_a_hand_checked_case() -> None:
    # Truth {a b c} {d e}; predicted {a b} {c d} {e}. Pairs: 10 in all, 4 truly together (ab ac bc de),
    # 2 predicted together (ab cd), 1 in both (ab).
    true = {"a": "X", "b": "X", "c": "X", "d": "Y", "e": "Y"}
    predicted = {"a": 1, "b": 1, "c": 2, "d": 2}  # e is in no cluster: alone
    s = score_partition(predicted, true)
    assert (s.documents, s.together_both, s.together_predicted, s.together_true) == (5, 1, 2, 4)
    assert s.precision == 0.5 and s.recall == 0.25
    assert s.f1 == pytest.approx(1 / 3)
    # tp 1, fp 1, fn 3, tn 5: 2 (1*5 - 3*1) / ((1+3)(3+5) + (1+1)(1+5)) = 4 / 44
    assert s.adjusted_rand_index == pytest.approx(1 / 11)


def test_perfect_and_degenerate_partitions() -> None:
    true = {"a": "1", "b": "1", "c": "2", "d": "3"}
    same = score_partition({"a": 7, "b": 7, "c": 8}, true)
    assert (same.adjusted_rand_index, same.precision, same.recall, same.f1) == (1.0, 1.0, 1.0, 1.0)
    alone = {str(i): str(i) for i in range(6)}
    assert score_partition({}, alone).adjusted_rand_index == 1.0  # both put everything alone
    one = score_partition({str(i): 0 for i in range(6)}, alone)  # everything merged, nothing should be
    assert one.adjusted_rand_index == 0.0 and one.precision == 0.0 and one.recall == 1.0
    # Unlabelled members of a predicted cluster are not scored.
    assert score_partition({"a": 1, "x": 1, "b": 2}, {"a": "A", "b": "B"}).together_predicted == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=2, max_size=40))
def test_ari_equals_hubert_and_arabie(rows: list[tuple[int, int]]) -> None:
    """The pair-count form equals the contingency-table definition, in exact fractions."""
    true = {str(i): str(t) for i, (t, _) in enumerate(rows)}
    predicted = {str(i): p for i, (_, p) in enumerate(rows)}
    n = len(rows)
    cells: dict[tuple[int, int], int] = {}
    for t, p in rows:
        cells[(t, p)] = cells.get((t, p), 0) + 1
    index = sum(comb(v, 2) for v in cells.values())
    a = sum(comb(sum(v for (t, _), v in cells.items() if t == x), 2) for x in {t for t, _ in rows})
    b = sum(comb(sum(v for (_, p), v in cells.items() if p == y), 2) for y in {p for _, p in rows})
    expected = Fraction(a * b, comb(n, 2))
    top = Fraction(a + b, 2)
    got = score_partition(predicted, true).adjusted_rand_index
    if top == expected:  # both partitions all alone or all together: defined as 1
        assert got == 1.0
    else:
        assert got == pytest.approx(float((index - expected) / (top - expected)))


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_dedup_command(tmp_path: Path) -> None:
    clusters = _write(
        tmp_path / "clusters.jsonl",
        [
            {"cluster_id": 0, "members": ["a", "b"], "representative": "a", "pairs": []},
            {"cluster_id": 1, "members": ["c", "d"], "representative": "c", "pairs": []},
        ],
    )
    labels = _write(tmp_path / "labels.jsonl", [{"id": k, "label": v} for k, v in zip("abcde", "XXXYY", strict=True)])
    result = CliRunner().invoke(main, ["eval-dedup", str(tmp_path), str(labels), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "documents": 5,
        "adjusted_rand_index": 0.0909,
        "pair_precision": 0.5,
        "pair_recall": 0.25,
        "pair_f1": 0.3333,
        "pairs_together_both": 1,
        "pairs_together_predicted": 2,
        "pairs_together_true": 4,
    }
    text = CliRunner().invoke(main, ["eval-dedup", str(clusters), str(labels)]).output
    assert "adjusted Rand index  0.0909" in text and "pair recall          0.2500  (1 of 4 pairs)" in text


def test_bad_labels_say_where(tmp_path: Path) -> None:
    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"id": "a", "label": "X"}\n{"id": "a", "label": "Y"}\n', encoding="utf-8")
    with pytest.raises(LabelsError, match=r"labels.jsonl:2: id 'a' is labelled twice"):
        read_labels(bad)
    bad.write_text('{"id": "a"}\n', encoding="utf-8")
    (tmp_path / "clusters.jsonl").write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["eval-dedup", str(tmp_path), str(bad)])
    assert result.exit_code != 0 and "labels.jsonl:1: expected an object with 'id' and 'label'" in result.output
