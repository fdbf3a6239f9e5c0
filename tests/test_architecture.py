"""The layout stays readable: one-way imports, no private names across modules,
short modules and a short ``fit`` (issue 17). docs/architecture.md explains it."""

from __future__ import annotations

import ast
import inspect
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "yoto_sklearn"
TESTS = pathlib.Path(__file__).resolve().parent

# Lower layers never import higher ones (docs/architecture.md, "Layers").
LAYERS = {
    "_network": 0,
    "_budget": 0,
    "_codec": 0,
    "_validation": 0,
    "_docs": 0,
    "callbacks": 0,
    "datasets": 0,
    "_tiledb": 0,
    "_stats": 1,
    "_orders": 1,
    "_reads": 1,
    "counts": 1,
    "_targets": 1,
    "sources": 1,
    "soma": 1,
    "_design": 1,
    "metrics": 2,
    "_training": 2,
    "_structure": 2,
    "_markers": 2,
    "_fitted": 3,
    "_predictor": 3,
    "_io": 4,
    "_selector": 5,
    "yoto_sklearn": 5,  # the package's lazy public names: the estimator
    "stability": 6,
    "refit": 6,
    "plotting": 6,
    "anndata": 6,
    "evaluation": 7,
    "report": 7,
    "cli": 8,
    "__main__": 8,
}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text())


def _layer(path: pathlib.Path) -> int | None:
    rel = path.relative_to(PACKAGE).with_suffix("")
    if rel.parts[0] == "cli":
        return LAYERS["cli"]
    return LAYERS.get(rel.parts[0])


def _imported_module(node: ast.ImportFrom | ast.Import, path: pathlib.Path) -> list:
    """Top-level package module names an import statement reaches."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names if a.name.startswith("yoto_sklearn")]
        return [n.split(".")[1] if "." in n else "yoto_sklearn" for n in names]
    depth = len(path.relative_to(PACKAGE).parts) - 1
    if node.level == 0:
        if not (node.module or "").startswith("yoto_sklearn"):
            return []
        parts = node.module.split(".")[1:]
    elif node.level > depth + 1:
        return []
    else:
        base = list(path.relative_to(PACKAGE).parts[:-1])[: depth - node.level + 1]
        parts = base + (node.module.split(".") if node.module else [])
    if not parts:  # "from . import x" at the top of the package
        return [a.name for a in node.names]
    return [parts[0]]


def test_every_module_has_a_layer():
    """A new module is placed in LAYERS (and in docs/architecture.md's table), so
    the one-way rule below covers it too."""
    unplaced = set()
    for path, _ in _modules():
        if path == PACKAGE / "__init__.py":
            continue
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.parts[0] not in LAYERS:
            unplaced.add(rel.parts[0])
    assert unplaced == set()


def test_architecture_page_names_every_module():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    missing = [
        name
        for name in LAYERS
        if name not in ("yoto_sklearn", "__main__") and f"`{name}" not in page
    ]
    assert missing == []


def test_imports_point_one_way():
    wrong = []
    for path, tree in _modules():
        mine = _layer(path)
        if mine is None or path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported_module(node, path):
                theirs = LAYERS.get(target, LAYERS["cli"] if target == "cli" else None)
                if theirs is not None and theirs > mine and target != "cli":
                    wrong.append(f"{path.name}:{node.lineno} imports {target}")
    assert wrong == []


def test_no_private_name_is_imported_from_another_module():
    found = []
    for path, tree in _modules():
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name.startswith("_") and alias.name not in (
                        "__version__",
                    ):
                        found.append(f"{path.name}:{node.lineno} {alias.name}")
                    imported.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                imported |= {a.asname or a.name.split(".")[0] for a in node.names}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in imported
            ):
                found.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert found == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_modules_stay_short(path):
    assert len(path.read_text().splitlines()) <= 700


def test_fit_is_a_short_dispatcher():
    from yoto_sklearn import YOTOSelector

    assert len(inspect.getsource(YOTOSelector._fit).splitlines()) <= 60


def test_tests_patch_at_most_two_package_internals():
    """Behaviour is injected through seams (row sources, callbacks, the training
    loop's keyword arguments), not by monkeypatching the package."""
    patched = []
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        from_package = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "yoto_sklearn"
            ):
                from_package |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                from_package |= {
                    a.asname or a.name
                    for a in node.names
                    if a.name.startswith("yoto_sklearn")
                }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("setattr", "delattr", "setitem")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "monkeypatch"
                and node.args
            ):
                root = node.args[0]
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in from_package:
                    patched.append(f"{path.name}:{node.lineno}")
    assert len(patched) <= 2, patched
