"""The image pipeline on the real-world corpus and on images made here for the cases it lacks."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
import pyvips
from PIL import Image as PILImage

from services.media import pipeline
from services.media.config import Limits
from services.media.pipeline import FORMATS, SIZES, ImageRejected, ProcessedImage, process
from tests.unit.media.conftest import ACCEPTED, EXPECTED, REJECTED, read

# Upright sizes of the accepted files (orientation 6 swaps nothing: hopper is square).
UPRIGHT = {"flower.jpg": (480, 360), "flower2.jpg": (300, 225), "icc_profile_big.jpg": (425, 250),
           "transparent.webp": (200, 150), "iss634.gif": (245, 245), "pil_sample_cmyk.jpg": (100, 100),
           "exif_gps.jpg": (8, 8)}
METADATA_FIELDS = ("exif-data", "xmp-data", "iptc-data", "icc-profile-data", "orientation")
# JPEG segments that carry metadata: APP1 (EXIF, XMP), APP2 (ICC), APP13 (IPTC).
JPEG_METADATA_MARKERS = {0xE1: "APP1 (EXIF/XMP)", 0xE2: "APP2 (ICC)", 0xED: "APP13 (IPTC)"}
WEBP_PIXEL_CHUNKS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}

_processed: dict[str, ProcessedImage] = {}


@pytest.fixture
def processed(corpus):
    """Each corpus file processed once for the whole module (they are deterministic)."""

    def get(name: str) -> ProcessedImage:
        if name not in _processed:
            _processed[name] = process(read(corpus, name))
        return _processed[name]

    return get


def decoded(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def variant(result: ProcessedImage, size: int, fmt: str) -> pipeline.RenderedVariant:
    return next(v for v in result.variants if (v.size, v.format) == (size, fmt))


def jpeg_segments(data: bytes) -> list[int]:
    """The markers of a JPEG's segments before the image data."""
    markers, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: metadata cannot follow in a baseline layout
            break
        markers.append(marker)
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return markers


def webp_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunks.append(fourcc)
        pos += 8 + size + (size & 1)
    return chunks


def mean_difference(a: pyvips.Image, b: pyvips.Image) -> float:
    return (a.cast("float") - b.cast("float")).abs().avg()


# --- the corpus: accepted ---------------------------------------------------------


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_file_gives_eight_variants(processed, name):
    result = processed(name)
    assert sorted((v.size, v.format) for v in result.variants) == sorted((s, f) for s in SIZES for f in FORMATS)


@pytest.mark.parametrize("name", ACCEPTED)
def test_variants_have_the_promised_sizes(processed, name):
    result = processed(name)
    long_side = max(result.width, result.height)
    for v in result.variants:
        image = decoded(v.data)
        assert (image.width, image.height) == (v.width, v.height), f"{v.size}.{v.format} lies about its size"
        if v.size == 150:
            assert v.width == v.height == min(150, result.width, result.height)
        else:
            assert max(v.width, v.height) == min(v.size, long_side), f"{v.size}.{v.format}"
            # Aspect kept to within rounding of one pixel.
            assert abs(v.width * result.height - v.height * result.width) <= max(result.width, result.height)


@pytest.mark.parametrize("name", ACCEPTED)
def test_no_output_carries_metadata(processed, name):
    for v in processed(name).variants:
        image = decoded(v.data)
        assert not [f for f in METADATA_FIELDS if image.get_typeof(f)], f"{v.size}.{v.format}"
        assert b"Exif" not in v.data and b"<x:xmpmeta" not in v.data
        if v.format == "jpeg":
            assert not set(jpeg_segments(v.data)) & set(JPEG_METADATA_MARKERS), f"{v.size}.jpeg"
        else:
            assert set(webp_chunks(v.data)) <= WEBP_PIXEL_CHUNKS, f"{v.size}.webp"


def test_gps_of_the_source_is_gone(corpus, processed):
    source = read(corpus, "exif_gps.jpg")
    assert decoded(source).get_typeof("exif-ifd3-GPSLatitude") and b"Exif" in source
    for v in processed("exif_gps.jpg").variants:
        image = decoded(v.data)
        assert not [f for f in image.get_fields() if "GPS" in f or f.startswith("exif")]


@pytest.mark.parametrize("name", ACCEPTED)
def test_outputs_are_8_bit_srgb(processed, name):
    for v in processed(name).variants:
        image = decoded(v.data)
        assert (image.interpretation, image.format) == ("srgb", "uchar"), f"{v.size}.{v.format}"
        assert image.bands in (3, 4)


@pytest.mark.parametrize("name, want", [(name, size) for name, size in UPRIGHT.items()])
def test_width_and_height_are_the_originals(processed, name, want):
    assert (processed(name).width, processed(name).height) == want


@pytest.mark.parametrize("name, turn", [("hopper_orientation_3.jpg", "rot180"), ("hopper_orientation_6.jpg", "rot90")])
def test_exif_orientation_is_applied(corpus, processed, name, turn):
    reference = decoded(read(corpus, "hopper.jpg"))
    stored = decoded(read(corpus, name))  # pixels as stored, before the orientation tag
    assert mean_difference(getattr(stored, turn)(), reference) < 10 < mean_difference(stored, reference)
    upright = decoded(variant(processed(name), 1080, "jpeg").data)
    assert mean_difference(upright, reference) < 10


def test_cmyk_is_converted_to_srgb(corpus, processed):
    source = decoded(read(corpus, "pil_sample_cmyk.jpg"))
    assert source.interpretation == "cmyk" and source.bands == 4
    expected = source.icc_transform("srgb", input_profile="cmyk", intent="relative")
    # Pillow's formula (255 - C - K ...) ignores colour management: what a careless conversion gives.
    careless = PILImage.open(io.BytesIO(read(corpus, "pil_sample_cmyk.jpg"))).convert("RGB")
    naive = pyvips.Image.new_from_memory(careless.tobytes(), careless.width, careless.height, 3, "uchar")
    out = decoded(variant(processed("pil_sample_cmyk.jpg"), 1080, "webp").data)
    # Lossy WebP of sharp red text leaves a few levels of error; the wrong conversion is far more.
    assert out.bands == 3 and mean_difference(out, expected) < 10 < mean_difference(out, naive)


def test_embedded_icc_profile_is_converted_to_srgb(corpus, processed):
    source = read(corpus, "icc_profile_big.jpg")
    managed = pyvips.Image.thumbnail_buffer(source, 320).icc_transform("srgb", embedded=True)
    unmanaged = pyvips.Image.thumbnail_buffer(source, 320)
    out = decoded(variant(processed("icc_profile_big.jpg"), 320, "webp").data)
    assert mean_difference(out, managed) < 3 < mean_difference(out, unmanaged)


def test_a_broken_icc_profile_does_not_cost_the_photo():
    plain = gradient().jpegsave_buffer()
    payload = b"ICC_PROFILE\x00\x01\x01" + b"garbage, not an ICC profile" * 20
    tagged = plain[:2] + b"\xff\xe2" + struct.pack(">H", len(payload) + 2) + payload + plain[2:]
    assert pipeline.read_header(tagged, Limits()).color_managed
    result = process(tagged)
    assert mean_difference(decoded(variant(result, 1080, "jpeg").data), decoded(plain)) < 3


def test_transparency_kept_in_webp_and_flattened_on_white_in_jpeg(corpus, processed):
    source = decoded(read(corpus, "transparent.webp"))
    assert source.hasalpha() and source[3].min() == 0  # has fully transparent pixels
    result = processed("transparent.webp")
    webp = decoded(variant(result, 1080, "webp").data)
    jpeg = decoded(variant(result, 1080, "jpeg").data)
    assert webp.bands == 4 and webp[3].min() == 0
    assert jpeg.bands == 3
    _, where = source[3].min(x=True, y=True)
    assert jpeg(where["x"], where["y"]) == pytest.approx([255, 255, 255], abs=8)


def test_animated_gif_becomes_its_first_frame(corpus, processed):
    source = read(corpus, "iss634.gif")
    assert decoded(source).get("n-pages") > 1
    first = pyvips.Image.gifload_buffer(source, page=0).flatten(background=[255, 255, 255])
    second = pyvips.Image.gifload_buffer(source, page=20).flatten(background=[255, 255, 255])
    out = decoded(variant(processed("iss634.gif"), 1080, "jpeg").data)
    assert mean_difference(out, first) < 6 < mean_difference(out, second)


def test_heic_is_decoded_through_pillow_heif(corpus, processed):
    with pytest.raises(pyvips.Error):  # the reason for the detour: no HEVC in the libvips binary
        decoded(read(corpus, "hopper.heif")).avg()
    out = decoded(variant(processed("hopper.heif"), 1080, "jpeg").data)
    assert processed("hopper.heif").format == "heic"
    assert mean_difference(out, decoded(read(corpus, "hopper.jpg"))) < 10


def test_capture_time_comes_from_exif(processed):
    assert processed("flower.jpg").captured_at == datetime(2003, 12, 14, 12, 1, 44, tzinfo=UTC)
    assert processed("hopper.png").captured_at is None


@pytest.mark.parametrize("name", ACCEPTED)
def test_placeholder_is_a_blurhash(processed, name):
    placeholder = processed(name).placeholder
    assert len(placeholder) == 4 + 2 * 12  # 4x3 or 3x4 components


# --- the corpus: rejected ----------------------------------------------------------


@pytest.mark.parametrize("name", REJECTED)
def test_rejected_file_raises_its_reason(corpus, name):
    with pytest.raises(ImageRejected) as rejected:
        process(read(corpus, name))
    assert rejected.value.reason == EXPECTED[name]
    assert rejected.value.metadata["field"] == "file"


def test_truncated_jpeg_says_so(corpus):
    with pytest.raises(ImageRejected, match="JPEG image is truncated or corrupt: .*premature end"):
        process(read(corpus, "truncated_jpeg.jpg"))


def test_decompression_bomb_is_refused_from_its_header(corpus, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("the bomb reached a decoder")

    monkeypatch.setattr(pipeline, "_decode_upright", no_decoding)
    monkeypatch.setattr(pipeline.pyvips.Image, "new_from_buffer", no_decoding)
    with pytest.raises(ImageRejected, match=r"65535x66601 pixels .* at most 100 megapixels"):
        process(read(corpus, "decompression_bomb.gif"))


# --- made here: what the corpus lacks ----------------------------------------------


def gradient(width: int = 64, height: int = 48) -> pyvips.Image:
    xy = pyvips.Image.xyz(width, height)
    return (xy[0] * 3).bandjoin([xy[1] * 5, xy[0] + xy[1]]).cast("uchar").copy(interpretation="srgb")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height and holds one empty IDAT: a bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("make", [
    lambda: (gradient().cast("ushort") * 256).copy(interpretation="rgb16").pngsave_buffer(),
    lambda: gradient().colourspace("b-w").pngsave_buffer(),
    lambda: gradient().colourspace("grey16").pngsave_buffer(),
    lambda: gradient().colourspace("b-w").jpegsave_buffer(),
], ids=["rgb16-png", "grey-png", "grey16-png", "grey-jpeg"])
def test_16_bit_and_grey_become_8_bit_srgb(make):
    for v in process(make()).variants:
        image = decoded(v.data)
        assert (image.interpretation, image.format, image.bands) == ("srgb", "uchar", 3)


def test_sixteen_bit_keeps_its_brightness():
    source = gradient()
    sixteen = (source.cast("ushort") * 257).copy(interpretation="rgb16").pngsave_buffer()
    out = decoded(variant(process(sixteen), 1080, "webp").data)
    assert mean_difference(out, source) < 3


def test_grey_with_alpha_keeps_alpha_in_webp():
    source = gradient().colourspace("b-w").bandjoin(128).pngsave_buffer()
    result = process(source)
    assert decoded(variant(result, 320, "webp").data).bands == 4
    assert decoded(variant(result, 320, "jpeg").data).bands == 3


def test_large_image_is_shrunk_and_never_upscaled():
    big = process(gradient(2400, 1200).jpegsave_buffer())
    assert [(v.width, v.height) for v in big.variants if v.format == "jpeg"] == [
        (150, 150), (320, 160), (640, 320), (1080, 540)]
    small = process(gradient(200, 100).jpegsave_buffer())
    assert [(v.width, v.height) for v in small.variants if v.format == "jpeg"] == [
        (100, 100), (200, 100), (200, 100), (200, 100)]


def test_panorama_square_is_cut_from_full_height():
    result = process(gradient(3000, 300).jpegsave_buffer())
    assert (variant(result, 150, "jpeg").width, variant(result, 150, "jpeg").height) == (150, 150)


def test_png_claiming_too_many_pixels_is_refused():
    with pytest.raises(ImageRejected) as rejected:
        process(png_header_only(20_000, 20_000))
    assert rejected.value.reason == "IMAGE_TOO_LARGE"


def test_more_bytes_than_the_limit_is_refused(corpus):
    data = read(corpus, "flower.jpg")
    with pytest.raises(ImageRejected) as rejected:
        process(data, Limits(max_bytes=len(data) - 1))
    assert rejected.value.reason == "IMAGE_TOO_LARGE"


@pytest.mark.parametrize("data", [b"", b"hello, world", b"BM" + bytes(100)], ids=["empty", "text", "bmp"])
def test_what_is_no_accepted_format_is_refused(data):
    with pytest.raises(ImageRejected) as rejected:
        process(data)
    assert rejected.value.reason in ("UNSUPPORTED_FORMAT", "EMPTY_FILE")


def test_a_format_libvips_knows_but_we_do_not_accept_is_refused():
    with pytest.raises(ImageRejected) as rejected:
        process(gradient().tiffsave_buffer())
    assert rejected.value.reason == "UNSUPPORTED_FORMAT"


def test_processing_past_the_deadline_stops(corpus):
    with pytest.raises(ImageRejected) as rejected:
        process(read(corpus, "flower.jpg"), Limits(timeout_s=0))
    assert rejected.value.reason == "IMAGE_TOO_COMPLEX"


# --- pieces -----------------------------------------------------------------------


@pytest.mark.parametrize("name, fmt", [("hopper.jpg", "jpeg"), ("hopper.png", "png"), ("hopper.gif", "gif"),
                                       ("hopper.webp", "webp"), ("hopper.avif", "avif"), ("hopper.heif", "heic")])
def test_sniff_reads_the_magic_numbers(corpus, name, fmt):
    assert pipeline.sniff(read(corpus, name)) == fmt


def test_gif_extent_counts_the_frame_offset(corpus):
    assert pipeline.gif_first_frame_extent(read(corpus, "decompression_bomb.gif")) == (65535, 65280 + 1321)
    assert pipeline.gif_first_frame_extent(read(corpus, "hopper.gif")) == (128, 128)


def exif_with(**tags: str) -> bytes:
    exif = PILImage.Exif()
    ifd = exif.get_ifd(0x8769)
    for tag, value in tags.items():
        ifd[{"original": 0x9003, "offset": 0x9011}[tag]] = value
    return exif.tobytes()


def test_capture_time_uses_the_offset_when_the_camera_wrote_one():
    when = pipeline.captured_at(exif_with(original="2024:05:01 10:00:00", offset="+02:00"))
    assert when == datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))


def test_capture_time_without_offset_reads_as_utc():
    when = pipeline.captured_at(exif_with(original="2024:05:01 10:00:00"))
    assert when == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("raw", [b"", b"Exif\x00\x00garbage", None])
def test_unreadable_exif_only_loses_the_capture_time(raw):
    assert pipeline.captured_at(raw) is None


def test_invalid_date_only_loses_the_capture_time():
    assert pipeline.captured_at(exif_with(original="0000:00:00 00:00:00")) is None
