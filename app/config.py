"""One Settings object, read once at the entry point.

Order, last wins: the defaults below, then a ``.env`` file in the working directory, then
``STUDIO_*`` environment variables, then command-line flags of ``launch.py``. Every field is
documented in README's configuration table and ``.env.example``.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.base import EngineSettings
from models.registry import CAPABILITIES, DEFAULT_ORDER

VERSION = "0.1.0"
SERVICE_NAME = "video-message-studio"

BackendList = Annotated[list[str], NoDecode]
# STUDIO_* variables read outside Settings: the worker's metrics port, and the tests' switch
# that turns a missing service into a failure rather than a skip.
OTHER_VARIABLES = ("STUDIO_METRICS_PORT", "STUDIO_REQUIRE_SERVICES")
# Words people use for a capability whose setting has another name.
ALIASES = {"VIDEO": "TALKING_HEAD", "LIPSYNC": "TALKING_HEAD", "SPEECH": "TTS",
           "MATTING": "CUTOUT", "SEGMENTATION": "CUTOUT", "CONVERSION": "VOICE_CONVERTER"}
log = logging.getLogger("studio.config")


class SettingsError(Exception):
    """Invalid configuration; ``str()`` is one line meant for a person."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STUDIO_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        validate_default=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    data_dir: Path = Path("data")
    storage: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_prefix: str = ""
    s3_create_bucket: bool = False  # create STUDIO_S3_BUCKET at start when it is missing
    aws_region: str = "us-east-1"
    bedrock_endpoint_url: str | None = None
    aws_mcp_url: str | None = None
    queue_url: str | None = None  # default: sqlite file in data_dir
    workers: int = Field(2, ge=0, le=64)
    # a running stage's lease: renewed every quarter of it; a dead worker's stage is taken
    # back by any live worker about this long after its last renewal
    lease_seconds: float = Field(20.0, ge=1.0, le=600.0)
    max_queued: int = Field(50, ge=1)
    # a profile's evolved voice: search seconds (in all, across resumed runs) and whether a
    # new profile queues the search by itself (pipelines/voice/evolve_jobs.py); off by
    # default: minutes of both cores per profile, so it is asked for (POST .../evolve)
    voice_evolve_seconds: float = Field(600.0, gt=0, le=7200)
    voice_evolve_auto: bool = False
    models_dir: Path | None = None
    allow_downloads: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    voicevox_url: str | None = None
    did_api_key: str | None = None
    did_url: str = "https://api.d-id.com"
    request_timeout: float = Field(30.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text", "auto"] = "auto"
    open_browser: bool = True
    public_url: str | None = None
    jwt_secret: str | None = None  # turns REST auth on (HS256 bearer tokens)
    service_secret: str | None = None  # HMAC key for X-Service-Token (worker -> app)
    auth_users: str | None = None  # "user:pbkdf2_sha256$..." comma-separated: UI login
    auth_users_file: Path | None = None
    admin_users: BackendList = Field(default_factory=list)  # UI users allowed the Jobs tab
    metrics_token: str | None = None  # when set, /metrics needs "Authorization: Bearer <it>"
    files_link_ttl: int = Field(3600, ge=60)  # signed /files links, seconds
    # a UI password login lasts this long (a token login ends with its token, or sooner)
    ui_session_minutes: float = Field(720.0, gt=0, le=43200)
    rate_limit_per_minute: int = Field(30, ge=0)  # per client on expensive routes; 0 = off
    max_body_mb: float = Field(60.0, gt=0)
    min_free_mb: float = Field(500.0, ge=0)  # refuse new jobs below this free disk space
    retention_temp_hours: float = Field(1.0, gt=0)
    retention_uploads_days: float = Field(7.0, gt=0)
    retention_processed_days: float = Field(3.0, gt=0)
    retention_videos_days: float = Field(30.0, gt=0)
    # https hosts whose URLs the API may fetch as inputs (".example.com" = its subdomains)
    fetch_allowed_hosts: BackendList = Field(default_factory=list)

    tts_backends: BackendList = Field(default_factory=lambda: list(DEFAULT_ORDER["tts"]))
    voice_encoder_backends: BackendList = Field(
        default_factory=lambda: list(DEFAULT_ORDER["voice_encoder"]))
    voice_converter_backends: BackendList = Field(
        default_factory=lambda: list(DEFAULT_ORDER["voice_converter"]))
    denoise_backends: BackendList = Field(
        default_factory=lambda: list(DEFAULT_ORDER["denoise"]))
    naturalness_backends: BackendList = Field(
        default_factory=lambda: list(DEFAULT_ORDER["naturalness"]))
    person_detection_backends: BackendList = Field(
        default_factory=lambda: list(DEFAULT_ORDER["person_detection"]))
    cutout_backends: BackendList = Field(default_factory=lambda: list(DEFAULT_ORDER["cutout"]))
    refiner_backends: BackendList = Field(
        default_factory=lambda: list(DEFAULT_ORDER["refiner"]))
    talking_head_backends: BackendList = Field(
        default_factory=lambda: list(DEFAULT_ORDER["talking_head"]))

    @field_validator(
        "tts_backends", "voice_encoder_backends", "voice_converter_backends",
        "denoise_backends", "naturalness_backends", "person_detection_backends", "cutout_backends", "refiner_backends",
        "talking_head_backends", "admin_users",
        "fetch_allowed_hosts",
        mode="before",
    )
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        for capability in CAPABILITIES:
            names = getattr(self, f"{capability}_backends")
            known = CAPABILITIES[capability]
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(
                    f"STUDIO_{capability.upper()}_BACKENDS: unknown engine "
                    f"{', '.join(unknown)} (known: {', '.join(known)})"
                )
            if not names:
                raise ValueError(f"STUDIO_{capability.upper()}_BACKENDS is empty")
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("STUDIO_STORAGE=s3 needs STUDIO_S3_BUCKET")
        if self.jwt_secret is not None and len(self.jwt_secret) < 32:
            raise ValueError("STUDIO_JWT_SECRET must be at least 32 characters")
        if self.auth_users or self.auth_users_file:
            from app.auth import load_users

            load_users(self.auth_users, self.auth_users_file)
        if self.queue_url and not self.queue_url.startswith(
            ("sqlite://", "redis://", "rediss://", "memory://")
        ):
            raise ValueError("STUDIO_QUEUE_URL must start with sqlite://, redis:// or memory://")
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.jwt_secret)

    @property
    def resolved_queue_url(self) -> str:
        return self.queue_url or f"sqlite:///{(self.data_dir / 'queue.sqlite3').resolve()}"

    def backends(self, capability: str) -> list[str]:
        return list(getattr(self, f"{capability}_backends"))

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            models_dir=self.models_dir or self.data_dir / "models",  # where downloads go too
            allow_downloads=self.allow_downloads,
            cache_dir=self.data_dir / "cache",
            device=self.device,
            voicevox_url=self.voicevox_url,
            did_url=self.did_url,
            did_api_key=self.did_api_key,
            aws_region=self.aws_region,
            s3_bucket=self.s3_bucket,
            s3_endpoint_url=self.s3_endpoint_url,
            bedrock_endpoint_url=self.bedrock_endpoint_url,
            aws_mcp_url=self.aws_mcp_url,
            request_timeout=self.request_timeout,
        )


def known_variables() -> list[str]:
    return sorted([f"STUDIO_{name.upper()}" for name in Settings.model_fields]
                  + list(OTHER_VARIABLES))


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """``STUDIO_*`` names that no setting reads, each with the closest known name (or None).

    pydantic-settings ignores unknown names (``extra="ignore"``), so a misspelt
    ``STUDIO_VIDEO_BACKENDS`` would silently leave the default in place; difflib's ratio
    finds the intended name for the warning."""
    known = known_variables()
    suffixes = {name.removeprefix("STUDIO_"): name for name in known}
    found = []
    for name in sorted(environ):
        if name.startswith("STUDIO_") and name not in known:
            words = name.removeprefix("STUDIO_").split("_")
            guess = "_".join(ALIASES.get(word, word) for word in words)
            close = difflib.get_close_matches(guess, list(suffixes), n=1, cutoff=0.6)
            found.append((name, suffixes[close[0]] if close else None))
    return found


def _dotenv_names(path: Path = Path(".env")) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v or "" for k, v in dotenv_values(path).items()}


def warn_unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Log one warning per unknown ``STUDIO_*`` variable (environment and ``.env``)."""
    names = {**_dotenv_names(), **(os.environ if environ is None else environ)}
    lines = []
    for name, close in unknown_variables(names):
        hint = f"; did you mean {close}?" if close else ""
        line = f"unknown setting {name} is ignored{hint}"
        log.warning(line)
        lines.append(line)
    return lines


def load_settings(**overrides: object) -> Settings:
    """Build Settings or raise :class:`SettingsError` with one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
        field_hint = f"STUDIO_{where.upper()}: " if where else ""
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise SettingsError(f"invalid setting: {field_hint}{message}") from None
