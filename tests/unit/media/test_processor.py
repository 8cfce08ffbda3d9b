"""The processor: pipeline jobs off the event loop, a bounded number at a time, bounded in time."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from services.media import pipeline
from services.media.config import Limits
from services.media.pipeline import ImageRejected
from services.media.service import ImageProcessor


async def test_no_more_than_max_jobs_run_at_once(monkeypatch):
    running, most = 0, 0
    lock = threading.Lock()

    def slow_process(data, limits):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return data

    monkeypatch.setattr(pipeline, "process", slow_process)
    processor = ImageProcessor(Limits(), max_jobs=2)
    results = await asyncio.gather(*(processor.process(bytes([i]), "body") for i in range(6)))
    assert results == [bytes([i]) for i in range(6)]
    assert most == 2


async def test_a_job_past_its_time_is_refused_and_keeps_its_slot_until_it_ends(monkeypatch):
    release = threading.Event()

    def stuck_process(data, limits):
        release.wait(5)
        return data

    monkeypatch.setattr(pipeline, "process", stuck_process)
    monkeypatch.setattr(ImageProcessor, "BACKSTOP_S", 0.05)
    processor = ImageProcessor(Limits(timeout_s=0), max_jobs=1)
    with pytest.raises(ImageRejected) as rejected:
        await processor.process(b"x", "body")
    assert rejected.value.reason == "IMAGE_TOO_COMPLEX"
    # The thread still runs, so a second job must wait for it.
    second = asyncio.ensure_future(processor.process(b"y", "body"))
    await asyncio.sleep(0.1)
    assert not second.done()
    release.set()
    assert await second == b"y"


async def test_rejections_name_the_callers_field(monkeypatch):
    def reject(data, limits):
        raise ImageRejected("CORRUPT_IMAGE", "bad bytes")

    monkeypatch.setattr(pipeline, "process", reject)
    with pytest.raises(ImageRejected) as rejected:
        await ImageProcessor(Limits(), max_jobs=1).process(b"x", "data")
    assert rejected.value.metadata["field"] == "data" and rejected.value.reason == "CORRUPT_IMAGE"


async def test_the_event_loop_keeps_running_while_an_image_is_processed(corpus):
    processor = ImageProcessor(Limits(), max_jobs=1)
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
