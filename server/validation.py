"""Input checks shared by every RPC; each returns a reason a person can act on.

The rules are those documented in proto/wiretrace/v1/syndication.proto.
"""

from __future__ import annotations

import unicodedata

from wiretrace.config import ServerSettings


def id_problem(value: str, max_length: int, *, required: bool = True) -> str | None:
    """Why `value` is not a usable id (story_id / request_id), or None."""
    if not value:
        return "must not be empty" if required else None
    if len(value) > max_length:
        return f"is {len(value)} characters long; the limit is {max_length} (server setting max_id_length)"
    if not value.strip():
        return "must not be only whitespace"
    for i, ch in enumerate(value):
        if not ch.isprintable() and ch != " ":
            name = unicodedata.name(ch, "control character")
            return f"contains non-printable character U+{ord(ch):04X} ({name}) at position {i}; ids must be printable"
    return None


def text_problem(value: str, settings: ServerSettings, what: str) -> tuple[bool, str] | None:
    """Why `value` cannot be matched or indexed as (`what`), or None.

    Returns (too_large, reason): too_large selects RESOURCE_EXHAUSTED over
    INVALID_ARGUMENT.
    """
    if not value.strip():
        return False, f"{what} is empty or only whitespace; send the text to match or index"
    # Cheap bound first: a code point is at most 4 UTF-8 bytes.
    if len(value) * 4 > settings.max_text_bytes:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > settings.max_text_bytes:
            return True, (
                f"{what} is {size} bytes of UTF-8; the limit is {settings.max_text_bytes} "
                "(server setting max_text_bytes): split it or raise the limit"
            )
    nul = value.find("\x00")
    if nul >= 0:
        return False, f"{what} contains a NUL character (U+0000) at offset {nul}: binary data is not text"
    return None
