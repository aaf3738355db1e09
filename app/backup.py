"""Back up and restore a studio: stored files (voice profiles, inputs, processed images,
videos, music) and job records (the history), with a manifest of SHA-256 checksums.

    python -m app.backup create  DEST      # DEST: a folder, or s3://bucket/prefix
    python -m app.backup verify  SRC
    python -m app.backup restore SRC [--force]

The studio to back up or restore into is the one the ``STUDIO_*`` settings describe, so the
same command works on one machine (``STUDIO_DATA_DIR``, SQLite) and in production
(``STUDIO_STORAGE=s3`` + ``STUDIO_QUEUE_URL=redis://...``). A backup is a tree of plain
files: ``files/<key>``, ``jobs.jsonl`` and ``manifest.json``, written last so that a backup
cut short has no manifest and is never restored. Temporary files (``temp/``), caches and the
queue itself are not copied. Restore checks every checksum before it writes anything, refuses
a studio that already has files or jobs (unless ``--force``), and marks jobs that were
still queued or running as failed: their queue entries were not part of the backup.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from app.config import VERSION, Settings, SettingsError, load_settings
from app.runner.jobs import Job, JobStore
from app.runner.stores import create_job_store
from app.storage import LocalStorage, S3Storage, Storage, create_storage
from models.errors import Conflict, InvalidInput, NotFound, StudioError

FORMAT = 1
MANIFEST = "manifest.json"
JOBS = "jobs.jsonl"
FILES = "files/"
SKIPPED_PREFIXES = ("temp/",)
LOST_CODE = "QUEUE_JOB_NOT_IN_BACKUP"


class BackupError(StudioError):
    kind = "internal"
    default_code = "BACKUP_ERROR"


@dataclass
class Summary:
    files: int
    bytes: int
    jobs: int
    location: str

    def line(self, verb: str) -> str:
        return (f"{verb} {self.files} files ({self.bytes / 1e6:.1f} MB) and {self.jobs} job "
                f"records: {self.location}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_location(where: str, settings: Settings, *, must_exist: bool) -> Storage:
    """A backup location as a Storage: a folder, or ``s3://bucket/prefix`` (same endpoint
    and credentials as the studio's own S3 settings)."""
    parsed = urlparse(where)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise InvalidInput(f"{where}: no bucket", code="BACKUP_BAD_LOCATION")
        return S3Storage(parsed.netloc, endpoint_url=settings.s3_endpoint_url,
                         region=settings.aws_region, prefix=parsed.path.strip("/"),
                         cache_dir=settings.data_dir / "cache" / "backup")
    if parsed.scheme not in ("", "file"):
        raise InvalidInput(f"{where}: use a folder or s3://bucket/prefix",
                           code="BACKUP_BAD_LOCATION")
    path = Path(parsed.path if parsed.scheme == "file" else where)
    if must_exist and not path.is_dir():
        raise NotFound(f"No backup folder {path}.", code="BACKUP_NOT_FOUND")
    return LocalStorage(path, url_prefix="")


def _job_line(job: Job) -> str:
    return json.dumps(job.to_dict(), sort_keys=True, ensure_ascii=False)


def create(settings: Settings, dest: str, *, storage: Storage | None = None,
           jobs: JobStore | None = None) -> Summary:
    storage = storage or create_storage(settings)
    jobs = jobs or create_job_store(settings.resolved_queue_url, settings.data_dir)
    target = open_location(dest, settings, must_exist=False)
    if target.exists(MANIFEST) or any(True for _ in target.list()):
        raise Conflict(f"{dest} is not empty: back up into a new folder or prefix.",
                       code="BACKUP_DEST_NOT_EMPTY")
    files = []
    total = 0
    for item in storage.list():
        if item.key.startswith(SKIPPED_PREFIXES):
            continue
        data = storage.get(item.key)
        target.put(FILES + item.key, data)
        files.append({"key": item.key, "size": len(data), "sha256": sha256(data)})
        total += len(data)
    records = sorted(jobs.all(), key=lambda j: (j.created_at, j.id))
    jobs_blob = "".join(_job_line(j) + "\n" for j in records).encode()
    target.put(JOBS, jobs_blob)
    manifest = {
        "format": FORMAT,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "studio_version": VERSION,
        "source": {"storage": storage.name, "queue": urlparse(settings.resolved_queue_url).scheme},
        "skipped_prefixes": list(SKIPPED_PREFIXES),
        "files": files,
        "jobs": {"path": JOBS, "count": len(records), "sha256": sha256(jobs_blob)},
    }
    target.put(MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False).encode())
    return Summary(len(files), total, len(records), dest)


def read_manifest(source: Storage, where: str) -> dict[str, Any]:
    if not source.exists(MANIFEST):
        raise NotFound(f"{where} has no {MANIFEST}: not a backup, or one that was cut short.",
                       code="BACKUP_NOT_FOUND")
    manifest: dict[str, Any] = json.loads(source.get(MANIFEST))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{where}: backup format {manifest.get('format')} is not "
                          f"{FORMAT}.", code="BACKUP_FORMAT")
    return manifest


def verify(settings: Settings, src: str) -> tuple[dict[str, Any], dict[str, bytes], list[Job]]:
    """Every file and the job list, read and checked against the manifest (or raise)."""
    source = open_location(src, settings, must_exist=True)
    manifest = read_manifest(source, src)
    contents: dict[str, bytes] = {}
    bad = []
    for entry in manifest["files"]:
        try:
            data = source.get(FILES + entry["key"])
        except NotFound:
            bad.append(f"{entry['key']} (missing)")
            continue
        if len(data) != entry["size"] or sha256(data) != entry["sha256"]:
            bad.append(f"{entry['key']} (checksum)")
            continue
        contents[entry["key"]] = data
    jobs_blob = source.get(manifest["jobs"]["path"])
    if sha256(jobs_blob) != manifest["jobs"]["sha256"]:
        bad.append(f"{manifest['jobs']['path']} (checksum)")
    if bad:
        raise BackupError(f"{src} is damaged: {', '.join(bad[:10])}"
                          f"{' ...' if len(bad) > 10 else ''}", code="BACKUP_CORRUPT",
                          details={"damaged": bad})
    records = [Job.from_dict(json.loads(line)) for line in jobs_blob.decode().splitlines()
               if line.strip()]
    return manifest, contents, records


def restore(settings: Settings, src: str, *, force: bool = False,
            storage: Storage | None = None, jobs: JobStore | None = None) -> Summary:
    manifest, contents, records = verify(settings, src)  # nothing is written before this
    storage = storage or create_storage(settings)
    jobs = jobs or create_job_store(settings.resolved_queue_url, settings.data_dir)
    if not force and (any(True for _ in storage.list()) or any(True for _ in jobs.all())):
        raise Conflict("The studio to restore into already has files or jobs; restore into "
                       "an empty data dir (or pass --force to overwrite).",
                       code="BACKUP_TARGET_NOT_EMPTY")
    for key, data in contents.items():
        storage.put(key, data)
    now = time.time()
    for job in records:
        if not job.final:
            job.status = "failed"
            job.current_step = "restored"
            job.finished_at = job.updated_at = now
            job.error = {"code": LOST_CODE,
                         "message": "The job was unfinished when the backup was made; its "
                                    "queue entry was not part of the backup.",
                         "message_ja": "バックアップ時に未完了だったジョブです。"
                                       "キューの内容はバックアップに含まれません。"}
        jobs.save(job)
    mismatched = [key for key, data in contents.items() if sha256(storage.get(key)) !=
                  sha256(data)]
    if mismatched:
        raise BackupError(f"Restored files differ from the backup: {mismatched[:10]}",
                          code="BACKUP_RESTORE_MISMATCH")
    return Summary(len(contents), sum(len(d) for d in contents.values()), len(records), src)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.backup",
        description="Back up or restore the studio's files and job history (settings from "
                    "STUDIO_* variables, as the app reads them).")
    commands = parser.add_subparsers(dest="command", required=True)
    create_cmd = commands.add_parser("create", help="write a backup")
    create_cmd.add_argument("dest", help="an empty or new folder, or s3://bucket/prefix")
    verify_cmd = commands.add_parser("verify", help="check a backup's checksums")
    verify_cmd.add_argument("src")
    restore_cmd = commands.add_parser("restore", help="restore into an empty studio")
    restore_cmd.add_argument("src", help="a backup folder or s3://bucket/prefix")
    restore_cmd.add_argument("--force", action="store_true",
                             help="restore even if the studio already has files or jobs")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        if args.command == "create":
            print(create(settings, args.dest).line("backed up"))
        elif args.command == "verify":
            manifest, contents, records = verify(settings, args.src)
            print(f"ok: {len(contents)} files and {len(records)} job records match "
                  f"the manifest of {manifest['created_at']}")
        else:
            print(restore(settings, args.src, force=args.force).line("restored"))
    except StudioError as exc:
        sys.stderr.write(f"{exc.code}: {exc.message}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
