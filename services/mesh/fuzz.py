"""`make fuzz`: Schemathesis against the live gateway's /openapi.json, for a bounded time.

By default it starts a private stack (its own data folder and free ports, the
same launcher as `make run`) and stops it afterwards; FUZZ_GATEWAY=http://host:port
fuzzes a stack that is already running instead (it leaves the accounts, posts
and media the fuzzer made behind). A fresh user is registered first and its
token sent on every request, so the routes that need auth are fuzzed signed in;
it makes a post (with a media item) and a comment, and half the ids the fuzzer
puts in paths are those real ones, so calls get past "not found" to the logic
behind it.

Checks: no 5xx (not_a_server_error), every response in its documented schema,
errors included (response_schema_conformance against the `Error` envelope),
and with its documented content type. Exits non-zero on any failure.

    FUZZ_SECONDS=180  the time budget (default 180)
    FUZZ_GATEWAY=     a running gateway instead of a private stack
    FUZZ_SEED=        reproduce a run (Schemathesis prints its seed)
    FUZZ_REPORT_DIR=  where the JUnit report goes (default build/fuzz)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from services.common.config import REPO_ROOT, load_settings

CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"
DEFAULT_SECONDS = 180


@contextlib.contextmanager
def gateway(running: str, token_ttl_s: int) -> Iterator[str]:
    """The gateway's base URL: `running` as given, or a private stack's for the duration."""
    if running:
        yield running.rstrip("/")
        return
    from services.mesh.launcher import Stack
    from services.mesh.private_stack import private_environment

    with tempfile.TemporaryDirectory(prefix="pictor-fuzz-") as data_dir:
        for name in ("PICTOR_DATABASE_URL", "PICTOR_REDIS_URL", "PICTOR_SHARD_MAP"):
            os.environ.pop(name, None)
        os.environ.update(private_environment(Path(data_dir)))
        os.environ["PICTOR_ACCESS_TOKEN_TTL"] = str(token_ttl_s)
        stack = Stack(load_settings())
        print(f"fuzz: starting a private stack in {data_dir}", flush=True)
        stack.start()
        try:
            yield stack.settings.gateway_url.rstrip("/")
        finally:
            stack.stop()


def _post(base: str, path: str, body: bytes, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(f"{base}{path}", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _small_jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def register(base: str) -> tuple[str, dict[str, list[str]]]:
    """A fresh account's access token, and real ids by path parameter (its own, its post's, ...)."""
    name = f"fuzz{uuid.uuid4().hex[:12]}"
    as_json = {"content-type": "application/json"}
    body = json.dumps({"username": name, "email": f"{name}@example.com", "password": "correct horse fuzz"})
    session = _post(base, "/v1/accounts", body.encode(), as_json)
    token = session["access_token"]
    signed_in = {**as_json, "authorization": f"Bearer {token}"}
    media = _post(base, "/v1/media", _small_jpeg(), {**signed_in, "content-type": "image/jpeg"})
    post = _post(base, "/v1/posts", json.dumps({"media_ids": [media["id"]], "caption": "fuzz #fuzz"}).encode(),
                 signed_in)
    comment = _post(base, f"/v1/posts/{post['id']}/comments", b'{"text": "fuzz"}', signed_in)
    return token, {"user_id": [session["user"]["id"]], "post_id": [post["id"]], "media_id": [media["id"]],
                   "comment_id": [comment["id"]]}


def write_config(path: Path, ids: dict[str, list[str]]) -> Path:
    """A schemathesis.toml binding path ids to the real ones half the time."""
    lines = []
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in ids]
    path.write_text("\n".join(lines) + "\n")
    return path


def schemathesis_command(base: str, token: str, seconds: int, report_dir: Path, seed: str, config: Path
                         ) -> list[str]:
    st = Path(sys.executable).with_name("st")
    command = [str(st) if st.exists() else shutil.which("st") or "st", "--config-file", str(config),
               "run", f"{base}/openapi.json",
               "--header", f"Authorization: Bearer {token}",
               "--max-time", str(seconds), "--checks", CHECKS,
               # One worker: two reproducibly crash CPython 3.11's ast in Hypothesis (a known upstream race).
               "--workers", "1", "--request-timeout", "10",
               "--report", "junit", "--report-junit-path", str(report_dir / "junit.xml"),
               "--wait-for-schema", "15",
               # The live stream never ends by design: every call would run into the request timeout.
               "--exclude-path", "/v1/stream"]
    if seed:
        command += ["--seed", seed]
    return command


def main() -> None:
    seconds = int(os.environ.get("FUZZ_SECONDS") or DEFAULT_SECONDS)
    report_dir = Path(os.environ.get("FUZZ_REPORT_DIR") or REPO_ROOT / "build" / "fuzz")
    report_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # The token outlives the run, so the last requests are still signed in.
    with gateway(os.environ.get("FUZZ_GATEWAY", ""), token_ttl_s=seconds + 600) as base:
        try:
            token, ids = register(base)
        except (urllib.error.URLError, OSError) as error:
            raise SystemExit(f"fuzz: cannot register a user and make a post at {base}: {error}") from None
        config = write_config(report_dir / "schemathesis.toml", ids)
        command = schemathesis_command(base, token, seconds, report_dir, os.environ.get("FUZZ_SEED", ""), config)
        print(f"fuzz: {seconds}s of Schemathesis against {base}/openapi.json", flush=True)
        result = subprocess.run(command, check=False, timeout=seconds + 300)
    print(f"fuzz: {'passed' if result.returncode == 0 else 'FAILED'} in {time.monotonic() - started:.0f}s; "
          f"JUnit report {os.path.relpath(report_dir / 'junit.xml', Path.cwd())}", flush=True)
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
