"""Settings: one typed, frozen object built from defaults, env and flags.

Every field is a command-line flag (``--shingle-size``) and an environment
variable (``WIRETRACE_SHINGLE_SIZE``); flags win over the environment, which
wins over the defaults here. The defaults are the documented, measured ones
(see README "Settings" and ``benchmarks/``).

``IndexSettings`` shape what is stored: they are written into the data store
on first use and a server started with different ones refuses to open it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "WIRETRACE_"


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class IndexSettings:
    """What the index is built from; fixed for the life of a data store."""

    shingle_size: int = _opt(4, "Words per shingle.")
    window: int = _opt(16, "Shingles per indexed story window (LSH unit).")
    num_perm: int = _opt(32, "MinHash permutations per window.")
    bands: int = _opt(8, "LSH bands.")
    rows: int = _opt(4, "MinHash rows per LSH band (bands*rows <= num_perm).")
    topic_perm: int = _opt(32, "Whole-document word MinHash (one band per permutation), finds rewrites.")
    seed: int = _opt(1, "MinHash permutation seed.")
    term_sample: int = _opt(
        4, "One in this many of a story's distinct word pairs is posted for finding short rewrites (0: none)."
    )

    def validate(self) -> None:
        if self.shingle_size < 1 or self.window < 1:
            raise ValueError("shingle_size and window must be at least 1")
        if self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows ({self.bands}*{self.rows}) must be between 1 and num_perm ({self.num_perm})")

    def fingerprint(self) -> str:
        fields = dataclasses.asdict(self)
        if fields["term_sample"] == 0:
            del fields["term_sample"]  # as stores made before term postings recorded themselves
        return json.dumps(fields, sort_keys=True)


@dataclass(frozen=True)
class MatchSettings:
    """How candidates are found and judged; may change between runs."""

    query_step: int = _opt(4, "Shingles between the starts of successive query windows.")
    max_candidates: int = _opt(24, "Candidate stories verified per article (most window hits first).")
    section_tokens: int = _opt(
        2000,
        "A longer text proposes --max-candidates and --term-candidates for each section of this many tokens,"
        " so one made of many stories has them all verified.",
    )
    topic_candidates: int = _opt(
        16, "...plus this many with the most whole-document (rewrite) hits, unless the windows found a copy."
    )
    topic_max_bucket: int = _opt(
        1000, "...counting only whole-document buckets of at most this many stories (0: all); larger ones say nothing."
    )
    term_candidates: int = _opt(24, "...plus this many sharing the most of the article's rarest posted word pairs.")
    term_query: int = _opt(48, "...looking up at most this many of the article's posted word pairs, the rarest.")
    term_max_bucket: int = _opt(1000, "...each held by at most this many stories (0: any).")
    term_skip_hits: int = _opt(
        32, "...unless one story has this many window hits (about 40 words copied): the article is a copy of it."
    )
    max_gap: int = _opt(8, "Tokens a passage may skip over (OCR noise, a changed word).")
    passage_bridge: int = _opt(
        64,
        "Longest gap, in tokens in either text, joining two passages that follow each other in both texts"
        " (an inserted or dropped sentence, a garbled stretch) into one (0: passages are not joined).",
    )
    passage_bridge_share: float = _opt(
        0.25,
        "...and at most this share of the two passages' length in the article (but always --max-gap), so short"
        " runs join only close by.",
    )
    min_passage_weight: float = _opt(8.0, "IDF-weighted matched bigrams for a passage to count.")
    min_match_tokens: int = _opt(12, "Tokens in passages for a story to count as a source.")
    rewrite_containment: float = _opt(
        0.15, "IDF-weighted share of the article's bigrams found in a story to call it rewritten from it."
    )
    rewrite_probability: float = _opt(
        0.5, "...and the rewrite model's probability that the article was rewritten from the best story."
    )
    rewrite_model: str = _opt("", "Rewrite model JSON (benchmarks/train_rewrite.py); empty: the one shipped.")
    quote_weight: float = _opt(
        0.5,
        "Weight of word pairs inside quotation marks: quoted speech belongs to the speaker, whom every report quotes.",
    )
    edition_overlap: float = _opt(
        0.2,
        "Share of shingles two stories have in common to be editions of one story: when the article copies"
        " passages from the best story, its editions are not rivals for the rewrite margin.",
    )
    min_copied_tokens: int = _opt(
        30,
        "Tokens copied outside quotation marks that make a source by themselves (a paragraph); fewer (a quote, a"
        " stock sentence) count only when the article's best evidence shows it was built from the wire.",
    )
    min_containment: float = _opt(
        0.05,
        "...and the share of the article or of the story they make up (a copied paragraph, --min-copied-tokens,"
        " counts whatever its share).",
    )
    derived_containment: float = _opt(0.5, "Share of the article from wire copy for DERIVED.")
    verbatim_threshold: float = _opt(0.9, "Containment, coverage and passage density for VERBATIM.")
    default_top_k: int = _opt(5, "Sources returned when a request leaves top_k at 0.")


@dataclass(frozen=True)
class ServerSettings:
    """Where and how the gRPC service runs, and what it accepts."""

    data_dir: Path = _opt(Path("./data"), "Directory of the embedded store.")
    store: str = _opt("", "Shared store for server replicas, redis://HOST:PORT/DB (empty: the embedded store).")
    host: str = _opt("127.0.0.1", "Address to listen on.")
    port: int = _opt(50051, "Port to listen on (0 picks a free one).")
    workers: int = _opt(8, "Threads serving RPCs.")
    processes: int = _opt(
        1,
        "Server processes sharing --port (SO_REUSEPORT), one per core to use. With the embedded store each"
        " holds its own index (memory times N) and applies the others' writes before every match.",
    )
    match_threads: int = _opt(
        1,
        "Matches computed at once per process (0: one per CPU core); others wait their turn, since threads"
        " contend for the GIL (use --processes for more cores).",
    )
    max_concurrent_rpcs: int = _opt(64, "RPCs in progress at once; more get RESOURCE_EXHAUSTED (0: none).")
    max_message_bytes: int = _opt(8 * 1024 * 1024, "Largest gRPC message accepted or sent.")
    max_text_bytes: int = _opt(1024 * 1024, "Largest article or story body, in UTF-8 bytes.")
    max_top_k: int = _opt(100, "Largest top_k a request may ask for.")
    max_id_length: int = _opt(256, "Longest story_id or request_id.")
    max_stories_per_stream: int = _opt(1_000_000, "Stories one IndexStories stream may carry.")
    index_batch_size: int = _opt(512, "Stories written per store transaction while a stream is read.")
    grace_seconds: float = _opt(10.0, "Time given to in-flight RPCs on SIGTERM.")
    drain_seconds: float = _opt(
        1.0, "On SIGTERM, time health reports NOT_SERVING while calls are still taken, so balancers move away first."
    )
    tls_cert: str = _opt("", "PEM certificate chain file: serve TLS (with --tls-key) instead of plaintext.")
    tls_key: str = _opt("", "PEM private key file of --tls-cert.")
    auth_token_file: str = _opt(
        "", "File of accepted bearer tokens, one per line: calls must send 'authorization: Bearer TOKEN'."
    )
    retain_days: int = _opt(
        0,
        "Delete stories whose published_at is more than this many days old, in the background, at start and"
        " every --retain-check-seconds, from the store and the index (0: keep all; undated stories are kept).",
    )
    retain_check_seconds: float = _opt(30.0, "Seconds between retention passes (with --retain-days).")
    metrics_port: int = _opt(-1, "Port serving Prometheus metrics at /metrics on --host (-1: off, 0: a free one).")
    log_format: str = field(
        default="text",
        metadata={
            "help": "Log lines as text or json (one line per request: id, method, code, duration, peer).",
            "choices": ("text", "json"),
        },
    )


@dataclass(frozen=True)
class Settings:
    index: IndexSettings = field(default_factory=IndexSettings)
    match: MatchSettings = field(default_factory=MatchSettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Settings:
        """Defaults, then WIRETRACE_* variables, then explicit `overrides` (flag values)."""
        env = os.environ if environ is None else environ
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        groups: dict[str, Any] = {}
        for name, group_type in _GROUPS.items():
            values: dict[str, Any] = {}
            for f in dataclasses.fields(group_type):
                if f.name in overrides:
                    values[f.name] = _coerce(f, overrides[f.name])
                elif env_name(f.name) in env:
                    values[f.name] = _coerce(f, env[env_name(f.name)])
            groups[name] = group_type(**values)
        settings = cls(**groups)
        settings.index.validate()
        return settings


_GROUPS: dict[str, type[IndexSettings] | type[MatchSettings] | type[ServerSettings]] = {
    "index": IndexSettings,
    "match": MatchSettings,
    "server": ServerSettings,
}


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def setting_fields() -> list[dataclasses.Field[Any]]:
    """Every setting, across groups (names are unique)."""
    return [f for group_type in _GROUPS.values() for f in dataclasses.fields(group_type)]


def _coerce(f: dataclasses.Field[Any], value: Any) -> Any:
    kind: Any = type(f.default)
    if isinstance(value, kind):
        return value
    try:
        if kind is bool:
            return str(value).strip().lower() in {"1", "true", "yes", "on"}
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{env_name(f.name)}/--{f.name.replace('_', '-')}: cannot read {value!r} as {kind.__name__}"
        ) from exc
