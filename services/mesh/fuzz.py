"""`make fuzz`: Schemathesis against the live gateway's /openapi.json, for a bounded time.

By default it starts a private stack (its own data folder and free ports, the
same launcher as `make run`) and stops it afterwards; FUZZ_GATEWAY=http://host:port
fuzzes a stack that is already running instead (it leaves the accounts, posts
and media the fuzzer made behind). A fresh user is registered first and its
token sent on every request, so the routes that need auth are fuzzed signed in.

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


def register(base: str) -> str:
    """A fresh account's access token."""
    name = f"fuzz{uuid.uuid4().hex[:12]}"
    body = json.dumps({"username": name, "email": f"{name}@example.com", "password": "correct horse fuzz"})
    request = urllib.request.Request(f"{base}/v1/accounts", data=body.encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access_token"]


def schemathesis_command(base: str, token: str, seconds: int, report_dir: Path, seed: str) -> list[str]:
    st = Path(sys.executable).with_name("st")
    command = [str(st) if st.exists() else shutil.which("st") or "st", "run", f"{base}/openapi.json",
               "--header", f"Authorization: Bearer {token}",
               "--max-time", str(seconds), "--checks", CHECKS,
               # One worker: two reproducibly crash CPython 3.11's ast in Hypothesis (a known upstream race).
               "--workers", "1", "--request-timeout", "10",
               "--report", "junit", "--report-junit-path", str(report_dir / "junit.xml"),
               "--wait-for-schema", "15"]
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
            token = register(base)
        except (urllib.error.URLError, OSError) as error:
            raise SystemExit(f"fuzz: cannot register a user at {base}: {error}") from None
        command = schemathesis_command(base, token, seconds, report_dir, os.environ.get("FUZZ_SEED", ""))
        print(f"fuzz: {seconds}s of Schemathesis against {base}/openapi.json", flush=True)
        result = subprocess.run(command, check=False, timeout=seconds + 300)
    print(f"fuzz: {'passed' if result.returncode == 0 else 'FAILED'} in {time.monotonic() - started:.0f}s; "
          f"JUnit report {os.path.relpath(report_dir / 'junit.xml', Path.cwd())}", flush=True)
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
