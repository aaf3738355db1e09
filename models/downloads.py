"""The model manager: fetches catalogue weights from the Hub in the background, verified.

Why not ``huggingface_hub.hf_hub_download``: it retries each file five times inside the caller
("Retrying in 1s [Retry 1/5]"), which is what made every message wait two minutes for an
unreachable hub, and it reports progress only to a terminal. Here one background thread per
model speaks the Hub's documented file protocol (``HF_ENDPOINT``, ``/{repo}/resolve/{rev}/
{file}``, ``X-Linked-Etag``/``X-Linked-Size``, ``Range``) through httpx, so that:

- a user's job never downloads: a missing engine starts (or joins) a download and says
  "downloading" until its files are complete and verified; the chain moves on;
- a failure is remembered with backoff (1 min, doubling to 1 h): no retry storm per job;
- a broken transfer resumes from its ``.part`` file; a file whose sha256 (LFS) or git blob
  hash (small files) differs from the Hub's etag is thrown away, never installed;
- finished files are renamed into place only once verified, so an engine that sees its files
  can load them; engines check the disk on every ``available()``, so new weights are picked
  up without a restart.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from models.base import EngineSettings
from models.catalog import CATALOG, ModelSpec, WeightFile, spec

DEFAULT_ENDPOINT = "https://huggingface.co"
RECORD = ".studio-download.json"
FIRST_BACKOFF_S = 60.0
MAX_BACKOFF_S = 3600.0
CHUNK = 1 << 20

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes expected; 0 when unknown) across all files of a model."""


class DownloadError(Exception):
    """A download that did not produce a verified file; ``str()`` is meant for a person."""


@dataclass(frozen=True)
class RemoteFile:
    url: str
    size: int | None
    etag: str | None  # sha256 (LFS files) or git blob sha1 (small files)
    commit: str | None


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def file_url(repo_id: str, revision: str, remote: str, endpoint: str | None = None) -> str:
    return (f"{endpoint or hub_endpoint()}/{repo_id}/resolve/{quote(revision, safe='')}/"
            f"{quote(remote)}")


def _etag(headers: httpx.Headers) -> str | None:
    raw = headers.get("x-linked-etag") or headers.get("etag")
    if not raw:
        return None
    return str(raw).removeprefix("W/").strip('"').lower()


def _size(headers: httpx.Headers) -> int | None:
    raw = headers.get("x-linked-size") or headers.get("content-length")
    return int(raw) if raw and raw.isdigit() else None


def probe(client: httpx.Client, url: str) -> RemoteFile:
    """What the Hub says about a file (HEAD, as ``huggingface_hub`` does), without its body."""
    target = url
    for _ in range(4):
        response = client.head(target, headers={"Accept-Encoding": "identity"},
                               follow_redirects=False)
        if response.is_redirect and "x-linked-etag" not in response.headers:
            target = urljoin(target, response.headers["location"])
            continue
        if response.status_code >= 400:
            raise DownloadError(f"{url}: HTTP {response.status_code}")
        return RemoteFile(url, _size(response.headers), _etag(response.headers),
                          response.headers.get("x-repo-commit"))
    raise DownloadError(f"{url}: too many redirects")


def git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_etag(path: Path, etag: str | None) -> str:
    """The file's sha256, after checking it against the Hub's etag (raises on a mismatch)."""
    sha = sha256_of(path)
    if etag and re.fullmatch(r"[0-9a-f]{64}", etag) and sha != etag:
        raise DownloadError(f"{path.name}: sha256 {sha[:12]}… differs from the hub's "
                            f"{etag[:12]}… (corrupted file)")
    if etag and re.fullmatch(r"[0-9a-f]{40}", etag) and git_blob_sha1(path) != etag:
        raise DownloadError(f"{path.name}: content differs from the hub's git hash "
                            f"{etag[:12]}… (corrupted file)")
    return sha


def fetch_file(client: httpx.Client, remote: RemoteFile, dest: Path,
               progress: Callable[[int], None]) -> str:
    """Download ``remote`` to ``dest`` (resuming ``dest.part``), verify, rename into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if remote.size is not None and have > remote.size:
        part.unlink()
        have = 0
    if remote.size is None or have < remote.size:
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        with client.stream("GET", remote.url, headers=headers, follow_redirects=True) as resp:
            if resp.status_code >= 400:
                raise DownloadError(f"{dest.name}: HTTP {resp.status_code}")
            mode = "ab" if resp.status_code == 206 else "wb"
            if mode == "wb":
                have = 0
            with part.open(mode) as fh:
                progress(have)
                try:
                    for chunk in resp.iter_bytes():
                        fh.write(chunk)
                        have += len(chunk)
                        progress(have)
                except httpx.TransportError as exc:
                    raise DownloadError(
                        f"{dest.name}: got {have} of {remote.size or '?'} bytes (incomplete: "
                        f"{_short(exc)}; the next try resumes)") from exc
    if remote.size is not None and have != remote.size:
        raise DownloadError(f"{dest.name}: got {have} of {remote.size} bytes (incomplete; "
                            "the next try resumes)")
    try:
        sha = check_etag(part, remote.etag)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return sha


# ------------------------------------------------------------------------------ manager


@dataclass
class DownloadState:
    status: str = "idle"  # idle | downloading | failed | done
    done: int = 0
    total: int = 0
    error: str = ""
    failures: int = 0
    retry_at: float = 0.0  # time.monotonic() after which a failed download may start again
    finished: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> str:
        if self.status == "downloading":
            if self.total:
                return (f"downloading {100 * self.done / self.total:.0f}% "
                        f"({self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB)")
            return f"downloading ({self.done / 1e6:.1f} MB)"
        if self.status == "failed":
            minutes = max(1, math.ceil((self.retry_at - time.monotonic()) / 60))
            return f"download failed: {self.error}, next try in {minutes} min"
        return self.status

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "done_bytes": self.done, "total_bytes": self.total,
                "error": self.error or None, "text": self.describe()}


class ModelManager:
    """Downloads and checks the catalogue's weights under one models dir; one per process."""

    def __init__(self, settings: EngineSettings, *, endpoint: str | None = None) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._states: dict[str, DownloadState] = {}

    # -- what engines ask

    def availability(self, name: str) -> tuple[bool, str]:
        """Whether the engine's files are all on disk; if not and downloads are allowed,
        start (or join) a background download and say how it goes. Never blocks."""
        model = spec(name)
        folder = model.folder(self.settings)
        missing = model.missing(self.settings)
        if not missing:
            return True, f"weights in {folder}"
        if folder is None:
            return False, (f"no weights: STUDIO_MODELS_DIR is not set ({model.title})")
        if not self.settings.allow_downloads:
            return False, (f"no weights in {folder} (missing {', '.join(missing)}); run "
                           f"`python -m app.models download {name}` or set "
                           "STUDIO_ALLOW_DOWNLOADS=1")
        return False, self.start(name).describe()

    def state(self, name: str) -> DownloadState:
        with self._lock:
            return self._states.setdefault(name, DownloadState())

    def start(self, name: str, *, force: bool = False) -> DownloadState:
        """Start a background download unless one runs or a failure's backoff is not over
        (``force``: a person asked, so the backoff does not apply)."""
        spec(name)
        with self._lock:
            state = self._states.setdefault(name, DownloadState())
            if state.status == "downloading":
                return state
            if state.status == "failed" and time.monotonic() < state.retry_at and not force:
                return state
            state.status, state.error = "downloading", ""
            state.finished.clear()
        threading.Thread(target=self._background, args=(name, state), daemon=True,
                         name=f"download-{name}").start()
        return state

    def _background(self, name: str, state: DownloadState) -> None:
        try:
            self.download(name, state=state)
        except Exception as exc:  # every failure is recorded and backed off
            with self._lock:
                state.failures += 1
                state.status = "failed"
                state.error = _short(exc)
                delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (state.failures - 1))
                state.retry_at = time.monotonic() + delay
        else:
            with self._lock:
                state.status, state.failures, state.error = "done", 0, ""
        finally:
            state.finished.set()

    # -- the work (blocking; the CLI calls these directly)

    def download(self, name: str, progress: Progress | None = None,
                 state: DownloadState | None = None) -> dict[str, Any]:
        model = spec(name)
        folder = model.folder(self.settings)
        if folder is None:
            raise DownloadError("STUDIO_MODELS_DIR is not set")
        timeout = httpx.Timeout(self.settings.request_timeout, connect=min(
            10.0, self.settings.request_timeout))
        headers = {"User-Agent": "video-message-studio"}
        token = os.environ.get("HF_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        record = self._record(folder)
        try:
            with httpx.Client(timeout=timeout, headers=headers) as client:  # proxies from env
                found = [self._locate(client, model, f) for f in model.files]
                total = sum(r.size or 0 for r, _ in found)
                base = 0
                if state is not None:
                    state.total = total
                for remote, local in found:
                    dest = folder / local

                    def step(have: int, base: int = base) -> None:
                        if state is not None:
                            state.done = base + have
                        if progress is not None:
                            progress(base + have, total)

                    if dest.is_file() and remote.size == dest.stat().st_size and \
                            record.get(local, {}).get("etag") == remote.etag:
                        sha = record[local]["sha256"]
                        step(dest.stat().st_size)
                    else:
                        sha = fetch_file(client, remote, dest, step)
                    record[local] = {"sha256": sha, "size": dest.stat().st_size,
                                        "etag": remote.etag, "commit": remote.commit,
                                        "url": remote.url}
                    self._write_record(folder, record)
                    base += remote.size or dest.stat().st_size
        except httpx.HTTPError as exc:
            raise DownloadError(f"{model.repo_id}: {_short(exc)}") from exc
        return record

    def _locate(self, client: httpx.Client, model: ModelSpec,
                wf: WeightFile) -> tuple[RemoteFile, str]:
        """The file on the hub and its local name; a repository that has only an older
        format (``pytorch_model.bin`` instead of ``model.safetensors``) serves that."""
        names = [(wf.remote, wf.local)]
        folder = wf.remote.rpartition("/")[0]
        names += [(f"{folder}/{alt}" if folder else alt, alt) for alt in wf.alternatives]
        first: DownloadError | None = None
        for remote, local in names:
            try:
                return probe(client, file_url(model.repo_id, model.revision, remote,
                                              self.endpoint)), local
            except DownloadError as exc:
                if "HTTP 404" not in str(exc):
                    raise
                first = first or exc
        assert first is not None
        raise first

    def verify(self, name: str) -> list[dict[str, Any]]:
        """Each file's size and sha256 now, and whether it matches what was downloaded."""
        model = spec(name)
        folder = model.folder(self.settings)
        record = self._record(folder) if folder else {}
        rows = []
        for wf in model.files:
            names = [n for n in (wf.local, *wf.alternatives) if folder and (folder / n).is_file()]
            name = names[0] if names else wf.local
            path = folder / name if folder else None
            row: dict[str, Any] = {"file": name, "present": bool(path and path.is_file()),
                                   "required": wf.required}
            if path is not None and path.is_file():
                row["size"] = path.stat().st_size
                row["sha256"] = sha256_of(path)
                known = record.get(name, {}).get("sha256")
                row["ok"] = known is None or known == row["sha256"]
                row["note"] = ("matches the downloaded file" if known == row["sha256"] else
                               "CHANGED since it was downloaded" if known else
                               "placed by hand (no download record to compare)")
            else:
                row["ok"] = not wf.required
            rows.append(row)
        return rows

    def rows(self) -> list[dict[str, Any]]:
        """The catalogue as the Models panel and ``list`` show it."""
        out = []
        for name, model in CATALOG.items():
            folder = model.folder(self.settings)
            record = self._record(folder) if folder else {}
            missing = model.missing(self.settings)
            state = self.state(name)
            if not missing:
                status = "ready"
            elif state.status in ("downloading", "failed"):
                status = state.describe()
            else:
                status = f"missing {', '.join(missing)}"
            out.append({
                "name": name, "title": model.title, "status": status,
                "size_mb": round(sum((folder / f.local).stat().st_size for f in model.files
                                     if folder and (folder / f.local).is_file()) / 1e6, 1)
                if not missing else round(model.approx_mb, 1),
                "licence": model.licence, "commercial_use": model.commercial_use,
                "licence_note": model.licence_note.en, "source": model.source,
                "repo": model.repo_id, "folder": str(folder) if folder else None,
                "files": [f.local for f in model.files],
                "sha256": {k: v.get("sha256") for k, v in record.items()},
                "download": state.as_dict(),
            })
        return out

    @staticmethod
    def _record(folder: Path) -> dict[str, Any]:
        try:
            record: dict[str, Any] = json.loads((folder / RECORD).read_text("utf-8"))
            return record
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _write_record(folder: Path, record: dict[str, Any]) -> None:
        tmp = folder / (RECORD + ".tmp")
        tmp.write_text(json.dumps(record, indent=1), "utf-8")
        os.replace(tmp, folder / RECORD)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        text = f"cannot connect ({text})"
    elif isinstance(exc, httpx.TimeoutException):
        text = f"timed out ({type(exc).__name__})"
    return text[:200]


_MANAGERS: dict[EngineSettings, ModelManager] = {}
_MANAGERS_LOCK = threading.Lock()


def manager_for(settings: EngineSettings) -> ModelManager:
    """The process's manager for these settings (shared by every engine and the UI, so a
    download is joined, never started twice)."""
    with _MANAGERS_LOCK:
        manager = _MANAGERS.get(settings)
        if manager is None:
            manager = _MANAGERS[settings] = ModelManager(settings)
        return manager
