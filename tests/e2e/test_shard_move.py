"""Moving logical shards to another database while the platform runs (issue 20): `python -m
services.mesh.shards move 4-7 --to URL` under a steady stream of writes and reads through the gateway.

On a stack of its own (the move changes where its shards live for good). The target is a new
database on the first PostgreSQL server: on one server a move between databases, with
PICTOR_POSTGRES_SERVERS=2 (shards 4-7 on the second) a move between servers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from services.common.config import REPO_ROOT
from services.common.db import placed, shard_schema
from services.common.ids import shard_of
from tests.conftest import private_stack
from tests.e2e.http import UserClient, eventually, sign_up_on
from tests.e2e.media_files import small_jpeg

pytestmark = pytest.mark.e2e

MOVED = [4, 5, 6, 7]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with private_stack(tmp_path_factory.mktemp("shards"), PICTOR_SHARD_MAP_POLL_MS="200") as running:
        yield running


def user_in(new_user, wanted: bool) -> UserClient:
    """A new user whose logical shard is (or is not) among the moved ones."""
    for _ in range(100):
        user = new_user()
        if (shard_of(int(user.id)) in MOVED) == wanted:
            return user
    raise AssertionError("no user landed where wanted in 100 sign-ups")


def target_url(settings) -> str:
    return urlunsplit(urlsplit(settings.database_url)._replace(path="/pictor_moved"))


def shards(*args: str) -> subprocess.CompletedProcess:
    """`python -m services.mesh.shards ...` against the stack (its PICTOR_* environment)."""
    return subprocess.run([sys.executable, "-m", "services.mesh.shards", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def comments(user: UserClient, post_id: str) -> list[str]:
    texts, token = [], ""
    while True:
        page = user.get(f"/v1/posts/{post_id}/comments?page_size=100&page_token={token}").json
        texts += [c["text"] for c in page["comments"]]
        if not (token := page["next_page_token"]):
            return texts


def test_shards_move_while_writes_go_on_and_no_acknowledged_write_is_lost(stack):
    new_user = sign_up_on(stack.settings.gateway_port, "mover")
    author, reader = user_in(new_user, True), user_in(new_user, False)
    media_id = author.upload(small_jpeg(), "image/jpeg").json["id"]
    post = author.post("/v1/posts", {"media_ids": [media_id], "caption": "before the move"}).json["id"]
    assert shard_of(int(post)) in MOVED

    acknowledged: list[str] = []
    refused: list[tuple[float, dict]] = []
    read_statuses: list[int] = []
    others: list[tuple[int, str]] = []
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            r = author.post(f"/v1/posts/{post}/comments", {"text": f"c{n}"})
            if r.status == 200:
                acknowledged.append(f"c{n}")
            elif r.status == 503:
                refused.append((time.monotonic(), r.json))
                time.sleep(0.05)
            else:
                others.append((r.status, r.body))

    def read() -> None:
        while not stop.is_set():
            read_statuses.append(reader.get(f"/v1/posts/{post}").status)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        moving = shards("move", "4-7", "--to", target_url(stack.settings))
        time.sleep(2)  # writes after the move land on the target
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert moving.returncode == 0, moving.stderr
    assert "copying tables" in moving.stderr and "s left" in moving.stderr  # progress, with what is left
    report = json.loads(moving.stdout.strip().splitlines()[-1])
    assert report["moved"] == MOVED and report["to"].endswith("/pictor_moved")
    assert report["writes_paused_ms"] < 5000, report
    # Every write was acknowledged or refused as unavailable for a moment; every read answered.
    assert others == [] and set(read_statuses) == {200}
    assert all(body["details"][0]["reason"] == "DATABASE_UNAVAILABLE" for _, body in refused), refused[:3]
    if refused:
        assert refused[-1][0] - refused[0][0] < 5, "writes were refused for more than a few seconds"
    assert len(acknowledged) > 20
    # Nothing acknowledged was lost, and the post keeps its id.
    assert sorted(comments(author, post)) == sorted(acknowledged)
    assert author.get(f"/v1/posts/{post}").json["caption"] == "before the move"

    # The map names the target, the rows are there, and the source's copies refuse writes.
    settings = placed(stack.settings)
    assert {settings.database_for_shard(s) for s in MOVED} == {target_url(stack.settings)}
    with psycopg.connect(target_url(stack.settings)) as conn:
        found = conn.execute(f"SELECT count(*) FROM {shard_schema(shard_of(int(post)))}.posts WHERE id = %s",
                             (int(post),)).fetchone()[0]
        assert found == 1
    with (psycopg.connect(stack.settings.database_for_shard(shard_of(int(post)))) as conn,
          pytest.raises(psycopg.OperationalError, match="moved to another database")):
        conn.execute(f"UPDATE {shard_schema(shard_of(int(post)))}.posts SET caption = 'stale' WHERE id = %s",
                     (int(post),))
    shown = [json.loads(line) for line in shards("show").stdout.splitlines()]
    assert [(e["shards"], e["database"].endswith("/pictor_moved")) for e in shown] == [("0-3", False), ("4-7", True)]

    # The shards that stayed are where they were, and a new post in a moved shard works.
    assert all(settings.database_for_shard(s) == stack.settings.database_for_shard(s) for s in range(4))
    fresh = author.upload(small_jpeg(), "image/jpeg").json["id"]
    r = author.post("/v1/posts", {"media_ids": [fresh], "caption": "after the move"})
    assert r.status == 200, r.body
    assert reader.get(f"/v1/posts/{r.json['id']}").status == 200
    # Events written in a moved shard are relayed from its new home: the author hears of a comment.
    said = reader.post(f"/v1/posts/{post}/comments", {"text": "from the other side"}).json["id"]
    eventually(lambda: [g["comment"]["id"] for g in author.get("/v1/notifications").json["groups"]
                        if g["type"] == "COMMENT"], [said], timeout_s=15)


def test_a_move_names_what_it_cannot_do(stack):
    bad = shards("move", "6-9", "--to", target_url(stack.settings))
    assert bad.returncode != 0 and "not within 0-7" in bad.stderr
    bad = shards("move", "four", "--to", target_url(stack.settings))
    assert bad.returncode != 0 and "N or N-M" in bad.stderr
    # The shards' own database under another name is not another database.
    here = stack.settings.database_for_shard(0)
    alias = urlunsplit(urlsplit(here)._replace(netloc=urlsplit(here).netloc.replace("127.0.0.1", "localhost")))
    bad = shards("move", "0", "--to", alias)
    assert bad.returncode != 0 and "the target is the database" in bad.stderr


def test_a_move_cut_short_after_its_cutover_is_mended_by_running_it_again(stack):
    """The source's copies refuse writes but the map still points at them (the global database failed
    at that instant): writes are refused until the same move runs again, which moves them anew."""
    from services.mesh.shards import create_refusal, refuse_writes

    new_user = sign_up_on(stack.settings.gateway_port, "cutshort")
    author = user_in(new_user, False)
    media_id = author.upload(small_jpeg(), "image/jpeg").json["id"]
    post = author.post("/v1/posts", {"media_ids": [media_id], "caption": "stuck"}).json["id"]
    shard = shard_of(int(post))
    source = placed(stack.settings).database_for_shard(shard)
    with psycopg.connect(source, autocommit=True) as conn:
        tables = conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname = %s "
                              "AND tablename <> 'schema_migrations'", (shard_schema(shard),)).fetchall()
        create_refusal(conn)
        refuse_writes(conn, tables)
    refused = author.post(f"/v1/posts/{post}/comments", {"text": "while stuck"})
    assert refused.status == 503 and refused.json["details"][0]["reason"] == "DATABASE_UNAVAILABLE"

    target = urlunsplit(urlsplit(stack.settings.database_url)._replace(path="/pictor_mended"))
    again = shards("move", str(shard), "--to", target)
    assert again.returncode == 0, again.stderr
    assert "takes them again" in again.stderr
    assert placed(stack.settings).database_for_shard(shard) == target
    eventually(lambda: author.post(f"/v1/posts/{post}/comments", {"text": "mended"}).status, 200, timeout_s=15)
    assert "mended" in comments(author, post)
