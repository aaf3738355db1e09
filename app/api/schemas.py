"""The REST answers' shapes for ``/openapi.json``: the envelope of DESIGN.md ("REST
envelope") around each route's ``data``.

Routes name ``Envelope[TheirData]`` as ``response_model`` and still answer with
:func:`app.api.envelope.ok` (a ``JSONResponse``, which FastAPI sends as it is): the schema
documents the answer, the bytes on the wire are the ones clients already read. Each data
model lists the fields clients rely on and allows more (``extra="allow"``): a route may add
a field without the schema calling its answer wrong."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Metadata(BaseModel):
    timestamp: str = Field(description="UTC, ISO 8601")
    service: str
    version: str
    request_id: str | None = Field(None, description="the X-Request-ID of the request")


class Envelope(BaseModel, Generic[T]):
    """A successful answer: ``{"success": true, "data": ..., "metadata": ...}``."""

    success: bool = True
    data: T
    metadata: Metadata


class ErrorBody(BaseModel):
    code: str = Field(description="area-prefixed: VOICE_, IMAGE_, PROSODY_, BGM_, VIDEO_, "
                                  "STORAGE_, QUEUE_, AUTH_, VALIDATION_ ...")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    retry_after: float | None = None


class ErrorEnvelope(BaseModel):
    """A refused or failed request: ``{"success": false, "error": ..., "metadata": ...}``."""

    success: bool = False
    error: ErrorBody
    metadata: Metadata


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope, "description": text}
    for code, text in ((400, "Bad input (the error names the field)"),
                       (404, "Not found (also someone else's)"),
                       (413, "Too large"), (429, "Too many requests"))}
"""The error answers every route may give, for ``responses=``."""


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- jobs and tasks -----------------------------------------------------------------------

class TaskAccepted(Open):
    """A queued job: poll ``status_url``."""

    task_id: str
    status: str
    status_url: str
    estimated_time: float | None = None


class TaskStatus(Open):
    """A job's progress as a per-capability status route shows it (the finished result's
    fields are added when it is done)."""

    task_id: str
    status: str
    progress: float
    current_step: str | None = None
    steps_completed: list[str] = Field(default_factory=list)
    steps_remaining: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = None


class JobView(Open):
    job_id: str
    task_id: str
    kind: str
    status: str
    progress: float
    stages: dict[str, dict[str, Any]] | None = None


class JobList(Open):
    jobs: list[dict[str, Any]]
    counts: dict[str, int]
    queue_depth: int


# --- image --------------------------------------------------------------------------------

class Detection(Open):
    people: list[dict[str, Any]] = Field(description="bbox, confidence, face_bbox, "
                                                     "thumbnail_url ... per person")
    width: int
    height: int
    default_selection: list[int]
    operation: dict[str, Any]


class ImageAccepted(TaskAccepted):
    operations: list[str]


class Backgrounds(Open):
    backgrounds: list[dict[str, str]]


# --- prosody ------------------------------------------------------------------------------

class ProsodyResult(Open):
    output_url: str
    output_key: str
    format: str
    duration: float
    original_duration: float
    emotion: str | None = None
    changes_applied: list[str] | dict[str, Any]
    parameters: dict[str, Any]
    processing_time: float


class ProsodyPresets(Open):
    presets: list[dict[str, Any]]
    ranges: dict[str, dict[str, float]]
    emotions: list[str]


# --- music --------------------------------------------------------------------------------

class TrackList(Open):
    tracks: list[dict[str, Any]]
    moods: list[str]


class TrackAdded(Open):
    track: dict[str, Any]


class MixResult(Open):
    output_url: str
    output_key: str
    format: str
    bitrate: str | None = None
    duration: float
    track: dict[str, Any] | None = None
    mixing_details: dict[str, Any]
    processing_time: float


# --- voice --------------------------------------------------------------------------------

class Speech(Open):
    audio_url: str
    audio_key: str
    audio_format: str
    sample_rate: int
    duration: float
    size_bytes: int
    sentences: list[dict[str, Any]]
    audio_data_base64: str | None = Field(None, description="inline audio (small answers)")
    processing_time: float


class VoiceList(Open):
    voices: list[dict[str, Any]]
    engines: list[dict[str, Any]]


class Profile(Open):
    id: str
    name: str
    language: str


class ProfileList(Open):
    profiles: list[dict[str, Any]]
    count: int


class ProfileAccepted(TaskAccepted):
    steps: list[str]


class ProfileDeleted(Open):
    deleted: bool
    profile_id: str
    id: str


class EvolveAccepted(TaskAccepted):
    kind: str
    steps: list[str]
    profile_id: str | None
    budget_s: float | None
    label: str
    label_ja: str


# --- video and messages -------------------------------------------------------------------

class VideoAccepted(TaskAccepted):
    did_talk_id: str | None = None


class MessageHistory(Open):
    messages: list[dict[str, Any]]


class MessageDeleted(Open):
    deleted: str
    files_removed: int
