"""A small JSON client for the gateway (stdlib only, so it shows exactly what is sent)."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Gateway:
    def __init__(self, port: int, timeout_s: float = 30) -> None:
        self.port = port
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                raw: bytes | None = None, headers: dict[str, str] | None = None) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
        sent = {"content-type": "application/json", **(headers or {})}
        if token:
            sent["authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        try:
            conn.request(method, path, body=payload, headers=sent)
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.request("DELETE", path, **kw)


class UserClient:
    """The gateway as one signed-in user calls it."""

    def __init__(self, gateway: Gateway, session: dict) -> None:
        self.gateway = gateway
        self.session = session
        self.id: str = session["user"]["id"]
        self.username: str = session["user"]["username"]
        self.token: str = session["access_token"]

    def get(self, path: str, **kw: Any) -> Response:
        return self.gateway.get(path, token=self.token, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.gateway.post(path, body, token=self.token, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.gateway.patch(path, body, token=self.token, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.gateway.delete(path, token=self.token, **kw)

    def upload(self, data: bytes, content_type: str, **kw: Any) -> Response:
        return self.gateway.request("POST", "/v1/media", raw=data, token=self.token,
                                    headers={"content-type": content_type}, **kw)



def sign_up_on(gateway_port: int, prefix: str) -> Callable[[], UserClient]:
    """new_user() for a stack of a module's own: each call registers a fresh account (names start
    with `prefix`) and returns it signed in."""
    gateway = Gateway(gateway_port)
    made = iter(range(10**9))

    def make() -> UserClient:
        n = f"{prefix}{next(made)}x{time.monotonic_ns() % 10**6}"
        r = gateway.post("/v1/accounts", {"username": n, "email": f"{n}@example.com", "password": "correct horse"})
        assert r.status == 200, r.body
        return UserClient(gateway, r.json)

    return make


def path_of(url: str) -> str:
    """An absolute URL's path and query, to ask the gateway for it."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def eventually(read: Callable[[], T], expected: T, timeout_s: float = 5.0) -> T:
    """Poll `read()` until it returns `expected` (counts and other effects of events come a little later)."""
    deadline = time.monotonic() + timeout_s
    while (value := read()) != expected:
        assert time.monotonic() < deadline, f"still {value!r}, expected {expected!r}"
        time.sleep(0.05)
    return value
