"""The processor: every image decoded in a worker process of a bounded pool, which a hung, bombing or
crashing decoder cannot take with it (services/media/sandbox.py, services/media/decoder.py).

The misbehaving decoders are the test hooks of services.media.decoder, switched on here for the
worker processes these tests start (they inherit the environment)."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.common.errors import Unavailable
from services.media import decoder
from services.media.config import Limits
from services.media.pipeline import ImageRejected
from services.media.sandbox import ImageProcessor, SandboxConfig

MiB = 1 << 20


@pytest.fixture
def hooks(monkeypatch):
    monkeypatch.setenv(decoder.TEST_HOOKS_VAR, "1")


@pytest.fixture
async def pool():
    """`await pool(jobs=..., timeout_s=..., ...)`: a started ImageProcessor, closed after the test."""
    started: list[ImageProcessor] = []

    async def make(jobs: int = 1, timeout_s: float = 20, memory_mb: int = 1024, queue_timeout_s: float = 30):
        processor = ImageProcessor(Limits(timeout_s=timeout_s), SandboxConfig(jobs, memory_mb * MiB, queue_timeout_s))
        await processor.start()
        started.append(processor)
        return processor

    yield make
    for processor in started:
        await processor.close()


def marked(corpus, marker: bytes) -> bytes:
    """A good image with a test hook's marker after its end (decoders ignore trailing bytes)."""
    return (corpus / "hopper.jpg").read_bytes() + marker


async def rejection(processor: ImageProcessor, data: bytes, field: str = "body") -> ImageRejected:
    with pytest.raises(ImageRejected) as rejected:
        await processor.process(data, field)
    return rejected.value


async def test_an_image_is_processed_in_a_worker_process(pool, corpus):
    processor = await pool()
    result = await processor.process((corpus / "flower.jpg").read_bytes(), "body")
    assert (result.width, result.height, len(result.variants)) == (480, 360, 8)


async def test_rejections_name_the_callers_field(pool, corpus):
    processor = await pool()
    rejected = await rejection(processor, (corpus / "truncated_jpeg.jpg").read_bytes(), "data")
    assert (rejected.reason, rejected.metadata["field"]) == ("CORRUPT_IMAGE", "data")


async def test_a_hung_decoder_is_killed_at_the_deadline_and_replaced(pool, corpus, hooks):
    processor = await pool(timeout_s=2)
    rejected = await rejection(processor, marked(corpus, b"PICTOR-TEST-HANG"))
    assert rejected.reason == "IMAGE_TOO_COMPLEX" and "2 s" in rejected.message
    assert (await processor.process((corpus / "hopper.jpg").read_bytes(), "body")).width == 128


async def test_a_memory_bomb_stops_at_the_limit_and_its_worker_is_replaced(pool, corpus, hooks):
    processor = await pool(memory_mb=768)
    rejected = await rejection(processor, marked(corpus, b"PICTOR-TEST-BOMB"))
    assert rejected.reason == "IMAGE_TOO_COMPLEX" and "768 MiB" in rejected.message
    assert (await processor.process((corpus / "hopper.jpg").read_bytes(), "body")).width == 128


async def test_a_crashing_decoder_is_undecodable_and_its_worker_is_replaced(pool, corpus, hooks):
    processor = await pool()
    rejected = await rejection(processor, marked(corpus, b"PICTOR-TEST-CRASH"))
    assert rejected.reason == "IMAGE_UNDECODABLE"
    assert (await processor.process((corpus / "hopper.jpg").read_bytes(), "body")).width == 128


async def test_a_crash_leaves_the_job_in_the_other_worker_alone(pool, corpus, hooks):
    processor = await pool(jobs=2)
    good, crash = await asyncio.gather(
        processor.process((corpus / "flower.jpg").read_bytes(), "body"),
        rejection(processor, marked(corpus, b"PICTOR-TEST-CRASH")))
    assert good.width == 480 and crash.reason == "IMAGE_UNDECODABLE"


async def test_a_saturated_pool_answers_unavailable_after_a_bounded_wait(pool, corpus, hooks):
    processor = await pool(jobs=1, timeout_s=2, queue_timeout_s=0.2)
    hung = asyncio.ensure_future(processor.process(marked(corpus, b"PICTOR-TEST-HANG"), "body"))
    await asyncio.sleep(0.1)
    with pytest.raises(Unavailable) as busy:
        await processor.process((corpus / "hopper.jpg").read_bytes(), "body")
    assert busy.value.reason == "PROCESSING_BUSY"
    with pytest.raises(ImageRejected):
        await hung
    # The slot came back with a fresh worker.
    assert (await processor.process((corpus / "hopper.jpg").read_bytes(), "body")).width == 128


async def test_markers_mean_nothing_without_the_test_hooks(pool, corpus, monkeypatch):
    monkeypatch.delenv(decoder.TEST_HOOKS_VAR, raising=False)
    processor = await pool()
    assert (await processor.process(marked(corpus, b"PICTOR-TEST-CRASH"), "body")).width == 128


async def test_the_event_loop_keeps_running_while_an_image_is_processed(pool, corpus):
    processor = await pool()
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await processor.process((corpus / "flower.jpg").read_bytes(), "body")
    task.cancel()
    assert ticks > 3


@pytest.mark.parametrize("answer", [b"not json", b'{"kind": "ok"}', json.dumps(
    {"kind": "ok", "format": "jpeg", "width": 1, "height": 1, "captured_at": None, "placeholder": "",
     "variants": [{"size": 150, "format": "jpeg", "width": 1, "height": 1, "data": "***"}]}).encode()])
def test_a_malformed_answer_from_a_decoder_is_refused(answer):
    with pytest.raises(ValueError):
        decoder.decode(answer)
