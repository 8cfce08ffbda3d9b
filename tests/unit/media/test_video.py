"""Video's pure parts: rendition sizes, rotation, Range headers, playlist signing, limits from a probe."""

from __future__ import annotations

import pytest

from services.media.config import VideoLimits
from services.media.service import parse_range, sign_playlist
from services.media.video import Probe, VideoRejected, check, clockwise, master_playlist, rendition_size, sniff


@pytest.mark.parametrize(("size", "short_edge", "expected"), [
    ((1920, 1080), 720, (1280, 720)),
    ((1920, 1080), 360, (640, 360)),
    ((1080, 1920), 720, (720, 1280)),  # portrait: the width is the short edge
    ((320, 240), 720, (320, 240)),  # never upscaled
    ((853, 479), 360, (640, 360)),  # even dimensions, rounded down
    ((3, 3), 360, (2, 2)),
])
def test_rendition_size(size, short_edge, expected):
    assert rendition_size(*size, short_edge) == expected


@pytest.mark.parametrize(("ffmpeg_rotation", "clockwise_degrees"), [(None, 0), (0, 0), (-90, 90), (90, 270),
                                                                    (180, 180), (-180, 180), (-89.9, 90)])
def test_display_rotation_as_clockwise_turns(ffmpeg_rotation, clockwise_degrees):
    assert clockwise(ffmpeg_rotation) == clockwise_degrees


@pytest.mark.parametrize(("header", "expected"), [
    ("", None), ("bytes=0-99", (0, 99)), ("bytes=100-", (100, 999)), ("bytes=-10", (990, 999)),
    ("bytes=900-5000", (900, 999)), ("bytes=1000-", (-1, -1)), ("bytes=50-40", (-1, -1)),
    ("bytes=0-1,5-9", None), ("items=0-1", None), ("bytes=-0", (-1, -1)),
])
def test_range_header(header, expected):
    assert parse_range(header, 1000) == expected


def test_every_uri_of_a_playlist_gets_the_signature():
    playlist = "#EXTM3U\n#EXT-X-MAP:URI=\"720.m4s\",BYTERANGE=\"1355@0\"\n#EXTINF:3.0,\n720.m4s\n#EXT-X-ENDLIST\n"
    signed = sign_playlist(playlist, "exp=1&sig=abc")
    assert 'URI="720.m4s?exp=1&sig=abc"' in signed
    assert "\n720.m4s?exp=1&sig=abc\n" in signed
    assert signed.count("sig=") == 2


def test_master_playlist_lists_the_renditions_highest_first():
    from services.media.video import Rendition
    text = master_playlist([Rendition(360, 640, 360, 500_000, "avc1.64001e"),
                            Rendition(720, 1280, 720, 2_000_000, "avc1.64001f,mp4a.40.2")])
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and lines[4] == "720.m3u8" and lines[6] == "360.m3u8"
    assert 'RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"' in lines[3]


def test_sniff_knows_mp4_mov_and_webm_by_their_first_bytes():
    assert sniff(b"\x00\x00\x00\x18ftypmp42") == "mp4"
    assert sniff(b"\x00\x00\x00\x08wide") == "mp4"
    assert sniff(b"\x1a\x45\xdf\xa3\x01") == "webm"
    assert sniff(b"\xff\xd8\xff\xe0") is None


def probe(**overrides) -> Probe:
    fields = {"container": "mp4", "video_codec": "h264", "audio_codec": "aac", "duration_ms": 10_000, "fps": 30.0,
              "coded_width": 1920, "coded_height": 1080, "rotation": 0, **overrides}
    return Probe(**fields)


@pytest.mark.parametrize(("overrides", "reason", "limit"), [
    ({"duration_ms": 90_001}, "VIDEO_TOO_LONG", "90s"),
    ({"coded_width": 4097}, "VIDEO_RESOLUTION_TOO_HIGH", "4096x2160"),
    ({"coded_width": 2161, "coded_height": 2161}, "VIDEO_RESOLUTION_TOO_HIGH", "4096x2160"),
    ({"fps": 61}, "VIDEO_FRAME_RATE_TOO_HIGH", "60fps"),
])
def test_limits_from_the_header(overrides, reason, limit):
    with pytest.raises(VideoRejected) as refused:
        check(probe(**overrides), VideoLimits())
    assert (refused.value.reason, refused.value.metadata["limit"]) == (reason, limit)


def test_a_portrait_4k_video_is_within_the_limits():
    check(probe(coded_width=3840, coded_height=2160, rotation=90, fps=60, duration_ms=90_000), VideoLimits())
    assert probe(coded_width=3840, coded_height=2160, rotation=90).size == (2160, 3840)
