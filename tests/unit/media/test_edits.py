"""Photo edits (services.media.edits, and the pipeline with a recipe), judged by pixel statistics.

The looks are measured, never eyeballed: mean channel values (warmth), mean
HSV saturation, the darkest tones (fade), the spread of luma (contrast), the
corners against the centre (vignette) and the energy of a Laplacian
(sharpness), each against the unedited image.
"""

from __future__ import annotations

import pytest
import pyvips

from services.common.errors import InvalidArgument
from services.media import edits, pipeline
from services.media.bench import make_photo
from services.media.edits import FILTERS, Adjustments, Crop, Recipe

PHOTO_SIZE = (640, 480)


def make_scene(width: int, height: int) -> pyvips.Image:
    """Smooth colour gradients (every hue, moderate saturation, no clipping) under a little grain."""
    xy = pyvips.Image.xyz(width, height)
    fx, fy = xy[0] / width, xy[1] / height
    grain = pyvips.Image.gaussnoise(width, height, sigma=6, mean=0, seed=3)
    rgb = (40 + 150 * fx + grain).bandjoin([40 + 150 * fy + grain, 190 - 130 * fx + grain])
    return rgb.cast("uchar").copy(interpretation="srgb")


@pytest.fixture(scope="module")
def photo() -> pyvips.Image:
    """A colourful, grainy 640x480 photo-like image, 8-bit sRGB, as a JPEG decodes."""
    return pyvips.Image.new_from_buffer(make_scene(*PHOTO_SIZE).jpegsave_buffer(Q=90), "").copy_memory()


@pytest.fixture(scope="module")
def grey() -> pyvips.Image:
    """A flat mid-grey 400x300 image: any difference between corners and centre is the vignette's."""
    return (pyvips.Image.black(400, 300, bands=3) + 128).cast("uchar").copy(interpretation="srgb").copy_memory()


def look(image: pyvips.Image, **recipe) -> pyvips.Image:
    return edits.apply_look(image, Recipe(**recipe)).copy_memory()


def adjusted(image: pyvips.Image, **adjustments: int) -> pyvips.Image:
    return look(image, adjustments=Adjustments(**adjustments))


def means(image: pyvips.Image) -> list[float]:
    return [image[i].avg() for i in range(3)]


def saturation(image: pyvips.Image) -> float:
    return image.colourspace("hsv")[1].avg()


def luma(image: pyvips.Image) -> pyvips.Image:
    return image.recomb(pyvips.Image.new_from_array([list(edits.LUMA)]))


def warmth(image: pyvips.Image) -> float:
    red, _, blue = means(image)
    return red - blue


def darkest(image: pyvips.Image) -> float:
    """The 1st percentile of luma."""
    return luma(image).cast("uchar").percent(1)


def corner_to_centre(image: pyvips.Image) -> float:
    w, h, edge = image.width, image.height, 30
    corners = [image.crop(x, y, edge, edge).avg() for x in (0, w - edge) for y in (0, h - edge)]
    return (sum(corners) / 4) / image.crop(w // 2 - edge // 2, h // 2 - edge // 2, edge, edge).avg()


def sharpness(image: pyvips.Image) -> float:
    laplacian = pyvips.Image.new_from_array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]])
    return luma(image).conv(laplacian).abs().avg()


# --- the filters --------------------------------------------------------------


def test_there_are_at_least_eight_named_filters_besides_normal():
    assert len([name for name in FILTERS if name != edits.NO_FILTER]) >= 8


def test_normal_leaves_the_pixels_alone(photo):
    assert (look(photo, filter="normal") - photo).abs().max() == 0


@pytest.mark.parametrize("name", [n for n in FILTERS if n != edits.NO_FILTER])
def test_every_filter_changes_the_image(photo, name):
    assert (look(photo, filter=name) - photo).abs().avg() > 4


@pytest.mark.parametrize("name", ["moon", "inkwell"])
def test_black_and_white_filters_leave_no_colour(photo, name):
    result = look(photo, filter=name)
    assert saturation(result) < 1
    assert (result[0] - result[2]).abs().max() <= 1


@pytest.mark.parametrize("name", ["clarendon", "juno"])
def test_vivid_filters_raise_saturation(photo, name):
    assert saturation(look(photo, filter=name)) > saturation(photo) * 1.15


@pytest.mark.parametrize("name", ["gingham", "reyes", "lark"])
def test_muted_filters_lower_saturation(photo, name):
    assert saturation(look(photo, filter=name)) < saturation(photo) * 0.92


@pytest.mark.parametrize("name", ["juno", "valencia", "toaster", "reyes"])
def test_warm_filters_move_red_above_blue(photo, name):
    assert warmth(look(photo, filter=name)) > warmth(photo) + 8


def test_lark_is_cooler_and_brighter(photo):
    result = look(photo, filter="lark")
    assert warmth(result) < warmth(photo) - 5
    assert luma(result).avg() > luma(photo).avg() + 10


def test_nashville_has_a_rose_cast(photo):
    red, green, blue = means(look(photo, filter="nashville"))
    r0, g0, _ = means(photo)
    assert red - green > r0 - g0 + 10 and blue > green


@pytest.mark.parametrize("name", ["gingham", "reyes", "valencia", "nashville"])
def test_faded_filters_lift_the_blacks(photo, name):
    assert darkest(look(photo, filter=name)) > darkest(photo) + 15


def test_clarendon_deepens_shadows_and_spreads_tones(photo):
    assert luma(look(photo, filter="clarendon")).deviate() > luma(photo).deviate()


@pytest.mark.parametrize("name", ["toaster", "moon"])
def test_vignette_filters_darken_the_corners(grey, name):
    assert corner_to_centre(look(grey, filter=name)) < 0.85


def test_filters_without_vignette_keep_corners_as_the_centre(grey):
    assert corner_to_centre(look(grey, filter="juno")) == pytest.approx(1.0, abs=0.01)


def test_filters_keep_alpha(photo):
    with_alpha = photo.bandjoin(128).copy(interpretation="srgb")
    result = look(with_alpha, filter="moon")
    assert result.bands == 4 and result[3].avg() == 128


# --- the adjustments ----------------------------------------------------------


def test_brightness_moves_the_mean_both_ways(photo):
    base = luma(photo).avg()
    assert luma(adjusted(photo, brightness=50)).avg() > base + 15
    assert luma(adjusted(photo, brightness=-50)).avg() < base - 15


def test_contrast_spreads_or_flattens_tones(photo):
    base = luma(photo).deviate()
    assert luma(adjusted(photo, contrast=60)).deviate() > base * 1.4
    assert luma(adjusted(photo, contrast=-100)).deviate() < 1


def test_saturation_minus_100_is_grey_and_plus_more_colour(photo):
    assert saturation(adjusted(photo, saturation=-100)) < 1
    assert saturation(adjusted(photo, saturation=60)) > saturation(photo) * 1.3


def test_warmth_moves_red_against_blue(photo):
    assert warmth(adjusted(photo, warmth=100)) > warmth(photo) + 30
    assert warmth(adjusted(photo, warmth=-100)) < warmth(photo) - 30


def test_fade_lifts_or_crushes_the_blacks(photo):
    assert darkest(adjusted(photo, fade=100)) >= 60
    assert darkest(adjusted(photo, fade=-100)) < darkest(photo) - 15


def test_vignette_darkens_or_lightens_the_corners(grey):
    assert corner_to_centre(adjusted(grey, vignette=100)) < 0.6
    assert corner_to_centre(adjusted(grey, vignette=-100)) > 1.2


def test_sharpen_raises_and_softening_lowers_detail(photo):
    base = sharpness(photo)
    assert base * 1.5 < sharpness(adjusted(photo, sharpen=50)) < sharpness(adjusted(photo, sharpen=100))
    assert sharpness(adjusted(photo, sharpen=-100)) < base * 0.6


# --- geometry -----------------------------------------------------------------


def marked() -> pyvips.Image:
    """400x200 black, a white 40x40 square in the top-left corner."""
    image = pyvips.Image.black(400, 200, bands=3).draw_rect([255, 255, 255], 0, 0, 40, 40, fill=True)
    return image.cast("uchar").copy(interpretation="srgb")


def test_crop_keeps_the_rectangle_in_original_pixels():
    result = edits.apply_geometry(marked(), Recipe(crop=Crop(20, 20, 100, 50)), 400, 200)
    assert (result.width, result.height) == (100, 50)
    assert result.crop(0, 0, 20, 20).avg() == 255 and result.crop(30, 30, 20, 20).avg() == 0


def test_crop_is_scaled_when_the_original_was_decoded_smaller():
    half = marked().resize(0.5)
    result = edits.apply_geometry(half, Recipe(crop=Crop(0, 0, 200, 100)), 400, 200)
    assert (result.width, result.height) == (100, 50)


@pytest.mark.parametrize(("angle", "corner"), [(90, "top-right"), (180, "bottom-right"), (270, "bottom-left")])
def test_rotation_is_clockwise(angle, corner):
    result = edits.apply_geometry(marked(), Recipe(rotate=angle), 400, 200)
    assert (result.width, result.height) == ((200, 400) if angle in (90, 270) else (400, 200))
    w, h = result.width, result.height
    spots = {"top-right": (w - 10, 10), "bottom-right": (w - 10, h - 10), "bottom-left": (10, h - 10)}
    assert result.getpoint(*spots[corner]) == [255, 255, 255]


@pytest.mark.parametrize(("aspect", "ratio"), [("SQUARE", 1.0), ("PORTRAIT", 0.8), ("LANDSCAPE", 1.91)])
def test_aspect_cuts_the_centre_to_its_ratio(aspect, ratio):
    photo = pyvips.Image.black(1000, 900, bands=3).cast("uchar")
    result = edits.apply_geometry(photo, Recipe(aspect=aspect), 1000, 900)
    assert result.width / result.height == pytest.approx(ratio, abs=0.01)
    assert edits.result_size(Recipe(aspect=aspect), 1000, 900) == (result.width, result.height)


def test_aspect_applies_after_rotation():
    assert edits.result_size(Recipe(rotate=90, aspect="LANDSCAPE"), 1000, 2000) == (1910, 1000)


# --- checking a recipe --------------------------------------------------------


@pytest.mark.parametrize(("recipe", "field", "reason"), [
    (Recipe(crop=Crop(300, 0, 200, 100)), "crop", "CROP_OUT_OF_BOUNDS"),
    (Recipe(crop=Crop(-1, 0, 10, 10)), "crop", "CROP_OUT_OF_BOUNDS"),
    (Recipe(crop=Crop(0, 0, 0, 10)), "crop", "CROP_OUT_OF_BOUNDS"),
    (Recipe(crop=Crop(0, 0, 10, 10), aspect="SQUARE"), "aspect", "CROP_AND_ASPECT"),
    (Recipe(aspect="WIDE"), "aspect", "UNKNOWN_ASPECT"),
    (Recipe(rotate=45), "rotate", "INVALID_ROTATION"),
    (Recipe(filter="sepiatone"), "filter", "UNKNOWN_FILTER"),
    (Recipe(adjustments=Adjustments(contrast=101)), "adjustments.contrast", "ADJUSTMENT_OUT_OF_RANGE"),
    (Recipe(adjustments=Adjustments(sharpen=-101)), "adjustments.sharpen", "ADJUSTMENT_OUT_OF_RANGE"),
])
def test_a_recipe_the_image_cannot_take_names_its_field(recipe, field, reason):
    with pytest.raises(InvalidArgument) as caught:
        edits.check(recipe, 400, 200)
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_a_recipe_survives_its_json_form():
    recipe = Recipe(crop=Crop(1, 2, 3, 4), rotate=90, filter="moon", adjustments=Adjustments(fade=10, sharpen=-5))
    assert Recipe.from_dict(recipe.to_dict()) == recipe


# --- through the pipeline -----------------------------------------------------


def test_an_edit_renders_every_variant_of_the_edited_image():
    data = make_photo(3000, 2000)
    result = pipeline.process(data, recipe=Recipe(crop=Crop(1000, 500, 1600, 1200), rotate=90, filter="clarendon"))
    assert (result.width, result.height) == (1200, 1600)
    sizes = {(v.size, v.format): (v.width, v.height) for v in result.variants}
    assert sizes[(1080, "jpeg")] == (810, 1080) and sizes[(320, "webp")] == (240, 320)
    assert sizes[(150, "jpeg")] == (150, 150) and len(sizes) == 8
    assert result.placeholder


def test_a_small_crop_is_cut_from_full_resolution_never_upscaled():
    data = make_photo(3000, 2000)
    result = pipeline.process(data, recipe=Recipe(crop=Crop(100, 100, 500, 400)))
    sizes = {(v.size, v.format): (v.width, v.height) for v in result.variants}
    assert sizes[(1080, "jpeg")] == (500, 400)


def test_the_pipeline_applies_the_look_to_the_variants():
    data = make_photo(800, 600)
    plain, grey = pipeline.process(data), pipeline.process(data, recipe=Recipe(filter="moon"))
    before = pyvips.Image.new_from_buffer(next(v.data for v in plain.variants if v.size == 640 and v.format == "jpeg"), "")
    after = pyvips.Image.new_from_buffer(next(v.data for v in grey.variants if v.size == 640 and v.format == "jpeg"), "")
    assert saturation(before) > 20 and saturation(after) < 3


def test_render_look_makes_a_jpeg_preview():
    variant = next(v for v in pipeline.process(make_photo(800, 600)).variants if v.size == 320 and v.format == "jpeg")
    preview = pyvips.Image.new_from_buffer(pipeline.render_look(variant.data, Recipe(filter="inkwell")), "")
    assert preview.get("vips-loader").startswith("jpegload") and (preview.width, preview.height) == (320, 240)
    assert saturation(preview) < 3
