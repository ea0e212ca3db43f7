"""The ``wiretrace`` command: serve, index, match, eval.

Everything but ``serve`` talks to a server over gRPC through
wiretrace.client, so the CLI exercises the same API as any other caller;
``eval`` starts its own in-process server when not given one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from tqdm import tqdm

from wiretrace.config import Settings, env_name, setting_fields
from wiretrace.corpus import parse_time_ns, read_jsonl, story_from_json
from wiretrace.dedup_cli import dedup_command, eval_dedup_command
from wiretrace.types import MatchResult, SettingsMismatchError, StoryRecord

DEFAULT_SERVER = "127.0.0.1:50051"
F = TypeVar("F", bound=Callable[..., Any])


def _click_type(default: Any, choices: tuple[str, ...] | None = None) -> Any:
    if choices:
        return click.Choice(choices, case_sensitive=False)
    if isinstance(default, Path):
        return click.Path(path_type=Path, file_okay=False)
    if isinstance(default, bool):
        return click.BOOL
    return type(default)


def settings_options(func: F) -> F:
    """One --flag (and WIRETRACE_* variable) per setting in wiretrace.config."""
    for f in reversed(setting_fields()):
        func = click.option(
            "--" + f.name.replace("_", "-"),
            f.name,
            type=_click_type(f.default, f.metadata.get("choices")),
            default=f.default,
            envvar=env_name(f.name),
            show_envvar=True,
            show_default=True,
            help=f.metadata["help"],
        )(func)
    return func


def _settings(values: dict[str, Any], **forced: Any) -> Settings:
    names = {f.name for f in setting_fields()}
    overrides = {k: v for k, v in values.items() if k in names}
    overrides.update(forced)
    try:
        # Click already applied WIRETRACE_* variables; do not read them twice.
        return Settings.load(overrides, environ={})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _setup_logging(level: str) -> None:
    from wiretrace.server.observability import setup_text_logging

    setup_text_logging(getattr(logging, level.upper(), logging.INFO))


def _server_option(func: F) -> F:
    func = _access_options(func)
    return click.option(
        "--server",
        default=DEFAULT_SERVER,
        envvar="WIRETRACE_SERVER",
        show_default=True,
        show_envvar=True,
        help="HOST:PORT of a running wiretrace server.",
    )(func)


_ACCESS_OPTIONS = (
    ("--tls-ca", "Connect with TLS, trusting this PEM CA (or the server's self-signed certificate)."),
    ("--token-file", "File whose first line is the bearer token to send (servers run with --auth-token-file)."),
)


def _access_options(func: F) -> F:
    """--tls-ca and --token-file (WIRETRACE_TLS_CA/_TOKEN_FILE): how a command that talks to a server gets in."""
    for flag, help_text in reversed(_ACCESS_OPTIONS):
        func = click.option(
            flag,
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            envvar="WIRETRACE_" + flag[2:].replace("-", "_").upper(),
            show_envvar=True,
            help=help_text,
        )(func)
    return func


def _connect(target: str, token_file: str | None, tls_ca: str | None, timeout: float | None = 10.0) -> Any:
    """A WiretraceClient for `target` with the command's access options."""
    from wiretrace.client import WiretraceClient
    from wiretrace.client.client import read_token_file

    try:
        token = read_token_file(token_file) if token_file else None
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"--token-file: {exc}") from exc
    return WiretraceClient(target, timeout=timeout, token=token, tls_ca=tls_ca)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.option(
    "--log-level",
    default="INFO",
    envvar="WIRETRACE_LOG_LEVEL",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def main(log_level: str) -> None:
    """wiretrace: find which wire stories a news article derives from."""
    _setup_logging(log_level)


# -- serve ---------------------------------------------------------------------


@main.command()
@settings_options
def serve(**values: Any) -> None:
    """Run the gRPC service until SIGTERM/SIGINT.

    Prints "wiretrace listening on HOST:PORT" once it accepts calls (with
    --port 0, the port it picked).
    """
    from wiretrace.server import serve as run

    settings = _settings(values)

    def ready(address: str) -> None:
        click.echo(f"wiretrace listening on {address}")
        sys.stdout.flush()

    try:
        if settings.server.processes > 1:
            from wiretrace.server.supervisor import serve_processes

            serve_processes(settings, on_ready=ready)
        else:
            run(settings, on_ready=lambda server: ready(server.address))
    except (SettingsMismatchError, OSError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command("settings")
def settings_table() -> None:
    """Print every setting as a Markdown table (flag, variable, default, meaning) for the README."""
    click.echo("| flag | environment variable | group | default | meaning |")
    click.echo("| --- | --- | --- | --- | --- |")
    for group in dataclasses.fields(Settings):
        defaults = getattr(Settings(), group.name)
        for f in dataclasses.fields(defaults):
            flag = "--" + f.name.replace("_", "-")
            default = getattr(defaults, f.name)
            shown = f"`{default}`" if default != "" else "(none)"
            click.echo(f"| `{flag}` | `{env_name(f.name)}` | {group.name} | {shown} | {f.metadata['help']} |")


# -- index ---------------------------------------------------------------------


def _print_problems(header: str, problems: list[str], limit: int) -> None:
    """`header` and the first `limit` problems on stderr (nothing when there are none)."""
    if not problems:
        return
    click.echo(header, err=True)
    for p in problems[:limit]:
        click.echo(f"  {p}", err=True)
    if len(problems) > limit:
        click.echo(f"  ... and {len(problems) - limit} more", err=True)


def _print_rejections(rejected: list[Any], limit: int = 20) -> None:
    lines = [f"#{r.position} {r.story_id!r}: {r.reason}" for r in rejected]
    _print_problems(f"{len(rejected)} stories rejected:", lines, limit)


def _print_bad_times(problems: list[str], limit: int = 5) -> None:
    header = f"{len(problems)} stories had an unreadable publication time and were indexed undated:"
    _print_problems(header, problems, limit)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@_server_option
@click.option("--timeout", type=float, default=None, help="Deadline for the whole stream, in seconds.")
def index(file: str, server: str, timeout: float | None, token_file: str | None, tls_ca: str | None) -> None:
    """Index the stories of FILE (.jsonl, .jsonl.gz or - for stdin) into a server.

    One JSON object per line with story_id (or id), body (or text) and
    optionally headline, source, published and metadata; a re-sent id replaces
    the stored story.
    """
    from wiretrace.client import WiretraceError

    started = time.perf_counter()
    bad_times: list[str] = []
    stories = (story_from_json(obj, bad_times) for obj in read_jsonl(file))
    try:
        with _connect(server, token_file, tls_ca) as client:
            client.wait_ready()
            with tqdm(stories, unit=" stories", desc="indexing", file=sys.stderr, disable=None) as bar:
                result = client.index_stories(bar, timeout=timeout)
    except WiretraceError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:  # unreadable input line
        raise click.ClickException(str(exc)) from exc
    elapsed = time.perf_counter() - started
    click.echo(f"indexed {result.indexed} stories in {elapsed:.1f}s, rejected {len(result.rejected)}")
    _print_rejections(result.rejected)
    _print_bad_times(bad_times)


# -- match ---------------------------------------------------------------------


def _quote(text: str, start: int, end: int, width: int = 160) -> str:
    s = " ".join(text[start:end].split())
    if len(s) > width:
        s = s[: width * 2 // 3] + " … " + s[-width // 3 :]
    return f"“{s}”"


def _result_json(result: MatchResult, text: str, bodies: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "verdict": result.verdict.name,
        "original_fraction": result.original_fraction,
        "candidates_checked": result.candidates_checked,
        "matches": [],
    }
    for m in result.matches:
        body = bodies.get(m.story_id, "")
        match = dataclasses.asdict(m)
        match["verdict"] = m.verdict.name
        for p in match["passages"]:
            p["article_text"] = text[p["article_start"] : p["article_end"]]
            p["story_text"] = body[p["story_start"] : p["story_end"]]
        out["matches"].append(match)
    return out


def _render(result: MatchResult, text: str, bodies: dict[str, str]) -> str:
    lines = [
        f"verdict: {result.verdict.name}  (original text {result.original_fraction:.1%}, "
        f"{result.candidates_checked} candidates checked)"
    ]
    if not result.matches:
        lines.append("no source story found")
    for i, m in enumerate(result.matches, 1):
        headline = f" “{m.headline}”" if m.headline else ""
        lines.append(
            f"\n{i}. {m.story_id}{headline}\n   {m.verdict.name}: containment {m.containment:.3f}, "
            f"coverage {m.coverage:.3f}, jaccard {m.jaccard:.3f}, {len(m.passages)} passage(s)"
        )
        if m.editions:
            lines.append(f"   editions: {', '.join(m.editions)}")
        body = bodies.get(m.story_id, "")
        for j, p in enumerate(m.passages, 1):
            lines.append(
                f"   [{j}] article {p.article_start}-{p.article_end} ~ story {p.story_start}-{p.story_end}"
                f" (similarity {p.similarity:.2f})"
            )
            lines.append(f"       article: {_quote(text, p.article_start, p.article_end)}")
            if body:
                lines.append(f"       story:   {_quote(body, p.story_start, p.story_end)}")
    return "\n".join(lines)


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """An ISO 8601 time option as ns since the epoch."""
    if value is None:
        return None
    try:
        return parse_time_ns(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8"))
@_server_option
@click.option("--top-k", type=int, default=0, show_default=True, help="Sources to return (0: server default).")
@click.option("--headline", default="", help="Headline of the article (optional).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--after", callback=_moment, help="Only stories published at or after this ISO 8601 time (e.g. 2026-11-14)."
)
@click.option(
    "--before",
    callback=_moment,
    help="Only stories published at or before this ISO 8601 time (e.g. the article's own). With --after or"
    " --before, undated stories do not count.",
)
@click.option("--source", "sources", multiple=True, help="Only stories from this source (repeatable).")
@click.option("--exclude-source", "exclude_sources", multiple=True, help="No stories from this source (repeatable).")
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the match as one self-contained HTML page: the article beside each source, shared"
    " passages highlighted.",
)
def match(
    file: Any,
    server: str,
    top_k: int,
    headline: str,
    as_json: bool,
    after: int | None,
    before: int | None,
    sources: tuple[str, ...],
    exclude_sources: tuple[str, ...],
    html_out: str | None,
    token_file: str | None,
    tls_ca: str | None,
) -> None:
    """Attribute the article in FILE (plain text, or - for stdin) to indexed wire stories."""
    from wiretrace.client import NotFound, WiretraceError

    text = file.read()
    try:
        with _connect(server, token_file, tls_ca) as client:
            result = client.match(
                text,
                headline=headline,
                top_k=top_k,
                published_after=after,
                published_before=before,
                sources=sources,
                exclude_sources=exclude_sources,
            )
            stories: dict[str, StoryRecord] = {}
            for m in result.matches:
                with contextlib.suppress(NotFound):  # deleted since the match
                    stories[m.story_id] = client.get_story(m.story_id)
    except WiretraceError as exc:
        raise click.ClickException(str(exc)) from exc
    bodies = {sid: s.body for sid, s in stories.items()}
    if as_json:
        click.echo(json.dumps(_result_json(result, text, bodies), ensure_ascii=False, indent=2))
    else:
        click.echo(_render(result, text, bodies))
    if html_out:
        from wiretrace import page
        from wiretrace.client import story_filter

        try:
            flt = story_filter(after, before, sources, exclude_sources)
            Path(html_out).write_text(page.render(result, text, stories, headline, flt), encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"--html {html_out}: {exc}") from exc
        click.echo(f"page written to {html_out}", err=True)


# -- eval ----------------------------------------------------------------------


def _match_all(connect: Callable[[], Any], queries: list[dict[str, Any]], streams: int) -> list[MatchResult]:
    """Match every query through MatchStream, over `streams` concurrent streams (a client each)."""
    from wiretrace.client import MatchQuery

    results: list[MatchResult | None] = [None] * len(queries)
    errors: list[BaseException] = []
    bar = tqdm(total=len(queries), unit=" queries", desc="matching", file=sys.stderr, disable=None)
    lock = threading.Lock()

    def work(part: list[int]) -> None:
        def requests() -> Iterator[MatchQuery]:
            for i in part:
                q = queries[i]
                yield MatchQuery(text=q.get("text", ""), headline=q.get("headline", ""), request_id=str(i))

        try:
            with connect() as client:
                for rid, result in client.match_stream(requests()):
                    results[int(rid)] = result
                    with lock:
                        bar.update()
        except BaseException as exc:
            errors.append(exc)

    parts = [list(range(k, len(queries), streams)) for k in range(streams)]
    threads = [threading.Thread(target=work, args=(p,), daemon=True) for p in parts if p]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bar.close()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


@main.command("eval")
@click.option("--wire", type=click.Path(exists=True, dir_okay=False), help="Stories to index (.jsonl[.gz]).")
@click.option("--queries", required=True, type=click.Path(exists=True, dir_okay=False), help="Labelled queries.")
@click.option("--server", "target", default=None, envvar="WIRETRACE_SERVER", help="Use this server (HOST:PORT).")
@click.option("--reindex", is_flag=True, help="Index --wire even if the index already holds stories.")
@click.option("--failures", type=int, default=0, show_default=True, help="Print up to N misses.")
@click.option("--streams", type=int, default=8, show_default=True, help="Concurrent MatchStream calls.")
@_access_options
@settings_options
def evaluate(
    wire: str | None,
    queries: str,
    target: str | None,
    reindex: bool,
    failures: int,
    streams: int,
    token_file: str | None,
    tls_ca: str | None,
    **values: Any,
) -> None:
    """Score the service on a labelled query set, entirely through the gRPC API.

    Without --server, starts an in-process server on a free loopback port with
    a temporary data directory (or --data-dir, to reuse an index), indexes
    --wire through IndexStories and matches every query through MatchStream.
    That server is private to the run: it has no TLS, tokens or metrics, whatever
    the access settings say (--token-file and --tls-ca are for --server).
    """
    from wiretrace.client import WiretraceError
    from wiretrace.evaluation import score
    from wiretrace.server import WiretraceServer

    server: WiretraceServer | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    try:
        if target is None:
            ctx = click.get_current_context()
            data_dir = values["data_dir"]
            if ctx.get_parameter_source("data_dir") == click.core.ParameterSource.DEFAULT:
                tmp = tempfile.TemporaryDirectory(prefix="wiretrace-eval-")
                data_dir = Path(tmp.name)
            private = {"tls_cert": "", "tls_key": "", "auth_token_file": "", "metrics_port": -1}
            settings = _settings(values, data_dir=data_dir, host="127.0.0.1", port=0, **private)
            server = WiretraceServer(settings).start()
            target = server.address
            token_file = tls_ca = None
            click.echo(f"in-process server on {target}, data in {data_dir}", err=True)
        address = target

        def connect(timeout: float | None = 10.0) -> Any:
            return _connect(address, token_file, tls_ca, timeout)

        with connect(timeout=60) as client:
            client.wait_ready()
            stored = client.stats()[0].stories
            if wire and (reindex or stored == 0):
                started = time.perf_counter()
                bad_times: list[str] = []
                stories: Iterator[StoryRecord] = (story_from_json(o, bad_times) for o in read_jsonl(wire))
                with tqdm(stories, unit=" stories", desc="indexing", file=sys.stderr, disable=None) as bar:
                    indexed = client.index_stories(bar)
                click.echo(f"indexed {indexed.indexed} stories in {time.perf_counter() - started:.1f}s", err=True)
                _print_rejections(indexed.rejected)
                _print_bad_times(bad_times)
            elif stored:
                click.echo(f"using the {stored} stories already indexed", err=True)
        qs = list(read_jsonl(queries))
        started = time.perf_counter()
        results = _match_all(connect, qs, max(1, streams))
        elapsed = time.perf_counter() - started
        report = score(zip(qs, results, strict=True), keep_failures=failures)
        click.echo(report.render())
        click.echo(f"{len(qs)} queries in {elapsed:.1f}s ({len(qs) / max(elapsed, 1e-9):.0f}/s over gRPC)")
        for f in report.failures:
            click.echo(json.dumps(f, ensure_ascii=False))
    except (WiretraceError, SettingsMismatchError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if server is not None:
            server.stop(grace=1)
        if tmp is not None:
            tmp.cleanup()


main.add_command(dedup_command)
main.add_command(eval_dedup_command)

if __name__ == "__main__":
    main()
