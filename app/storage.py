"""Where artifacts live: a Storage protocol with a local-disk and an S3 implementation.

Keys follow the seed's layout (``inputs/images/{uuid}.png``, ``videos/final/{uuid}.mp4``...).
Local files are served by the app at ``/files/{key}``; S3 keys become presigned URLs (1 h),
so any worker on any machine can read any artifact.
"""

from __future__ import annotations

import errno
import mimetypes
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from models.errors import InvalidInput, NotFound, StudioError

if TYPE_CHECKING:
    from app.config import Settings

_KEY_PART = re.compile(r"^[A-Za-z0-9._\-]+$")
PRESIGN_SECONDS = 3600
TEMP_PREFIX = ".tmp-"  # + writer pid: half-written files, never listed or served


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StorageError(StudioError):
    kind = "internal"
    default_code = "STORAGE_ERROR"


class StorageUnavailable(StorageError):
    """The store cannot take writes now (full, read-only): the server itself is fine."""

    kind = "unavailable"


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def os_error_record(exc: BaseException) -> dict[str, object] | None:
    """The ``STORAGE_*`` error record for a full or read-only disk, else None."""
    err = storage_failure(exc)
    if err is None:
        return None
    return {"code": err.code, "message": err.message, "message_ja": err.message_ja,
            "details": err.details}


def storage_failure(exc: BaseException, where: str = "") -> StorageError | None:
    """Translate a disk-full / read-only ``OSError`` (or SQLite's "disk is full") into a
    ``STORAGE_FULL`` / ``STORAGE_READ_ONLY`` error a person can act on."""
    import sqlite3

    code = getattr(exc, "errno", None)
    text = str(exc)
    place = f" ({where})" if where else ""
    if code in _FULL or (isinstance(exc, sqlite3.OperationalError) and "full" in text):
        return StorageUnavailable(
            f"The disk is full{place}: the file was not written. Free some space (or raise "
            "the volume's size) and try again.", code="STORAGE_FULL",
            message_ja=f"ディスクがいっぱいです{place}。ファイルは書き込まれていません。"
                       "空き容量を確保してから再試行してください。",
            details={"errno": code, "reason": text})
    if code in _READ_ONLY or (isinstance(exc, sqlite3.OperationalError)
                              and "readonly" in text.replace("-", "").replace(" ", "")):
        return StorageUnavailable(
            f"The data directory is read-only{place}: the file was not written.",
            code="STORAGE_READ_ONLY",
            message_ja=f"データディレクトリが読み取り専用です{place}。ファイルは書き込まれていません。",
            details={"errno": code, "reason": text})
    return None


def validate_key(key: str) -> str:
    """Refuse keys that could leave the store: ``..``, absolute paths, NUL, odd characters."""
    if not key or len(key) > 512:
        raise InvalidInput("Storage key is empty or too long.", code="STORAGE_INVALID_KEY",
                           message_ja="ストレージキーが空か長すぎます。")
    if "\x00" in key or key.startswith(("/", "\\")) or "\\" in key or ":" in key:
        raise InvalidInput(f"Invalid storage key: {key!r}", code="STORAGE_INVALID_KEY",
                           message_ja=f"不正なストレージキー: {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") or not _KEY_PART.match(p) or p.startswith(TEMP_PREFIX)
           for p in parts):  # a temp file (half-written) is never a key
        raise InvalidInput(f"Invalid storage key: {key!r}", code="STORAGE_INVALID_KEY",
                           message_ja=f"不正なストレージキー: {key!r}")
    return key


def new_key(prefix: str, extension: str) -> str:
    """A fresh key under a seed-layout prefix, e.g. ``new_key('videos/final', 'mp4')``."""
    return validate_key(f"{prefix.strip('/')}/{uuid.uuid4().hex}.{extension.lstrip('.')}")


def content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


@runtime_checkable
class Storage(Protocol):
    name: str

    def put(self, key: str, data: bytes) -> str: ...
    def put_file(self, key: str, path: Path) -> str: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> bool: ...
    def url(self, key: str) -> str: ...
    def list(self, prefix: str = "") -> Iterator[StoredObject]: ...
    def local_path(self, key: str) -> Path: ...
    def health(self) -> tuple[bool, str]: ...


class LocalStorage:
    """Files under ``root``; writes land atomically (temp file + rename)."""

    name = "local"

    def __init__(self, root: Path, url_prefix: str = "/files") -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url_prefix = url_prefix.rstrip("/")

    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidInput(f"Invalid storage key: {key!r}", code="STORAGE_INVALID_KEY")
        return path

    def put(self, key: str, data: bytes) -> str:
        """Write to a temp file named after this process, then rename: a reader never sees
        half a file, and a temp file left by a killed process is swept at the next start
        (:meth:`sweep_temp`)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}-",
                                       suffix=path.suffix)
        except OSError as exc:
            raise (storage_failure(exc, key) or exc) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            failure = storage_failure(exc, key) if isinstance(exc, OSError) else None
            if failure is not None:
                raise failure from exc
            raise
        return key

    def sweep_temp(self) -> list[str]:
        """Remove temp files of writers that are gone (a process killed mid-write): those
        named after a pid that no longer runs, and unnamed ones older than an hour. Called
        at start; a live writer's file (another process on this data dir) is left alone."""
        removed = []
        now = time.time()
        for path in self.root.rglob(f"{TEMP_PREFIX}*"):
            if not path.is_file():
                continue
            pid = path.name[len(TEMP_PREFIX):].split("-", 1)[0]
            if pid.isdigit():
                if int(pid) == os.getpid() or _pid_alive(int(pid)):
                    continue
            elif now - path.stat().st_mtime < 3600:
                continue
            try:
                path.unlink()
                removed.append(path.relative_to(self.root).as_posix())
            except OSError:
                continue
        return removed

    def put_file(self, key: str, path: Path) -> str:
        return self.put(key, Path(path).read_bytes())

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"No stored file {key!r}.", code="STORAGE_NOT_FOUND",
                           message_ja=f"ファイル {key!r} がありません。") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def url(self, key: str) -> str:
        return f"{self.url_prefix}/{validate_key(key)}"

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        base = self.root / prefix.strip("/") if prefix else self.root
        if prefix:
            validate_key(prefix.strip("/"))
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith(TEMP_PREFIX):
                stat = path.stat()
                yield StoredObject(
                    path.relative_to(self.root).as_posix(), stat.st_size,
                    datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc),
                )

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def health(self) -> tuple[bool, str]:
        ok = os.access(self.root, os.W_OK)
        return ok, f"local {self.root}" + ("" if ok else " (not writable)")


class SignedLocalStorage(LocalStorage):
    """Local storage whose links carry an expiring HMAC signature: with authentication on,
    ``/files`` serves a key only to someone who was handed its link."""

    def __init__(self, root: Path, secret: str, ttl: int = 3600,
                 url_prefix: str = "/files") -> None:
        super().__init__(root, url_prefix)
        self.secret = secret
        self.ttl = ttl

    def url(self, key: str) -> str:
        from app.auth import sign_key

        expires = int(time.time()) + self.ttl
        return f"{super().url(key)}?exp={expires}&sig={sign_key(self.secret, key, expires)}"


class S3ClientMeta(Protocol):
    endpoint_url: str
    region_name: str | None


class S3Client(Protocol):
    """The calls of boto3's S3 client this module makes (boto3 ships no types; its
    responses are plain dicts, read here field by field)."""

    meta: S3ClientMeta

    def put_object(self, **kwargs: Any) -> Any: ...
    def get_object(self, **kwargs: Any) -> Any: ...
    def head_object(self, **kwargs: Any) -> Any: ...
    def delete_object(self, **kwargs: Any) -> Any: ...
    def generate_presigned_url(self, method: str, **kwargs: Any) -> str: ...
    def get_paginator(self, operation: str) -> Any: ...
    def head_bucket(self, **kwargs: Any) -> Any: ...
    def create_bucket(self, **kwargs: Any) -> Any: ...


class S3Storage:
    """An S3 bucket (or any S3-protocol server), through boto3."""

    name = "s3"

    def __init__(
        self, bucket: str, *, endpoint_url: str | None = None, region: str = "us-east-1",
        prefix: str = "", cache_dir: Path | None = None, client: S3Client | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client: S3Client = client or boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            config=Config(retries={"max_attempts": 4, "mode": "standard"},
                          connect_timeout=5, read_timeout=60),
        )
        self.cache_dir = (cache_dir or Path(tempfile.gettempdir()) / "studio-s3").resolve()

    def _k(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _wrap(self, exc: Exception, key: str) -> StudioError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                return NotFound(f"No stored file {key!r}.", code="STORAGE_NOT_FOUND",
                                message_ja=f"ファイル {key!r} がありません。")
        return StorageError(f"S3 error for {key!r}: {exc}", code="STORAGE_S3_ERROR",
                            message_ja=f"S3 のエラー ({key!r}): {exc}")

    def put(self, key: str, data: bytes) -> str:
        full = self._k(key)
        try:
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data,
                                   ContentType=content_type(key))
        except Exception as exc:  # translated at the boundary
            raise self._wrap(exc, key) from exc
        return key

    def put_file(self, key: str, path: Path) -> str:
        return self.put(key, Path(path).read_bytes())

    def get(self, key: str) -> bytes:
        full = self._k(key)
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=full)["Body"].read())
        except Exception as exc:
            raise self._wrap(exc, key) from exc

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        full = self._k(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._wrap(exc, key) from exc
        return True

    def delete(self, key: str) -> bool:
        existed = self.exists(key)
        full = self._k(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=full)
        except Exception as exc:
            raise self._wrap(exc, key) from exc
        return existed

    def url(self, key: str) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._k(key)},
            ExpiresIn=PRESIGN_SECONDS,
        )

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                yield StoredObject(item["Key"][len(self.prefix):], item["Size"],
                                   item["LastModified"])

    def local_path(self, key: str) -> Path:
        """A local copy for tools that need a file (ffmpeg); cached per key."""
        path = (self.cache_dir / validate_key(key)).resolve()
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
            tmp.write_bytes(self.get(key))
            os.replace(tmp, path)
        return path

    def _missing(self, exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(exc, ClientError) and exc.response.get("Error", {}).get(
            "Code") in ("404", "NoSuchBucket", "NotFound")

    def how_to_create(self) -> str:
        endpoint = self.client.meta.endpoint_url
        where = "" if "amazonaws.com" in endpoint else f" --endpoint-url {endpoint}"
        return (f"bucket {self.bucket!r} does not exist: set STUDIO_S3_CREATE_BUCKET=1, or "
                f"run: aws s3 mb s3://{self.bucket}{where}")

    def ensure_bucket(self, create: bool) -> bool:
        """True if the bucket exists (after creating it, when ``create``). Without the
        bucket every write fails, so the app says at start exactly what to do."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return True
        except Exception as exc:
            if not self._missing(exc):
                raise self._wrap(exc, self.bucket) from exc
        if not create:
            return False
        region = self.client.meta.region_name
        options = {} if region in (None, "us-east-1") else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        try:
            self.client.create_bucket(Bucket=self.bucket, **options)
        except Exception as exc:  # created meanwhile by another process
            if "BucketAlreadyOwnedByYou" not in str(exc):
                raise self._wrap(exc, self.bucket) from exc
        return True

    def health(self) -> tuple[bool, str]:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            if self._missing(exc):
                return False, f"s3: {self.how_to_create()}"
            return False, f"s3 bucket {self.bucket}: {exc}"
        return True, f"s3 bucket {self.bucket}"


def create_storage(settings: Settings) -> Storage:
    """The storage the settings ask for."""
    if settings.storage == "s3":
        assert settings.s3_bucket  # checked by Settings
        s3 = S3Storage(
            settings.s3_bucket, endpoint_url=settings.s3_endpoint_url,
            region=settings.aws_region, prefix=settings.s3_prefix,
            cache_dir=settings.data_dir / "cache" / "s3",
        )
        if settings.s3_create_bucket:
            s3.ensure_bucket(create=True)
        return s3
    if settings.jwt_secret:
        return SignedLocalStorage(settings.data_dir / "files", settings.jwt_secret,
                                  settings.files_link_ttl)
    return LocalStorage(settings.data_dir / "files")
