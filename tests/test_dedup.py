"""Archive de-duplication: local engine, Spark engine (local[2]) and the CLI, on generated archives."""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import wiretrace.dedup.local
from tests.dedup_reference import bucket_pairs, components, printed_docs, verify, verify_many
from tests.synth import NewsGen
from wiretrace.config import Settings
from wiretrace.corpusgen import lookalike_noise, ocr_noise
from wiretrace.dedup import DedupParams, run_local
from wiretrace.dedup.components import label_components
from wiretrace.dedup.local import fork_pool
from wiretrace.dedup.pairs import candidate_pairs
from wiretrace.dedup.params import scoring_params
from wiretrace.dedup.prints import offsets, print_flat
from wiretrace.dedup.verify import Corpus, align_pairs_distinct
from wiretrace.dedup_cli import dedup_command
from wiretrace.pipeline import TextPipeline

N_SOURCES = 60
SCAN_RATES = (0.02, 0.05, 0.08, 0.10)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Sources, three kinds of copy of some of them, unrelated articles and junk, in JSONL.gz + Parquet."""
    gen = NewsGen(seed=5)
    sources = [gen.article() for _ in range(N_SOURCES)]
    docs: list[dict[str, Any]] = [{"id": f"src-{i}", "text": t} for i, t in enumerate(sources)]
    expected: list[set[str]] = []
    rng = np.random.default_rng(5)
    for i in range(0, 24, 2):
        docs += [
            {"id": f"verbatim-{i}", "text": gen.verbatim(sources[i])},
            {"id": f"edited-{i}", "text": gen.edited(sources[i])},
            {"id": f"ocr-{i}", "text": gen.ocr(sources[i])},
            # Look-alike letters misread on 2-10% of them, spaces lost at a third of that.
            {"id": f"scan-{i}", "text": lookalike_noise(rng, sources[i], SCAN_RATES[i // 2 % len(SCAN_RATES)])},
        ]
        expected.append({f"src-{i}", f"verbatim-{i}", f"edited-{i}", f"ocr-{i}", f"scan-{i}"})
    junk = [
        {"id": "empty", "text": "  "},
        {"id": "numeric", "text": 42},
        {"text": "no id here"},
        {"id": "tiny", "text": "Hi."},
    ]
    root = tmp_path_factory.mktemp("archive")
    jsonl = root / "a.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as fh:
        for d in docs[:80] + junk:
            fh.write(json.dumps(d) + "\n")
        fh.write("{broken json\n")
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    rest = [*docs[80:], {"id": "src-3", "text": "a later duplicate id " * 10}]
    pq.write_table(pa.table({"id": [d["id"] for d in rest], "text": [d["text"] for d in rest]}), root / "b.parquet")
    return {"paths": [str(jsonl), str(root / "b.parquet")], "expected": expected}


def _clusters(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "clusters.jsonl").read_text().splitlines()]


def _check(out: Path, expected: list[set[str]]) -> None:
    clusters = _clusters(out)
    assert sorted(map(sorted, (set(c["members"]) for c in clusters))) == sorted(map(sorted, expected))
    for c in clusters:
        assert c["representative"] in c["members"]
        assert all(p["containment"] >= 0.8 for p in c["pairs"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == {
        "duplicate id": 1, "empty text": 1, "no id": 1, "not JSON": 1, "text is not a string": 1, "too short": 1,
    }  # fmt: skip
    assert summary["clusters"] == len(expected)
    assert summary["size_histogram"] == {"1": N_SOURCES - len(expected), "5": len(expected)}
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    for s in skipped:  # counted from 1: lines of JSONL, rows of Parquet
        assert set(s) == {"file", "line" if ".jsonl" in s["file"] else "row", "id", "reason"}


def test_local_engine_clusters_copies_with_their_source(archive: dict[str, Any], tmp_path: Path) -> None:
    run_local(archive["paths"], tmp_path, DedupParams(), workers=2, progress=False)
    _check(tmp_path, archive["expected"])


def test_unrelated_articles_stay_alone(tmp_path: Path) -> None:
    gen = NewsGen(seed=99)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": gen.article()}) + "\n" for i in range(50)))
    summary = run_local([str(path)], tmp_path / "out", DedupParams(), workers=2, progress=False)
    assert summary["clusters"] == 0 and summary["singletons"] == 50
    assert _clusters(tmp_path / "out") == []


def test_copies_at_every_noise_rate_join_their_story_and_same_subject_stories_stay_apart(tmp_path: Path) -> None:
    """A story with scanned copies (look-alike misreadings at 2-10%, and 1% of the generator's dropped,
    doubled and split characters) is one cluster; a story on the same subject, in the same words in another
    order, and one sharing only its lead sentence, stay alone."""
    gen = NewsGen(seed=23)
    rng = np.random.default_rng(23)
    docs: list[dict[str, str]] = []
    expected: list[set[str]] = []
    for s in range(8):
        story = gen.article(min_words=120, max_words=400)
        group = {f"s{s}"}
        docs.append({"id": f"s{s}", "text": story})
        for rate in (0.02, 0.05, 0.08, 0.10):
            docs.append({"id": f"s{s}-scan{rate:g}", "text": lookalike_noise(rng, story, rate)})
            group.add(docs[-1]["id"])
        # Dropped, doubled and split characters break words for good: tolerated at about 1% (README).
        docs.append({"id": f"s{s}-ocr", "text": ocr_noise(rng, story, 0.01)})
        group.add(docs[-1]["id"])
        expected.append(group)
        paragraphs = story.split("\n\n")
        shuffled = [" ".join(rng.permutation(p.split()).tolist()) for p in paragraphs]
        docs.append({"id": f"s{s}-same-words", "text": "\n\n".join(shuffled)})
        docs.append({"id": f"s{s}-same-lead", "text": paragraphs[0] + "\n\n" + gen.article(min_words=200)})
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    run_local([str(path)], tmp_path / "out", DedupParams(), workers=2, progress=False)
    got = sorted(map(sorted, (set(c["members"]) for c in _clusters(tmp_path / "out"))))
    assert got == sorted(map(sorted, expected))
    for c in _clusters(tmp_path / "out"):
        assert "-" not in c["representative"]  # the clean story: the most complete, least altered member


def test_a_story_cut_from_the_bottom_is_a_copy_and_identical_texts_score_one(tmp_path: Path) -> None:
    """A lead cut to a third of the story joins it (the lead rule); the same share from its middle, and a
    lead under `lead_coverage` (a tenth), do not. Identical texts, repeated phrases and all, score 1.0."""
    gen = NewsGen(seed=31)
    docs: list[dict[str, str]] = []
    expected: list[set[str]] = []
    for s in range(6):
        words = gen.article(min_words=450, max_words=500).split(" ")
        n = len(words)
        refrain = " ".join(words[:12])
        story = " ".join(words) + " " + refrain + " " + " ".join(words[40:60]) + " " + refrain
        docs += [
            {"id": f"s{s}", "text": story},
            {"id": f"s{s}-again", "text": story},
            {"id": f"s{s}-middle", "text": " ".join(words[n // 3 : 2 * n // 3])},
            {"id": f"s{s}-teaser", "text": " ".join(words[: n // 10])},
        ]
        expected.append({f"s{s}", f"s{s}-again"})
        if s % 2:  # a cut of a cut: the teaser is a third of the lead, so it joins through it
            docs.append({"id": f"s{s}-lead", "text": " ".join(words[: n // 3])})
            expected[-1] |= {f"s{s}-lead", f"s{s}-teaser"}
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    run_local([str(path)], tmp_path / "out", DedupParams(), workers=2, progress=False)
    clusters = _clusters(tmp_path / "out")
    assert sorted(map(sorted, (set(c["members"]) for c in clusters))) == sorted(map(sorted, expected))
    for c in clusters:
        same = [p for p in c["pairs"] if {p["a"], p["b"]} == {c["members"][0], c["members"][1]}]
        assert [(p["containment"], p["coverage"], p["jaccard"]) for p in same] == [(1.0, 1.0, 1.0)]
        assert c["representative"] in (c["members"][0], c["members"][1])


def test_cli(archive: dict[str, Any], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        dedup_command, [*archive["paths"], "--out", str(tmp_path), "--workers", "2", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{") :])["clusters"] == len(archive["expected"])


# -- Spark ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (apt-get install openjdk-17-jre-headless)")
    pytest.importorskip("pyspark")
    from wiretrace.dedup.spark import spark_session

    session = spark_session("local[2]", progress=False)
    yield session
    session.stop()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("singletons", [False, True], ids=["clusters", "with-singletons"])
def test_spark_gives_the_same_clusters_as_local(
    archive: dict[str, Any], tmp_path: Path, spark: Any, singletons: bool
) -> None:
    """Spark's clusters (its edges clustered on the driver by the local routine) are local's file, byte for byte."""
    from wiretrace.dedup.spark import run_spark

    paths, params = archive["paths"], DedupParams()
    run_local(paths, tmp_path / "local", params, workers=2, include_singletons=singletons, progress=False)
    run_spark(paths, tmp_path / "spark", params, spark=spark, include_singletons=singletons, progress=False)
    if not singletons:
        _check(tmp_path / "spark", archive["expected"])
    else:
        lines = (tmp_path / "local" / "clusters.jsonl").read_text().splitlines()
        assert sum('"pairs": []' in line for line in lines) == N_SOURCES - len(archive["expected"])
    assert (tmp_path / "spark" / "clusters.jsonl").read_text() == (tmp_path / "local" / "clusters.jsonl").read_text()
    # Spark numbers records from each input partition's line count: the same file and line as read locally.
    skipped = (tmp_path / "spark" / "skipped.jsonl").read_text()
    assert skipped == (tmp_path / "local" / "skipped.jsonl").read_text()
    assert skipped.count("\n") >= 2
    summary = json.loads((tmp_path / "spark" / "summary.json").read_text())
    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    for field in ("documents", "skipped", "clusters", "size_histogram", "candidate_pairs", "verified_pairs"):
        assert summary[field] == local[field], field


@pytest.mark.slow
def test_spark_numbers_records_across_the_partitions_of_a_file(tmp_path: Path, spark: Any) -> None:
    """A plain JSONL file is read as several partitions; junk anywhere in it (blank lines included)
    is reported at the same file and record as the local engine reports it, and the clusters agree."""
    from wiretrace.dedup.spark import run_spark

    gen = NewsGen(seed=9)
    sources = [gen.article() for _ in range(6)]
    lines = []
    for i in range(60):
        if i % 13 == 5:
            lines += ["", json.dumps({"id": f"junk-{i}", "text": "  "}), "{broken"]
        src = sources[i % len(sources)]
        lines.append(json.dumps({"id": f"d{i}", "text": gen.verbatim(src) if i >= len(sources) else src}))
    lines.append(json.dumps({"text": "no id, last line"}))
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert spark.sparkContext.textFile(str(path)).getNumPartitions() >= 2
    run_local([str(path)], tmp_path / "local", DedupParams(), workers=2, progress=False)
    run_spark([str(path)], tmp_path / "spark", DedupParams(), spark=spark, progress=False)
    for name in ("skipped.jsonl", "clusters.jsonl"):
        assert (tmp_path / "spark" / name).read_text() == (tmp_path / "local" / name).read_text(), name
    skipped = [json.loads(line) for line in (tmp_path / "local" / "skipped.jsonl").read_text().splitlines()]
    numbers = [s["line"] for s in skipped]
    assert len(numbers) >= 10 and max(numbers) > len(lines) // 2
    # Line numbers as an editor shows them (from 1, blank lines counted): each names its own line.
    for s in skipped:
        assert {"not JSON": "{broken", "empty text": '"text": "  "', "no id": "no id, last line"}.get(
            s["reason"], ""
        ) in lines[s["line"] - 1], s


# -- the batch core: same numbers as the per-text functions --------------------


def _texts() -> list[str]:
    """News-like texts, their copies, boilerplate, line-break variants, non-ASCII and degenerate inputs."""
    gen = NewsGen(seed=11)
    texts: list[str] = []
    for _ in range(60):
        a = gen.article()
        texts += [a, gen.verbatim(a), gen.edited(a), gen.ocr(a), a.replace("\n", "\r\n"), a.replace("\n", "\x0c")]
    texts += [
        "",
        "   \n\n",
        "Hi.",
        "one two three",
        "one two three four",
        " ".join(f"w{i}" for i in range(19)),
        " ".join(f"w{i}" for i in range(20)),
        " ".join(f"w{i}" for i in range(36)),
        "BEIRUT (Reuters) - The army said on Monday it had taken the town.\nBy John Smith\nPhoto: AFP\nREUTER",
        "LONDON, March 3 - Shares fell.\n  Reporting by Jane Doe; Editing by Bob\nSubscribers only\n(c) 2024 X",
        "Prices rose (REUTERS/Kim Lee) today.\nSummary\nsee also: the rest\nSee Also here we go again now",
        "x" * 40 + " abc " + "Y" * 15 + " " + "z" * 16 + " 0123456789abcdef " + "Q" * 17,
        "Naïve café owners in Zürich said prices rose. Ünïcödé words here, and there: 東京 data.",
        "یہ ایک اردو خبر ہے جس میں کئی الفاظ ہیں اور وہ بار بار آتے ہیں",
    ]
    return texts


def test_batch_token_hashes_equal_token_hashes() -> None:
    from wiretrace.text import token_hashes, token_hashes_batch, tokenize

    texts = _texts()
    flat, offsets = token_hashes_batch(texts)
    for i, t in enumerate(texts):
        assert np.array_equal(flat[offsets[i] : offsets[i + 1]], tokenize(t).hashes), t[:60]
        assert np.array_equal(flat[offsets[i] : offsets[i + 1]], token_hashes(t))


@given(
    st.lists(st.text(alphabet=st.sampled_from(list("abAZ09 \n\r-:;/()©éReutrs(c)Photo:by")), max_size=80), max_size=8)
)
@settings(max_examples=200, deadline=None)
def test_batch_token_hashes_fuzz(texts: list[str]) -> None:
    from wiretrace.text import token_hashes, token_hashes_batch

    flat, offsets = token_hashes_batch(texts)
    assert offsets.size == len(texts) + 1
    for i, t in enumerate(texts):
        assert np.array_equal(flat[offsets[i] : offsets[i + 1]], token_hashes(t))


def test_window_prints_equal_story_prints() -> None:
    pipeline = TextPipeline(Settings().index)
    texts = _texts()
    tokens, toff, keys, koff = pipeline.window_prints(texts)
    for i, story in enumerate(pipeline.stories(texts)):
        assert np.array_equal(tokens[toff[i] : toff[i + 1]], story.tokens)
        assert np.array_equal(keys[koff[i] : koff[i + 1]], pipeline.window_keys_of(story))


def test_candidate_pairs_and_prefilter_match_the_reference(archive: dict[str, Any]) -> None:
    """Vectorised pairs equal bucket_pairs per bucket; the verification prefilter drops no verified pair."""
    cfg = Settings()
    sp, dp = scoring_params(cfg), DedupParams(max_bucket=3)
    texts = [t for t in _texts() if t.strip()] + [json.loads(x)["text"] for x in _archive_lines(archive)]
    printed, _ = print_flat(
        TextPipeline(cfg.index), list(range(len(texts))), list(map(str, range(len(texts)))), texts, dp
    )
    order = np.argsort(printed.owner, kind="stable")
    left, right = candidate_pairs(printed.owner[order], printed.bands[order], dp.max_bucket)
    docs = list(printed_docs(printed))
    buckets: dict[int, list[int]] = {}
    for d, (*_, keys) in enumerate(docs):
        for k in keys.tolist():
            buckets.setdefault(k, []).append(d)
    expected = {p for m in buckets.values() for p in bucket_pairs(sorted(m), dp.max_bucket)}
    assert set(zip(left.tolist(), right.tolist(), strict=True)) == expected
    both = zip(left.tolist(), right.tolist(), strict=True)
    pairs = [(docs[i][0], docs[i][2], docs[j][0], docs[j][2]) for i, j in both]
    one_by_one = [e for e in (verify(*p, sp, dp) for p in pairs) if e is not None]
    assert one_by_one and verify_many(pairs, sp, dp) == one_by_one


def _archive_lines(archive: dict[str, Any]) -> list[str]:
    with gzip.open(archive["paths"][0], "rt", encoding="utf-8") as fh:
        return [line for line in fh if line.startswith('{"id"') and '"text": "' in line and len(line) > 200]


@st.composite
def _related_docs(draw: st.DrawFn) -> list[list[int]]:
    """A few token sequences over a tiny vocabulary (repeats, stock runs), some cut and spliced from one base."""
    vocab = st.integers(0, draw(st.integers(1, 12)))
    base = draw(st.lists(vocab, max_size=70))
    docs = [base]
    for _ in range(draw(st.integers(1, 4))):
        if base and draw(st.booleans()):  # type: ignore[arg-type]  # hypothesis types draw by the function's result
            cut = sorted(draw(st.lists(st.integers(0, len(base)), min_size=2, max_size=4)))
            docs.append(base[cut[0] : cut[-1]] + draw(st.lists(vocab, max_size=8)) + base[: cut[1]])
        else:
            docs.append(draw(st.lists(vocab, max_size=70)))
    return docs


@given(
    _related_docs(),
    st.integers(1, 5),
    st.integers(0, 10),
    st.sampled_from([0.0, 1.0, 3.0, 8.0]),
    st.sampled_from([0.0, 0.3, 0.8, 1.0]),
    st.sampled_from([0.0, 0.5]),
)
@settings(max_examples=300, deadline=None)
def test_batched_verification_equals_align_pair_by_pair(
    docs: list[list[int]], k: int, gap: int, weight: float, threshold: float, coverage: float
) -> None:
    """align_pairs (via verify_many) gives exactly the edges of verify / scoring.align, one pair at a time."""
    import dataclasses

    sp = dataclasses.replace(scoring_params(Settings()), shingle_size=k, max_gap=gap, min_passage_weight=weight)
    dp = DedupParams(threshold=threshold, min_coverage=coverage)
    arrays = [np.array(d, dtype=np.uint32) for d in docs]
    pairs = [(i, arrays[i], j, arrays[j]) for i in range(len(docs)) for j in range(len(docs)) if i != j]
    one_by_one = [e for e in (verify(*p, sp, dp) for p in pairs) if e is not None]
    assert verify_many(pairs, sp, dp) == one_by_one


@given(_related_docs(), st.integers(1, 5), st.integers(0, 10), st.sampled_from([0.0, 0.3, 0.8]), st.integers(1, 7))
@settings(max_examples=200, deadline=None)
def test_distinct_content_alignment_equals_pair_by_pair(
    docs: list[list[int]], k: int, gap: int, threshold: float, batch: int
) -> None:
    """Aligning each distinct (short, long) content pair once gives every pair verify's edge, in pair order."""
    import dataclasses

    sp = dataclasses.replace(scoring_params(Settings()), shingle_size=k, max_gap=gap, min_passage_weight=1.0)
    dp = DedupParams(threshold=threshold, min_coverage=0.3)
    docs = [*docs, docs[0], *docs[:2], docs[-1]]  # verbatim reprints, some with equal sizes
    arrays = [np.array(d, dtype=np.uint32) for d in docs]
    n = len(arrays)
    keys = np.arange(n, dtype=np.int64) * 7 + 3
    corpus = Corpus.of(keys, np.concatenate(arrays), offsets(np.array([a.size for a in arrays])), k)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    left, right = (np.array(x, dtype=np.int64) for x in zip(*pairs, strict=True))
    expected = [e for e in (verify(keys[i], arrays[i], keys[j], arrays[j], sp, dp) for i, j in pairs) if e]
    assert align_pairs_distinct(corpus, left, right, sp, dp, batch).edges() == expected


@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60))
    )
)
@settings(max_examples=200, deadline=None)
def test_label_components_equal_union_find(graph: tuple[int, list[tuple[int, int]]]) -> None:
    n, edges = graph
    a = np.array([x for x, _ in edges], dtype=np.int64)
    b = np.array([y for _, y in edges], dtype=np.int64)
    assert np.array_equal(label_components(n, a, b), components(n, edges))


def test_plain_jsonl_read_by_workers_equals_gzip(tmp_path: Path) -> None:
    """Byte ranges read by the workers number lines as the parent's reader does: blank lines, CRLF and
    bare CR breaks, broken JSON, invalid UTF-8, a last line without a break; many tiny ranges."""
    gen = NewsGen(seed=3)
    sources = [gen.article() for _ in range(12)]
    lines: list[bytes] = []
    for i, text in enumerate(sources):
        lines.append(json.dumps({"id": f"s{i}", "text": text}).encode() + b"\n")
        if i % 3 == 0:
            lines.append(b"\n")
            lines.append(json.dumps({"id": f"c{i}", "text": gen.edited(text)}).encode() + b"\r\n")
        if i % 4 == 1:
            lines.append(b'{"id": "bad\xff\xfe", "text": "x"}\r')
            lines.append(
                json.dumps({"id": f"v{i}", "text": "Caf\u00e9 " + gen.verbatim(text)}, ensure_ascii=False).encode()
            )
            lines.append(b"\n{not json\n")
    lines.append(json.dumps({"id": "last", "text": gen.ocr(sources[0])}).encode())
    data = b"".join(lines)
    more = b"".join(
        json.dumps({"id": f"m{i}", "text": gen.verbatim(t)}).encode() + b"\n" for i, t in enumerate(sources)
    )
    for name, content in (("a", data), ("b", more)):
        (tmp_path / f"{name}.jsonl").write_bytes(content)
        (tmp_path / f"{name}.jsonl.gz").write_bytes(gzip.compress(content))
    outs = []
    for name, suffix, range_bytes in (("gz", ".jsonl.gz", 1 << 20), ("tiny", ".jsonl", 1), ("small", ".jsonl", 3000)):
        out = tmp_path / name
        paths = [str(tmp_path / f"a{suffix}"), str(tmp_path / f"b{suffix}")]
        run_local(paths, out, DedupParams(), workers=2, progress=False, range_bytes=range_bytes)
        outs.append(
            tuple((out / f).read_text().replace(".jsonl.gz", ".jsonl") for f in ("clusters.jsonl", "skipped.jsonl"))
        )
    assert outs[0] == outs[1] == outs[2]
    assert '"line": ' in outs[0][1] and _clusters(tmp_path / "gz")


@pytest.mark.timeout(60)
def test_a_worker_stuck_since_its_fork_does_not_hang_the_pool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As when a worker forks while another thread holds a lock and never resets
    SIGTERM: the pool still ends, and the work is done by the others."""
    first = tmp_path / "first"

    def start() -> None:
        try:
            first.touch(exist_ok=False)
        except FileExistsError:
            return
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(3600)

    monkeypatch.setattr(wiretrace.dedup.local, "_worker_start", start)
    monkeypatch.setattr(wiretrace.dedup.local, "_POOL_GRACE_S", 1.0)
    with fork_pool(2) as pool:
        assert pool.map(abs, [-1, -2, -3]) == [1, 2, 3]
    assert first.exists()


@settings(deadline=None)  # the first call compiles the routing kernel (~0.3 s on a loaded machine)
@given(st.lists(st.integers(0, (1 << 62) - 1), min_size=1, max_size=50), st.integers(1, 300))
def test_vector_routing_equals_the_partitioner(keys: list[int], parts: int) -> None:
    """Join 1 ships by `_routes`; Spark places blocks by `_route`: a mismatch would lose pairs."""
    from wiretrace.dedup.spark import route, routes

    assert routes(parts, np.array(keys, dtype=np.int64)).tolist() == [route(parts, k) for k in keys]
