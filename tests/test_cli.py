"""The `wiretrace` command against a real loopback server (and eval's own in-process one)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import stories
from tests.synth import NewsGen
from wiretrace.cli import main
from wiretrace.client import WiretraceClient
from wiretrace.config import env_name, setting_fields
from wiretrace.server import WiretraceServer


def _write_wire(path: Path, news: NewsGen, n: int) -> list[dict[str, str]]:
    rows = [{"story_id": r.story_id, "headline": r.headline, "body": r.body} for r in stories(news, n, prefix="w")]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return rows


def test_serve_help_lists_every_setting() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for f in setting_fields():
        assert "--" + f.name.replace("_", "-") in result.output
        assert env_name(f.name) in result.output
        assert f.metadata["help"].split()[0] in result.output


def test_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path), "--bands", "64", "--rows", "4"])
    assert result.exit_code == 2
    assert "bands*rows" in result.output


def test_index_then_match(server: WiretraceServer, news: NewsGen, tmp_path: Path) -> None:
    wire = tmp_path / "wire.jsonl.gz"
    rows = _write_wire(wire, news, 6)
    with gzip.open(wire, "at", encoding="utf-8") as fh:
        fh.write(json.dumps({"story_id": "empty", "body": ""}) + "\n")
    runner = CliRunner()
    result = runner.invoke(main, ["index", str(wire), "--server", server.address])
    assert result.exit_code == 0, result.output
    assert "indexed 6 stories" in result.output
    assert f"{wire}:7: story 'empty': body is empty" in result.output

    article = "An opening paragraph written by the local newsroom about something else entirely.\n\n" + rows[2]["body"]
    result = runner.invoke(main, ["match", "-", "--server", server.address], input=article)
    assert result.exit_code == 0, result.output
    assert "verdict: DERIVED" in result.output or "verdict: VERBATIM" in result.output
    assert "1. w2 “Headline w2”" in result.output
    assert "\n   source not recorded, date not recorded\n" in result.output

    result = runner.invoke(main, ["match", "-", "--json", "--top-k", "1", "--server", server.address], input=article)
    out = json.loads(result.output)
    [m] = out["matches"]
    assert m["story_id"] == "w2"
    for p in m["passages"]:
        assert p["article_text"].split() == p["story_text"].split()
        assert article[p["article_start"] : p["article_end"]] == p["article_text"]

    result = runner.invoke(main, ["match", "-", "--server", server.address], input="   ")
    assert result.exit_code == 1
    assert "Error: text: text is empty or only whitespace; send the text to match or index" in result.output


def test_eval_runs_through_an_in_process_server(news: NewsGen, tmp_path: Path) -> None:
    wire = tmp_path / "wire.jsonl.gz"
    rows = _write_wire(wire, news, 10)
    queries = tmp_path / "queries.jsonl"
    with queries.open("w") as fh:
        for i in range(4):
            sid = rows[i]["story_id"]
            sources = [{"story_id": sid, "fraction": 1.0, "accept": [sid]}]
            fh.write(json.dumps({"query_id": f"v{i}", "kind": "verbatim", "text": rows[i]["body"], "sources": sources}))
            fh.write("\n")
            fh.write(json.dumps({"query_id": f"l{i}", "kind": "local", "text": news.article(), "sources": []}) + "\n")
    data = tmp_path / "data"
    args = ["eval", "--wire", str(wire), "--queries", str(queries), "--data-dir", str(data), "--streams", "3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:4] == ["verbatim", "4", "4", "1.000"] for line in lines), result.output
    assert any(line.split()[:4] == ["local", "4", "4", "1.000"] for line in lines), result.output
    assert "indexed 10 stories" in result.output

    # --data-dir keeps the index: a second run reuses it instead of indexing again.
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "using the 10 stories already indexed" in result.output


def test_eval_against_a_running_server(server: WiretraceServer, news: NewsGen, tmp_path: Path) -> None:
    wire = tmp_path / "wire.jsonl.gz"
    rows = _write_wire(wire, news, 3)
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"query_id": "c1", "label": "WD", "source_story_id": "w1", "text": rows[1]["body"]}) + "\n"
    )
    result = CliRunner().invoke(
        main, ["eval", "--wire", str(wire), "--queries", str(queries), "--server", server.address]
    )
    assert result.exit_code == 0, result.output
    assert "precision 1.000  recall 1.000  F1 1.000" in result.output
    with WiretraceClient(server.address) as client:
        assert client.stats()[0].stories == 3


def test_readme_documents_every_setting() -> None:
    """README's settings table is `wiretrace settings`; a new setting must be added to it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = CliRunner().invoke(main, ["settings"]).output
    for f in setting_fields():
        flag = "`--" + f.name.replace("_", "-") + "`"
        assert flag in table
        assert f"| {flag} | `{env_name(f.name)}` |" in readme, f"README lacks {flag}: paste `wiretrace settings`"


def test_eval_without_data_dir_uses_a_temporary_one(
    news: NewsGen, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = tmp_path / "wire.jsonl.gz"
    _write_wire(wire, news, 2)
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"query_id": "c", "label": "ND", "text": news.article()}) + "\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(main, ["eval", "--wire", str(wire), "--queries", str(queries)])
    assert result.exit_code == 0, result.output
    assert list(cwd.iterdir()) == []  # not ./data, the default of `serve`


@pytest.mark.parametrize(
    ("blocked", "args", "expected"),
    [
        ("redis", ["serve", "--store", "redis://127.0.0.1:1/0", "--port", "0"],
         "Error: a redis:// store needs the 'redis' package: pip install 'wiretrace[redis]'"),
        ("pyspark", ["dedup", "IN", "--out", "OUT", "--engine", "spark"],
         "Error: --engine spark needs the 'pyspark' package: pip install 'wiretrace[spark]'"),
    ],
)  # fmt: skip
def test_a_missing_extra_is_one_line_with_the_install_command(
    tmp_path: Path, blocked: str, args: list[str], expected: str
) -> None:
    """Without the optional package (made unimportable in a fresh interpreter), one line says what to install."""
    (tmp_path / "in.jsonl").write_text('{"id": "a", "text": "some words here"}\n', encoding="utf-8")
    argv = [str(tmp_path / "in.jsonl") if a == "IN" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    code = f"import sys; sys.modules[{blocked!r}] = None; from wiretrace.cli import main; main(sys.argv[1:])"
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == expected
