"""Photo edits: the recipe (crop or aspect, rotation, a named filter, adjustments) and how libvips applies it.

Pure functions over pyvips images and plain data; no I/O. An edit is always
applied to the kept original (services.media.pipeline.process with a
recipe), so an edit of an edit starts again from the original: a recipe is
complete by itself, never a delta on another edit.

Order of operations, each in the geometry of the step before:
  1. crop: a rectangle in pixels of the upright original (Media.width/height of
     the original; Media.edit.source_width/height of an edit);
  2. rotate: 0, 90, 180 or 270 degrees clockwise;
  3. aspect: the largest centred rectangle of SQUARE (1:1), PORTRAIT (4:5) or
     LANDSCAPE (1.91:1), instead of a crop (one or the other);
  4. colour: adjustments (brightness, contrast, saturation, warmth, fade) then the
     filter, as one colour matrix and one lookup table per channel;
  5. vignette (the filter's and the adjustment's), then sharpen (or soften).

Filters are data (FILTERS): a 3x3 colour matrix with offsets, tone curves per
channel and a vignette strength, so a new one is a table row.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pyvips

from services.common.errors import InvalidArgument

ROTATIONS = (0, 90, 180, 270)
ASPECTS = {"SQUARE": 1.0, "PORTRAIT": 4 / 5, "LANDSCAPE": 1.91}
ADJUSTMENTS = ("brightness", "contrast", "saturation", "warmth", "fade", "vignette", "sharpen")
ADJUSTMENT_RANGE = (-100, 100)
# Rec. 709 luma weights, on the sRGB values (the usual photo-editor approximation).
LUMA = (0.2126, 0.7152, 0.0722)
IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
NO_FILTER = "normal"
MASK_SHRINK = 4
SHARPEN_SCALE = 8


@dataclass(frozen=True)
class Crop:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Adjustments:
    brightness: int = 0
    contrast: int = 0
    saturation: int = 0
    warmth: int = 0
    fade: int = 0
    vignette: int = 0
    sharpen: int = 0


@dataclass(frozen=True)
class Recipe:
    crop: Crop | None = None
    aspect: str = ""
    rotate: int = 0
    filter: str = ""
    adjustments: Adjustments = field(default_factory=Adjustments)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        crop = data.get("crop")
        return cls(crop=Crop(**crop) if crop else None, aspect=data.get("aspect", ""),
                   rotate=int(data.get("rotate", 0)), filter=data.get("filter", ""),
                   adjustments=Adjustments(**data.get("adjustments", {})))


@dataclass(frozen=True)
class Edit:
    """What an edited media item keeps: where it came from and the recipe that made it."""

    # The original media item (it may since have been deleted: its bytes stay while this names them).
    source_media_id: int
    # The upright original's size, the space the crop is given in.
    source_width: int
    source_height: int
    recipe: Recipe

    def to_dict(self) -> dict:
        return {"source_media_id": self.source_media_id, "source_width": self.source_width,
                "source_height": self.source_height, "recipe": self.recipe.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Edit:
        return cls(int(data["source_media_id"]), int(data["source_width"]), int(data["source_height"]),
                   Recipe.from_dict(data["recipe"]))


# --- filters ------------------------------------------------------------------

Curve = tuple[tuple[int, int], ...]
LINEAR: Curve = ((0, 0), (255, 255))


@dataclass(frozen=True)
class Filter:
    name: str
    title: str
    # Applied to (R, G, B) as rows: out = matrix @ in + offset.
    matrix: tuple[tuple[float, float, float], ...] = IDENTITY
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # Tone curves, control points (in, out) on 0..255, after the matrix: one for all channels, then per channel.
    curve: Curve = LINEAR
    red: Curve = LINEAR
    green: Curve = LINEAR
    blue: Curve = LINEAR
    # Edge darkening, 0..1 (the share of brightness the corners lose).
    vignette: float = 0.0


def saturation_matrix(amount: float) -> tuple[tuple[float, float, float], ...]:
    """1: unchanged; 0: grey (luma in every channel); above 1: more colourful."""
    return tuple(tuple(amount * (i == j) + (1 - amount) * LUMA[j] for j in range(3)) for i in range(3))


def sepia_matrix(amount: float) -> tuple[tuple[float, float, float], ...]:
    sepia = ((0.393, 0.769, 0.189), (0.349, 0.686, 0.168), (0.272, 0.534, 0.131))
    return tuple(tuple(amount * sepia[i][j] + (1 - amount) * (i == j) for j in range(3)) for i in range(3))


def _mul(a, b):
    return tuple(tuple(sum(a[i][k] * b[k][j] for k in range(3)) for j in range(3)) for i in range(3))


def _scale_rows(matrix, scales):
    return tuple(tuple(v * s for v in row) for row, s in zip(matrix, scales))


FILTERS: dict[str, Filter] = {f.name: f for f in (
    Filter(NO_FILTER, "Normal"),
    # Brighter highlights, deeper shadows, more colour; cool shadows.
    Filter("clarendon", "Clarendon", matrix=saturation_matrix(1.3),
           curve=((0, 0), (64, 52), (128, 132), (192, 210), (255, 255)), blue=((0, 18), (128, 132), (255, 250))),
    # Washed out and a touch warm: lifted blacks, muted colour.
    Filter("gingham", "Gingham", matrix=saturation_matrix(0.75), offset=(6, 2, -4),
           curve=((0, 38), (128, 140), (255, 236))),
    # Black and white with punch, a light vignette.
    Filter("moon", "Moon", matrix=saturation_matrix(0.0),
           curve=((0, 12), (64, 54), (128, 134), (192, 214), (255, 255)), vignette=0.2),
    # Bright and airy: lifted mid-tones, slightly cool, a little less colour.
    Filter("lark", "Lark", matrix=saturation_matrix(0.9), offset=(-4, 2, 8),
           curve=((0, 10), (128, 160), (255, 255))),
    # Dusty vintage: strongly faded, warm, muted.
    Filter("reyes", "Reyes", matrix=saturation_matrix(0.65), offset=(10, 4, -8),
           curve=((0, 58), (128, 150), (255, 240))),
    # Warm and saturated, mild contrast.
    Filter("juno", "Juno", matrix=_scale_rows(saturation_matrix(1.35), (1.08, 1.0, 0.86)),
           curve=((0, 0), (64, 58), (192, 200), (255, 255))),
    # Warm, a little sepia, lightly faded.
    Filter("valencia", "Valencia", matrix=_mul(sepia_matrix(0.25), saturation_matrix(1.05)), offset=(8, 0, -10),
           curve=((0, 24), (255, 250))),
    # Scorched warm centre, dark burnt edges.
    Filter("toaster", "Toaster", matrix=_scale_rows(saturation_matrix(1.1), (1.12, 0.98, 0.82)), offset=(12, 0, -6),
           curve=((0, 20), (128, 136), (255, 245)), vignette=0.55),
    # Classic black and white, high contrast.
    Filter("inkwell", "Inkwell", matrix=saturation_matrix(0.0),
           curve=((0, 0), (48, 30), (128, 128), (208, 226), (255, 255))),
    # Pink, faded, soft: a rose cast over lifted shadows.
    Filter("nashville", "Nashville", matrix=saturation_matrix(0.9), offset=(14, -2, 8),
           curve=((0, 30), (128, 138), (255, 240)), red=((0, 10), (255, 255))),
)}


# --- checking a recipe ----------------------------------------------------------


def check(recipe: Recipe, width: int, height: int) -> None:
    """InvalidArgument naming the field for anything the recipe cannot mean on a width x height original."""
    if recipe.crop is not None and recipe.aspect:
        raise InvalidArgument("aspect", "give crop or aspect, not both: aspect crops the centre of the image",
                              reason="CROP_AND_ASPECT")
    if recipe.crop is not None:
        c = recipe.crop
        if c.width < 1 or c.height < 1:
            raise InvalidArgument("crop", f"crop must be at least 1x1 pixels, not {c.width}x{c.height}",
                                  reason="CROP_OUT_OF_BOUNDS")
        if c.x < 0 or c.y < 0 or c.x + c.width > width or c.y + c.height > height:
            raise InvalidArgument(
                "crop", f"crop {c.width}x{c.height} at ({c.x}, {c.y}) reaches outside the {width}x{height} "
                "original (coordinates are pixels of the upright original)", reason="CROP_OUT_OF_BOUNDS")
    if recipe.aspect and recipe.aspect not in ASPECTS:
        raise InvalidArgument("aspect", f"aspect {recipe.aspect!r} is not one of {', '.join(ASPECTS)}",
                              reason="UNKNOWN_ASPECT")
    if recipe.rotate not in ROTATIONS:
        raise InvalidArgument("rotate", f"rotate must be 0, 90, 180 or 270 (degrees clockwise), not {recipe.rotate}",
                              reason="INVALID_ROTATION")
    if recipe.filter and recipe.filter not in FILTERS:
        raise InvalidArgument("filter", f"there is no filter {recipe.filter!r}; GET /v1/media/filters lists them: "
                              f"{', '.join(FILTERS)}", reason="UNKNOWN_FILTER")
    low, high = ADJUSTMENT_RANGE
    for name in ADJUSTMENTS:
        value = getattr(recipe.adjustments, name)
        if not low <= value <= high:
            raise InvalidArgument(f"adjustments.{name}", f"adjustments.{name} is {value}; it must be from {low} "
                                  f"to {high}", reason="ADJUSTMENT_OUT_OF_RANGE")


# --- geometry -------------------------------------------------------------------


def _aspect_box(width: float, height: float, ratio: float) -> tuple[float, float]:
    """The largest width x height box of `ratio` (width / height) inside width x height."""
    return (width, width / ratio) if width / height < ratio else (height * ratio, height)


def result_size(recipe: Recipe, width: int, height: int) -> tuple[int, int]:
    """The edited image's size in pixels of the original (before any downscaling)."""
    w, h = (recipe.crop.width, recipe.crop.height) if recipe.crop else (width, height)
    if recipe.rotate in (90, 270):
        w, h = h, w
    if recipe.aspect:
        bw, bh = _aspect_box(w, h, ASPECTS[recipe.aspect])
        w, h = max(1, round(bw)), max(1, round(bh))
    return w, h


def decode_scale(recipe: Recipe, width: int, height: int, long_edge: int) -> float:
    """How far the original may be shrunk on load so the result still has `long_edge` on its long side."""
    return min(1.0, long_edge / max(result_size(recipe, width, height)))


def apply_geometry(image: pyvips.Image, recipe: Recipe, width: int, height: int) -> pyvips.Image:
    """Crop, rotate and aspect on `image`, the width x height original at whatever scale it was decoded."""
    if recipe.crop is not None:
        sx, sy = image.width / width, image.height / height
        c = recipe.crop
        left, top = min(image.width - 1, math.floor(c.x * sx)), min(image.height - 1, math.floor(c.y * sy))
        right = max(left + 1, min(image.width, math.ceil((c.x + c.width) * sx)))
        bottom = max(top + 1, min(image.height, math.ceil((c.y + c.height) * sy)))
        image = image.crop(left, top, right - left, bottom - top)
    if recipe.rotate:
        image = image.rot(f"d{recipe.rotate}")
    if recipe.aspect:
        bw, bh = _aspect_box(image.width, image.height, ASPECTS[recipe.aspect])
        bw, bh = max(1, round(bw)), max(1, round(bh))
        image = image.crop((image.width - bw) // 2, (image.height - bh) // 2, bw, bh)
    return image


# --- colour and tone ---------------------------------------------------------------


def _curve_values(points: Curve) -> list[float]:
    """256 outputs of a curve through `points` (monotone cubic Hermite, so no overshoot)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    n = len(points)
    slopes = [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(n - 1)]
    tangents = [slopes[0], *((0.0 if slopes[i - 1] * slopes[i] <= 0 else (slopes[i - 1] + slopes[i]) / 2)
                             for i in range(1, n - 1)), slopes[-1]]
    out, seg = [], 0
    for x in range(256):
        while seg < n - 2 and x > xs[seg + 1]:
            seg += 1
        x0, x1 = xs[seg], xs[seg + 1]
        t = min(1.0, max(0.0, (x - x0) / (x1 - x0)))
        h = x1 - x0
        y = ((2 * t**3 - 3 * t**2 + 1) * ys[seg] + (t**3 - 2 * t**2 + t) * h * tangents[seg]
             + (-2 * t**3 + 3 * t**2) * ys[seg + 1] + (t**3 - t**2) * h * tangents[seg + 1])
        out.append(y)
    return out


def _tone(value: float, adjustments: Adjustments) -> float:
    """Brightness, contrast and fade on one 0..255 value (the per-channel part of the adjustments)."""
    b, c, f = adjustments.brightness / 100, adjustments.contrast / 100, adjustments.fade / 100
    # Brightness as a gamma: +100 lifts mid-grey to about 180, -100 drops it to about 50, ends stay.
    v = 255 * (max(0.0, value) / 255) ** (2 ** (-1.25 * b))
    v = (v - 128) * (1 + c) + 128
    if f > 0:  # lift the black point (and pull the white point down a little): a matte look
        v = 70 * f + v * (1 - 70 * f / 255 - 0.08 * f)
    elif f < 0:  # crush the blacks
        v = (v + 40 * f) / (1 + 40 * f / 255)
    return min(255.0, max(0.0, v))


def _lut(recipe: Recipe, flt: Filter) -> pyvips.Image:
    """One 256x1 three-band lookup table: the adjustments' tone, then the filter's curves."""
    common = _curve_values(flt.curve)
    bands = []
    for own in (flt.red, flt.green, flt.blue):
        channel = _curve_values(own)
        bands.append([min(255.0, max(0.0, channel[round(common[round(_tone(x, recipe.adjustments))])]))
                      for x in range(256)])
    luts = [pyvips.Image.new_from_list([values]) for values in bands]
    return luts[0].bandjoin(luts[1:]).cast("uchar")


def _matrix(recipe: Recipe, flt: Filter) -> tuple[tuple[tuple[float, ...], ...], tuple[float, float, float]]:
    """The adjustments' saturation and warmth, then the filter's matrix: one 3x3 matrix and offsets."""
    a = recipe.adjustments
    sat = 1 + a.saturation / 100
    warm = a.warmth / 100
    adjust = _scale_rows(saturation_matrix(sat), (1 + 0.12 * warm, 1 + 0.02 * warm, 1 - 0.15 * warm))
    warm_offset = (18 * warm, 4 * warm, -18 * warm)
    matrix = _mul(flt.matrix, adjust)
    offset = tuple(sum(flt.matrix[i][k] * warm_offset[k] for k in range(3)) + flt.offset[i] for i in range(3))
    return matrix, offset


def _vignette_mask(width: int, height: int, strength: float) -> pyvips.Image:
    """1 in the centre falling towards the corners by `strength` (negative: rising, lighter edges).

    Worked out at a quarter of the size and zoomed (4x4 blocks differ by at most
    about one level of 255 at full strength): a full-size float pass of the
    formula, or a smooth resize, costs more than the rest of the look.
    """
    small_w, small_h = max(2, math.ceil(width / MASK_SHRINK)), max(2, math.ceil(height / MASK_SHRINK))
    xy = pyvips.Image.xyz(small_w, small_h)
    dx = (xy[0] - (small_w - 1) / 2) / ((small_w - 1) / 2)
    dy = (xy[1] - (small_h - 1) / 2) / ((small_h - 1) / 2)
    r2 = (dx * dx + dy * dy) / 2  # 0 in the centre, 1 in the corners
    mask = 1 - strength * (r2 ** 1.5)
    return mask.zoom(MASK_SHRINK, MASK_SHRINK).crop(0, 0, width, height)


def _sharpen_kernel(amount: float) -> pyvips.Image:
    """A 3x3 integer sharpening kernel (centre minus its four neighbours), `amount` 0..1."""
    k = max(1, round(3 * amount))
    return pyvips.Image.new_from_array([[0, -k, 0], [-k, SHARPEN_SCALE + 4 * k, -k], [0, -k, 0]],
                                       scale=SHARPEN_SCALE)


def apply_look(image: pyvips.Image, recipe: Recipe) -> pyvips.Image:
    """Adjustments and filter on an 8-bit sRGB image (alpha kept as it is)."""
    flt = FILTERS[recipe.filter or NO_FILTER]
    a = recipe.adjustments
    if flt == FILTERS[NO_FILTER] and a == Adjustments():
        return image
    alpha = image[3] if image.bands == 4 else None
    rgb = image[0:3] if image.bands >= 3 else image.bandjoin([image, image])
    matrix, offset = _matrix(recipe, flt)
    if matrix != IDENTITY or any(offset):
        rgb = rgb.recomb(pyvips.Image.new_from_array([list(r) for r in matrix]))
        if any(offset):
            rgb = rgb.linear([1, 1, 1], list(offset))
        rgb = rgb.cast("uchar")  # clips to 0..255
    rgb = rgb.maplut(_lut(recipe, flt))
    vignette = flt.vignette + 0.6 * a.vignette / 100
    if vignette:
        rgb = (rgb * _vignette_mask(rgb.width, rgb.height, vignette)).cast("uchar")
    if a.sharpen > 0:
        rgb = rgb.conv(_sharpen_kernel(a.sharpen / 100), precision="integer")
    elif a.sharpen < 0:
        rgb = rgb.gaussblur(2.0 * -a.sharpen / 100, min_ampl=0.1).cast("uchar")
    rgb = rgb.copy(interpretation="srgb")
    if rgb.format != "uchar":
        rgb = rgb.cast("uchar")
    return rgb.bandjoin(alpha) if alpha is not None else rgb


def apply(image: pyvips.Image, recipe: Recipe, width: int, height: int) -> pyvips.Image:
    """The whole recipe on `image`, the upright width x height original at any scale."""
    return apply_look(apply_geometry(image, recipe, width, height), recipe)
