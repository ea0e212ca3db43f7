"""`wiretrace match --html`: the page, loaded in a real headless Chromium (Debian's package,
installed by .ci/run), has every shared passage highlighted with the right text on both sides."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import make_settings
from tests.synth import NewsGen
from wiretrace.cli import main
from wiretrace.client import WiretraceClient
from wiretrace.page import PALETTE
from wiretrace.server import WiretraceServer
from wiretrace.types import NS_PER_DAY, StoryRecord

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
NOW = time.time_ns()


def browser_dom(page: Path, tmp_path: Path) -> str:
    """The DOM Chromium built from the page, serialised (no network: the page needs none)."""
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "<mark" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


class Marks(HTMLParser):
    """Every <mark>: (section id, its attributes, its text), in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.section = ""
        self.marks: list[tuple[str, dict[str, str], str]] = []
        self._open: dict[str, str] | None = None
        self._text: list[str] = []
        self.tags: set[str] = set()
        self.legend_rows: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if tag == "section":
            self.section = a.get("id", "")
        elif tag == "mark":
            self._open, self._text = a, []
        elif tag == "tr" and "data-source" in a:
            self.legend_rows.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark" and self._open is not None:
            self.marks.append((self.section, self._open, "".join(self._text)))
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)


def passage_text(marks: Marks, section: str, side: str, passage: int) -> str:
    """What the marks of one passage spell on one side of a source's section."""
    return "".join(
        text
        for sec, a, text in marks.marks
        if sec == section and a["data-side"] == side and str(passage) in a["data-passages"].split()
    )


def test_match_page_highlights_shared_passages_in_chromium(tmp_path: Path) -> None:
    gen = NewsGen(seed=41)
    ap = StoryRecord("ap-7", gen.article(250, 300), "Storm closes ports", "AP", NOW - 2 * NS_PER_DAY)
    afp = StoryRecord("afp-3", gen.article(250, 300), "Ministers meet on <trade> & tariffs", "AFP", NOW - NS_PER_DAY)
    resend = StoryRecord("ap-7b", ap.body, "Storm closes ports (re-send)", "AP", NOW - NS_PER_DAY)
    unrelated = StoryRecord("rtrs-1", gen.article(), "Markets", "RTRS", NOW)
    # A merged article: its own lead, two paragraphs of each wire story, its own close.
    ap_paras, afp_paras = ap.body.split("\n\n"), afp.body.split("\n\n")
    article = "\n\n".join(
        ["Our desk's own lead <with markup-like text> & an ampersand.", *ap_paras[:2], *afp_paras[1:3], gen.sentence()]
    )
    (tmp_path / "article.txt").write_text(article, encoding="utf-8")
    out = tmp_path / "match.html"
    with WiretraceServer(make_settings(tmp_path / "data")) as srv:
        with WiretraceClient(srv.address, timeout=30) as client:
            client.index_stories([ap, afp, resend, unrelated])
            expected = client.match(article)
        run = CliRunner().invoke(
            main, ["match", str(tmp_path / "article.txt"), "--server", srv.address, "--html", str(out), "--json"]
        )
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["verdict"] == expected.verdict.name
    assert {m.story_id: m.editions for m in expected.matches} == {"ap-7": ("ap-7b",), "afp-3": ()}

    page = out.read_text(encoding="utf-8")
    # Self-contained: no script, stylesheet link, image or other fetched resource.
    for needle in ("<script", "<link", "<img", "src=", "url(", "http://", "https://", "@import"):
        assert needle not in page

    dom = browser_dom(out, tmp_path)
    marks = Marks()
    marks.feed(dom)
    assert {"table", "mark", "header"} <= marks.tags
    assert [r["data-source"] for r in marks.legend_rows] == ["1", "2"]
    stories = {"ap-7": ap, "afp-3": afp}
    colours = set()
    for rank, m in enumerate(expected.matches, 1):
        section = f"source-{rank}"
        assert len(m.passages) >= 1
        for i, p in enumerate(m.passages, 1):
            assert passage_text(marks, section, "article", i) == article[p.article_start : p.article_end]
            assert passage_text(marks, section, "story", i) == stories[m.story_id].body[p.story_start : p.story_end]
        styles = {a["style"] for sec, a, _ in marks.marks if sec == section}
        assert styles == {f"background:{PALETTE[rank - 1]}"}  # one colour per source, on both sides
        colours |= styles
        # The overview marks the same article text in this source's colour.
        overview = "".join(t for sec, a, t in marks.marks if sec == "article" and a["data-source"] == str(rank))
        assert overview == "".join(article[p.article_start : p.article_end] for p in m.passages)
    assert len(colours) == 2
    # Text outside passages is not marked: the article's own lead stays plain.
    assert all("Our desk" not in t for _, _, t in marks.marks)
    for shown in ("ap-7b", "AFP", "Ministers meet on &lt;trade&gt; &amp; tariffs", expected.verdict.name):
        assert shown in dom
