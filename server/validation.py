"""Input checks shared by every RPC; each returns a reason a person can act on.

The rules are those documented in proto/wiretrace/v1/syndication.proto.
"""

from __future__ import annotations

import unicodedata

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.protobuf.unknown_fields import UnknownFieldSet

from wiretrace.config import ServerSettings

# Times are kept as int64 nanoseconds since the epoch (SQLite integers, numpy arrays): whole seconds
# from 1677-09-21T00:12:44Z to 2262-04-11T23:47:15Z fit, a narrower range than Timestamp allows.
MIN_TIMESTAMP_S = -9_223_372_036
MAX_TIMESTAMP_S = 9_223_372_035
_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_ENUM: "enum",
    FieldDescriptor.TYPE_BOOL: "bool",
}
_WIRE_TYPES = {0: "varint", 1: "64-bit", 2: "length-delimited", 3: "group", 4: "group end", 5: "32-bit"}


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


def wire_type_problem(msg: Message) -> tuple[str, str] | None:
    """(field, reason) when a field the message declares arrived with another wire type.

    The protobuf runtime keeps such a field as an unknown one, so the request
    would run as if it were unset (a filter silently ignored). Fields unknown
    to this server (from a newer client) are left alone.
    """
    fields = msg.DESCRIPTOR.fields_by_number
    unknowns = UnknownFieldSet(msg)
    for i in range(len(unknowns)):
        unknown = unknowns[i]
        declared = fields.get(unknown.field_number)
        if declared is not None:
            kind = declared.message_type.full_name if declared.message_type else _SCALARS.get(declared.type, "scalar")
            sent = _WIRE_TYPES.get(unknown.wire_type, str(unknown.wire_type))
            return declared.name, (
                f"field {unknown.field_number} was sent as a {sent} value, but it is a {kind}: "
                "regenerate the client from the current wiretrace.v1 proto"
            )
    return None


def timestamp_problem(ts: Timestamp) -> str | None:
    """Why a Timestamp cannot be used as a publication time or bound, or None."""
    if not MIN_TIMESTAMP_S <= ts.seconds <= MAX_TIMESTAMP_S or not 0 <= ts.nanos <= 999_999_999:
        return (
            f"seconds={ts.seconds} nanos={ts.nanos} is out of range: times must lie between "
            "1677-09-21T00:12:44Z and 2262-04-11T23:47:15Z (nanos 0..999999999)"
        )
    return None
