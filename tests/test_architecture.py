"""The arrows run one way: qa_service → knowledge_base ← ingest, eval → the public API; tuning is configuration."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANSWERING = ["qa_service/engine.py", "qa_service/compose.py", "qa_service/normalize.py", "qa_service/channels.py",
             "qa_service/faq_match.py", "qa_service/layers.py", "knowledge_base/retrieval.py",
             "knowledge_base/judge.py", "knowledge_base/featurize.py"]
# What answers a question over any channel: never training (qa_service.training), nor ingest, even through others.
ANSWERING_SERVICE = ["qa_service/engine.py", "qa_service/compose.py", "qa_service/channels.py", "qa_service/normalize.py",
                     "qa_service/faq_match.py", "qa_service/layers.py", "qa_service/conversation.py", "qa_service/api"]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions (relative imports resolved)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)  # `from eval import cli` imports eval.cli
    return out


def project_graph() -> dict[str, set[str]]:
    graph = {}
    for top in ("ingest", "knowledge_base", "qa_service", "eval"):
        for path in (REPO / top).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            graph[name] = {m for m in imported_modules(path)
                           if m.split(".")[0] in ("ingest", "knowledge_base", "qa_service", "eval")}
    return graph


def test_the_answering_path_imports_nothing_from_ingest():
    for rel in ANSWERING:
        bad = {m for m in imported_modules(REPO / rel) if m.split(".")[0] == "ingest"}
        assert not bad, f"{rel} imports {bad}"


def test_the_answering_path_never_reaches_training_or_ingest():
    """Nothing the answering modules import, directly or through other project modules, is qa_service.training;
    none of them imports ingest itself (training builds its side knowledge bases with it)."""
    graph = project_graph()
    paths = [p for rel in ANSWERING_SERVICE for p in ([REPO / rel] if rel.endswith(".py") else (REPO / rel).rglob("*.py"))]
    for path in paths:
        assert not {m for m in imported_modules(path) if m.split(".")[0] == "ingest"}, f"{path.name} imports ingest"
    names = [".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__") for p in paths]

    def resolve(dep: str) -> str | None:
        while dep and dep not in graph:
            dep = dep.rpartition(".")[0]
        return dep or None

    reached, todo = {}, [(n, [n]) for n in names]
    while todo:
        name, via = todo.pop()
        assert not name.startswith("qa_service.training"), "the answering path imports training: " + " → ".join(via)
        for dep in graph.get(name, ()):
            if (r := resolve(dep)) and r not in reached:
                reached[r] = True
                todo.append((r, via + [r]))


def test_knowledge_base_imports_neither_ingest_nor_the_service():
    for name, deps in project_graph().items():
        if name.startswith("knowledge_base"):
            assert not {d for d in deps if d.split(".")[0] in ("ingest", "qa_service", "eval")}, name


def test_no_import_cycle_between_project_modules():
    graph = project_graph()

    def resolve(dep: str) -> str | None:
        while dep and dep not in graph:
            dep = dep.rpartition(".")[0]
        return dep or None

    # a package's __init__ is not the module's dependent: `from .x import y` inside a package names the package
    edges = {n: {r for d in deps if (r := resolve(d)) and r != n and not n.startswith(r + ".")}
             for n, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in edges.get(n, ()):
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " → ".join(path[path.index(m):] + [m]) if m in path else m)
            if m not in state:
                visit(m, path + [m])
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n, [n])


def test_tuning_changes_no_module_attribute():
    tree = ast.parse((REPO / "eval/tune_retrieval.py").read_text("utf-8"))
    modules = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
               for a in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    assert target.value.id not in modules, f"assigns {target.value.id}.{target.attr}"
