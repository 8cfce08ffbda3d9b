"""Video with PyAV (FFmpeg and libx264 inside the `av` wheel): probe, limits, transcode. No I/O but files.

Pure functions, run in a child process of the transcoder (services.media.video_job) under a
memory limit and a wall-clock deadline, never in the media service itself: the bytes are a
client's, and FFmpeg's demuxers and decoders are big attack surfaces.

What comes out of one video (`transcode`):
  - `720.mp4` and `360.mp4`: H.264 (preset PICTOR_VIDEO_PRESET, veryfast by default) and AAC,
    MP4 with the index in front (faststart), the short edge at most 720 and 360 pixels (never
    upscaled), even dimensions, the rotation of the display matrix applied to the pixels;
  - per rendition an HLS media playlist over the same frames as fragmented MP4 in one file
    (`720.m3u8` + `720.m4s`, byte ranges), and `master.m3u8` over both: adaptive streaming;
  - a poster frame (JPEG of the upright frame about a second in) for the photo pipeline.
PyAV is imported inside the functions that use it: the media service imports this module (limits,
names) without loading FFmpeg. Nothing of the source's metadata is copied (GPS of phone videos, names, dates): the outputs
carry only what the muxers write themselves.

Limits: what the container's header declares is checked by `check` (the service answers 400
at completion); what it hides or lies about (a longer track, bigger frames, a cut-off file,
bytes no decoder takes) is found while decoding, and the job fails with a reason.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from services.common.errors import InvalidArgument
from services.media.config import MiB, VideoLimits

if TYPE_CHECKING:
    import av

# Renditions by the pixels of their short edge (720p and 360p for landscape; the width of portrait).
RENDITIONS = (720, 360)
# Peak rates x264 may reach (VBV), bits per second; CRF picks less for simple footage.
MAX_RATES = {720: 3_000_000, 360: 900_000}
AUDIO_RATE = 48_000
AUDIO_BITRATE = 128_000
HLS_SEGMENT_S = 4
# Keyframe at least this often (seconds): HLS segments can start on one.
GOP_S = 2
POSTER_AT_S = 1.0
# A decode that yields less than this share of the declared duration was cut short.
TRUNCATED_SHARE = 0.5
CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2": "mp4", "matroska,webm": "webm"}
VIDEO_CODECS = ("h264", "hevc", "vp8", "vp9", "av1")
ACCEPTED = "MP4, MOV or WebM with H.264, HEVC, VP8, VP9 or AV1"
CONTENT_TYPES = {"mp4": "video/mp4", "m3u8": "application/vnd.apple.mpegurl", "m4s": "video/mp4"}


class VideoRejected(InvalidArgument):
    """The video is not one we take; `reason` says why, `limit` (when one was passed) which one."""

    def __init__(self, reason: str, message: str, field_name: str = "file", limit: str = "") -> None:
        super().__init__(field_name, message, reason=reason)
        if limit:
            self.metadata["limit"] = limit


@dataclass(frozen=True)
class Probe:
    container: str
    video_codec: str
    audio_codec: str
    duration_ms: int
    fps: float
    # As stored, before the rotation.
    coded_width: int
    coded_height: int
    # Clockwise degrees to turn the stored pixels upright: 0, 90, 180 or 270.
    rotation: int

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_codec)

    @property
    def size(self) -> tuple[int, int]:
        """Upright width and height."""
        if self.rotation in (90, 270):
            return self.coded_height, self.coded_width
        return self.coded_width, self.coded_height

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Rendition:
    label: int
    width: int
    height: int
    bandwidth: int
    codecs: str


@dataclass
class Transcoded:
    duration_ms: int
    width: int
    height: int
    has_audio: bool
    renditions: list[Rendition] = field(default_factory=list)
    poster_jpeg: bytes = b""


def sniff(head: bytes) -> str | None:
    """"mp4" (MP4, MOV, 3GP) or "webm" (WebM, Matroska) from the first bytes, or None."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    return None


def clockwise(frame_or_rotation: float | None) -> int:
    """Clockwise degrees to turn the pixels upright, from FFmpeg's counter-clockwise display rotation."""
    if not frame_or_rotation:
        return 0
    return round(-frame_or_rotation / 90.0) * 90 % 360


def probe(path: str | Path) -> Probe:
    """What the header says; VideoRejected (CORRUPT_VIDEO, UNSUPPORTED_FORMAT) when it says nothing usable."""
    import av

    try:
        with av.open(str(path), "r", options={"probesize": str(8 * MiB)}) as container:
            fmt = CONTAINERS.get(container.format.name)
            if fmt is None:
                raise VideoRejected("UNSUPPORTED_FORMAT", f"{container.format.name} is not a video format we take: "
                                    f"send {ACCEPTED}")
            if not container.streams.video:
                raise VideoRejected("UNSUPPORTED_FORMAT", "the file has no video track")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            # The format's name, not the decoder's: AV1 is decoded by "libdav1d".
            codec = video.codec_context.codec.canonical_name
            if codec not in VIDEO_CODECS:
                raise VideoRejected("UNSUPPORTED_CODEC", f"the video is {codec}: send {ACCEPTED}")
            rate = video.average_rate or video.guessed_rate or video.base_rate
            durations = [container.duration / 1e6 if container.duration else 0.0]
            for stream in (video, audio):
                if stream is not None and stream.duration and stream.time_base:
                    durations.append(float(stream.duration * stream.time_base))
            rotation = 0
            for frame in container.decode(video):
                rotation = clockwise(frame.rotation)
                break
            return Probe(fmt, codec, audio.codec_context.name if audio else "", int(max(durations) * 1000),
                         float(rate) if rate else 0.0, video.codec_context.width, video.codec_context.height,
                         rotation)
    except VideoRejected:
        raise
    except (av.error.FFmpegError, ValueError, IndexError, ZeroDivisionError) as error:
        raise VideoRejected("CORRUPT_VIDEO", f"the video cannot be read: {error}") from None


def check(found: Probe, limits: VideoLimits) -> None:
    """VideoRejected naming the limit the header passes."""
    width, height = found.size
    if found.duration_ms > limits.max_duration_s * 1000:
        raise VideoRejected("VIDEO_TOO_LONG", f"the video lasts {found.duration_ms / 1000:.1f} s; at most "
                            f"{limits.max_duration_s:g} s are accepted", limit=f"{limits.max_duration_s:g}s")
    if width < 2 or height < 2:
        raise VideoRejected("CORRUPT_VIDEO", f"the video claims a size of {width}x{height} pixels")
    if max(width, height) > limits.max_long_edge or min(width, height) > limits.max_short_edge:
        raise VideoRejected("VIDEO_RESOLUTION_TOO_HIGH", f"the video is {width}x{height} pixels; at most "
                            f"{limits.max_long_edge}x{limits.max_short_edge} (4K) are accepted",
                            limit=f"{limits.max_long_edge}x{limits.max_short_edge}")
    if found.fps > limits.max_fps + 0.5:
        raise VideoRejected("VIDEO_FRAME_RATE_TOO_HIGH", f"the video runs at {found.fps:.1f} frames per second; "
                            f"at most {limits.max_fps:g} are accepted", limit=f"{limits.max_fps:g}fps")


def rendition_size(width: int, height: int, short_edge: int) -> tuple[int, int]:
    """The upright size with at most `short_edge` pixels on the short side (never more than now), even."""
    scale = min(1.0, short_edge / min(width, height))

    def even(x: float) -> int:  # rounded down: an odd edge never grows a pixel
        return max(2, int(x + 1e-6) // 2 * 2)

    return even(width * scale), even(height * scale)


def _graph(source: dict, rotation: int, width: int, height: int) -> av.filter.Graph:
    """Frames like `source` (width, height, format, time_base) upright (rotation applied), scaled to
    width x height (bilinear: for shrinking by at most 3, as good as bicubic here and much cheaper), yuv420p."""
    import av

    graph = av.filter.Graph()
    chain = [graph.add_buffer(**source)]
    turns = {90: [("transpose", "clock")], 180: [("hflip", ""), ("vflip", "")], 270: [("transpose", "cclock")]}
    for name, args in turns.get(rotation, []):
        chain.append(graph.add(name, args))
    chain.append(graph.add("scale", f"{width}:{height}:flags=bilinear"))
    chain.append(graph.add("format", "yuv420p"))
    chain.append(graph.add("buffersink"))
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()
    return graph


@dataclass
class _Output:
    label: int
    width: int
    height: int
    path: Path
    container: av.container.OutputContainer
    video: av.video.stream.VideoStream
    graph: av.filter.Graph
    audio: av.audio.stream.AudioStream | None = None
    fifo: av.AudioFifo | None = None
    audio_samples: int = 0

    def encode_video(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        """Scale and encode `frame` (None: flush); the scaled frames, for the next smaller rendition."""
        import av

        self.graph.push(frame)
        scaled = []
        while True:
            try:
                out = self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break
            out.pict_type = av.video.frame.PictureType.NONE
            self.container.mux(self.video.encode(out))
            scaled.append(out)
        if frame is None:
            self.container.mux(self.video.encode(None))
        return scaled

    def encode_audio(self, frame: av.AudioFrame | None) -> None:
        assert self.audio is not None and self.fifo is not None
        size = self.audio.codec_context.frame_size or 1024
        if frame is not None:
            frame.pts = None  # the fifo would insist on gapless timestamps; ours are counted below
            self.fifo.write(frame)
        while self.fifo.samples >= size or (frame is None and self.fifo.samples):
            chunk = self.fifo.read(min(size, self.fifo.samples))
            chunk.pts, chunk.time_base = self.audio_samples, Fraction(1, AUDIO_RATE)
            self.audio_samples += chunk.samples
            self.container.mux(self.audio.encode(chunk))
        if frame is None:
            self.container.mux(self.audio.encode(None))


def _open_output(path: Path, label: int, size: tuple[int, int], source: av.video.stream.VideoStream,
                 frames: dict, rotation: int, fps: Fraction, audio: bool, limits: VideoLimits) -> _Output:
    """A rendition's MP4, fed `frames` (the decoder's, or the larger rendition's: see _graph)."""
    import av

    container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height = size
    video.pix_fmt = "yuv420p"
    # NOTE: PyAV asks libx264 for sliced threads unless told; frame threads keep both cores busy
    # (a 30 s 1080p30 clip: 16.4 s → 11.5 s here, `make bench-video`).
    video.thread_type = "FRAME"
    video.codec_context.time_base = source.time_base
    video.time_base = source.time_base
    rate = MAX_RATES[label]
    video.options = {"preset": limits.preset, "crf": str(limits.crf), "maxrate": str(rate),
                     "bufsize": str(2 * rate), "g": str(max(1, round(float(fps) * GOP_S))),
                     "keyint_min": str(max(1, round(float(fps)))), "sc_threshold": "0", "profile": "high"}
    output = _Output(label, *size, path, container, video, _graph(frames, rotation, *size))
    if audio:
        output.audio = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        output.audio.bit_rate = AUDIO_BITRATE
        output.fifo = av.AudioFifo()
    return output


def transcode(src: str | Path, out_dir: str | Path, limits: VideoLimits, deadline: float,
              progress: Callable[[float], None] = lambda share: None) -> Transcoded:
    """Every output of the module's docstring into `out_dir`; VideoRejected for what the bytes hide."""
    import av

    out = Path(out_dir)
    found = probe(src)
    check(found, limits)
    width, height = found.size
    outputs: list[_Output] = []
    try:
        with av.open(str(src), "r") as container:
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            audio = container.streams.audio[0] if container.streams.audio else None
            fps = video.average_rate or video.guessed_rate or Fraction(30)
            if fps > limits.max_fps:
                fps = Fraction(limits.max_fps)
            # NOTE: the first rendition scales (and turns) the decoded frames, each next one the
            # frames of the one before: 360p from 720p costs a ninth of 360p from 4K.
            frames = {"width": video.codec_context.width, "height": video.codec_context.height,
                      "format": video.codec_context.pix_fmt, "time_base": video.time_base}
            rotation = found.rotation
            for label in RENDITIONS:
                size = rendition_size(width, height, label)
                outputs.append(_open_output(out / f"{label}.mp4", label, size, video, frames, rotation, fps,
                                            audio is not None, limits))
                frames = {"width": size[0], "height": size[1], "format": "yuv420p", "time_base": video.time_base}
                rotation = 0
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE) if audio else None
            result = Transcoded(0, width, height, audio is not None)
            poster = None
            last_s = 0.0
            declared_s = found.duration_ms / 1000
            max_pixels = limits.max_long_edge * limits.max_short_edge
            for packet in container.demux(*(s for s in (video, audio) if s is not None)):
                if time.monotonic() > deadline:
                    raise VideoRejected("VIDEO_TOO_COMPLEX", "the video took too long to transcode")
                for frame in packet.decode():
                    at = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else last_s
                    if at > limits.max_duration_s + 1:
                        raise VideoRejected("VIDEO_TOO_LONG", f"a track of the video runs past {at:.0f} s; at most "
                                            f"{limits.max_duration_s:g} s are accepted",
                                            limit=f"{limits.max_duration_s:g}s")
                    last_s = max(last_s, at)
                    if isinstance(frame, av.VideoFrame):
                        if frame.width * frame.height > max_pixels or frame.width > limits.max_long_edge:
                            raise VideoRejected("VIDEO_RESOLUTION_TOO_HIGH", f"a frame of the video is "
                                                f"{frame.width}x{frame.height} pixels, past the 4K limit",
                                                limit=f"{limits.max_long_edge}x{limits.max_short_edge}")
                        if (frame.width, frame.height) != (found.coded_width, found.coded_height):
                            raise VideoRejected("CORRUPT_VIDEO", "the video's frames change size midway")
                        if poster is None or (poster[0] < POSTER_AT_S and at >= POSTER_AT_S and
                                              at < declared_s):
                            poster = (at, frame.to_image())
                        _cascade(outputs, frame)
                        result.duration_ms = max(result.duration_ms, int(at * 1000))
                        if declared_s:
                            progress(min(1.0, at / declared_s))
                    elif resampler is not None:
                        for resampled in resampler.resample(frame):
                            for output in outputs:
                                output.encode_audio(resampled)
            if poster is None:
                raise VideoRejected("CORRUPT_VIDEO", "no frame of the video could be decoded")
            if declared_s > 2 and last_s < declared_s * TRUNCATED_SHARE:
                raise VideoRejected("VIDEO_TRUNCATED", f"the video declares {declared_s:.1f} s but its frames end "
                                    f"at {last_s:.1f} s: the file is cut short")
            frame_s = 1 / float(fps)
            result.duration_ms = int((result.duration_ms / 1000 + frame_s) * 1000)
            _cascade(outputs, None)
            for output in outputs:
                if output.audio is not None:
                    if resampler is not None:
                        for resampled in resampler.resample(None):
                            output.encode_audio(resampled)
                    output.encode_audio(None)
                output.container.close()
    except VideoRejected:
        raise
    except (av.error.FFmpegError, ValueError) as error:
        raise VideoRejected("CORRUPT_VIDEO", f"the video could not be decoded: {error}") from None
    finally:
        for output in outputs:
            # Closed already, or broken with the error in flight.
            with contextlib.suppress(Exception):
                output.container.close()
    turn = {90: 270, 180: 180, 270: 90}.get(found.rotation)  # PIL turns counter-clockwise
    image = poster[1].rotate(turn, expand=True) if turn else poster[1]
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=90)
    result.poster_jpeg = buffer.getvalue()
    result.renditions = [_hls(output, result.duration_ms) for output in outputs]
    (out / "master.m3u8").write_text(master_playlist(result.renditions))
    return result


def _cascade(outputs: list[_Output], frame: av.VideoFrame | None) -> None:
    """The frame into the first rendition, its scaled frames into the next, and so on (None flushes all)."""
    frames = [frame] if frame is not None else []
    for output in outputs:
        scaled = [f for given in frames for f in output.encode_video(given)]
        if frame is None:
            scaled.extend(output.encode_video(None))
        frames = scaled


def _hls(output: _Output, duration_ms: int) -> Rendition:
    """The rendition's MP4 remuxed (no re-encoding) into an HLS playlist over one fragmented MP4 file."""
    import av

    playlist = output.path.with_suffix(".m3u8")
    with av.open(str(output.path)) as source:
        codecs = [_avc1(source.streams.video[0].codec_context.extradata)]
        if source.streams.audio:
            codecs.append("mp4a.40.2")
        with av.open(str(playlist), "w", format="hls", options={
                "hls_time": str(HLS_SEGMENT_S), "hls_playlist_type": "vod", "hls_segment_type": "fmp4",
                "hls_flags": "single_file", "hls_segment_filename": str(output.path.with_suffix(".m4s"))}) as hls:
            mapping = {s.index: hls.add_stream_from_template(s) for s in source.streams if s.type in ("video", "audio")}
            for packet in source.demux():
                if packet.dts is None or packet.stream.index not in mapping:
                    continue
                packet.stream = mapping[packet.stream.index]
                hls.mux(packet)
    seconds = max(duration_ms / 1000, 0.1)
    # NOTE: BANDWIDTH is a peak: the average with room for the busier segments.
    bandwidth = int(output.path.stat().st_size * 8 / seconds * 1.5)
    return Rendition(output.label, output.width, output.height, bandwidth, ",".join(codecs))


def _avc1(extradata: bytes | None) -> str:
    """RFC 6381 name of the H.264 stream ("avc1.64001f") from its avcC record."""
    if extradata and len(extradata) >= 4 and extradata[0] == 1:
        return f"avc1.{extradata[1]:02x}{extradata[2]:02x}{extradata[3]:02x}"
    return "avc1.64001f"


def master_playlist(renditions: list[Rendition]) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for r in sorted(renditions, key=lambda r: -r.bandwidth):
        lines.append(f'#EXT-X-STREAM-INF:BANDWIDTH={r.bandwidth},RESOLUTION={r.width}x{r.height},'
                     f'CODECS="{r.codecs}"')
        lines.append(f"{r.label}.m3u8")
    return "\n".join(lines) + "\n"


def duration_limit_for(limits: VideoLimits, story: bool) -> float:
    return limits.max_story_duration_s if story else limits.max_duration_s
