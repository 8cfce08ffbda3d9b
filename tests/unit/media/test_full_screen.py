"""A story's full-screen rendition (pipeline.full_screen): 1080x1920, covering, cut around what stands out."""

from __future__ import annotations

import pytest
import pyvips

from services.media import pipeline
from services.media.edits import Crop, Recipe
from tests.unit.media.conftest import read

FULL = (pipeline.FULL_SCREEN_WIDTH, pipeline.FULL_SCREEN_HEIGHT)


def checkered_subject_at(x: int, y: int, size: tuple[int, int] = (1920, 1080)) -> bytes:
    """A flat grey landscape with one red-and-green checkered square (edges, saturation) at (x, y)."""
    tile = pyvips.Image.black(300, 300, bands=3)
    for (left, top), colour in {(0, 0): [230, 20, 20], (150, 150): [230, 20, 20],
                                (150, 0): [20, 200, 20], (0, 150): [20, 200, 20]}.items():
        tile = tile.draw_rect(colour, left, top, 150, 150, fill=True)
    background = pyvips.Image.black(*size, bands=3) + [120, 120, 120]
    return background.insert(tile, x, y).cast("uchar").copy(interpretation="srgb").jpegsave_buffer(Q=90)


def red_share(data: bytes) -> float:
    image = pyvips.Image.new_from_buffer(data, "")
    return ((image[0] - image[1]) > 100).avg() / 255


def jpeg_of(width: int, height: int) -> bytes:
    return (pyvips.Image.black(width, height, bands=3) + [200, 120, 40]).cast("uchar").jpegsave_buffer()


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920), (3000, 4000), (64, 48)],
                         ids=["landscape", "portrait", "large", "tiny"])
def test_every_shape_becomes_1080_by_1920_in_jpeg_and_webp(size):
    result = pipeline.full_screen(jpeg_of(*size))
    assert [(v.size, v.format) for v in result.variants] == [(1920, "jpeg"), (1920, "webp")]
    for v in result.variants:
        decoded = pyvips.Image.new_from_buffer(v.data, "")
        assert (decoded.width, decoded.height) == (v.width, v.height) == FULL


def test_the_cut_follows_the_salient_part_not_the_centre():
    subject_right = checkered_subject_at(1550, 400)
    centred = pyvips.Image.new_from_buffer(subject_right, "").thumbnail_image(FULL[0], height=FULL[1],
                                                                               crop="centre")
    assert ((centred[0] - centred[1]) > 100).avg() == 0  # a centre cut would miss the subject
    assert red_share(pipeline.full_screen(subject_right).variants[0].data) > 0.02


def test_the_width_and_height_given_are_the_originals():
    result = pipeline.full_screen(jpeg_of(1920, 1080))
    assert (result.width, result.height) == (1920, 1080)


def test_an_edits_rendition_is_of_the_edited_image():
    # The subject sits on the right; a crop keeping the left half leaves only grey.
    edited = pipeline.full_screen(checkered_subject_at(1550, 400),
                                  recipe=Recipe(crop=Crop(0, 0, 960, 1080)))
    assert red_share(edited.variants[0].data) == 0


def test_heic_goes_through_pillow_heif(corpus):
    result = pipeline.full_screen(read(corpus, "hopper.heif"))
    assert {(v.width, v.height) for v in result.variants} == {FULL}


def test_what_is_not_an_image_is_refused():
    with pytest.raises(pipeline.ImageRejected):
        pipeline.full_screen(b"not an image at all")
