"""`wiretrace stats`, `wiretrace get` and `wiretrace delete`: looking after an index without writing Python."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from wiretrace.cli_support import connect, plural, server_option, talking_to
from wiretrace.types import StoryRecord


def _size(n: int) -> str:
    if n < 1000:
        return f"{n:,} bytes"
    units = ("KB", "MB", "GB", "TB")
    x, i = n / 1000, 0
    while x >= 1000 and i < len(units) - 1:
        x, i = x / 1000, i + 1
    return f"{x:.1f} {units[i]}"


@click.command("stats")
@server_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def stats_command(server: str, as_json: bool, token_file: str | None, tls_ca: str | None) -> None:
    """How many stories the server holds, the size of its index and store, and the index settings."""
    with talking_to(server), connect(server, token_file, tls_ca) as client:
        stats, settings = client.stats()
    if as_json:
        out = {
            "stories": stats.stories,
            "index_entries": stats.index_entries,
            "index_bytes": stats.index_bytes,
            "disk_bytes": stats.disk_bytes,
            "rebuild_seconds": round(stats.rebuild_seconds, 3),
            "index_settings": settings,
        }
        click.echo(json.dumps(out, indent=2))
        return
    rows = [
        ("stories", f"{stats.stories:,}"),
        ("index", f"{stats.index_entries:,} entries, {_size(stats.index_bytes)} in memory"),
        ("store", f"{_size(stats.disk_bytes)} on disk"),
        ("start-up", f"index rebuilt in {stats.rebuild_seconds:.2f}s"),
        ("settings", ", ".join(f"{k} {v}" for k, v in sorted(settings.items()))),
    ]
    for name, value in rows:
        click.echo(f"{name:<10} {value}")


def _published(record: StoryRecord) -> str | None:
    if record.published_at_ns is None:
        return None
    seconds, nanos = divmod(record.published_at_ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1000)
    return dt.isoformat(timespec="seconds" if not dt.microsecond else "microseconds")


def story_json(record: StoryRecord) -> dict[str, Any]:
    """A story as a line `wiretrace index` reads back."""
    out: dict[str, Any] = {"story_id": record.story_id, "headline": record.headline, "body": record.body}
    if record.source:
        out["source"] = record.source
    if record.published_at_ns is not None:
        out["published"] = _published(record)
    if record.metadata:
        out["metadata"] = record.metadata
    return out


@click.command("get")
@click.argument("story_ids", nargs=-1, required=True)
@server_option
@click.option("--json", "as_json", is_flag=True, help="One JSON line per story, as `wiretrace index` reads them.")
def get_command(
    story_ids: tuple[str, ...], server: str, as_json: bool, token_file: str | None, tls_ca: str | None
) -> None:
    """Print the stored stories STORY_IDS (headline, source, date, metadata, text)."""
    from wiretrace.client import NotFound

    missing: list[str] = []
    with talking_to(server), connect(server, token_file, tls_ca) as client:
        for i, story_id in enumerate(story_ids):
            try:
                record = client.get_story(story_id)
            except NotFound:
                missing.append(story_id)
                continue
            if as_json:
                click.echo(json.dumps(story_json(record), ensure_ascii=False))
                continue
            if i:
                click.echo("\n" + "-" * 72)
            click.echo(f"story_id   {record.story_id}")
            click.echo(f"headline   {record.headline}")
            click.echo(f"source     {record.source or '(not recorded)'}")
            click.echo(f"published  {_published(record) or '(not recorded)'}")
            for key, value in sorted(record.metadata.items()):
                click.echo(f"{key + ':':<10} {value}")
            click.echo("")
            click.echo(record.body)
    if missing:
        listed = ", ".join(repr(m) for m in missing)
        raise click.ClickException(f"no story with story_id {listed} on the server at {server}")


@click.command("delete")
@click.argument("story_ids", nargs=-1, required=True)
@server_option
def delete_command(story_ids: tuple[str, ...], server: str, token_file: str | None, tls_ca: str | None) -> None:
    """Delete the stories STORY_IDS (or '-' to read ids from stdin, one per line)."""
    ids = [line.strip() for line in sys.stdin if line.strip()] if story_ids == ("-",) else list(story_ids)
    if not ids:
        raise click.UsageError("no story ids given")
    with talking_to(server), connect(server, token_file, tls_ca) as client:
        deleted = client.delete(ids)
    absent = len(set(ids)) - deleted
    note = f"; {plural(absent, 'id')} given {'was' if absent == 1 else 'were'} not stored" if absent else ""
    click.echo(f"deleted {plural(deleted, 'story', 'stories')}{note}")
