"""`wiretrace dedup`: the click command, kept apart so cli.py only registers it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from wiretrace.config import Settings
from wiretrace.dedup import DedupParams, run_local
from wiretrace.dedup.evaluation import LabelsError, format_score, read_clusters, read_labels, score_partition
from wiretrace.dedup.input import ID_FIELDS, TEXT_FIELDS, choose_fields
from wiretrace.tagging import run_against
from wiretrace.types import MissingDependencyError

_DEFAULTS = DedupParams()


@click.command("dedup")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output directory."
)
@click.option(
    "--engine", type=click.Choice(["local", "spark"]), default="local", show_default=True,
    help="spark needs PySpark (pip install 'wiretrace[spark]', or make serve EXTRAS=spark) and Java 17.",
)  # fmt: skip
@click.option("--master", default="local[*]", show_default=True, help="Spark master (with --engine spark).")
@click.option("--workers", type=int, default=None, help="Processes for --engine local (default: all cores).")
@click.option(
    "--id-field", default=None,
    help=f"Field holding the id (default: the first of {', '.join(ID_FIELDS)} the first record has).",
)  # fmt: skip
@click.option(
    "--text-field", default=None,
    help=f"Field holding the text (default: the first of {', '.join(TEXT_FIELDS)} the first record has).",
)  # fmt: skip
@click.option(
    "--threshold", type=float, default=_DEFAULTS.threshold, show_default=True,
    help="Share of the shorter article inside passages shared with the longer one.",
)  # fmt: skip
@click.option(
    "--min-coverage", type=float, default=_DEFAULTS.min_coverage, show_default=True,
    help="...and share of the longer one covered (stops short briefs chaining roundups).",
)  # fmt: skip
@click.option(
    "--lead-coverage", type=float, default=_DEFAULTS.lead_coverage, show_default=True,
    help="...or this share of it, when the shorter one is its lead (a story cut from the bottom).",
)  # fmt: skip
@click.option("--max-bucket", type=int, default=_DEFAULTS.max_bucket, show_default=True, help="LSH bucket size cap.")
@click.option(
    "--lookalikes/--no-lookalikes", default=_DEFAULTS.lookalikes, show_default=True,
    help="Compare words by OCR look-alike class (c/e, rn/m, 1/l/i, 0/o/a, h/b), so scanned copies match.",
)  # fmt: skip
@click.option(
    "--shorthand/--no-shorthand", default=_DEFAULTS.shorthand, show_default=True,
    help="Compare spelt-out wire shorthand (percent, million, versus, ...) as the short form.",
)  # fmt: skip
@click.option(
    "--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help='JSONL of {"id": ..., "label": ...}: score the clusters against these labels (see eval-dedup).',
)  # fmt: skip
@click.option("--include-singletons", is_flag=True, help="Also write one-member clusters.")
@click.option(
    "--against", default=None, help="Tag articles with their wire source: HOST:PORT, redis://..., or index dir."
)
@click.option("--no-progress", is_flag=True, help="No progress bars (there are none when stderr is not a terminal).")
def dedup_command(
    inputs: tuple[str, ...],
    out_dir: Path,
    engine: str,
    master: str,
    workers: int | None,
    id_field: str | None,
    text_field: str | None,
    threshold: float,
    min_coverage: float,
    lead_coverage: float,
    max_bucket: int,
    lookalikes: bool,
    shorthand: bool,
    labels: Path | None,
    include_singletons: bool,
    against: str | None,
    no_progress: bool,
) -> None:
    """Cluster copies in an archive (JSONL, JSONL.gz, Parquet) into DIR/clusters.jsonl and DIR/summary.json.

    Reads the same files as `wiretrace index` (story_id/body, or id/text) unless told other field
    names. Records that cannot be used are listed in DIR/skipped.jsonl by file and line.
    """
    paths = list(inputs)
    try:
        id_field, text_field = choose_fields(paths[0], id_field, text_field)
    except (ValueError, MissingDependencyError) as err:
        raise click.ClickException(str(err)) from None
    if engine == "spark" and against is None and master.startswith("local") and not _java():
        raise click.ClickException(
            "--engine spark needs Java 17 (java on PATH, or JAVA_HOME): apt-get install openjdk-17-jre-headless"
        )
    params = DedupParams(
        threshold=threshold,
        min_coverage=min_coverage,
        lead_coverage=lead_coverage,
        max_bucket=max_bucket,
        id_field=id_field,
        text_field=text_field,
        lookalikes=lookalikes,
        shorthand=shorthand,
    )
    truth = _labels(labels) if labels is not None else None
    settings = Settings.load()
    progress = not no_progress and sys.stderr.isatty()  # bars on a pipe or in a log are noise
    try:
        if against is not None:
            summary = run_against(paths, out_dir, params, against, settings, progress=progress)
        elif engine == "spark":
            try:
                from wiretrace.dedup.spark import run_spark
            except ModuleNotFoundError as err:
                if err.name is None or err.name.split(".")[0] not in ("pyspark", "py4j"):
                    raise
                raise MissingDependencyError("--engine spark", "pyspark", "spark") from None
            summary = run_spark(
                paths,
                out_dir,
                params,
                settings,
                master=master,
                include_singletons=include_singletons,
                progress=progress,
            )
        else:
            summary = run_local(
                paths,
                out_dir,
                params,
                settings,
                workers=workers,
                include_singletons=include_singletons,
                progress=progress,
            )
    except MissingDependencyError as err:
        raise click.ClickException(str(err)) from None
    click.echo(json.dumps(summary, indent=2))
    if not summary["documents"] and summary["skipped"]:
        reasons = ", ".join(f"{n} {why}" for why, n in summary["skipped"].items())
        raise click.ClickException(
            f"no record could be used ({reasons}; listed in {out_dir / 'skipped.jsonl'}): "
            f"do they have the fields {id_field!r} and {text_field!r}? (--id-field, --text-field)"
        )
    if truth is not None and against is None:
        click.echo(format_score(score_partition(read_clusters(out_dir / "clusters.jsonl"), truth)))


def _java() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and (Path(home) / "bin" / "java").exists()))


def _labels(path: Path) -> dict[str, str]:
    try:
        return read_labels(path)
    except LabelsError as err:
        raise click.ClickException(str(err)) from None


@click.command("eval-dedup")
@click.argument("clusters", type=click.Path(exists=True, path_type=Path))
@click.argument("labels", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def eval_dedup_command(clusters: Path, labels: Path, as_json: bool) -> None:
    """Score CLUSTERS (a dedup output directory or its clusters.jsonl) against LABELS (JSONL of
    {"id": ..., "label": ...}): adjusted Rand index, pair precision, recall and F1 over the labelled ids."""
    if clusters.is_dir():
        clusters = clusters / "clusters.jsonl"
        if not clusters.exists():
            raise click.ClickException(f"no clusters.jsonl in {clusters.parent}")
    truth = _labels(labels)
    try:
        predicted = read_clusters(clusters)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise click.ClickException(f"{clusters}: not a dedup clusters.jsonl ({err})") from None
    score = score_partition(predicted, truth)
    click.echo(json.dumps(score.as_dict(), indent=2) if as_json else format_score(score))
