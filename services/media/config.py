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
class VideoLimits:
    """What a video may be (PICTOR_VIDEO_*)."""

    max_bytes: int = 200 * MiB
    # Posts; stories take at most max_story_duration_s (checked when a story attaches it).
    max_duration_s: float = 90.0
    max_story_duration_s: float = 60.0
    # "4K": 4096 on the long edge, 2160 on the short one.
    max_long_edge: int = 4096
    max_short_edge: int = 2160
    max_fps: float = 60.0
    # x264's preset: veryfast or faster keeps a 30 s 1080p clip under 20 s on two cores.
    preset: str = "veryfast"
    crf: int = 23


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
    # Video (services.media.video, services.media.transcoder).
    video: VideoLimits = VideoLimits()
    # The header probe at completion, in a child process: its wall-clock bound and address space.
    probe_timeout_s: float = 10.0
    # The transcoder: a job's lease (pushed forward every third of it while the job runs), how
    # often an idle transcoder looks for jobs, the takes before a video FAILs, the wall-clock
    # bound on one transcode and the child's address space.
    video_lease_s: float = 30.0
    video_poll_s: float = 1.0
    video_max_attempts: int = 3
    video_timeout_s: float = 600.0
    video_memory_limit_bytes: int = 3072 * MiB


def load_media_config(settings: Settings) -> MediaConfig:
    data_dir = settings.data_dir
    return MediaConfig(
        blob_dir=Path(env_str("PICTOR_BLOB_DIR", str(data_dir / "blobs"))),
        upload_dir=Path(env_str("PICTOR_MEDIA_UPLOAD_DIR", str(data_dir / "uploads"))),
        url_key_file=Path(env_str("PICTOR_MEDIA_URL_KEY_FILE", str(data_dir / "keys" / "media_url.key"))),
        # NOTE: a URL lives at most url_ttl_s + url_bucket_s (300 s by default): a post that
        # became invisible to someone (block, private, delete) stops opening for them within
        # that (docs/SECURITY.md, "Media URLs").
        url_ttl_s=env_int("PICTOR_MEDIA_URL_TTL", 240),
        url_bucket_s=env_int("PICTOR_MEDIA_URL_BUCKET", 60),
        public_url=settings.public_url,
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
        video=VideoLimits(
            max_bytes=env_int("PICTOR_VIDEO_MAX_MB", 200) * MiB,
            max_duration_s=float(env_str("PICTOR_VIDEO_MAX_SECONDS", "90")),
            max_story_duration_s=float(env_str("PICTOR_VIDEO_MAX_STORY_SECONDS", "60")),
            max_long_edge=env_int("PICTOR_VIDEO_MAX_LONG_EDGE", 4096),
            max_short_edge=env_int("PICTOR_VIDEO_MAX_SHORT_EDGE", 2160),
            max_fps=float(env_str("PICTOR_VIDEO_MAX_FPS", "60")),
            preset=env_str("PICTOR_VIDEO_PRESET", "veryfast"),
            crf=env_int("PICTOR_VIDEO_CRF", 23),
        ),
        probe_timeout_s=env_int("PICTOR_VIDEO_PROBE_TIMEOUT_MS", 10_000) / 1000,
        video_lease_s=env_int("PICTOR_VIDEO_LEASE_MS", 30_000) / 1000,
        video_poll_s=env_int("PICTOR_VIDEO_POLL_MS", 1000) / 1000,
        video_max_attempts=env_int("PICTOR_VIDEO_MAX_ATTEMPTS", 3),
        video_timeout_s=env_int("PICTOR_VIDEO_TIMEOUT_MS", 600_000) / 1000,
        video_memory_limit_bytes=env_int("PICTOR_VIDEO_MEMORY_LIMIT_MB", 3072) * MiB,
    )
