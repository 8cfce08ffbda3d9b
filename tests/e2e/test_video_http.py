"""Video through the gateway: resumable upload, asynchronous transcoding by the transcoder worker,
playback checked by decoding what the signed URLs serve, Range requests, limits, hostile files and
a transcoder killed mid-job. The clips are made here with PyAV (services.media.testclips)."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import time
from pathlib import Path

import av
import pytest
import pyvips

from services.media import testclips
from tests.e2e.http import Gateway, UserClient, path_of
from tests.e2e.media_files import small_jpeg
from tests.e2e.videos import put_all, settled

pytestmark = pytest.mark.e2e


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
    # The other inputs phones and cameras send: QuickTime (with sound), HEVC and AV1 in MP4.
    testclips.clip(folder / "small.mov", seconds=2, width=320, height=240, container_format="mov")
    testclips.clip(folder / "hevc.mp4", seconds=2, width=320, height=240, codec="libx265", audio=False)
    testclips.clip(folder / "av1.mp4", seconds=2, width=320, height=240, codec="libsvtav1", audio=False)
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


@pytest.mark.parametrize(("name", "content_type", "codec", "audio"), [
    ("small.mov", "video/quicktime", "h264", True), ("hevc.mp4", "video/mp4", "hevc", False),
    ("av1.mp4", "video/mp4", "av1", False)])
def test_mov_hevc_and_av1_in_become_h264_out(gateway, new_user, clips, name, content_type, codec, audio):
    source = (clips / name).read_bytes()
    with av.open(io.BytesIO(source)) as container:  # the clip is what it claims to be
        decoder = container.streams.video[0].codec_context.codec  # "libdav1d" decodes AV1
        assert codec in f"{decoder.name} {decoder.long_name.lower()}"
    user = new_user()
    done = put_all(user, source, content_type)
    assert done.status == 200, done.body
    media = settled(user, done.json["id"])
    assert (media["state"], media["has_audio"]) == ("READY", audio), media
    out = decoded(fetch(gateway, media["video"]["renditions"][0]["url"]).body)
    assert out["codec"] == "h264" and out["frames"] > 0 and out["audio"] == (["aac"] if audio else [])


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


# --- limits: what the header declares is refused at completion ---------------------------


def assert_error(r, status: int, reason: str) -> dict:
    assert r.status == status, (r.status, r.body)
    detail = r.json["details"][0]
    assert detail["reason"] == reason, r.body
    return detail


def test_a_video_over_the_size_limit_is_refused_when_the_upload_starts(new_user):
    r = new_user().post("/v1/uploads", {"content_type": "video/mp4", "size_bytes": str(200 * 1024 * 1024 + 1),
                                        "sha256": "0" * 64})
    assert assert_error(r, 400, "VIDEO_TOO_LARGE")["metadata"]["limit"] == str(200 * 1024 * 1024)


def test_a_video_longer_than_the_limit_is_a_400_naming_it(new_user, tmp_path):
    clip = testclips.clip(tmp_path / "long.mp4", seconds=9, width=64, height=48, fps=5, audio=False)
    detail = assert_error(put_all(new_user(), clip.read_bytes()), 400, "VIDEO_TOO_LONG")
    assert detail["metadata"]["limit"] == "8s"


def test_a_video_past_the_resolution_limit_is_a_400_naming_it(new_user, tmp_path):
    clip = testclips.clip(tmp_path / "wide.mp4", seconds=0.2, width=2048, height=1152, fps=10, audio=False)
    detail = assert_error(put_all(new_user(), clip.read_bytes()), 400, "VIDEO_RESOLUTION_TOO_HIGH")
    assert detail["metadata"]["limit"] == "1920x1080"


def test_a_video_past_the_frame_rate_limit_is_a_400_naming_it(new_user, tmp_path):
    clip = testclips.clip(tmp_path / "fast.mp4", seconds=1, width=64, height=48, fps=120, audio=False)
    detail = assert_error(put_all(new_user(), clip.read_bytes()), 400, "VIDEO_FRAME_RATE_TOO_HIGH")
    assert detail["metadata"]["limit"] == "60fps"


def test_a_zero_byte_video_cannot_start_an_upload(new_user):
    r = new_user().post("/v1/uploads", {"content_type": "video/mp4", "size_bytes": "0",
                                        "sha256": hashlib.sha256(b"").hexdigest()})
    assert r.status == 400 and r.json["details"][0]["metadata"]["field"] == "size_bytes"


def test_a_video_in_one_request_is_refused_pointing_to_resumable_uploads(new_user, clips):
    r = new_user().upload((clips / "vfr.mp4").read_bytes(), "video/mp4")
    assert r.status == 400


# --- hostile files end FAILED with a reason, and harm nothing else -----------------------


def failed(user: UserClient, data: bytes) -> dict:
    done = put_all(user, data)
    assert done.status == 200, done.body
    media = settled(user, done.json["id"])
    assert media["state"] == "FAILED", media
    assert media["failure_reason"]
    assert not media.get("video")
    return media


def test_garbage_behind_a_video_signature_ends_failed(new_user):
    media = failed(new_user(), b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(40_000))
    assert media["failure_reason"].startswith("CORRUPT_VIDEO")


def test_a_file_cut_before_its_index_ends_failed(new_user, clips):
    data = (clips / "bars.mp4").read_bytes()  # written with the index (moov) at the end
    assert failed(new_user(), data[: len(data) // 2])["failure_reason"].startswith("CORRUPT_VIDEO")


def test_a_file_cut_in_its_frames_ends_failed_as_truncated(gateway, new_user, bars, clips):
    _, media = bars
    whole = fetch(gateway, media["video"]["renditions"][0]["url"]).body  # faststart: index first
    cut = whole[: int(len(whole) * 0.3)]
    assert failed(new_user(), cut)["failure_reason"].startswith("VIDEO_TRUNCATED")


def test_a_track_that_runs_for_hours_ends_failed_as_too_long(new_user, tmp_path):
    """A WebM written as a live stream declares no duration; its silent audio runs for ten hours."""
    media = failed(new_user(), testclips.endless_audio(tmp_path / "ten-hours.webm", hours=10))
    assert media["failure_reason"].startswith("VIDEO_TOO_LONG")


def test_after_a_hostile_file_other_videos_still_process(gateway, new_user, clips):
    failed(new_user(), b"\x1a\x45\xdf\xa3" + os.urandom(20_000))
    media = uploaded_video(new_user(), clips / "vfr.mp4")
    assert media["state"] == "READY"


# --- the transcoder: killed mid-job, it resumes; posts wait for READY ---------------------


def job_taken(stack, media_id: str, timeout_s: float = 60.0) -> None:
    """Until a transcoder holds the video's job."""
    import psycopg

    from services.common.db import shard_schema
    from services.common.ids import shard_of

    deadline = time.monotonic() + timeout_s
    with psycopg.connect(stack.settings.database_for_shard(shard_of(int(media_id))), autocommit=True) as conn:
        while True:
            row = conn.execute(f"SELECT leased_by FROM {shard_schema(shard_of(int(media_id)))}.video_jobs "
                               "WHERE media_id = %s", (int(media_id),)).fetchone()
            if row and row[0]:
                return
            assert time.monotonic() < deadline, "no transcoder took the job"
            time.sleep(0.05)


@pytest.fixture
def transcoder(stack):
    """The stack's transcoder process; running again after the test whatever it did to it."""
    child = stack.child("video_transcoder-1")
    yield child
    if not child.running:
        child.spawn()


def test_a_transcoder_killed_mid_job_leaves_it_for_the_next_which_finishes_it(stack, gateway, new_user, clips,
                                                                              transcoder):
    user = new_user()
    done = put_all(user, (clips / "bars.mp4").read_bytes())
    job_taken(stack, done.json["id"])
    transcoder.stop(signal.SIGKILL)  # its child (the encoder) dies with it
    assert user.get(f"/v1/media/{done.json['id']}").json["state"] == "PROCESSING"
    transcoder.spawn()
    media = settled(user, done.json["id"])
    assert media["state"] == "READY", media
    assert decoded(fetch(gateway, media["video"]["renditions"][0]["url"]).body)["frames"] >= 85
    assert f"transcoding video {done.json['id']} (take 2)" in transcoder.log_path.read_text()


def test_a_post_with_a_processing_video_is_shown_to_others_once_it_is_ready(stack, new_user, clips, transcoder):
    author, follower = new_user(), new_user()
    assert follower.post(f"/v1/users/{author.id}/follow").status == 200
    photo = author.upload(small_jpeg(), "image/jpeg").json["id"]
    transcoder.stop()  # the video stays PROCESSING until it is back
    video = put_all(author, (clips / "vfr.mp4").read_bytes()).json["id"]
    created = author.post("/v1/posts", {"media_ids": [photo, video], "caption": "a carousel"})
    assert created.status == 200, created.body
    post_id = created.json["id"]
    assert [m["state"] for m in created.json["media"]] == ["READY", "PROCESSING"]
    assert author.get(f"/v1/posts/{post_id}").status == 200
    assert follower.get(f"/v1/posts/{post_id}").status == 404
    assert post_id not in [p["id"] for p in follower.get("/v1/feed").json.get("posts", [])]

    transcoder.spawn()
    assert settled(author, video)["state"] == "READY"
    deadline = time.monotonic() + 30
    while (seen := follower.get(f"/v1/posts/{post_id}")).status != 200:
        assert time.monotonic() < deadline, seen.body
        time.sleep(0.1)
    assert [m["kind"] for m in seen.json["media"]] == ["PHOTO", "VIDEO"]
    assert seen.json["media"][1]["video"]["hls_url"]
    in_feed = next(p for p in follower.get("/v1/feed").json["posts"] if p["id"] == post_id)
    # In a feed page the video says what it is and how long; the photo beside it leaves that out.
    assert [m.get("kind") for m in in_feed["media"]] == [None, "VIDEO"]
    assert in_feed["media"][1]["state"] == "READY" and int(in_feed["media"][1]["duration_ms"]) > 0


def test_a_story_takes_no_video_longer_than_the_story_limit(new_user, tmp_path):
    user = new_user()
    clip = testclips.clip(tmp_path / "six.mp4", seconds=6, width=64, height=48, fps=5, audio=False)
    media = uploaded_video(user, clip)
    assert media["state"] == "READY"
    r = user.post("/v1/stories", {"media_id": media["id"]})
    assert r.status == 400 and "VIDEO_TOO_LONG" in r.body.decode()
    assert user.post("/v1/posts", {"media_ids": [media["id"]]}).status == 200


def test_the_owner_hears_how_far_the_transcode_is_and_when_it_ended_on_the_live_stream(gateway, clips,
                                                                                       new_user_module):
    from tests.e2e.sse import SseStream

    owner = new_user_module()
    testclips.clip(clips / "long.mp4", seconds=8, width=960, height=540, fps=30)
    with SseStream(gateway.port, token=owner.token) as stream:
        stream.wait_for_heartbeat()
        done = put_all(owner, (clips / "long.mp4").read_bytes())
        assert done.status == 200, done.body
        media_id = done.json["id"]
        progress: list[int] = []
        deadline = time.monotonic() + 180
        while True:
            assert time.monotonic() < deadline, f"no media_processed; progress seen: {progress}"
            event = stream.next_event()
            if event.event == "media_progress":
                assert event.json["media_id"] == media_id and event.json["state"] == "PROCESSING"
                progress.append(event.json["percent"])
            elif event.event == "media_processed":
                assert event.json["media_id"] == media_id
                assert (event.json["state"], event.json["percent"]) == ("READY", 100)
                break
    assert progress, "no progress notice while an 8 s clip was transcoded"
    assert progress == sorted(progress) and all(0 <= p <= 100 for p in progress)
    assert owner.get(f"/v1/media/{media_id}").json["state"] == "READY"
