"""No RPC handler calls, directly or through other services, back into its own service.

The graph is derived from the code (services.mesh.callgraph), not listed by
hand: a new outbound call shows up here, and a loop fails the suite.
"""

from __future__ import annotations

import ast
import importlib
import shutil

import pytest

from services.common.config import REPO_ROOT
from services.common.registry import SERVICES
from services.mesh.callgraph import (
    SERVICES_DIR,
    Rpc,
    Universe,
    call_backs,
    derive,
    derive_workers,
    table,
    unknown_targets,
)


@pytest.fixture(scope="module")
def graph() -> dict[Rpc, set[Rpc]]:
    return derive()


def test_no_rpc_handler_calls_back_into_its_own_service(graph):
    print("\n" + table(graph, derive_workers()))
    loops = [" -> ".join(map(str, path)) for path in call_backs(graph)]
    assert loops == [], "handlers that call back into their own service:\n" + "\n".join(loops)


def test_the_derivation_finds_a_handler_for_every_rpc_of_the_protos(graph):
    declared = set()
    for spec in SERVICES:
        for module in spec.proto_modules:
            for service in importlib.import_module(module).DESCRIPTOR.services_by_name.values():
                declared |= {Rpc(spec.name, m.name) for m in service.methods}
    assert set(graph) == declared


def test_every_rpc_a_handler_calls_is_served(graph):
    assert unknown_targets(graph) == []


def test_every_stub_call_of_the_mesh_clients_is_recognised_as_an_rpc():
    # The derivation's edges end at stub calls: were it to miss them, every test above would pass empty.
    tree = ast.parse((SERVICES_DIR / "common" / "clients.py").read_text())
    written = {n.func.attr for n in ast.walk(tree)
               if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr[:1].isupper()
               and isinstance(n.func.value, ast.Attribute) and n.func.value.attr == "_stub"}
    recognised = {rpc.method for rpc in Universe("feed").stub_calls()}  # feed's universe: common's clients
    assert "CheckPostAccess" in written and written == recognised


def test_engagement_checks_visibility_with_the_narrow_rpc_not_a_hydration(graph):
    assert graph[Rpc("engagement", "LikePost")] == {Rpc("posts", "CheckPostAccess")}
    assert not any(Rpc("posts", "BatchGetPosts") in callees for rpc, callees in graph.items()
                   if rpc.service == "engagement")


def test_the_feed_reaches_engagement_through_the_module_of_engagement_it_imports(graph):
    # The feed reads engagement's cache with services.engagement.warm_states, which asks engagement
    # (GetPostStates) when the cache lacks an answer: another service's module, followed all the same.
    assert Rpc("engagement", "GetPostStates") in graph[Rpc("feed", "GetFeed")]


def test_a_loop_through_another_service_fails(tmp_path):
    # The tree as it is, plus one call: GetPostStates (which posts' hydration calls)
    # asking posts who may see the posts.
    tree = tmp_path / "services"
    shutil.copytree(SERVICES_DIR, tree, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    service = tree / "engagement" / "service.py"
    source = service.read_text()
    anchor = "        fresh_liked: dict[int, bool] = {}\n"
    assert anchor in source
    service.write_text(source.replace(
        anchor, "        await self.posts.authors_visible_to(viewer_id, unique)\n" + anchor))
    loops = list(call_backs(derive(root=tree)))
    assert [Rpc("posts", "BatchGetPosts"), Rpc("engagement", "GetPostStates"),
            Rpc("posts", "CheckPostAccess")] in loops


def test_the_workers_calls_are_derived_through_the_handlers_they_hand_to_their_consumers():
    workers = derive_workers()
    assert workers["fanout"] == {Rpc("graph", "ListFollowerIds"), Rpc("accounts", "BatchGetUsers"),
                                 Rpc("posts", "ListRecentPostIds"), Rpc("realtime", "BatchGetUserClasses")}
    assert workers["cleanup"] == {Rpc("engagement", "PurgePost"), Rpc("media", "ReleaseMedia")}


def test_readme_shows_the_derived_call_graph(graph):
    assert table(graph, derive_workers()) in (REPO_ROOT / "README.md").read_text(), \
        "README's call graph is stale: paste `python -m services.mesh.callgraph` into it"
