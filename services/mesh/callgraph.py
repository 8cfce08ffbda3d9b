"""The mesh's call graph, derived from the code: which RPCs each RPC handler calls.

    python -m services.mesh.callgraph            # the graph as a Markdown table (README's)
    python -m services.mesh.callgraph --check    # and exit 1 when a handler calls back into its service

Static, from the sources (nothing runs): for every service of the registry,
its servicer's handlers are followed through the calls they make, into the
service's own modules, services/common and the modules of other services
they import (the feed's read of engagement's cache), until they reach a gRPC stub
(`self._stub.Method(...)` on a `...ServiceStub(channels.channel("name"))`):
that is an edge from the handler to that service's method.

A call `self.a.b.m(...)` is resolved through the types the code declares:
dataclass fields, `__init__` parameters and `self.x = Class(...)`. A
`Protocol` stands for every class of the service (and common) that has all
its methods, as a type checker would match them, so an adapter wired in by
server.py is followed whichever it is.
`getattr(self, name)` stands for any method of the class. A method a class
hands to a helper it builds (`self._checks = Batcher(self._filter)`, in
`__init__` or `__post_init__`) counts as called wherever the class calls that
helper (`self._checks.submit(...)`). Calls on values whose type is not one of
ours (dicts, Redis, psycopg) are not followed; neither are other functions
passed around as values (the counters' `durable` callback): no RPC is made
that way today, and a new one would go unseen, so keep outbound calls in
client methods called by name. Workers serve no RPC,
so they close no loop; their calls are listed too, from their `main()`, the
function it hands to the worker loop and the handlers that hands to its
consumer.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from services.common.config import REPO_ROOT
from services.common.registry import SERVICES, WORKERS

SERVICES_DIR = REPO_ROOT / "services"


@dataclass(frozen=True, order=True)
class Rpc:
    service: str  # the registry's name of the process that serves it
    method: str

    def __str__(self) -> str:
        return f"{self.service}.{self.method}"


@dataclass
class ClassInfo:
    name: str
    module: str
    node: ast.ClassDef
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)  # attribute -> class name
    stubs: dict[str, str] = field(default_factory=dict)  # attribute -> service name
    handed: dict[str, list[str]] = field(default_factory=dict)  # helper attribute -> methods handed to it
    is_protocol: bool = False


Function = tuple[str, str, str]  # module, class ("" for a module function), name


def _type_name(annotation: ast.expr | None) -> str | None:
    """The class an annotation names: `X`, `X | None`, `"X"`, `module.X`; None for anything else."""
    if annotation is None:
        return None
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return _type_name(ast.parse(annotation.value, mode="eval").body)
    if isinstance(annotation, ast.Name):
        return annotation.id
    if isinstance(annotation, ast.Attribute):
        return annotation.attr
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _type_name(annotation.left) or _type_name(annotation.right)
    return None


def _called_class(value: ast.expr) -> str | None:
    """`Class(...)` -> "Class" (also `module.Class(...)`)."""
    if isinstance(value, ast.Call):
        return _type_name(value.func)
    return None


def _local_types(node: ast.AST) -> dict[str, str]:
    """Local variables of a function assigned `Class(...)` -> "Class"."""
    return {t.id: called for stmt in ast.walk(node) if isinstance(stmt, ast.Assign)
            for t in stmt.targets if isinstance(t, ast.Name) and (called := _called_class(stmt.value))}


def _stub_target(value: ast.expr, stub_services: dict[str, str]) -> str | None:
    """`pb2_grpc.PostsServiceStub(...)` -> "posts"."""
    name = _called_class(value)
    if name and name.endswith("Stub"):
        return stub_services.get(name.removesuffix("Stub"))
    return None


class Universe:
    """The classes and functions one service's handlers can reach: its own modules, services/common, and the
    modules of other services that these import."""

    def __init__(self, service: str, root: Path = SERVICES_DIR) -> None:
        self.service = service
        self.root = root
        self.stub_services = {proto.rsplit(".", 1)[-1]: spec.name for spec in SERVICES for proto in spec.proto_services}
        self.classes: dict[str, list[ClassInfo]] = {}
        self.functions: dict[str, dict[str, ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        self.imports: dict[str, dict[str, str]] = {}  # module -> local name -> defining module
        for path in sorted([*(root / service).glob("*.py"), *(root / "common").glob("*.py")]):
            self._load(f"{path.parent.name}.{path.stem}", ast.parse(path.read_text(), str(path)))
        # Other services' modules these import run in this process too (the feed reads engagement's cache
        # through services.engagement.warm_states, which asks engagement when it lacks an answer).
        for module in sorted({m for imported in list(self.imports.values()) for m in imported.values()}
                             - set(self.functions)):
            path = root / f"{module.replace('.', '/')}.py"
            if path.is_file():
                self._load(module, ast.parse(path.read_text(), str(path)))
        self._inherit()

    def _inherit(self) -> None:
        """Give each class what it inherits from classes of ours (methods, typed attributes, stubs)."""
        changed = True
        while changed:
            changed = False
            for info in (c for infos in self.classes.values() for c in infos):
                for base in (b for name in map(_type_name, info.node.bases) for b in self.classes.get(name or "", [])):
                    for own, inherited in ((info.methods, base.methods), (info.attributes, base.attributes),
                                           (info.stubs, base.stubs)):
                        for key, value in inherited.items():
                            if key not in own:
                                own[key] = value  # type: ignore[assignment]
                                changed = True

    def _load(self, module: str, tree: ast.Module) -> None:
        self.functions[module] = {}
        self.imports[module] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("services."):
                for alias in node.names:
                    self.imports[module][alias.asname or alias.name] = node.module.removeprefix("services.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[module][node.name] = node
            elif isinstance(node, ast.ClassDef):
                self.classes.setdefault(node.name, []).append(self._class(module, node))

    def _class(self, module: str, node: ast.ClassDef) -> ClassInfo:
        info = ClassInfo(node.name, module, node, is_protocol=any(_type_name(b) == "Protocol" for b in node.bases))
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                if type_name := _type_name(item.annotation):
                    info.attributes[item.target.id] = type_name
            elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                info.methods[item.name] = item
        init = info.methods.get("__init__")
        if init is not None:
            params = {a.arg: _type_name(a.annotation) for a in [*init.args.args, *init.args.kwonlyargs]}
            for stmt in ast.walk(init):
                if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
                    continue
                target = stmt.targets[0]
                if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id == "self"):
                    continue
                if service := _stub_target(stmt.value, self.stub_services):
                    info.stubs[target.attr] = service
                elif isinstance(stmt.value, ast.Name) and params.get(stmt.value.id):
                    info.attributes[target.attr] = params[stmt.value.id]
                elif called := _called_class(stmt.value):
                    info.attributes[target.attr] = called
        for setup in (info.methods.get("__init__"), info.methods.get("__post_init__")):
            for stmt in ast.walk(setup) if setup is not None else ():
                target = stmt.target if isinstance(stmt, ast.AnnAssign) else \
                    stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
                if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id == "self" and isinstance(stmt.value, ast.Call)):
                    continue
                if handed := [n.attr for n in ast.walk(stmt.value) if isinstance(n, ast.Attribute)
                              and isinstance(n.value, ast.Name) and n.value.id == "self" and n.attr in info.methods]:
                    info.handed[target.attr] = handed
        return info

    # --- resolving calls ----------------------------------------------------------------

    def implementations(self, type_name: str, method: str) -> list[ClassInfo]:
        """The classes a call of `method` on a value of `type_name` may run."""
        declared = self.classes.get(type_name, [])
        if not declared:
            return []  # not one of ours
        concrete = [c for c in declared if not c.is_protocol and method in c.methods]
        for protocol in (c for c in declared if c.is_protocol):
            # Structural, as a type checker sees it: every class that has all the protocol's methods.
            wanted = set(protocol.methods)
            concrete += [c for infos in self.classes.values() for c in infos
                         if not c.is_protocol and wanted <= set(c.methods) and method in c.methods
                         and c not in concrete]
        return concrete

    def _expression_types(self, owner: ClassInfo | None, expr: ast.expr, local: dict[str, str]) -> list[ClassInfo]:
        if isinstance(expr, ast.Name):
            if expr.id == "self" and owner is not None:
                return [owner]
            return self.classes.get(local.get(expr.id, ""), [])
        if isinstance(expr, ast.Attribute):
            found = []
            for info in self._expression_types(owner, expr.value, local):
                type_name = info.attributes.get(expr.attr)
                if type_name:
                    found += self.classes.get(type_name, [])
            return found
        return []

    def callees(self, function: Function) -> tuple[set[Function], set[Rpc]]:
        """The functions of ours a function calls, and the RPCs it makes itself."""
        module, class_name, name = function
        owner = next((c for c in self.classes.get(class_name, []) if c.module == module), None) if class_name else None
        node = owner.methods[name] if owner else self.functions[module][name]
        local = _local_types(node)
        functions: set[Function] = set()
        rpcs: set[Rpc] = set()
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            func = call.func
            if isinstance(func, ast.Name):
                if (func.id == "getattr" and owner is not None and call.args and isinstance(call.args[0], ast.Name)
                        and call.args[0].id == "self"):
                    # Dispatch by name (FanOut's on_<event>): any method of the class.
                    functions.update((owner.module, owner.name, m) for m in owner.methods)
                elif func.id in self.functions[module]:
                    functions.add((module, "", func.id))
                elif (source := self.imports[module].get(func.id)) in self.functions and func.id in self.functions[source]:
                    functions.add((source, "", func.id))
            elif isinstance(func, ast.Attribute):
                receiver = func.value
                # self._stub.Method(...): an RPC.
                if (isinstance(receiver, ast.Attribute) and isinstance(receiver.value, ast.Name)
                        and receiver.value.id == "self" and owner is not None and receiver.attr in owner.stubs):
                    rpcs.add(Rpc(owner.stubs[receiver.attr], func.attr))
                    continue
                # self._checks.submit(...) on a helper the class handed methods to: those run.
                if (isinstance(receiver, ast.Attribute) and isinstance(receiver.value, ast.Name)
                        and receiver.value.id == "self" and owner is not None and receiver.attr in owner.handed):
                    functions.update((owner.module, owner.name, m) for m in owner.handed[receiver.attr])
                for info in self._expression_types(owner, receiver, local):
                    # self.method() runs the class's own; a typed attribute's any implementation.
                    candidates = [info] if info is owner else self.implementations(info.name, func.attr)
                    functions.update((c.module, c.name, func.attr) for c in candidates if func.attr in c.methods)
        return functions, rpcs

    def reached_rpcs(self, *starts: Function) -> set[Rpc]:
        """Every RPC the functions make, themselves or through the functions they call."""
        seen: set[Function] = set()
        todo = list(starts)
        rpcs: set[Rpc] = set()
        while todo:
            function = todo.pop()
            if function in seen:
                continue
            seen.add(function)
            functions, made = self.callees(function)
            rpcs |= made
            todo += functions - seen
        return rpcs

    def handlers(self) -> dict[str, Function]:
        """RPC method name -> the servicer method that serves it."""
        found = {}
        for infos in self.classes.values():
            for info in infos:
                if info.module != f"{self.service}.servicer":
                    continue
                if not any((_type_name(b) or "").endswith("Servicer") for b in info.node.bases):
                    continue
                for name in info.methods:
                    if name[:1].isupper():
                        found[name] = (info.module, info.name, name)
        return found


    def worker_entry(self, module: str) -> list[Function]:
        """Where a worker module starts: `main()`, the functions of the module it hands to the
        worker loop (`run_worker("fanout", work)`), and the methods those hand over rather than
        call (the consumer's handler, `fanout.handle`) on the objects of ours they build."""
        functions = self.functions[module]
        main = functions["main"]
        roots = ["main", *sorted({n.id for n in ast.walk(main) if isinstance(n, ast.Name) and n.id in functions})]
        entry: list[Function] = []
        for root in dict.fromkeys(roots):
            node = functions[root]
            local = _local_types(node)
            called = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
            entry.append((module, "", root))
            entry += sorted({(c.module, c.name, n.attr) for n in ast.walk(node)
                             if isinstance(n, ast.Attribute) and id(n) not in called and isinstance(n.value, ast.Name)
                             for c in self.classes.get(local.get(n.value.id, ""), []) if n.attr in c.methods})
        return entry

    def stub_calls(self) -> set[Rpc]:
        """Every RPC any class of ours makes through a stub, reached or not."""
        return {r for infos in self.classes.values() for c in infos for m in c.methods
                for r in self.callees((c.module, c.name, m))[1]}


def derive(services: Iterable[str] = tuple(s.name for s in SERVICES), root: Path = SERVICES_DIR
           ) -> dict[Rpc, set[Rpc]]:
    """Every handler of every service -> the RPCs it calls directly."""
    graph: dict[Rpc, set[Rpc]] = {}
    for service in services:
        universe = Universe(service, root)
        for method, function in sorted(universe.handlers().items()):
            graph[Rpc(service, method)] = universe.reached_rpcs(function)
    return graph


def derive_workers(root: Path = SERVICES_DIR) -> dict[str, set[Rpc]]:
    """Every worker of the registry -> the RPCs it calls (workers serve none, so they close no loop)."""
    found = {}
    for spec in WORKERS:
        _, service, module = spec.module.split(".")
        universe = Universe(service, root)
        found[spec.name] = universe.reached_rpcs(*universe.worker_entry(f"{service}.{module}"))
    return found


def reachable(graph: dict[Rpc, set[Rpc]], start: Rpc) -> dict[Rpc, Rpc]:
    """Every RPC reachable from `start` through one or more calls -> the RPC it was reached from."""
    parents: dict[Rpc, Rpc] = {}
    todo = [start]
    while todo:
        rpc = todo.pop()
        for callee in sorted(graph.get(rpc, ())):
            if callee not in parents:
                parents[callee] = rpc
                todo.append(callee)
    return parents


def call_backs(graph: dict[Rpc, set[Rpc]]) -> Iterator[list[Rpc]]:
    """Each handler that calls, directly or through other services, back into its own service: the path."""
    for start in sorted(graph):
        parents = reachable(graph, start)
        back = sorted(r for r in parents if r.service == start.service)
        if back:
            path = [back[0]]
            while path[-1] != start or len(path) == 1:
                path.append(parents[path[-1]])
            yield path[::-1]


def unknown_targets(graph: dict[Rpc, set[Rpc]]) -> list[Rpc]:
    """Called RPCs that no servicer serves (a typo, or a handler the derivation missed)."""
    return sorted({c for callees in graph.values() for c in callees} - set(graph))


def _calls(rpcs: set[Rpc]) -> str:
    return ", ".join(f"`{c}`" for c in sorted(rpcs)) or "—"


def table(graph: dict[Rpc, set[Rpc]], workers: dict[str, set[Rpc]]) -> str:
    """The handlers that call other services, then the workers, as README's Markdown table."""
    lines = ["| RPC handler (service.method) | calls |", "| --- | --- |"]
    lines += [f"| `{rpc}` | {_calls(graph[rpc])} |" for rpc in sorted(graph) if graph[rpc]]
    lines.append(f"| every other handler ({sum(not c for c in graph.values())}) | — |")
    lines += [f"| worker `{name}` | {_calls(rpcs)} |" for name, rpcs in workers.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="The mesh's RPC call graph, derived from the code.")
    parser.add_argument("--check", action="store_true", help="exit 1 when a handler calls back into its service")
    args = parser.parse_args()
    graph = derive()
    print(table(graph, derive_workers()))
    if args.check:
        loops = list(call_backs(graph))
        for path in loops:
            print("calls back into its own service: " + " -> ".join(map(str, path)), file=sys.stderr)
        sys.exit(1 if loops else 0)


if __name__ == "__main__":
    main()
