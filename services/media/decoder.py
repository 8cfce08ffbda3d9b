"""A decoder process: `python -m services.media.decoder FD MEMORY_BYTES`, started by services.media.sandbox.

It limits its own address space (RLIMIT_AS), asks to be killed when its
parent dies, then serves jobs on the socket FD until it closes: a job is a
JSON header ({"limits": {...}}) and the image bytes, one message each; the
answer is one JSON message (`encode`). JSON, not pickle, on the way back:
the service must never unpickle what a process handling hostile bytes wrote.
An edit's job also carries the recipe ({"limits": ..., "recipe": {...}};
services.media.edits.Recipe.to_dict); a story's full-screen rendition ({"full_screen": true},
services.media.pipeline.full_screen) answers like an upload, its variants the two renditions.

NOTE: PICTOR_MEDIA_TEST_HOOKS=1 (set by the test suite only) makes this
process act out a hostile decoder for inputs that carry a marker (MARKERS):
hang, exhaust memory or crash, so the tests can drive each path through the
real service. Without the variable the markers mean nothing.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
import time
from datetime import datetime
from multiprocessing.connection import Connection

from services.common.errors import InvalidArgument
from services.media.config import Limits
from services.media.edits import Recipe
from services.media.pipeline import ProcessedImage, RenderedVariant

TEST_HOOKS_VAR = "PICTOR_MEDIA_TEST_HOOKS"
MARKERS = {b"PICTOR-TEST-HANG": "hang", b"PICTOR-TEST-BOMB": "bomb", b"PICTOR-TEST-CRASH": "crash"}
PR_SET_PDEATHSIG = 1
# Bigger answers are not an image's variants: the service refuses to read them.
MAX_ANSWER_BYTES = 256 << 20


def encode(outcome: ProcessedImage | InvalidArgument | str) -> bytes:
    """The answer to a job: the processed image, a rejection, or "memory" / "error: ..."."""
    if isinstance(outcome, ProcessedImage):
        return json.dumps({
            "kind": "ok", "format": outcome.format, "width": outcome.width, "height": outcome.height,
            "captured_at": outcome.captured_at.isoformat() if outcome.captured_at else None,
            "placeholder": outcome.placeholder,
            "variants": [{"size": v.size, "format": v.format, "width": v.width, "height": v.height,
                          "data": base64.b64encode(v.data).decode()} for v in outcome.variants],
        }).encode()
    if isinstance(outcome, InvalidArgument):
        return json.dumps({"kind": "rejected", "reason": outcome.reason, "message": outcome.message}).encode()
    return json.dumps({"kind": outcome.split(":")[0], "what": outcome}).encode()


def decode(answer: bytes) -> ProcessedImage | tuple[str, ...]:
    """The service's side of `encode`: a ProcessedImage, ("rejected", reason, message), ("memory",)
    or ("error", what). Anything malformed raises ValueError (the service treats it as a crash)."""
    try:
        message = json.loads(answer)
        kind = message["kind"]
        if kind == "ok":
            captured = message["captured_at"]
            return ProcessedImage(
                str(message["format"]), int(message["width"]), int(message["height"]),
                datetime.fromisoformat(captured) if captured else None, str(message["placeholder"]),
                tuple(RenderedVariant(int(v["size"]), str(v["format"]), int(v["width"]), int(v["height"]),
                                      base64.b64decode(v["data"], validate=True)) for v in message["variants"]))
        if kind == "rejected":
            return ("rejected", str(message["reason"]), str(message["message"]))
        return (str(kind), str(message.get("what", "")))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"a decoder answered something malformed: {error}") from None


def _misbehave(data: bytes) -> None:
    """The test hooks: act out a hostile decoder for a marked input."""
    for marker, act in MARKERS.items():
        if marker in data:
            if act == "hang":
                while True:
                    time.sleep(3600)
            if act == "bomb":
                # calloc'd, never touched blocks: address space runs out at the limit, RAM does not.
                hoard = []
                while True:
                    hoard.append(bytes(64 << 20))
            os.abort()


def serve(conn: Connection, memory_bytes: int) -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a hung decoder must not outlive the service
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    import pyvips

    from services.media import pipeline

    pyvips.cache_set_max(0)  # every job is new bytes: the cache would only keep old inputs alive
    hooks = os.environ.get(TEST_HOOKS_VAR) == "1"
    conn.send_bytes(b'{"kind": "ready"}')
    while True:
        try:
            header = json.loads(conn.recv_bytes())
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            if hooks:
                _misbehave(data)
            recipe = Recipe.from_dict(header["recipe"]) if header.get("recipe") else None
            render = pipeline.full_screen if header.get("full_screen") else pipeline.process
            outcome: ProcessedImage | InvalidArgument | str = render(data, Limits(**header["limits"]), recipe)
        except InvalidArgument as rejected:  # ImageRejected, or a recipe the image cannot take
            outcome = rejected
        except MemoryError:
            outcome = "memory"
        except pyvips.Error as error:  # what the pipeline does not map itself; out of memory, mostly
            outcome = "memory" if "memory" in str(error).lower() else f"error: {error}"
        except Exception as error:  # noqa: BLE001 - our bug, not the image's: the service answers INTERNAL
            outcome = f"error: {error!r}"
        try:
            answer = encode(outcome)
        except MemoryError:
            answer = encode("memory")
        conn.send_bytes(answer)


def main() -> None:
    fd, memory_bytes = int(sys.argv[1]), int(sys.argv[2])
    serve(Connection(fd), memory_bytes)


if __name__ == "__main__":
    main()
