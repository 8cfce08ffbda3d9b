"""The transcoder's child processes (services.media.videobox) for real: outputs, deadline, memory bound."""

from __future__ import annotations

import av

from services.media import testclips, videobox
from services.media.config import MiB, VideoLimits

LIMITS = VideoLimits()


async def test_a_transcode_writes_every_file_and_the_poster_variants(tmp_path):
    clip = testclips.clip(tmp_path / "in.mp4", seconds=2, width=640, height=360)
    out = tmp_path / "out"
    out.mkdir()
    outcome = await videobox.run_job("transcode", {"src": str(clip), "out": str(out)}, LIMITS, 120, 3072 * MiB)
    assert outcome.kind == "ok", outcome.data
    names = {p.name for p in out.iterdir()}
    assert {"720.mp4", "360.mp4", "720.m3u8", "360.m3u8", "720.m4s", "360.m4s", "master.m3u8"} <= names
    assert len([n for n in names if n.startswith("poster-")]) == 8 and outcome.data["placeholder"]
    with av.open(str(out / "360.mp4")) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (640, 360)


async def test_a_transcode_past_its_deadline_is_refused_as_too_complex(tmp_path):
    clip = testclips.clip(tmp_path / "in.mp4", seconds=3, width=1280, height=720)
    out = tmp_path / "out"
    out.mkdir()
    outcome = await videobox.run_job("transcode", {"src": str(clip), "out": str(out)}, LIMITS, 0.2, 3072 * MiB)
    assert outcome.kind in ("rejected", "timeout")
    assert outcome.rejection(LIMITS, 3072 * MiB, 0.2).reason == "VIDEO_TOO_COMPLEX"


async def test_a_child_out_of_memory_fails_alone(tmp_path):
    clip = testclips.clip(tmp_path / "in.mp4", seconds=1, width=320, height=240)
    outcome = await videobox.probe(clip, LIMITS, 30, 48 * MiB)
    assert outcome.kind != "ok"
    assert outcome.rejection(LIMITS, 48 * MiB, 30).reason in ("VIDEO_TOO_COMPLEX", "VIDEO_UNDECODABLE")
    assert (await videobox.probe(clip, LIMITS, 30, 3072 * MiB)).kind == "ok"
