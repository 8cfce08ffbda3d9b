"""An embedded server started right after a stack stopped waits for the old one to let go of its
port, and says which port when it never does."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from services.mesh.embedded import wait_until_released


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_it_waits_until_the_old_listener_exits(capsys):
    old = listener()
    port = old.getsockname()[1]
    threading.Timer(0.6, old.close).start()
    started = time.monotonic()
    wait_until_released("127.0.0.1", port, "redis", timeout_s=10)
    assert time.monotonic() - started >= 0.5
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_a_port_that_stays_taken_is_named(capsys):
    with listener() as old:
        port = old.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"redis cannot listen on 127.0.0.1:{port}"):
            wait_until_released("127.0.0.1", port, "redis", timeout_s=0.5)


def test_a_free_port_is_taken_at_once(capsys):
    with listener() as probe:
        port = probe.getsockname()[1]
    wait_until_released("127.0.0.1", port, "redis", timeout_s=10)
    assert capsys.readouterr().err == ""  # no wait announced
