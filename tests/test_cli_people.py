"""The `wiretrace` command as a person meets it: run as a subprocess against a real loopback
server, asserting what they read. No traceback anywhere; every error one line that says what to do.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import free_port, make_settings, serve_process, stories
from tests.synth import NewsGen
from wiretrace.client import MatchQuery, WiretraceClient, parse_target
from wiretrace.server import WiretraceServer
from wiretrace.types import StoryRecord
from wiretrace.v1.convert import story_to_proto

CLI = [sys.executable, "-m", "wiretrace.cli", "--log-level", "WARNING"]


def run(*args: str, stdin: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIRETRACE_")}
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


def error_line(r: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command prints: `Error: ...`, and nothing else on stderr (no traceback)."""
    assert r.returncode != 0, r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[0].removeprefix("Error: ")


def no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert not re.search(r"^[EWI]\d{4} ", r.stderr, re.M), r.stderr  # no gRPC C-core log lines


def jsonl(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def row(story: StoryRecord, **extra: object) -> str:
    return json.dumps({"story_id": story.story_id, "headline": story.headline, "body": story.body, **extra})


# -- 1, 2: lines that cannot be indexed are named by FILE:LINE, the rest is indexed ---------------------------


def test_bad_lines_are_reported_by_line_and_the_rest_indexed(
    server: WiretraceServer, client: WiretraceClient, news: NewsGen, tmp_path: Path
) -> None:
    s = stories(news, 4, prefix="ok")
    cut = row(s[1])[:60]  # cut short, just inside the body
    wire = jsonl(
        tmp_path / "wire.jsonl",
        [
            row(s[0]),
            cut,
            row(s[2]),
            "",
            json.dumps({"ID": "x1", "content": "text under other field names"}),
            json.dumps({"story_id": "empty", "body": ""}),
            row(s[3]),
        ],
    )
    r = run("index", str(wire), "--server", server.address)
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("indexed 3 stories in "), r.stdout
    assert "the server now holds 3 stories; 3 lines not indexed:" in r.stdout
    assert r.stderr.splitlines() == [
        f"  {wire}:2: not valid JSON at column {cut.index(s[1].body[:3])}: Unterminated string starting "
        "(is the line cut short?)",
        f"  {wire}:5: no story id: expected a field named story_id or id or doc_id or newid; this line has ID, content",
        f"  {wire}:6: story 'empty': body is empty or only whitespace; send the text to match or index",
    ]
    assert [client.get_story(x.story_id).body for x in (s[0], s[2], s[3])] == [s[0].body, s[2].body, s[3].body]


def test_a_story_over_the_message_limit_is_rejected_by_line(
    server: WiretraceServer, client: WiretraceClient, news: NewsGen, tmp_path: Path
) -> None:
    s = stories(news, 3, prefix="m")
    huge = "word " * 400_000  # 2 MB: over the test server's max_message_bytes (1 MiB)
    big = "word " * 50_000  # 250 KB: over this command's --max-message-bytes below
    wire = jsonl(
        tmp_path / "wire.jsonl",
        [
            row(s[0]),
            json.dumps({"story_id": "huge", "body": huge}),
            row(s[1]),
            json.dumps({"id": "big", "text": big}),
            row(s[2]),
        ],
    )
    # The server's limit (1 MiB) is below this command's default (8 MiB): learnt from its refusal.
    r = run("index", str(wire), "--server", server.address)
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert "indexed 3 stories" in r.stdout
    lines = r.stderr.splitlines()
    size = story_to_proto(StoryRecord("huge", huge)).ByteSize()
    assert lines[0].startswith(f"  {wire}:2: story 'huge': story is {size} bytes as a gRPC message; the limit is ")
    assert "(setting max_message_bytes, of this client and of the server): split it or raise the limit" in lines[0]
    # 250 KB passes 1 MiB but not the server's max_text_bytes: its own wording, by line.
    assert lines[1].startswith(f"  {wire}:4: story 'big': body is 250000 bytes of UTF-8; the limit is 65536")
    assert len(lines) == 2
    assert client.stats()[0].stories == 3

    # This command's own limit, below the server's.
    r = run("index", str(wire), "--server", server.address, "--max-message-bytes", "100000")
    no_traceback(r)
    size = story_to_proto(StoryRecord("big", big)).ByteSize()
    assert f"story 'big': story is {size} bytes as a gRPC message; the limit is 100000" in r.stderr
    assert "indexed 3 stories" in r.stdout


# -- 3, 5, 6: a server that is not there, or a port that is taken ----------------------------------------------


def test_every_command_says_the_same_when_no_server_answers(tmp_path: Path) -> None:
    port = free_port()
    article = tmp_path / "a.txt"
    article.write_text("Some article text.")
    expected = (
        f"cannot reach a wiretrace server at 127.0.0.1:{port} (connection refused): is `wiretrace serve` running "
        "there? Give its address with --server HOST:PORT or WIRETRACE_SERVER"
    )
    wire = jsonl(tmp_path / "w.jsonl", [json.dumps({"id": "a", "text": "t"})])
    for args in (["index", str(wire)], ["match", str(article)], ["stats"], ["get", "a"], ["delete", "a"]):
        r = run(*args, "--server", f"http://127.0.0.1:{port}/")
        assert error_line(r) == expected, args
    r = run("match", str(article), "--server", "ftp://127.0.0.1")
    assert r.returncode == 2 and "ftp:// is not a way to reach a wiretrace server; give HOST:PORT" in r.stderr


def test_server_addresses_as_people_type_them() -> None:
    assert parse_target("localhost").address == "localhost:50051"
    assert parse_target("http://127.0.0.1:50052/").address == "127.0.0.1:50052"
    assert parse_target("https://wire.example").address == "wire.example:50051"
    assert parse_target("https://wire.example").tls
    assert parse_target("::1").address == "[::1]:50051"
    assert parse_target("[::1]:7").address == "[::1]:7"
    assert parse_target("unix:/tmp/s").address == "unix:/tmp/s"
    bad_ones = (("host:port", "must be a number"), ("a b", "not a host name"), ("h:1/x", "no path"), ("", "empty"))
    for bad, why in bad_ones:
        with pytest.raises(ValueError, match=why):
            parse_target(bad)


def test_serve_without_redis_says_so(tmp_path: Path) -> None:
    port = free_port()
    r = run("serve", "--store", f"redis://127.0.0.1:{port}/0", "--port", "0", "--data-dir", str(tmp_path))
    assert error_line(r) == (
        f"cannot reach Redis at 127.0.0.1:{port} (connection refused): is redis-server running? "
        f"(--store redis://127.0.0.1:{port}/0)"
    )


def test_a_second_server_on_a_busy_port_fails_before_opening_its_store(tmp_path: Path) -> None:
    with serve_process(tmp_path / "first", log_level="INFO", stderr=True) as (proc, address):
        port = address.rsplit(":", 1)[1]
        second = tmp_path / "second"
        r = run("serve", "--port", port, "--data-dir", str(second))
        assert error_line(r) == (
            f"cannot listen on 127.0.0.1:{port}: the port is in use; another wiretrace server may be running "
            "there: stop it, or pick another port with --port"
        )
        assert not second.exists()  # the port was checked before the store was opened
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    # "listening on" once, on stdout (read by the fixture), not again in the log.
    assert "listening on" not in out + err
    assert "serving 0 stories (plaintext, no authentication)" in err


# -- 7: Ctrl-C says what is safe ---------------------------------------------------------------------------------


def test_ctrl_c_says_how_many_stories_are_acknowledged(
    server: WiretraceServer, client: WiretraceClient, news: NewsGen
) -> None:
    proc = subprocess.Popen(
        [*CLI, "index", "-", "--stream-size", "5", "--server", server.address],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a test run started in the background (`make test &`) ignores
        # SIGINT, and a child would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdin is not None
    for s in stories(news, 12, prefix="c"):
        proc.stdin.write(row(s) + "\n")
    proc.stdin.flush()  # lines 11-12 open a third stream, which waits for more input
    deadline = time.monotonic() + 60
    while client.stats()[0].stories < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert err.strip() == (
        "Error: interrupted: 10 stories acknowledged and stored for good, through -:10; lines 11-12 were being "
        "sent and may be partly stored. Re-running is safe: ids upsert, so a story sent again replaces itself. "
        "To go on from here: wiretrace index - --from-line 11"
    )


def test_a_file_goes_many_stories_to_a_message_and_stdin_one_by_one(
    server: WiretraceServer, client: WiretraceClient, news: NewsGen, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file is a bulk load (IndexStoryBatches: the server reads 64 stories a message); stdin may
    be a live feed, whose stories must not wait for others to fill a message (IndexStories)."""
    caplog.set_level(logging.INFO, logger="wiretrace.requests")
    s = stories(news, 7, prefix="f")
    wire = jsonl(tmp_path / "wire.jsonl", [row(x) for x in s[:4]])
    assert run("index", str(wire), "--stream-size", "3", "--server", server.address).returncode == 0
    assert run("index", "-", "--server", server.address, stdin="".join(row(x) + "\n" for x in s[4:])).returncode == 0
    calls = [m[1] for r in caplog.records if (m := re.search(r"method=(\w+) code=OK", r.getMessage()))]
    assert [c for c in calls if c.startswith("Index")] == ["IndexStoryBatches", "IndexStoryBatches", "IndexStories"]
    assert client.stats()[0].stories == 7 and client.get_story("f3").body == s[3].body


def test_from_line_resumes(server: WiretraceServer, client: WiretraceClient, news: NewsGen, tmp_path: Path) -> None:
    s = stories(news, 3, prefix="r")
    wire = jsonl(tmp_path / "wire.jsonl", [row(x) for x in s])
    r = run("index", str(wire), "--from-line", "3", "--server", server.address)
    assert r.stdout.startswith("indexed 1 story in "), r.stdout  # not "1 stories"
    assert client.get_story("r2").body == s[2].body
    assert client.stats()[0].stories == 1


# -- 8, 12, 14: answers and admin, on the generated demo ----------------------------------------------------------


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    r = run("demo", "--out", str(out), "--stories", "60")
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}/wire.jsonl.gz (60 generated stories) and {out}/article.txt (built from " in r.stdout
    return out


def test_demo_runs_the_readme_example(server: WiretraceServer, demo_dir: Path) -> None:
    r = run("index", str(demo_dir / "wire.jsonl.gz"), "--server", server.address)
    assert r.stdout.startswith("indexed 60 stories in "), r.stdout
    r = run("match", str(demo_dir / "article.txt"), "--server", server.address)
    no_traceback(r)
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"verdict: (DERIVED|PARTIAL) — .+", lines[0]), lines[0]
    assert re.fullmatch(
        r"original text: \d+% of the article is in no indexed story \(\d+ candidate stories checked\)", lines[1]
    )
    # Each source: id and headline, agency and date, shares in words, and quoted passages.
    assert re.fullmatch(r"1\. wire-\d{8} “.+”", lines[3]), lines[3]
    assert re.fullmatch(r"   (Reuters|AP|AFP|APP), 2025-03-\d\d \d\d:\d\d UTC", lines[4]), lines[4]
    assert re.fullmatch(
        r"   (PARTIAL|DERIVED): \d+% of the article is from this story; the article uses \d+% of it \(\d+ passages?\)",
        lines[5],
    ), lines[5]
    assert re.fullmatch(r"   “[^”]+”( \(not word for word: \d+% matches exactly\))?", lines[6]), lines[6]
    assert "similarity" not in r.stdout and "article 0-" not in r.stdout  # details are for --passages all


def test_demo_is_generated_not_copied(demo_dir: Path) -> None:
    again = demo_dir.parent / "again"
    r = run("demo", "--out", str(again), "--stories", "60")
    assert r.returncode == 0
    assert gzip.decompress((again / "wire.jsonl.gz").read_bytes()) == gzip.decompress(
        (demo_dir / "wire.jsonl.gz").read_bytes()
    )
    assert error_line(run("demo", "--out", str(again))) == (
        f"{again}/wire.jsonl.gz and {again}/article.txt already exist: pass --force or --out"
    )


def test_match_quotes_and_numbers(server: WiretraceServer, client: WiretraceClient, news: NewsGen) -> None:
    [story] = stories(news, 1, prefix="q")
    client.index_stories(
        [StoryRecord(story.story_id, story.body, story.headline, "Reuters", published_at_ns=1_700_000_000 * 10**9)]
    )
    paragraphs = story.body.split("\n\n")
    article = "\n\n".join([news.article(80, 100), *paragraphs[:2], news.article(60, 80), *paragraphs[3:5]])
    r = run("match", "-", "--passages", "all", "--server", server.address, stdin=article)
    assert "   Reuters, 2023-11-14 22:13 UTC" in r.stdout
    assert re.search(r"   \[1\] article \d+-\d+, story \d+-\d+, similarity 1\.00", r.stdout)
    assert "similarity: the share of a passage's word sequences (shingles) found word for word" in r.stdout

    def words(text: str) -> set[str]:
        return {w.strip(".,;:'\"") for w in text.split()}

    # Quotes are cut at word boundaries: every word in them is a whole word of the texts.
    for quoted in re.findall(r"“([^”]*)”", r.stdout.split("\n", 3)[3]):
        assert words(quoted) <= words(article + " " + story.body + " " + story.headline) | {"…"}, quoted

    out = json.loads(run("match", "-", "--json", "--server", server.address, stdin=article).stdout)
    assert out["matches"][0]["source"] == "Reuters"
    assert out["matches"][0]["published_at"] == "2023-11-14T22:13:20Z"
    assert out["reason"]

    def fractions(x: object) -> list[float]:
        if isinstance(x, float):
            return [x]
        if isinstance(x, dict):
            return [f for v in x.values() for f in fractions(v)]
        if isinstance(x, list):
            return [f for v in x for f in fractions(v)]
        return []

    assert all(round(f, 4) == f for f in fractions(out))
    assert len(str(out["original_fraction"])) <= 6


def test_article_that_is_not_text(server: WiretraceServer, tmp_path: Path) -> None:
    pdf = tmp_path / "page.pdf"
    pdf.write_bytes(b"%PDF-1.4\n\xff\xfe binary")
    assert error_line(run("match", str(pdf), "--server", server.address)) == (
        f"{pdf} is not UTF-8 text (byte 0xff at offset 9): give the article as plain UTF-8 text"
    )


def test_stats_get_delete(server: WiretraceServer, client: WiretraceClient, news: NewsGen, tmp_path: Path) -> None:
    s = stories(news, 2, prefix="a")
    client.index_stories(
        [StoryRecord(s[0].story_id, s[0].body, s[0].headline, "AP", 1_700_000_000 * 10**9, {"desk": "world"}), s[1]]
    )
    r = run("stats", "--server", server.address)
    assert r.stdout.splitlines()[0] == "stories    2"
    assert "settings   bands 8, num_perm 32, rows 4" in r.stdout
    assert json.loads(run("stats", "--json", "--server", server.address).stdout)["stories"] == 2

    r = run("get", "a0", "--server", server.address)
    assert r.stdout.startswith(
        f"story_id   a0\nheadline   {s[0].headline}\nsource     AP\npublished  2023-11-14T22:13:20+00:00\n"
        f"desk:      world\n\n{s[0].body}"
    )
    exported = run("get", "a0", "a1", "--json", "--server", server.address).stdout
    r = run("delete", "a0", "a1", "nope", "--server", server.address)
    assert r.stdout == "deleted 2 stories; 1 id given was not stored\n"
    assert error_line(run("get", "a0", "--server", server.address)) == (
        f"no story with story_id 'a0' on the server at {server.address}"
    )
    # What `get --json` prints, `index` takes back, the same.
    r = run("index", "-", "--server", server.address, stdin=exported)
    assert r.stdout.startswith("indexed 2 stories")
    back = client.get_story("a0")
    assert (back.source, back.published_at_ns, back.metadata) == ("AP", 1_700_000_000 * 10**9, {"desk": "world"})


# -- 15: small things -----------------------------------------------------------------------------------------------


def test_match_stream_numbers_plain_strings(client: WiretraceClient, news: NewsGen) -> None:
    texts = [news.article(), news.article()]
    assert [rid for rid, _ in client.match_stream(texts)] == ["0", "1"]
    assert [rid for rid, _ in client.match_stream([MatchQuery(texts[0], request_id="mine")])] == ["mine"]


# -- 9, 10, 11: answers that tell the truth and say why --------------------------------------------------------------


def test_too_short_to_attribute_says_so(server: WiretraceServer, client: WiretraceClient, news: NewsGen) -> None:
    [story] = stories(news, 1, prefix="t")
    client.index_stories([story])
    ten_words = " ".join([w for w in story.body.split() if w.isalpha()][:10])  # one token each
    r = run("match", "-", "--server", server.address, stdin=ten_words)
    assert r.stdout == "verdict: UNRELATED — too short to attribute: 10 words, the minimum is 12 (min_match_tokens)\n"
    r = run("match", "-", "--server", server.address, stdin=news.article(60, 80))
    assert r.stdout.startswith("verdict: UNRELATED — no indexed story shares ")


def _editions(news: NewsGen, seed: int) -> tuple[str, str, str]:
    """An edition, a reworded one (a word changed in every sentence, shorter: so it has the higher coverage),
    and an article quoting two sentences of the first word for word."""
    rng = random.Random(seed)
    sentences = news.article(300, 400).replace("\n\n", " ").split(". ")
    reworded = []
    for sentence in sentences:
        words = sentence.split()
        if len(words) > 6:
            words[rng.randrange(2, len(words) - 2)] = rng.choice(news.words)
        reworded.append(" ".join(words))
    longer = ". ".join(sentences + [news.sentence() for _ in range(4)])
    k = next(i for i in range(len(sentences) - 1) if len((sentences[i] + sentences[i + 1]).split()) >= 34)
    article = f"{news.article(80, 120)} {sentences[k]}. {sentences[k + 1]}. {news.article(80, 120)}"
    return longer, ". ".join(reworded), article


def test_near_ties_name_the_edition_with_the_exact_words(
    server: WiretraceServer, client: WiretraceClient, news: NewsGen
) -> None:
    cases = [_editions(news, seed) for seed in range(6)]
    for i, (exact, reworded, _) in enumerate(cases):
        client.index_stories(
            [StoryRecord(f"exact-{i}", exact, source="AP"), StoryRecord(f"reworded-{i}", reworded, source="AFP")]
        )
    firsts = [client.match(article).matches[0].story_id for _, _, article in cases]
    assert firsts == [f"exact-{i}" for i in range(len(cases))]
    r = run("match", "-", "--server", server.address, stdin=cases[0][2])
    assert r.stdout.split("\n\n")[1].startswith("1. exact-0\n   AP, date not recorded\n")


def test_a_text_made_of_many_stories_is_not_original(news: NewsGen, tmp_path: Path) -> None:
    """Before sections, in a 1,000-story index: original_fraction 0.38 / 0.69 / 0.83 with 50 / 100 / 200 stories."""
    settings = make_settings(tmp_path / "data", max_text_bytes=1 << 20, max_message_bytes=4 << 20)
    with WiretraceServer(settings) as server, WiretraceClient(server.address, timeout=60) as client:
        wire = stories(news, 240, prefix="n")
        client.index_stories(wire)
        for n in (50, 200):
            text = "\n\n".join(s.body for s in wire[:n])
            out = json.loads(
                run("match", "-", "--json", "--top-k", "100", "--server", server.address, stdin=text).stdout
            )
            assert out["original_fraction"] <= 0.1, (n, out["original_fraction"], out["candidates_checked"])
            assert out["verdict"] == "DERIVED"
            assert len(out["matches"]) == min(n, 100)
            assert {m["story_id"] for m in out["matches"]} <= {s.story_id for s in wire[:n]}


# -- 4, 15: dedup reads what index reads, and says so when it cannot ---------------------------------------------


def test_dedup_takes_the_file_index_takes(server: WiretraceServer, news: NewsGen, tmp_path: Path) -> None:
    s = stories(news, 12, prefix="w")
    rows = [row(x) for x in s] + [row(StoryRecord(f"copy-{x.story_id}", news.verbatim(x.body))) for x in s[:3]]
    wire = jsonl(tmp_path / "wire.jsonl", [*rows[:5], "", "{broken", *rows[5:]])
    out = tmp_path / "out"
    r = run("dedup", str(wire), "--out", str(out), "--workers", "1")
    no_traceback(r)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["documents"], summary["clusters"], summary["skipped"]) == (15, 3, {"not JSON": 1})
    assert json.loads((out / "skipped.jsonl").read_text()) == {
        "file": str(wire),
        "line": 7,
        "id": None,
        "reason": "not JSON",
    }  # line 7 as an editor counts: 5 stories, a blank line, then the broken one
    assert "doc/s" not in r.stderr and "it/s" not in r.stderr  # no progress bars on a pipe

    # Against a server: tags, no empty clusters.jsonl.
    r = run("dedup", str(wire), "--out", str(tmp_path / "tags"), "--against", server.address)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "tags").iterdir()) == ["skipped.jsonl", "summary.json", "tags.jsonl"]

    assert error_line(run("dedup", str(wire), "--out", str(out), "--id-field", "ID")).endswith(
        f"{wire}: its first record has no field 'ID' (--id-field); it has story_id, headline, body"
    )
    other = jsonl(tmp_path / "other.jsonl", [json.dumps({"key": "a", "content": "words"})])
    assert error_line(run("dedup", str(other), "--out", str(out))).endswith(
        f"{other}: no field named id or story_id or doc_id or newid in its first record (its fields: key, content); "
        "name the one to use with --id-field"
    )
    # Every record skipped is a failure that says why, not "documents": 0 and exit 0.
    r = run("dedup", str(other), "--out", str(out), "--id-field", "key", "--text-field", "content")
    no_traceback(r)
    assert r.returncode == 1  # after the log's warning about the record skipped:
    assert r.stderr.splitlines()[-1] == (
        f"Error: no record could be used (1 too short; listed in {out}/skipped.jsonl): do they have the fields "
        "'key' and 'content'? (--id-field, --text-field)"
    )


def test_dedup_on_spark_without_java_says_so(tmp_path: Path) -> None:
    wire = jsonl(tmp_path / "w.jsonl", [json.dumps({"id": "a", "text": "words"})])
    env = {"PATH": str(Path(sys.executable).parent), "HOME": os.environ.get("HOME", "/root")}
    r = subprocess.run(
        [*CLI, "dedup", str(wire), "--out", str(tmp_path / "o"), "--engine", "spark"],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )
    assert error_line(r) == (
        "--engine spark needs Java 17 (java on PATH, or JAVA_HOME): apt-get install openjdk-17-jre-headless"
    )
