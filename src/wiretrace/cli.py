"""The ``wiretrace`` command: serve, index, match, eval (and dedup, stats, get, delete, demo).

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

from wiretrace.admin_cli import delete_command, get_command, stats_command
from wiretrace.cli_support import (
    access_options,
    connect,
    message_size_option,
    plural,
    quiet_grpc_iterator_errors,
    server_option,
    store_unreachable,
    talking_to,
)
from wiretrace.config import Settings, env_name, setting_fields
from wiretrace.corpus import parse_time_ns, read_jsonl
from wiretrace.dedup_cli import dedup_command, eval_dedup_command
from wiretrace.demo import demo_command
from wiretrace.indexing import STREAM_SIZE, IndexReport, Interrupted, LineRejected, index_file
from wiretrace.render import PassageView, render_json, render_text
from wiretrace.types import MatchResult, SettingsMismatchError, StoryRecord

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
    quiet_grpc_iterator_errors()


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
    --port 0, the port it picked). The port is taken before the index is
    built, so a busy port fails at once.
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
    except Exception as exc:
        problem = store_unreachable(exc, settings.server.store)
        if problem is None:
            raise
        raise click.ClickException(problem) from exc


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


def _print_lines(report: IndexReport, lines: list[LineRejected], limit: int = 20) -> None:
    for r in lines[:limit]:
        named = r.story_id and not r.reason.startswith(f"story {r.story_id!r}")  # the undated ones name it
        story = f" story {r.story_id!r}:" if named else ""
        click.echo(f"  {report.where(r.line)}:{story} {r.reason}", err=True)
    if len(lines) > limit:
        click.echo(f"  ... and {plural(len(lines) - limit, 'more line')}", err=True)


def _print_rejections(report: IndexReport) -> None:
    _print_lines(report, report.rejected)
    if report.undated:
        n = plural(len(report.undated), "story", "stories")
        click.echo(
            f"{n} had an unreadable publication time and {'was' if n.startswith('1 ') else 'were'} indexed undated:",
            err=True,
        )
        _print_lines(report, report.undated, limit=5)


class _Interrupted(click.ClickException):
    exit_code = 130  # as a shell reports SIGINT


def _interrupted_message(report: IndexReport, file: str) -> str:
    if report.acknowledged_line:
        done = (
            f"{plural(report.indexed, 'story', 'stories')} acknowledged and stored for good, "
            f"through {report.where(report.acknowledged_line)}"
        )
        resume = report.acknowledged_line + 1
    else:
        done = "no story was acknowledged yet"
        resume = 1
    if report.in_flight is not None:
        lo, hi = report.in_flight
        done += f"; lines {lo}-{hi} were being sent and may be partly stored"
        resume = lo
    return (
        f"interrupted: {done}. Re-running is safe: ids upsert, so a story sent again replaces itself. "
        f"To go on from here: wiretrace index {file} --from-line {resume}"
    )


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@server_option
@message_size_option
@click.option("--timeout", type=float, default=None, help="Deadline for each stream, in seconds.")
@click.option(
    "--from-line", type=click.IntRange(min=1), default=1, help="Start at this line of FILE (to resume a run)."
)
@click.option(
    "--stream-size",
    type=click.IntRange(min=1),
    default=STREAM_SIZE,
    show_default=True,
    help="Stories per IndexStories stream; each is acknowledged (durable) on its own.",
)
def index(
    file: str,
    server: str,
    max_message_bytes: int,
    timeout: float | None,
    from_line: int,
    stream_size: int,
    token_file: str | None,
    tls_ca: str | None,
) -> None:
    """Index the stories of FILE (.jsonl, .jsonl.gz or - for stdin) into a server.

    One JSON object per line with story_id (or id), body (or text) and
    optionally headline, source, published and metadata; a re-sent id replaces
    the stored story. Lines that cannot be indexed are listed as FILE:LINE
    with the reason, and the rest is indexed. Ctrl-C says how far the
    acknowledged stories reach.
    """
    started = time.perf_counter()
    with talking_to(server), connect(server, token_file, tls_ca, max_message_bytes=max_message_bytes) as client:
        client.stats()  # a wrong address or token fails here, before the file is read
        try:
            report = index_file(client, file, from_line=from_line, stream_size=stream_size, timeout=timeout)
        except Interrupted as exc:
            _print_rejections(exc.report)
            raise _Interrupted(_interrupted_message(exc.report, file)) from None
        stored = client.stats()[0].stories
    elapsed = time.perf_counter() - started
    summary = (
        f"indexed {plural(report.indexed, 'story', 'stories')} in {elapsed:.1f}s; "
        f"the server now holds {plural(stored, 'story', 'stories')}"
    )
    if report.rejected:
        summary += f"; {plural(len(report.rejected), 'line')} not indexed:"
    click.echo(summary)
    _print_rejections(report)
    if report.read_error:
        raise click.ClickException(
            f"{report.read_error}; the lines before it are indexed "
            f"(once the file is fixed, go on with --from-line {report.acknowledged_line + 1})"
        )


# -- match ---------------------------------------------------------------------


def _read_article(file: str) -> str:
    """The article as text; a file that is not UTF-8 (a PDF, a Word file) is refused in words."""
    data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(
            f"{file} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
            "give the article as plain UTF-8 text"
        ) from None


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """An ISO 8601 time option as ns since the epoch."""
    if value is None:
        return None
    try:
        return parse_time_ns(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@server_option
@message_size_option
@click.option("--top-k", type=int, default=0, show_default=True, help="Sources to return (0: server default).")
@click.option("--headline", default="", help="Headline of the article (optional).")
@click.option(
    "--passages",
    default="3",
    show_default=True,
    help="Passages quoted per source, longest first; 'all' lists every one with offsets and similarity.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (every passage, quoted).")
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
    file: str,
    server: str,
    max_message_bytes: int,
    top_k: int,
    headline: str,
    passages: str,
    as_json: bool,
    after: int | None,
    before: int | None,
    sources: tuple[str, ...],
    exclude_sources: tuple[str, ...],
    html_out: str | None,
    token_file: str | None,
    tls_ca: str | None,
) -> None:
    """Attribute the article in FILE (plain text, or - for stdin) to indexed wire stories.

    Shows the verdict and why, then each source story with its agency and
    date, how much of the article it makes up and how much of it the article
    uses, and its longest shared passages.
    """
    from wiretrace.client import NotFound

    try:
        view = PassageView.parse(passages)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    text = _read_article(file)
    with talking_to(server), connect(server, token_file, tls_ca, max_message_bytes=max_message_bytes) as client:
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
    if as_json:
        click.echo(json.dumps(render_json(result, text, stories), ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(result, text, stories, view))
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
@click.option("--server", "target", default=None, envvar="WIRETRACE_SERVER", help="Use this server (HOST[:PORT]).")
@click.option("--reindex", is_flag=True, help="Index --wire even if the index already holds stories.")
@click.option("--failures", type=int, default=0, show_default=True, help="Print up to N misses.")
@click.option("--streams", type=int, default=8, show_default=True, help="Concurrent MatchStream calls.")
@access_options
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
    from wiretrace.client import WiretraceError, parse_target
    from wiretrace.evaluation import score
    from wiretrace.server import WiretraceServer

    if target is not None:
        try:
            target = parse_target(target).address
        except ValueError as exc:
            raise click.UsageError(f"--server {exc}") from exc

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

        def client_for(timeout: float | None = 10.0) -> Any:
            return connect(address, token_file, tls_ca, timeout)

        with talking_to(address), client_for(timeout=60) as client:
            stored = client.stats()[0].stories
            if wire and (reindex or stored == 0):
                started = time.perf_counter()
                indexed = index_file(client, wire)
                took = time.perf_counter() - started
                click.echo(f"indexed {plural(indexed.indexed, 'story', 'stories')} in {took:.1f}s", err=True)
                _print_rejections(indexed)
            elif stored:
                click.echo(f"using the {plural(stored, 'story', 'stories')} already indexed", err=True)
        qs = list(read_jsonl(queries))
        started = time.perf_counter()
        with talking_to(address):
            results = _match_all(client_for, qs, max(1, streams))
        elapsed = time.perf_counter() - started
        report = score(zip(qs, results, strict=True), keep_failures=failures)
        click.echo(report.render())
        click.echo(f"{len(qs)} queries in {elapsed:.1f}s ({len(qs) / max(elapsed, 1e-9):.0f}/s over gRPC)")
        for f in report.failures:
            click.echo(json.dumps(f, ensure_ascii=False))
    except (WiretraceError, SettingsMismatchError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    except Interrupted as exc:
        raise _Interrupted(_interrupted_message(exc.report, wire or "")) from None
    finally:
        if server is not None:
            server.stop(grace=1)
        if tmp is not None:
            tmp.cleanup()


for command in (dedup_command, eval_dedup_command, stats_command, get_command, delete_command, demo_command):
    main.add_command(command)

if __name__ == "__main__":
    main()
