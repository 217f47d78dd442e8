"""The arrows run one way: ingest → knowledge_base ← qa_service, eval → the public Python/HTTP API.

Each rule is a checker over the project's import graph (or its sources) that returns the violations it finds; a rule's
test asserts there are none in the tree, and `test_a_deliberate_violation_is_reported` adds one line to a real file
(in memory) and asserts the rule reports it. Imports inside functions count: an arrow hidden in a function is an arrow.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("ingest", "knowledge_base", "qa_service", "eval")
# Judge training never runs while answering.
TRAINING = ("qa_service.training",)
ANSWERING = "qa_service.engine"  # QAEngine.ask: everything it imports, directly or not, is the answering path
# Underscore names that are public API (namedtuple's methods).
PUBLIC_UNDERSCORED = frozenset({"_replace", "_asdict", "_fields", "_make"})
# Files known to break an eval rule, each with the step that removes it. A listed file that no longer breaks the
# rule fails `test_known_exceptions_are_still_needed`, so the list cannot go stale.
KNOWN_EVAL_EXCEPTIONS: dict[str, str] = {}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. qa_service.cli for qa_service/cli/__init__.py
    text: str
    is_package: bool

    @property
    def tree(self) -> ast.Module:
        return parse(self.text)

    @property
    def top(self) -> str:
        return self.name.split(".")[0]


@lru_cache(maxsize=None)
def parse(text: str) -> ast.Module:  # the deliberate violations re-read the tree: each unchanged file is parsed once
    return ast.parse(text)


Project = dict[str, Module]
Graph = dict[str, set[str]]


def project(edits: dict[str, str] | None = None) -> Project:
    """Every module of the four packages; `edits` appends source lines to a file (path relative to the repository),
    creating it when it does not exist: a deliberate violation, in memory."""
    edits = dict(edits or {})
    paths = {p.relative_to(REPO).as_posix(): p for top in PACKAGES for p in (REPO / top).rglob("*.py")}
    modules = {}
    for rel in sorted(set(paths) | set(edits)):
        text = paths[rel].read_text("utf-8") if rel in paths else ""
        if rel in edits:
            text += "\n" + edits[rel] + "\n"
        parts = Path(rel).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, text, is_package)
    return modules


def imported_modules(module: Module) -> set[str]:
    """Every module a module imports (relative imports resolved); `from a import b` counts as a and a.b."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    out = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
    return out


def graph_of(modules: Project) -> Graph:
    return {name: {m for m in imported_modules(mod) if m.split(".")[0] in PACKAGES} for name, mod in modules.items()}


def within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORED


# ---------------------------------------------------------------------------------------------- the checkers
def imports_from(graph: Graph, importer: str, forbidden: tuple[str, ...]) -> list[str]:
    """Imports by modules of package `importer` of anything in `forbidden`."""
    return sorted(f"{name} imports {dep}" for name, deps in graph.items() if within(name, importer)
                  for dep in deps if within(dep, forbidden))


def ingest_imports_upward(graph: Graph) -> list[str]:
    """ingest → knowledge_base: ingest imports neither the service nor eval."""
    return imports_from(graph, "ingest", ("qa_service", "eval"))


def knowledge_base_imports_a_side(graph: Graph) -> list[str]:
    """knowledge_base is what both sides share: it imports neither ingest nor the service (nor eval)."""
    return imports_from(graph, "knowledge_base", ("ingest", "qa_service", "eval"))


def qa_service_imports_eval(graph: Graph) -> list[str]:
    """eval's commands reach the CLI through entry points; qa_service never imports eval."""
    return imports_from(graph, "qa_service", ("eval",))


def eval_imports_the_cli(graph: Graph) -> list[str]:
    """The command line is no API: eval uses the Python API (the engine, open_kb) or HTTP."""
    return imports_from(graph, "eval", ("qa_service.cli",))


def answering_path_imports_training_or_ingest(graph: Graph) -> list[str]:
    """Everything QAEngine imports, directly or not, imports nothing of judge training or ingest."""
    def resolve(dep: str) -> str | None:
        while dep and dep not in graph:
            dep = dep.rpartition(".")[0]
        return dep or None

    via = {ANSWERING: [ANSWERING]}
    todo = [ANSWERING]
    bad = []
    while todo:
        name = todo.pop()
        for dep in sorted(graph.get(name, ())):
            if within(dep, TRAINING + ("ingest",)):
                bad.append(" → ".join(via[name] + [dep]))
            elif (node := resolve(dep)) is not None and node not in via:
                via[node] = via[name] + [node]
                todo.append(node)
    return sorted(bad)


def import_cycles(graph: Graph) -> list[str]:
    """The first import cycle between project modules, if any (a package's own __init__ does not count)."""
    def resolve(dep: str) -> str | None:
        while dep and dep not in graph:
            dep = dep.rpartition(".")[0]
        return dep or None

    # `from .x import y` inside a package names the package: that is not the module depending on its __init__
    edges = {n: sorted({r for d in deps if (r := resolve(d)) and r != n and not n.startswith(r + ".")})
             for n, deps in graph.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(n: str, path: list[str]) -> list[str]:
        state[n] = 1
        for m in edges.get(n, ()):
            if state.get(m) == 1:
                return [" → ".join(path[path.index(m):] + [m])]
            if m not in state and (found := visit(m, path + [m])):
                return found
        state[n] = 2
        return []

    for n in sorted(edges):
        if n not in state and (found := visit(n, [n])):
            return found
    return []


def eval_private_names(modules: Project) -> list[str]:
    """eval uses no private (leading underscore) name of another package: not imported (`from x import _y`, a
    `_module`), not read off an object (`engine._state`, getattr(x, "_y")). An object's type is not known statically:
    an underscore attribute that eval itself does not define is taken as another package's."""
    evals = [m for m in modules.values() if m.top == "eval"]
    own = set().union(*(defined_names(m.tree) for m in evals))
    bad = []
    for m in evals:
        for node in ast.walk(m.tree):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module.split(".")[0] != "eval":
                bad += [f"{m.name} imports {node.module}.{a.name}" for a in node.names if private(a.name)]
                if any(map(private, node.module.split("."))):
                    bad.append(f"{m.name} imports {node.module}")
            elif isinstance(node, ast.Import):
                bad += [f"{m.name} imports {a.name}" for a in node.names if any(map(private, a.name.split(".")))]
            elif isinstance(node, ast.Attribute) and private(node.attr) and node.attr not in own and not (
                    isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                bad.append(f"{m.name}:{node.lineno} reads {ast.unparse(node)}")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr")
                  and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                  and isinstance(node.args[1].value, str) and private(node.args[1].value)):
                bad.append(f"{m.name}:{node.lineno} calls {ast.unparse(node)}")
    return sorted(bad)


def defined_names(tree: ast.Module) -> set[str]:
    """Names a module defines: functions, classes, arguments, assignment targets (self._x too), import aliases."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, ast.alias) and node.asname:
            out.add(node.asname)
    return out


def eval_patches_another_package(modules: Project) -> list[str]:
    """eval changes nothing of another package at run time: no assignment to an imported module's (or imported
    object's) attribute (`judge_train.passage_features = …`, `retrieval.K = …`), no setattr on one; tuning is
    configuration (AnswerConfig), not patching."""
    bad = []
    for m in (m for m in modules.values() if m.top == "eval"):
        tree = m.tree
        imported = {a.asname or a.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0)
                    for a in node.names}
        for node in ast.walk(tree):
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr" and node.args:
                targets = [ast.Attribute(value=node.args[0], attr="?", lineno=node.lineno)]
            for t in targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in imported:
                    bad.append(f"{m.name}:{node.lineno} sets {t.value.id}.{t.attr}")
    return sorted(bad)


def without_known(violations: list[str]) -> list[str]:
    return [v for v in violations if not any(v.startswith(k + ":") or v.startswith(k + " ") for k in KNOWN_EVAL_EXCEPTIONS)]


# ---------------------------------------------------------------------------------------------- the rules
GRAPH_RULES: dict[str, Callable[[Graph], list[str]]] = {
    "ingest imports neither the service nor eval": ingest_imports_upward,
    "knowledge_base imports neither ingest nor the service": knowledge_base_imports_a_side,
    "qa_service does not import eval": qa_service_imports_eval,
    "eval does not import the CLI": eval_imports_the_cli,
    "the answering path imports neither training nor ingest": answering_path_imports_training_or_ingest,
    "no import cycle": import_cycles,
}
SOURCE_RULES: dict[str, Callable[[Project], list[str]]] = {
    "eval uses no private name of another package": eval_private_names,
    "eval patches no other package": eval_patches_another_package,
}


def violations(rule: str, modules: Project) -> list[str]:
    if rule in GRAPH_RULES:
        return GRAPH_RULES[rule](graph_of(modules))
    return without_known(SOURCE_RULES[rule](modules))


@pytest.fixture(scope="module")
def tree() -> Project:
    return project()


@pytest.mark.parametrize("rule", [*GRAPH_RULES, *SOURCE_RULES])
def test_the_tree_keeps_the_rule(rule, tree):
    found = violations(rule, tree)
    assert not found, f"{rule}, broken:\n  " + "\n  ".join(found)


# One line added to a real file, each breaking one rule. The deliberate violation must be reported as such.
DELIBERATE = [
    ("ingest imports neither the service nor eval", "ingest/pipeline.py", "from qa_service.demo import open_kb"),
    ("knowledge_base imports neither ingest nor the service", "knowledge_base/store.py",
     "from ingest.pipeline import IngestPipeline"),
    ("knowledge_base imports neither ingest nor the service", "knowledge_base/judge.py",
     "def engine():\n    from qa_service import engine"),
    ("qa_service does not import eval", "qa_service/cli/__init__.py", "from eval import cli as eval_cli"),
    ("eval does not import the CLI", "eval/runner.py", "from qa_service.cli.common import open_kb"),
    ("the answering path imports neither training nor ingest", "qa_service/conversation.py",
     "from .training import JudgeTrainer"),
    ("the answering path imports neither training nor ingest", "qa_service/compose.py",
     "def chunks():\n    from ingest.chunking import chunk_document"),
    ("no import cycle", "qa_service/compose.py", "from .engine import QAEngine"),
    ("no import cycle", "knowledge_base/text.py", "from knowledge_base import retrieval"),
    ("eval uses no private name of another package", "eval/runner.py", "from qa_service.engine import _public"),
    ("eval uses no private name of another package", "eval/runner.py", "def peek(engine):\n    return engine._state"),
    ("eval uses no private name of another package", "eval/report.py", "x = getattr(object(), '_judged')"),
    ("eval patches no other package", "eval/runner.py", "from knowledge_base import judge\njudge.passage_features = len"),
    ("eval patches no other package", "eval/experiments/probe.py",
     "import qa_service.engine as e\ne.LAYER_COSINE_MARGIN = 0.1"),
]


@pytest.mark.parametrize("rule, path, line", DELIBERATE, ids=[f"{r}: {p}" for r, p, _ in DELIBERATE])
def test_a_deliberate_violation_is_reported(rule, path, line):
    found = violations(rule, project({path: line}))
    name = ".".join(Path(path).with_suffix("").parts).removesuffix(".__init__")
    assert found and any(name in v for v in found), found


def test_known_exceptions_are_still_needed(tree):
    everything = [v for rule in SOURCE_RULES.values() for v in rule(tree)]
    for name, step in KNOWN_EVAL_EXCEPTIONS.items():
        assert any(v.startswith(name) for v in everything), f"{name} keeps the rules now: drop it ({step})"
