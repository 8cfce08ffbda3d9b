"""Video clips made with PyAV for the tests and the benchmark: no fixture files.

`clip` writes moving colour bars (a band that slides one step per frame, so every
frame differs), with a sine tone when asked, optionally a display rotation (what a
phone held upright writes), variable frame rate, or metadata such as a GPS location.
"""

from __future__ import annotations

import array
import math
from fractions import Fraction
from pathlib import Path

import av

BARS = (b"\xc0\xc0\xc0", b"\xc0\xc0\x00", b"\x00\xc0\xc0", b"\x00\xc0\x00", b"\xc0\x00\xc0",
        b"\xc0\x00\x00", b"\x00\x00\xc0")


def clip(path: str | Path, *, seconds: float = 2.0, width: int = 320, height: int = 240, fps: int = 30,
         audio: bool = True, rotation: int = 0, vfr: bool = False, codec: str = "libx264",
         container_format: str | None = None, metadata: dict[str, str] | None = None,
         preset: str = "ultrafast") -> Path:
    """Write the clip and return its path. rotation: clockwise degrees a player turns the pixels."""
    path = Path(path)
    with av.open(str(path), "w", format=container_format) as out:
        if metadata:
            out.metadata.update(metadata)
        time_base = Fraction(1, fps * 10)
        video = out.add_stream(codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        video.time_base = video.codec_context.time_base = time_base
        if codec == "libx264":
            video.options = {"preset": preset}
        if rotation:
            # FFmpeg's display rotation is counter-clockwise.
            video.set_display_rotation(-rotation)
        tone = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        bar = math.ceil(width / len(BARS))
        row = b"".join(c * bar for c in BARS)[:width * 3]
        white = b"\xff" * (width * 3)
        frames = int(seconds * fps)
        pts = 0
        for i in range(frames):
            shift = (i * 4 % width) * 3
            moved = row[-shift:] + row[:-shift] if shift else row
            band = (i * 3) % height
            frame = av.VideoFrame(width, height, "rgb24")
            plane = frame.planes[0]
            pad = b"\x00" * (plane.line_size - width * 3)
            plane.update(b"".join((white if band <= y < band + 8 else moved) + pad for y in range(height)))
            frame.pts, frame.time_base = pts, time_base
            # VFR: frames 1/fps and 3/fps apart in turn.
            pts += (5 if i % 2 else 15) if vfr else 10
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if tone is not None:
            samples = int(seconds * 48000)
            step = 1024
            for start in range(0, samples, step):
                n = min(step, samples - start)
                wave = array.array("h", (int(9000 * math.sin(2 * math.pi * 440 * (start + k) / 48000))
                                         for k in range(n)))
                frame = av.AudioFrame(format="s16", layout="mono", samples=n)
                frame.planes[0].update(wave.tobytes() + b"\x00" * (frame.planes[0].buffer_size - 2 * n))
                frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
                out.mux(tone.encode(frame))
            out.mux(tone.encode(None))
    return path


class _Stream:
    """A file-like object without seek: the muxer writes as to a live stream (no duration, no index)."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed by close(), which the muxer calls last

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()


def endless_audio(path: str | Path, *, hours: float = 10.0) -> bytes:
    """A WebM (VP9, Opus) written as a live stream, so it declares no duration: a second of video,
    and a silent audio track that goes on for `hours` (a packet at the start, the last at the end).
    Returns its bytes."""
    path = Path(path)
    sink = _Stream(path)
    with av.open(sink, "w", format="webm") as out:
        video = out.add_stream("libvpx-vp9", rate=5)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("libopus", rate=48000, layout="mono")
        for i in range(5):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for start in (0, 960, int(hours * 3600 * 48000)):
            frame = av.AudioFrame(format="s16", layout="mono", samples=960)
            frame.planes[0].update(bytes(frame.planes[0].buffer_size))
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    sink.close()
    return path.read_bytes()
