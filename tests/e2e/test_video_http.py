"""Video through the gateway: resumable upload, asynchronous transcoding by the transcoder worker,
playback checked by decoding what the signed URLs serve, Range requests, limits, hostile files and
a transcoder killed mid-job. The clips are made here with PyAV (services.media.testclips)."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import av
import pytest
import pyvips

from services.media import testclips
from tests.e2e.http import Gateway, UserClient, path_of

pytestmark = pytest.mark.e2e


def put_all(user: UserClient, data: bytes, content_type: str = "video/mp4"):
    """A resumable upload of `data`, chunk by chunk; the :complete reply."""
    created = user.post("/v1/uploads", {"content_type": content_type, "size_bytes": str(len(data)),
                                        "sha256": hashlib.sha256(data).hexdigest()})
    assert created.status == 200, created.body
    upload_id, chunk = created.json["upload_id"], created.json["chunk_size"]
    for offset in range(0, len(data), chunk):
        r = user.gateway.request("PUT", f"/v1/uploads/{upload_id}?offset={offset}", raw=data[offset:offset + chunk],
                                 token=user.token, headers={"content-type": "application/octet-stream"})
        assert r.status == 200, r.body
    return user.post(f"/v1/uploads/{upload_id}:complete", {})


def settled(user: UserClient, media_id: str, timeout_s: float = 180.0) -> dict:
    """The media item once it is no longer PROCESSING (the transcoder is a worker of its own)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = user.get(f"/v1/media/{media_id}")
        assert r.status == 200, r.body
        if r.json["state"] != "PROCESSING":
            return r.json
        assert time.monotonic() < deadline, f"video {media_id} still PROCESSING after {timeout_s:g} s"
        time.sleep(0.2)


def uploaded_video(user: UserClient, path: Path) -> dict:
    done = put_all(user, path.read_bytes())
    assert done.status == 200, done.body
    assert done.json["kind"] == "VIDEO"
    return settled(user, done.json["id"])


def fetch(gateway: Gateway, url: str, **headers: str):
    return gateway.get(path_of(url), headers=headers)


def decoded(data: bytes) -> dict:
    """What a player finds in an MP4: codecs, size, duration, whether there is sound."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        return {"codec": video.codec_context.name, "width": video.codec_context.width,
                "height": video.codec_context.height, "duration_s": container.duration / 1e6,
                "audio": [s.codec_context.name for s in container.streams.audio], "frames": frames,
                "metadata": dict(container.metadata)}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    testclips.clip(folder / "bars.mp4", seconds=3, width=1280, height=720, fps=30,
                   metadata={"location": "+48.8577+002.2950/", "title": "secret"})
    testclips.clip(folder / "portrait.mp4", seconds=2, width=640, height=360, rotation=90, audio=False)
    testclips.clip(folder / "vfr.mp4", seconds=2, width=320, height=240, vfr=True)
    testclips.clip(folder / "small.webm", seconds=2, width=320, height=240, codec="libvpx-vp9",
                   container_format="webm", audio=False)
    return folder


@pytest.fixture(scope="module")
def bars(gateway, clips, new_user_module) -> tuple[UserClient, dict]:
    user = new_user_module()
    return user, uploaded_video(user, clips / "bars.mp4")


@pytest.fixture(scope="module")
def new_user_module(gateway):
    import itertools
    import os

    counter = itertools.count()

    def make() -> UserClient:
        n = f"v{os.getpid()}{next(counter)}"
        r = gateway.post("/v1/accounts", {"username": f"video{n}", "email": f"video{n}@example.com",
                                          "password": "correct horse", "display_name": f"Video {n}"})
        assert r.status == 200, r.body
        return UserClient(gateway, r.json)

    return make


# --- processing and playback -------------------------------------------------------------


def test_a_completed_video_upload_answers_processing_at_once(gateway, new_user, clips):
    done = put_all(new_user(), (clips / "vfr.mp4").read_bytes())
    assert done.status == 200, done.body
    assert (done.json["kind"], done.json["state"]) == ("VIDEO", "PROCESSING")


def test_a_video_becomes_ready_with_its_duration_size_and_audio(bars):
    _, media = bars
    assert media["state"] == "READY", media
    assert (media["width"], media["height"], media["has_audio"]) == (1280, 720, True)
    assert 2900 <= int(media["duration_ms"]) <= 3100
    assert media["failure_reason"] == ""


def test_both_renditions_decode_as_h264_and_aac_at_720p_and_360p(gateway, bars):
    _, media = bars
    renditions = {r["label"]: r for r in media["video"]["renditions"]}
    for label, size in ((720, (1280, 720)), (360, (640, 360))):
        r = fetch(gateway, renditions[label]["url"])
        assert r.status == 200 and r.headers["content-type"] == "video/mp4"
        found = decoded(r.body)
        assert (found["codec"], found["width"], found["height"], found["audio"]) == ("h264", *size, ["aac"])
        assert 2.9 <= found["duration_s"] <= 3.2
        assert found["frames"] >= 85


def test_renditions_carry_none_of_the_sources_metadata(gateway, bars):
    _, media = bars
    found = decoded(fetch(gateway, media["video"]["renditions"][0]["url"]).body)
    assert "location" not in found["metadata"] and "title" not in found["metadata"]


def test_mp4_is_faststart_its_index_before_the_frames(gateway, bars):
    _, media = bars
    body = fetch(gateway, media["video"]["renditions"][0]["url"]).body
    assert 0 <= body.find(b"moov") < body.find(b"mdat")


def test_hls_master_lists_both_renditions_and_every_uri_is_signed(gateway, bars):
    _, media = bars
    master = fetch(gateway, media["video"]["hls_url"])
    assert master.status == 200
    assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
    text = master.body.decode()
    assert "RESOLUTION=1280x720" in text and "RESOLUTION=640x360" in text
    query = media["video"]["hls_url"].split("?", 1)[1]
    base = media["video"]["hls_url"].split("master.m3u8")[0]
    playlists = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert playlists == [f"720.m3u8?{query}", f"360.m3u8?{query}"]
    media_playlist = fetch(gateway, base + playlists[0])
    assert media_playlist.status == 200 and "#EXT-X-ENDLIST" in media_playlist.body.decode()
    assert f'URI="720.m4s?{query}"' in media_playlist.body.decode()


def test_hls_segments_decode_as_the_rendition(gateway, bars):
    _, media = bars
    base = media["video"]["hls_url"].split("master.m3u8")[0]
    query = media["video"]["hls_url"].split("?", 1)[1]
    segments = fetch(gateway, f"{base}360.m4s?{query}")
    assert segments.status == 200
    assert decoded(segments.body)["height"] == 360


def test_the_poster_goes_through_the_photo_pipeline(gateway, bars):
    _, media = bars
    assert media["placeholder"] and sorted(media["sizes"]) == [150, 320, 640, 1080]
    assert len(media["variants"]) == 8
    big = next(v for v in media["variants"] if v["size"] == 1080 and v["format"] == "jpeg")
    image = pyvips.Image.new_from_buffer(fetch(gateway, big["url"]).body, "")
    assert (image.width, image.height) == (1080, 608)


def test_rotation_metadata_is_applied_to_the_pixels(gateway, new_user, clips):
    media = uploaded_video(new_user(), clips / "portrait.mp4")
    assert (media["state"], media["width"], media["height"], media["has_audio"]) == ("READY", 360, 640, False)
    found = decoded(fetch(gateway, media["video"]["renditions"][0]["url"]).body)
    assert (found["width"], found["height"], found["audio"]) == (360, 640, [])


def test_variable_frame_rate_keeps_its_duration(gateway, new_user, clips):
    media = uploaded_video(new_user(), clips / "vfr.mp4")
    assert media["state"] == "READY", media
    found = decoded(fetch(gateway, media["video"]["renditions"][1]["url"]).body)
    assert 1.8 <= found["duration_s"] <= 2.2
    # Never upscaled: a 240p source stays 240p in both renditions.
    assert {(r["width"], r["height"]) for r in media["video"]["renditions"]} == {(320, 240)}


def test_webm_vp9_in_becomes_h264_out(gateway, new_user, clips):
    user = new_user()
    done = put_all(user, (clips / "small.webm").read_bytes(), "video/webm")
    assert done.status == 200, done.body
    media = settled(user, done.json["id"])
    assert media["state"] == "READY", media
    assert decoded(fetch(gateway, media["video"]["renditions"][0]["url"]).body)["codec"] == "h264"


# --- serving -----------------------------------------------------------------------------


def test_a_range_request_gets_206_with_exactly_those_bytes(gateway, bars):
    _, media = bars
    url = media["video"]["renditions"][0]["url"]
    whole = fetch(gateway, url)
    assert whole.headers["accept-ranges"] == "bytes"
    assert "max-age=" in whole.headers["cache-control"]
    part = fetch(gateway, url, range="bytes=100-1099")
    assert part.status == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(whole.body)}"
    assert part.body == whole.body[100:1100]


def test_an_open_ended_and_a_suffix_range(gateway, bars):
    _, media = bars
    url = media["video"]["renditions"][1]["url"]
    whole = fetch(gateway, url).body
    assert fetch(gateway, url, range="bytes=1000-").body == whole[1000:]
    tail = fetch(gateway, url, range="bytes=-500")
    assert tail.status == 206 and tail.body == whole[-500:]


def test_a_range_past_the_end_is_416(gateway, bars):
    _, media = bars
    url = media["video"]["renditions"][1]["url"]
    size = len(fetch(gateway, url).body)
    r = fetch(gateway, url, range=f"bytes={size + 10}-")
    assert r.status == 416 and r.headers["content-range"] == f"bytes */{size}"


def test_a_tampered_video_url_is_403(gateway, bars):
    _, media = bars
    url = media["video"]["renditions"][0]["url"].replace("sig=", "sig=x")
    assert fetch(gateway, url).status == 403
