"""A Server-Sent Events reader over a real HTTP/1.1 connection (stdlib only), as a client sees the stream."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any, Self


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: str

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class SseStream:
    """GET a stream; `next_event()` reads the next event (comments and `retry:` are skipped)."""

    def __init__(self, port: int, path: str = "/v1/stream", *, token: str | None = None,
                 last_event_id: str | None = None, timeout_s: float = 10) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
        headers = {"accept": "text/event-stream"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if last_event_id:
            headers["last-event-id"] = last_event_id
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        # Events read while waiting for something else, handed out first.
        self.pending: list[SseEvent] = []

    def body(self) -> bytes:
        return self.response.read()

    def wait_for_heartbeat(self, timeout_s: float = 5) -> None:
        """Until a heartbeat: the stream is surely set up by then. Other events wait in `pending`."""
        deadline = time.monotonic() + timeout_s
        while (event := self._read_event()).event != "heartbeat":
            assert time.monotonic() < deadline, "no heartbeat came"
            self.pending.append(event)

    def next_event(self) -> SseEvent:
        return self.pending.pop(0) if self.pending else self._read_event()

    def _read_event(self) -> SseEvent:
        fields: dict[str, str] = {}
        data: list[str] = []
        while True:
            line = self.response.readline()
            if not line:
                raise EOFError("the stream ended")
            text = line.decode().rstrip("\n")
            if text == "":
                if data or "event" in fields:
                    return SseEvent(fields.get("id"), fields.get("event", "message"), "\n".join(data))
                continue
            if text.startswith(":"):
                continue
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value

    def events_until(self, count: int, skip: tuple[str, ...] = ("heartbeat",), timeout_s: float = 10) -> list[SseEvent]:
        """The next `count` events other than those of the types in `skip`."""
        found: list[SseEvent] = []
        deadline = time.monotonic() + timeout_s
        while len(found) < count:
            assert time.monotonic() < deadline, f"only {len(found)} of {count} events came: {found}"
            event = self.next_event()
            if event.event not in skip:
                found.append(event)
        return found

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
