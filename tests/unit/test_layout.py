"""The layout holds: no import cycles, the core package never imports the flows, the transforms import nothing
of the package, and a source is known by its name in its own room only.

The import graph is read from the source files (every `import`, at module level or inside a function; not
those under `if TYPE_CHECKING:`, which never run), so a cycle hidden in a lazy import fails here too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from eujp.sources import SOURCES

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("eujp", "transforms", "flows")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO_ROOT / pkg).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports (a `from a import b` of a submodule b counts as a.b)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_cycle_detection_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_packages_are_layered_flows_over_eujp_over_transforms():
    graph = import_graph()
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items() for target in targets
        if (module.split(".")[0], target.split(".")[0]) in {("eujp", "flows"), ("transforms", "eujp"),
                                                             ("transforms", "flows")}
    )
    assert not wrong, "layering broken (flows -> eujp -> transforms only): " + "; ".join(wrong)


def test_no_flow_module_imports_another_flow_module():
    """The modules that define the run flows (daily, as-of) import the support modules of flows/ (tasks,
    results, hooks, artifacts, the domain subflows), never each other."""
    graph = import_graph()
    flow_modules = {"flows.daily", "flows.backfill"}
    wrong = sorted(f"{m} imports {t}" for m in flow_modules for t in graph[m] if t in flow_modules)
    assert not wrong, "; ".join(wrong)


# --- a source's name lives in its room ---------------------------------------------------------------------

CODE_SUFFIXES = {".py", ".sql", ".json", ".yml", ".yaml", ".toml"}


def _rooms(source) -> list[str]:
    """Where `source`'s name may be written: its module, its transform, its suite, its test folder, its data."""
    return [f"eujp/sources/{source.name}.py", f"transforms/{source.name}.py",
            f"expectations/{source.table.name}.json", f"tests/sources/{source.name}/", "data/", "tests/fixtures/"]


def test_a_source_name_is_written_only_in_its_room():
    files = [p for folder in ("eujp", "transforms", "flows", "expectations", "tests", "benchmarks")
             for p in (REPO_ROOT / folder).rglob("*") if p.suffix in CODE_SUFFIXES and p.is_file()]
    misplaced = []
    for source in SOURCES:
        literal = re.compile(rf"""["']{re.escape(source.name)}["']""")
        for path in files:
            rel = path.relative_to(REPO_ROOT).as_posix()
            if any(rel.startswith(room) for room in _rooms(source)):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if literal.search(line):
                    misplaced.append(f"{rel}:{number}: {line.strip()[:100]}")
    assert not misplaced, "a source's name outside its room:\n" + "\n".join(misplaced)


def test_every_third_party_import_of_the_code_is_a_runtime_dependency():
    """`make run` installs requirements.lock (the runtime dependencies of pyproject.toml), not the dev lock: a
    module the pipeline imports that only a dev dependency brings (defusedxml, once) breaks a fresh `make run`
    while every test passes."""
    import sys
    import tomllib
    from importlib.metadata import PackageNotFoundError, packages_distributions, requires

    declared = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-")
                for d in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    runtime = set(declared)
    pending = list(declared)
    while pending:  # what the declared dependencies bring with them (their own non-extra requirements)
        try:
            reqs = requires(pending.pop()) or []
        except PackageNotFoundError:  # not installed here (another platform's dependency): nothing to follow
            reqs = []
        for req in reqs:
            if "extra ==" in req:
                continue
            name = re.split(r"[<>=!~\[; (]", req, maxsplit=1)[0].lower().replace("_", "-")
            if name not in runtime:
                runtime.add(name)
                pending.append(name)
    ours = {pkg.split(".")[0] for pkg in PACKAGES}
    dists = packages_distributions()
    missing = {}
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                if top in ours or top in sys.stdlib_module_names or top == "__future__":
                    continue
                providers = {d.lower().replace("_", "-") for d in dists.get(top, [])}
                if providers and not providers & runtime:
                    missing.setdefault(top, set()).add(module)
    assert not missing, f"imported but not a runtime dependency (pyproject.toml [project] dependencies): {missing}"
