"""Data flows one way: domain -> prompts -> engine -> verifier -> metrics -> study tables.

The import graph of mdrl is read from the source with `ast` (imports at module level and inside
functions, relative imports resolved, `importlib.import_module("mdrl...")` calls included), so a lazy
import cannot hide an arrow that runs against the flow:
  * `mdrl.verify` is a leaf the domains build on: nothing in it reaches `mdrl.domains`;
  * training gets mdrl's tiny model through a model provider (entry point), never by importing `mdrl.tiny`;
  * no module reaches itself again (no circle, however long).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import mdrl

PACKAGE = Path(mdrl.__file__).parent


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = ("mdrl", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)


def imports_of(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """The mdrl modules `path` imports anywhere in its body."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        # the deepest mdrl module the dotted name starts with (`mdrl.data.build.X` -> `mdrl.data.build`)
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:
                full = f"{origin}.{alias.name}"
                add(full if full in modules else origin)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            add(node.args[0].value)
    found.discard(name)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    paths = sorted(root.rglob("*.py"))
    modules = {module_name(path, root) for path in paths}
    return {module_name(path, root): imports_of(path, modules, root) for path in paths}


def reachable(graph: Mapping[str, Iterable[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def forbidden_paths(graph: Mapping[str, Iterable[str]], source: str, target: str) -> list[str]:
    """Modules under `source` that reach a module under `target`, directly or through others."""
    def under(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    return sorted(f"{module} -> {sorted(m for m in reachable(graph, module) if under(m, target))}"
                  for module in graph if under(module, source)
                  and any(under(m, target) for m in reachable(graph, module)))


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


GRAPH = import_graph()


def test_the_graph_is_read():
    assert "mdrl.domains.registry" in GRAPH["mdrl.domains.math"]
    assert "mdrl.reward" in GRAPH["mdrl.commands.score"]
    assert len(GRAPH) > 60


def test_verify_is_a_leaf_that_never_reaches_the_domains():
    assert forbidden_paths(GRAPH, "mdrl.verify", "mdrl.domains") == []


def test_the_leaves_reach_nothing_above_them():
    """verify reaches only verify; the plain-values helper (used by verify's users and the configs) nothing."""
    assert GRAPH["mdrl.plain"] == set()
    outside = {m: sorted(t for t in reachable(GRAPH, m) if not t.startswith("mdrl.verify"))
               for m in GRAPH if m == "mdrl.verify" or m.startswith("mdrl.verify.")}
    assert {m: t for m, t in outside.items() if t} == {}


def test_training_never_imports_the_tiny_model():
    assert forbidden_paths(GRAPH, "mdrl.train", "mdrl.tiny") == []


def test_training_gets_the_tiny_model_through_the_provider_hook():
    """What replaces train's import of mdrl.tiny: the entry point (pyproject.toml, group mdrl.models) is
    installed and loads the tiny model's builder; any other reference has no provider."""
    from mdrl.modelref import model_provider
    from mdrl.tiny.pretrain import pretrain_tiny

    assert model_provider("tiny") is pretrain_tiny
    assert model_provider("Qwen/Qwen2.5-0.5B") is None


def test_no_module_imports_itself_through_others():
    assert cycles(GRAPH) == []


def test_the_checks_fail_on_a_violation(tmp_path):
    """The same checks on a small package with each fault planted in it."""
    root = tmp_path / "mdrl"
    files = {
        "__init__.py": "",
        "verify/__init__.py": "",
        "verify/extract.py": "def f():\n    from ..domains import registry\n",
        "domains/__init__.py": "",
        "domains/registry.py": "from mdrl.verify import extract\n",
        "train/__init__.py": "",
        "train/run.py": "import importlib\nimportlib.import_module('mdrl.tiny.pretrain')\n",
        "tiny/__init__.py": "",
        "tiny/pretrain.py": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    graph = import_graph(root)
    assert forbidden_paths(graph, "mdrl.verify", "mdrl.domains") == [
        "mdrl.verify.extract -> ['mdrl.domains.registry']"]
    assert forbidden_paths(graph, "mdrl.train", "mdrl.tiny") == ["mdrl.train.run -> ['mdrl.tiny.pretrain']"]
    assert cycles(graph) == [["mdrl.domains.registry", "mdrl.verify.extract"]]
