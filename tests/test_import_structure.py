"""The package's import structure, read with ``ast`` from the source (nothing is imported): every import of a
``bbe_mobile`` module resolves, there is no import circle, no stage imports a later one, the spec the phones mirror
(grouper, box maths, letterbox) stays free of TensorFlow, and no library module imports the CLI. Imports inside
functions count like the ones at the top: a lazy import still ties two modules together."""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bbe_mobile"

# The stages from the bottom up: a module may import modules of its own stage or of a lower one only.
STAGES = (
    ("bbe_mobile.utils",),
    ("bbe_mobile.boxes", "bbe_mobile.letterbox", "bbe_mobile.grouper", "bbe_mobile.tracker",
     "bbe_mobile.coreml_exec"),
    ("bbe_mobile.modeling", "bbe_mobile.model"),
    ("bbe_mobile.training", "bbe_mobile.predictor", "bbe_mobile.visualize", "bbe_mobile.video"),
    ("bbe_mobile.evaluate", "bbe_mobile.golden", "bbe_mobile.golden_tracking", "bbe_mobile.predict_files",
     "bbe_mobile.predict_video",
     "bbe_mobile.export"),
    ("bbe_mobile.bench",),
    ("bbe_mobile.cli",),
)
SPEC = ("bbe_mobile.grouper", "bbe_mobile.tracker", "bbe_mobile.boxes", "bbe_mobile.letterbox")  # mirrored in Swift and Kotlin
TENSORFLOW = ("tensorflow", "keras", "tf_keras")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_files(directory: Path) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(directory.rglob("*.py"))}


MODULES = module_files(PACKAGE)


@functools.cache
def defined_names(module: str) -> frozenset[str]:
    """Names bound at a module's top level (definitions, assignments, imports), inside if/try blocks too."""
    names: set[str] = set()

    def visit(statements) -> None:
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body + node.orelse + getattr(node, "finalbody", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(MODULES[module].read_text()).body)
    return frozenset(names)


def imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name) of every import in the file, at any depth: ``import a.b`` gives (n, "a.b", None),
    ``from a import b`` gives (n, "a", "b")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module, a.name) for a in node.names]
    return found


def edges(path: Path, problems: list[str]) -> set[str]:
    """The package modules ``path`` imports; an import that names no module or no defined name is a problem."""
    out = set()
    for line, module, name in imports(path):
        if module != "bbe_mobile" and not module.startswith("bbe_mobile."):
            continue
        where = f"{path.relative_to(ROOT)}:{line}"
        if module not in MODULES:
            problems.append(f"{where}: no module {module}")
            continue
        submodule = f"{module}.{name}"
        if name is not None and submodule in MODULES:
            out.add(submodule)
            continue
        if name is not None and name not in defined_names(module):
            problems.append(f"{where}: {module} defines no {name}")
        out.add(module)
    return out


def graph() -> dict[str, set[str]]:
    problems: list[str] = []
    result = {name: edges(path, problems) - {name} for name, path in MODULES.items()}
    assert not problems, "\n".join(problems)
    return result


def stage(module: str) -> int:
    for rank, prefixes in enumerate(STAGES):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no stage: add it to STAGES")


def find_circle(imports_of: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(imports_of.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (circle := visit(nxt)):
                return circle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(imports_of):
        if node not in state and (circle := visit(node)):
            return circle
    return None


def test_every_module_belongs_to_a_stage():
    for module in MODULES:
        if module != "bbe_mobile":
            stage(module)


def test_no_import_circle():
    circle = find_circle(graph())
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_no_stage_imports_a_later_one():
    bad = [f"{a} (stage {stage(a)}) imports {b} (stage {stage(b)})"
           for a, targets in graph().items() if a != "bbe_mobile" for b in targets if stage(b) > stage(a)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("spec", SPEC)
def test_spec_modules_stay_free_of_tensorflow(spec):
    imports_of = graph()
    seen, todo = set(), [spec]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += imports_of[module]
        heavy = [f"{MODULES[module].relative_to(ROOT)}:{line}: {name}" for line, name, _ in imports(MODULES[module])
                 if name.split(".")[0] in TENSORFLOW]
        assert not heavy, f"{spec} reaches TensorFlow through {module}: {heavy}"


def test_no_library_module_imports_the_cli():
    users = [module for module, targets in graph().items() if "bbe_mobile.cli" in targets]
    assert not users, f"imported by library modules: {users}"


def test_tests_and_benchmarks_import_what_exists():
    problems: list[str] = []
    for directory in (ROOT / "tests", ROOT / "benchmarks"):
        for path in sorted(directory.glob("*.py")):
            edges(path, problems)
    assert not problems, "\n".join(problems)


def test_the_check_finds_a_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None
