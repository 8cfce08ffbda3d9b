"""Image processing with libvips: bytes in, upright 8-bit sRGB variants without metadata out.

Pure functions: no I/O besides decoding the bytes given. The service runs
`process` in a worker thread (libvips releases the GIL) under a semaphore.

What comes out of one upload:
  - 150x150, a square centre crop (smaller when the image is: never upscaled);
  - 320, 640 and 1080 pixels on the long edge (never upscaled);
  - each in JPEG and WebP: eight variants;
  - a BlurHash placeholder, the upright size and the EXIF capture time.
A media item used in a story also gets, when the story is posted, its full-screen
rendition (`full_screen`): 1080x1920 (9:16), the image scaled to cover it and cut
around what draws the eye (libvips' attention crop), in JPEG and WebP.

Formats are decided by the bytes (magic numbers), never by a declared type,
and only the loaders of the accepted formats ever see the bytes. Animated GIF
and WebP become a still of their first frame. Alpha is kept in WebP and
flattened onto white in JPEG. Every output is written with keep=none: no EXIF
(GPS included), XMP, IPTC or ICC profile; pixels are sRGB, which is what an
untagged image means on the web.

Limits are checked on the header, before any pixel is allocated: size in
bytes, then the canvas (for GIF also the first frame's extent, where
decompression bombs hide). Decoding runs under a deadline that libvips honours
by killing the evaluation.
"""

from __future__ import annotations

import math
import re
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pillow_heif
import pyvips
from PIL import Image as PILImage

from services.common.errors import InvalidArgument
from services.media import blurhash, edits
from services.media.config import Limits
from services.media.edits import Recipe

SQUARE = 150
LONG_EDGES = (320, 640, 1080)
SIZES = (SQUARE, *LONG_EDGES)
# The full-screen (9:16) rendition of a story's media, filed as size 1920 ("1920.jpg", "1920.webp").
FULL_SCREEN_WIDTH, FULL_SCREEN_HEIGHT = 1080, 1920
FULL_SCREEN = FULL_SCREEN_HEIGHT
FORMATS = ("jpeg", "webp")
CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp"}
# What each accepted format is called, for messages and for the record.
FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WebP", "avif": "AVIF", "heic": "HEIC"}
ACCEPTED = "JPEG, PNG, WebP, GIF, AVIF or HEIC"

JPEG_QUALITY = 82
WEBP_QUALITY = 80
WHITE = [255, 255, 255]
PLACEHOLDER_EDGE = 32
DEFAULT_LIMITS = Limits()
# Loader option for every libvips load: a file cut short is an error, not grey pixels.
LOAD_OPTIONS = "fail_on=truncated"

# The libvips loader each accepted format must get (checked after libvips picks one).
_LOADERS = {"jpeg": "jpegload", "png": "pngload", "gif": "gifload", "webp": "webpload", "avif": "heifload",
            "heic": "heifload"}
_TO_SRGB = {"export_profile": "srgb"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


class ImageRejected(InvalidArgument):
    """The bytes are not an image we accept; `reason` says why, the message says what to do."""

    def __init__(self, reason: str, message: str, field: str = "file") -> None:
        super().__init__(field, message, reason=reason)


@dataclass(frozen=True)
class RenderedVariant:
    size: int
    format: str
    width: int
    height: int
    data: bytes


@dataclass(frozen=True)
class ProcessedImage:
    # The source format, e.g. "jpeg" or "heic".
    format: str
    # Of the upright original, in pixels.
    width: int
    height: int
    captured_at: datetime | None
    placeholder: str
    variants: tuple[RenderedVariant, ...]


@dataclass(frozen=True)
class Header:
    format: str
    # As stored, before EXIF orientation.
    width: int
    height: int
    orientation: int
    exif: bytes | None
    # An ICC profile or CMYK pixels: convert to sRGB with lcms.
    color_managed: bool
    # HEIC (HEVC) goes through pillow-heif: the libvips binary has no HEVC decoder.
    via_pillow_heif: bool

    @property
    def upright_size(self) -> tuple[int, int]:
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)


# --- what the bytes are -------------------------------------------------------


def sniff(data: bytes) -> str | None:
    """The format the magic numbers announce, or None when it is none we accept."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and len(data) >= 16:
        box_size = max(16, min(struct.unpack(">I", data[:4])[0], 256, len(data)))
        brands = {data[8:12], *(data[i:i + 4] for i in range(16, box_size - 3, 4))}
        if brands & _AVIF_BRANDS:
            return "avif"
        if brands & _HEIF_BRANDS:
            return "heic"
    return None


def gif_first_frame_extent(data: bytes) -> tuple[int, int] | None:
    """The canvas a GIF's first frame needs: max of the logical screen and the frame's right/bottom edge.

    A decompression bomb declares a small screen and a huge frame (or one far
    off the screen); decoders that grow the canvas to fit would allocate it.
    None when the file ends before the first frame (the loader then says what is wrong).
    """
    if len(data) < 13:
        return None
    screen_w, screen_h, packed = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    while pos < len(data):
        block = data[pos]
        if block == 0x2C:  # image descriptor
            if pos + 10 > len(data):
                return None
            left, top, width, height = struct.unpack("<HHHH", data[pos + 1:pos + 9])
            return max(screen_w, left + width), max(screen_h, top + height)
        if block == 0x21:  # extension: label, then sub-blocks up to a zero length
            pos += 2
            while pos < len(data) and data[pos]:
                pos += data[pos] + 1
            pos += 1
            continue
        return None  # the trailer (0x3B) or junk: no frame
    return None


def corrupt(fmt: str, error: Exception) -> ImageRejected:
    """CORRUPT_IMAGE, with the decoder's own words when it had any."""
    detail = str(error.detail if isinstance(error, pyvips.Error) else error)
    lines = dict.fromkeys(line.strip() for line in detail.splitlines() if line.strip())
    message = f"the {FORMAT_NAMES.get(fmt, fmt)} image is truncated or corrupt"
    return ImageRejected("CORRUPT_IMAGE", f"{message}: {'; '.join(lines)}" if lines else message)


def read_header(data: bytes, limits: Limits) -> Header:
    """Format, size and the metadata we use, from the header alone; rejects what breaks the limits."""
    if not data:
        raise ImageRejected("EMPTY_FILE", "the image is empty: send its bytes")
    if len(data) > limits.max_bytes:
        raise ImageRejected(
            "IMAGE_TOO_LARGE", f"the image is {len(data)} bytes; at most {limits.max_bytes} bytes are accepted")
    fmt = sniff(data)
    if fmt is None:
        raise ImageRejected("UNSUPPORTED_FORMAT", f"not an image format we accept: send {ACCEPTED}")
    if fmt == "gif":
        extent = gif_first_frame_extent(data)
        if extent is not None:
            _check_pixels(*extent, limits)
    try:
        image = pyvips.Image.new_from_buffer(data, LOAD_OPTIONS)
        loader = image.get("vips-loader")
        if not loader.startswith(_LOADERS[fmt]):
            raise ImageRejected("UNSUPPORTED_FORMAT", f"not an image format we accept: send {ACCEPTED}")
        # Decide by the codec inside, not by the brand: a HEIF file may carry AV1.
        hevc = fmt in ("avif", "heic") and image.get("heif-compression") != "av1"
    except pyvips.Error as error:
        if fmt != "heic":
            raise corrupt(fmt, error) from None
        hevc = True
    if hevc:
        return _heif_header(data, fmt, limits)
    _check_pixels(image.width, image.height, limits)
    orientation = image.get("orientation") if image.get_typeof("orientation") else 1
    return Header(
        format=fmt, width=image.width, height=image.height,
        orientation=orientation if 1 <= orientation <= 8 else 1,
        exif=image.get("exif-data") if image.get_typeof("exif-data") else None,
        color_managed=bool(image.get_typeof("icc-profile-data")) or image.interpretation == "cmyk",
        via_pillow_heif=False,
    )


def _heif_header(data: bytes, fmt: str, limits: Limits) -> Header:
    try:
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
        width, height = heif.size
        exif, icc = heif.info.get("exif"), heif.info.get("icc_profile")
    except Exception as error:  # noqa: BLE001 - libheif's errors on hostile input vary
        raise corrupt(fmt, error) from None
    _check_pixels(width, height, limits)
    # libheif applies the file's own rotation and mirroring: no EXIF orientation on top.
    return Header(fmt, width, height, 1, exif, bool(icc), via_pillow_heif=True)


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width < 1 or height < 1:
        raise ImageRejected("CORRUPT_IMAGE", f"the image claims a size of {width}x{height} pixels")
    if width * height > limits.max_pixels:
        raise ImageRejected(
            "IMAGE_TOO_LARGE",
            f"the image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"at most {limits.max_pixels / 1e6:.0f} megapixels are accepted",
        )


# --- metadata we keep: the capture time ---------------------------------------

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def captured_at(exif: bytes | None) -> datetime | None:
    """EXIF DateTimeOriginal, with OffsetTimeOriginal when the camera wrote one, else read as UTC."""
    if not exif:
        return None
    try:
        parsed = PILImage.Exif()
        parsed.load(exif)
        ifd = parsed.get_ifd(_EXIF_IFD)
        raw = str(ifd.get(_DATETIME_ORIGINAL, "")).strip("\x00 ")
        when = datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
    except Exception:  # noqa: BLE001 - unreadable EXIF only loses the capture time
        return None
    tz = UTC
    offset = _OFFSET_RE.match(str(ifd.get(_OFFSET_TIME_ORIGINAL, "")).strip("\x00 "))
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        tz = timezone(sign * timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3))))
    return when.replace(tzinfo=tz)


# --- decoding under a deadline ------------------------------------------------


def _materialize(image: pyvips.Image, deadline: float) -> pyvips.Image:
    """Run the lazy pipeline into memory; libvips stops at the deadline (kill from its eval callback)."""
    image.set_progress(True)

    def on_eval(evaluating: pyvips.Image, _progress: object) -> None:
        if time.monotonic() > deadline:
            evaluating.set_kill(True)

    image.signal_connect("eval", on_eval)
    return image.copy_memory()


def _too_slow(limits: Limits) -> ImageRejected:
    return ImageRejected("IMAGE_TOO_COMPLEX", f"the image took longer than {limits.timeout_s:g} s to process")


def _decode_upright(data: bytes, header: Header, deadline: float) -> pyvips.Image:
    """The image at most 1080 on the long edge, upright, 8-bit sRGB."""
    # NOTE: libvips ignores an embedded profile it cannot use (broken, or for
    # another colour space), so colour management never costs a photo.
    image = _heif_thumbnail(data) if header.via_pillow_heif else _thumbnail(data, header.color_managed)
    return _srgb8(_materialize(image, deadline))


def _decode_edited(data: bytes, header: Header, deadline: float, recipe: Recipe) -> pyvips.Image:
    """The original edited by `recipe`, at most 1080 on the long edge, 8-bit sRGB.

    The original is shrunk on load only as far as the edited result allows:
    a crop of a quarter of the frame decodes at twice the scale of the whole.
    """
    width, height = header.upright_size
    scale = edits.decode_scale(recipe, width, height, LONG_EDGES[-1])
    box = (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))
    loaded = _heif_thumbnail(data, box) if header.via_pillow_heif else _thumbnail(data, header.color_managed, box)
    image = _srgb8(_materialize(loaded, deadline))
    edited = edits.apply(image, recipe, width, height)
    # Rounding at the shrink may leave the result a pixel over 1080.
    return _resized(edited, LONG_EDGES[-1]).copy_memory()


def _thumbnail(data: bytes, managed: bool, box: tuple[int, int] = (LONG_EDGES[-1], LONG_EDGES[-1])) -> pyvips.Image:
    """Shrink-on-load to fit `box` (never up), rotated upright by EXIF orientation."""
    return pyvips.Image.thumbnail_buffer(data, box[0], height=box[1], size="down",
                                         option_string=LOAD_OPTIONS, **(_TO_SRGB if managed else {}))


def _heif_thumbnail(data: bytes, box: tuple[int, int] = (LONG_EDGES[-1], LONG_EDGES[-1])) -> pyvips.Image:
    """HEVC through pillow-heif, pixels handed to libvips (no shrink-on-load for these)."""
    try:
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
        bands = {"RGB": 3, "RGBA": 4}.get(heif.mode)
        if bands is None:
            raise ImageRejected("UNSUPPORTED_FORMAT", f"HEIC images in mode {heif.mode} are not supported")
        (width, height), pixels, stride = heif.size, heif.data, heif.stride
        icc = heif.info.get("icc_profile")
    except ImageRejected:
        raise
    except Exception as error:  # noqa: BLE001
        raise corrupt("heic", error) from None
    row = width * bands
    if stride != row:
        view = memoryview(pixels)
        pixels = b"".join(view[y * stride:y * stride + row] for y in range(height))
    image = pyvips.Image.new_from_memory(pixels, width, height, bands, "uchar").copy(interpretation="srgb")
    if icc:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    return image.thumbnail_image(box[0], height=box[1], size="down", **(_TO_SRGB if icc else {}))


def _srgb8(image: pyvips.Image) -> pyvips.Image:
    """Three (or four, with alpha) bands of 8-bit sRGB, whatever came in (grey, 16-bit, ...)."""
    if image.format == "ushort" and image.interpretation not in ("rgb16", "grey16"):
        image = image.copy(interpretation="rgb16" if image.bands >= 3 else "grey16")
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    return image if image.format == "uchar" else image.cast("uchar")


# --- variants -----------------------------------------------------------------


def fit_long_edge(width: int, height: int, long_edge: int) -> tuple[int, int]:
    """The size with `long_edge` pixels on the long side (never more than now), aspect kept."""
    scale = min(1.0, long_edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resized(image: pyvips.Image, long_edge: int) -> pyvips.Image:
    width, height = fit_long_edge(image.width, image.height, long_edge)
    if (width, height) == (image.width, image.height):
        return image
    return image.thumbnail_image(width, height=height, size="force")


def _square(image: pyvips.Image) -> pyvips.Image:
    side = min(SQUARE, image.width, image.height)
    return image.thumbnail_image(side, height=side, crop="centre").copy_memory()


def _encode(image: pyvips.Image, fmt: str, size: int) -> bytes:
    if fmt == "webp":
        return image.webpsave_buffer(Q=WEBP_QUALITY, keep="none")
    if image.hasalpha():
        image = image.flatten(background=WHITE)
    return image.jpegsave_buffer(Q=JPEG_QUALITY, keep="none", optimize_coding=True, interlace=size >= 640)


def _placeholder(image: pyvips.Image) -> str:
    tiny = image.thumbnail_image(PLACEHOLDER_EDGE, height=PLACEHOLDER_EDGE)
    if tiny.hasalpha():
        tiny = tiny.flatten(background=WHITE)
    landscape = tiny.width >= tiny.height
    return blurhash.encode(tiny.write_to_memory(), tiny.width, tiny.height,
                           4 if landscape else 3, 3 if landscape else 4)


def process(data: bytes, limits: Limits = DEFAULT_LIMITS, recipe: Recipe | None = None) -> ProcessedImage:
    """Check, decode and render `data`, edited by `recipe` when given (services.media.edits); raises
    ImageRejected for anything but a good image, InvalidArgument for a recipe it cannot apply."""
    deadline = time.monotonic() + limits.timeout_s
    header = read_header(data, limits)
    result_size = header.upright_size
    if recipe is not None:
        edits.check(recipe, *result_size)
        result_size = edits.result_size(recipe, *result_size)
    try:
        scaled = _scaled(data, header, deadline, recipe)
        variants = []
        for size in SIZES:
            for fmt in FORMATS:
                if time.monotonic() > deadline:
                    raise _too_slow(limits)
                image = scaled[size]
                variants.append(RenderedVariant(size, fmt, image.width, image.height, _encode(image, fmt, size)))
        placeholder = _placeholder(scaled[320])
    except pyvips.Error as error:
        # Killed at the deadline, or the decoder found what the header hid.
        raise (_too_slow(limits) if time.monotonic() > deadline else corrupt(header.format, error)) from None
    return ProcessedImage(header.format, *result_size, captured_at(header.exif), placeholder, tuple(variants))


def full_screen(data: bytes, limits: Limits = DEFAULT_LIMITS, recipe: Recipe | None = None) -> ProcessedImage:
    """The 9:16 rendition (1080x1920, JPEG and WebP) of `data` (edited by `recipe`, when it is an edit's
    original): scaled to cover the frame, upscaled when smaller (a story fills the screen), and cut
    around the image's most salient part (attention: edges, skin tones, saturation), the centre when
    nothing stands out. Its `variants` are the two renditions; no placeholder or capture time."""
    deadline = time.monotonic() + limits.timeout_s
    header = read_header(data, limits)
    width, height = header.upright_size
    if recipe is not None:
        edits.check(recipe, width, height)
    try:
        if recipe is not None:
            image = _decode_edited(data, header, deadline, recipe)
        else:
            # Shrunk on load only as far as covering the frame allows.
            scale = min(1.0, max(FULL_SCREEN_WIDTH / width, FULL_SCREEN_HEIGHT / height))
            box = (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))
            loaded = _heif_thumbnail(data, box) if header.via_pillow_heif else \
                _thumbnail(data, header.color_managed, box)
            image = _srgb8(_materialize(loaded, deadline))
        cover = image.thumbnail_image(FULL_SCREEN_WIDTH, height=FULL_SCREEN_HEIGHT, crop="attention",
                                      size="both").copy_memory()
        variants = tuple(RenderedVariant(FULL_SCREEN, fmt, cover.width, cover.height, _encode(cover, fmt, FULL_SCREEN))
                         for fmt in FORMATS)
    except pyvips.Error as error:
        raise (_too_slow(limits) if time.monotonic() > deadline else corrupt(header.format, error)) from None
    return ProcessedImage(header.format, width, height, None, "", variants)


def render_look(jpeg: bytes, recipe: Recipe) -> bytes:
    """A JPEG of our own (a variant) with the recipe's look (filter, adjustments) on it: a filter's preview."""
    image = pyvips.Image.new_from_buffer(jpeg, "")
    return _encode(edits.apply_look(_srgb8(image), recipe).copy_memory(), "jpeg", 0)


def _scaled(data: bytes, header: Header, deadline: float, recipe: Recipe | None = None) -> dict[int, pyvips.Image]:
    """The image at each variant size, in memory."""
    big = _decode_upright(data, header, deadline) if recipe is None else _decode_edited(data, header, deadline, recipe)
    scaled = {1080: big}
    # Each smaller size from the next larger one: cheap, and sharp enough.
    scaled[640] = _resized(big, 640).copy_memory()
    scaled[320] = _resized(scaled[640], 320).copy_memory()
    scaled[SQUARE] = _square(scaled[320] if min(scaled[320].width, scaled[320].height) >= SQUARE else big)
    side = min(SQUARE, *header.upright_size)
    if scaled[SQUARE].width < side and not header.via_pillow_heif and recipe is None:
        # A panorama past 7:1 is under 150 tall at 1080 wide: cut the square from the source instead.
        square = pyvips.Image.thumbnail_buffer(data, side, height=side, crop="centre", option_string=LOAD_OPTIONS,
                                               **(_TO_SRGB if header.color_managed else {}))
        scaled[SQUARE] = _srgb8(_materialize(square, deadline))
    return scaled
