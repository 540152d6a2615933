"""The house rules, checked on the code as it is (docs/architecture.md): each room is used only through its
public names, the arrows between modules run one way (no import cycles), every package face hands on
what it promises, and framework internals are touched in one adapter module.

The layers themselves (features -> models -> training and evaluation -> serving; inside serving the shared
base -> scoring, audit -> cases -> console -> api -> cli) are import-linter contracts in pyproject.toml,
run by ``make check``.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "models", "training", "evaluation", "serving")
#: The one module allowed to touch a framework's private modules (its docstring names the version checked).
FRAMEWORK_ADAPTERS = {"serving/api/_bentoml.py": ("bentoml", "_bentoml_impl", "_bentoml_sdk")}


def _sources() -> list[Path]:
    roots = [ROOT / p for p in (*PACKAGES, "tests", "benchmarks")]
    return sorted(p for root in roots for p in root.rglob("*.py") if "migrations/versions" not in p.as_posix())


def _module_of(path: Path) -> str | None:
    """The dotted module of a file inside the packages; None for tests and benchmarks (outside every room)."""
    rel = path.relative_to(ROOT).with_suffix("")
    if rel.parts[0] not in PACKAGES:
        return None
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every imported dotted name of a file (``from a.b import c`` gives ``a.b.c``), relative imports resolved."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _private_owner(name: str) -> str | None:
    """The package whose private part ``name`` reaches into (``serving.cases._tables.x`` -> ``serving.cases``)."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return ".".join(parts[:i])
    return None


def private_imports() -> list[str]:
    """``file:line imports name`` for each import of another room's private name or module."""
    found = []
    for path in _sources():
        here = _module_of(path)
        rel = path.relative_to(ROOT).as_posix()
        for line, name in _imports(path):
            owner = _private_owner(name)
            if owner is None:
                continue
            if owner.split(".")[0] not in PACKAGES:  # a third-party package's internals
                if name.split(".")[0] in FRAMEWORK_ADAPTERS.get(rel, ()):
                    continue
            elif here is not None and (here == owner or here.startswith(owner + ".")):
                continue  # inside the room that owns it
            found.append(f"{rel}:{line} imports {name}")
    return found


def test_no_room_imports_another_rooms_private_names() -> None:
    assert private_imports() == []


def test_the_rule_finds_a_private_import() -> None:
    """The check itself: a private name of another room is caught, the room's own and a dunder are not."""
    assert _private_owner("serving.cases._tables.decisions") == "serving.cases"
    assert _private_owner("serving.audit.recipe.record_hash") is None
    assert _private_owner("features.__version__") is None
    assert _private_owner("bentoml._internal.server") == "bentoml"


def import_cycles() -> list[list[str]]:
    """Every set of the project's modules that import each other in a loop (strongly connected, more than one),
    counting imports at any depth of a module, TYPE_CHECKING ones included."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    modules = sorted(m for m in graph.modules if m.split(".")[0] in PACKAGES)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(modules)) for m in modules}
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _is_face_cycle(component: list[str]) -> bool:
    """A package face and the modules it hands names on from (``serving.audit`` re-exports ``serving.audit._store``,
    which imports ``serving.audit.recipe`` through the package) form a loop that is no design fault."""
    packages = {m for m in component if any(other.startswith(m + ".") for other in component)}
    return len(packages) == 1 and all(m.startswith(next(iter(packages))) for m in component)


def test_no_import_cycles_between_modules() -> None:
    assert [c for c in import_cycles() if not _is_face_cycle(c)] == []


FACES = [
    "features",
    "models",
    "training",
    "evaluation",
    "serving.scoring",
    "serving.audit",
    "serving.cases",
    "serving.api",
    "serving.console",
    "serving.cli",
]


@pytest.mark.parametrize("face", FACES)
def test_every_face_hands_on_what_it_promises(face: str) -> None:
    """Each name in a package's ``__all__`` is there (the case store's face imports them on first use)."""
    module = importlib.import_module(face)
    missing = [name for name in getattr(module, "__all__", []) if not hasattr(module, name)]
    assert missing == []
    assert (module.__doc__ or "").strip(), f"{face} has no docstring saying what it is for"


def test_every_package_has_a_face_with_a_docstring() -> None:
    """Every package of the project says what it is for in its ``__init__.py``."""
    silent = [
        init.relative_to(ROOT).as_posix()
        for name in PACKAGES
        for init in (ROOT / name).rglob("__init__.py")
        if not (ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or "").strip()
    ]
    assert silent == []
