import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    UNRELATED: _ClassVar[Verdict]
    PARTIAL: _ClassVar[Verdict]
    DERIVED: _ClassVar[Verdict]
    VERBATIM: _ClassVar[Verdict]

class Evidence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVIDENCE_UNSPECIFIED: _ClassVar[Evidence]
    COPIED: _ClassVar[Evidence]
    REWRITTEN: _ClassVar[Evidence]
VERDICT_UNSPECIFIED: Verdict
UNRELATED: Verdict
PARTIAL: Verdict
DERIVED: Verdict
VERBATIM: Verdict
EVIDENCE_UNSPECIFIED: Evidence
COPIED: Evidence
REWRITTEN: Evidence

class Story(_message.Message):
    __slots__ = ("story_id", "headline", "body", "source", "published_at", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STORY_ID_FIELD_NUMBER: _ClassVar[int]
    HEADLINE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    story_id: str
    headline: str
    body: str
    source: str
    published_at: _timestamp_pb2.Timestamp
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, story_id: _Optional[str] = ..., headline: _Optional[str] = ..., body: _Optional[str] = ..., source: _Optional[str] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StoryBatch(_message.Message):
    __slots__ = ("stories",)
    STORIES_FIELD_NUMBER: _ClassVar[int]
    stories: _containers.RepeatedCompositeFieldContainer[Story]
    def __init__(self, stories: _Optional[_Iterable[_Union[Story, _Mapping]]] = ...) -> None: ...

class RejectedStory(_message.Message):
    __slots__ = ("story_id", "reason", "position")
    STORY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    story_id: str
    reason: str
    position: int
    def __init__(self, story_id: _Optional[str] = ..., reason: _Optional[str] = ..., position: _Optional[int] = ...) -> None: ...

class IndexStoriesResponse(_message.Message):
    __slots__ = ("indexed", "rejected")
    INDEXED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    indexed: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedStory]
    def __init__(self, indexed: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedStory, _Mapping]]] = ...) -> None: ...

class DeleteStoriesRequest(_message.Message):
    __slots__ = ("story_ids",)
    STORY_IDS_FIELD_NUMBER: _ClassVar[int]
    story_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, story_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteStoriesResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class GetStoryRequest(_message.Message):
    __slots__ = ("story_id",)
    STORY_ID_FIELD_NUMBER: _ClassVar[int]
    story_id: str
    def __init__(self, story_id: _Optional[str] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("story_count", "index_settings", "index_entries", "index_bytes", "disk_bytes", "rebuild_seconds", "oldest_published_at", "newest_published_at")
    class IndexSettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STORY_COUNT_FIELD_NUMBER: _ClassVar[int]
    INDEX_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    INDEX_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    INDEX_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    REBUILD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OLDEST_PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    NEWEST_PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    story_count: int
    index_settings: _containers.ScalarMap[str, str]
    index_entries: int
    index_bytes: int
    disk_bytes: int
    rebuild_seconds: float
    oldest_published_at: _timestamp_pb2.Timestamp
    newest_published_at: _timestamp_pb2.Timestamp
    def __init__(self, story_count: _Optional[int] = ..., index_settings: _Optional[_Mapping[str, str]] = ..., index_entries: _Optional[int] = ..., index_bytes: _Optional[int] = ..., disk_bytes: _Optional[int] = ..., rebuild_seconds: _Optional[float] = ..., oldest_published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., newest_published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MatchRequest(_message.Message):
    __slots__ = ("request_id", "headline", "text", "top_k", "published_after", "published_before", "sources", "exclude_sources")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    HEADLINE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AFTER_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SOURCES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    headline: str
    text: str
    top_k: int
    published_after: _timestamp_pb2.Timestamp
    published_before: _timestamp_pb2.Timestamp
    sources: _containers.RepeatedScalarFieldContainer[str]
    exclude_sources: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[str] = ..., headline: _Optional[str] = ..., text: _Optional[str] = ..., top_k: _Optional[int] = ..., published_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., published_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sources: _Optional[_Iterable[str]] = ..., exclude_sources: _Optional[_Iterable[str]] = ...) -> None: ...

class Passage(_message.Message):
    __slots__ = ("article_start", "article_end", "story_start", "story_end", "similarity")
    ARTICLE_START_FIELD_NUMBER: _ClassVar[int]
    ARTICLE_END_FIELD_NUMBER: _ClassVar[int]
    STORY_START_FIELD_NUMBER: _ClassVar[int]
    STORY_END_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    article_start: int
    article_end: int
    story_start: int
    story_end: int
    similarity: float
    def __init__(self, article_start: _Optional[int] = ..., article_end: _Optional[int] = ..., story_start: _Optional[int] = ..., story_end: _Optional[int] = ..., similarity: _Optional[float] = ...) -> None: ...

class SourceMatch(_message.Message):
    __slots__ = ("story_id", "headline", "containment", "coverage", "jaccard", "passages", "verdict", "source", "published_at", "editions", "evidence", "rewrite_probability")
    STORY_ID_FIELD_NUMBER: _ClassVar[int]
    HEADLINE_FIELD_NUMBER: _ClassVar[int]
    CONTAINMENT_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    JACCARD_FIELD_NUMBER: _ClassVar[int]
    PASSAGES_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    EDITIONS_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    REWRITE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    story_id: str
    headline: str
    containment: float
    coverage: float
    jaccard: float
    passages: _containers.RepeatedCompositeFieldContainer[Passage]
    verdict: Verdict
    source: str
    published_at: _timestamp_pb2.Timestamp
    editions: _containers.RepeatedScalarFieldContainer[str]
    evidence: Evidence
    rewrite_probability: float
    def __init__(self, story_id: _Optional[str] = ..., headline: _Optional[str] = ..., containment: _Optional[float] = ..., coverage: _Optional[float] = ..., jaccard: _Optional[float] = ..., passages: _Optional[_Iterable[_Union[Passage, _Mapping]]] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., source: _Optional[str] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., editions: _Optional[_Iterable[str]] = ..., evidence: _Optional[_Union[Evidence, str]] = ..., rewrite_probability: _Optional[float] = ...) -> None: ...

class MatchResponse(_message.Message):
    __slots__ = ("request_id", "verdict", "matches", "original_fraction", "candidates_checked", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_FRACTION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    verdict: Verdict
    matches: _containers.RepeatedCompositeFieldContainer[SourceMatch]
    original_fraction: float
    candidates_checked: int
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., matches: _Optional[_Iterable[_Union[SourceMatch, _Mapping]]] = ..., original_fraction: _Optional[float] = ..., candidates_checked: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
