"""The media service's settings: PICTOR_* variables on top of the shared Settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.common.config import Settings, env_int, env_str

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What an upload may be. Checked before any pixel is allocated."""

    # "50 MB" of the API: 50 MiB.
    max_bytes: int = 50 * MiB
    # Decompression bombs: a small file that claims a huge canvas.
    max_pixels: int = 100_000_000
    # Wall-clock bound on processing one image (decode, resize, encode).
    timeout_s: float = 20.0


@dataclass(frozen=True)
class MediaConfig:
    blob_dir: Path
    # Partial data of resumable uploads.
    upload_dir: Path
    url_key_file: Path
    # Signed URLs live this long, rounded up to a multiple of url_bucket_s so
    # the same variant gets the same URL for a while (caches like that).
    url_ttl_s: int
    url_bucket_s: int
    # Absolute base of the URLs in media JSON (scheme://host[:port]).
    public_url: str
    limits: Limits
    # Resumable uploads: the chunk size we ask for, and how long one lives.
    chunk_size: int
    upload_ttl_s: int
    # Images processed at once, each in a worker process of its own; more wait their turn,
    # at most queue_timeout_s (then 503).
    max_jobs: int
    queue_timeout_s: float
    # Address space (RLIMIT_AS) of each worker process, bytes.
    memory_limit_bytes: int
    # Per user: resumable uploads open at once, and the bytes they declare in all.
    max_open_uploads: int
    max_upload_bytes_in_flight: int
    # The collector (services/media/collector.py): how often it runs, how long media may stay in no
    # post, and how old an attachment must be before the collector asks posts whether its post exists.
    collect_interval_s: float
    unused_media_ttl_s: int
    attachment_grace_s: int


def load_media_config(settings: Settings) -> MediaConfig:
    data_dir = settings.data_dir
    return MediaConfig(
        blob_dir=Path(env_str("PICTOR_BLOB_DIR", str(data_dir / "blobs"))),
        upload_dir=Path(env_str("PICTOR_MEDIA_UPLOAD_DIR", str(data_dir / "uploads"))),
        url_key_file=Path(env_str("PICTOR_MEDIA_URL_KEY_FILE", str(data_dir / "keys" / "media_url.key"))),
        url_ttl_s=env_int("PICTOR_MEDIA_URL_TTL", 3600),
        url_bucket_s=env_int("PICTOR_MEDIA_URL_BUCKET", 300),
        public_url=env_str("PICTOR_PUBLIC_URL", settings.gateway_url).rstrip("/"),
        limits=Limits(timeout_s=float(env_str("PICTOR_MEDIA_PROCESS_TIMEOUT", "20"))),
        chunk_size=env_int("PICTOR_MEDIA_CHUNK_SIZE", 1 * MiB),
        upload_ttl_s=env_int("PICTOR_MEDIA_UPLOAD_TTL", 24 * 3600),
        max_jobs=max(1, env_int("PICTOR_MEDIA_JOBS", max(1, os.cpu_count() or 1))),
        queue_timeout_s=env_int("PICTOR_MEDIA_QUEUE_TIMEOUT_MS", 10_000) / 1000,
        memory_limit_bytes=env_int("PICTOR_MEDIA_MEMORY_LIMIT_MB", 2048) * MiB,
        max_open_uploads=env_int("PICTOR_MEDIA_MAX_OPEN_UPLOADS", 20),
        max_upload_bytes_in_flight=env_int("PICTOR_MEDIA_MAX_UPLOAD_MB", 200) * MiB,
        collect_interval_s=env_int("PICTOR_MEDIA_COLLECT_INTERVAL_MS", 60_000) / 1000,
        unused_media_ttl_s=env_int("PICTOR_MEDIA_UNUSED_TTL", 24 * 3600),
        attachment_grace_s=env_int("PICTOR_MEDIA_ATTACHMENT_GRACE", 3600),
    )
