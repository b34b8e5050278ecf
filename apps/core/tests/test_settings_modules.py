"""The settings are split by concern (flashsale/settings/*.py) and each value is set in one
place: no setting assigned in two modules or twice in one, none patched after the fact
(``MIDDLEWARE.insert``, ``CACHES["default"][...] = ``), and base.py only puts the modules
together. test.py is the one module that overrides values, on purpose."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SETTINGS_DIR = Path(__file__).resolve().parents[3] / "flashsale" / "settings"
OVERRIDING_MODULES = {"test.py"}
MUTATORS = {"insert", "remove", "append", "extend", "pop", "update", "setdefault", "clear"}


def _modules() -> dict[str, ast.Module]:
    return {
        path.name: ast.parse(path.read_text(), filename=str(path))
        for path in sorted(SETTINGS_DIR.glob("*.py"))
        if path.name not in OVERRIDING_MODULES
    }


def _module_level(tree: ast.Module):
    """Every node run at import time: the module body and what its if/for/with/try blocks hold,
    not the inside of functions and classes."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt | ast.excepthandler):
                stack.append(child)
            elif isinstance(child, ast.expr):
                yield from ast.walk(child)


def _is_setting(name: str) -> bool:
    return name.isupper() and not name.startswith("_")


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Subscript | ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return [t for target in node.targets for t in _flatten(target)]
    if isinstance(node, ast.AnnAssign | ast.AugAssign):
        return [node.target]
    if isinstance(node, ast.For | ast.With):
        targets = (
            [node.target]
            if isinstance(node, ast.For)
            else [item.optional_vars for item in node.items if item.optional_vars is not None]
        )
        return [t for target in targets for t in _flatten(target)]
    if isinstance(node, ast.NamedExpr):
        return [node.target]
    return []


def _flatten(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, ast.Tuple | ast.List):
        return [t for element in target.elts for t in _flatten(element)]
    return [target]


def test_each_setting_is_assigned_once_in_one_module():
    where = defaultdict(list)
    for module, tree in _modules().items():
        for node in _module_level(tree):
            for target in _targets(node):
                if isinstance(target, ast.Name) and _is_setting(target.id):
                    where[target.id].append(f"{module}:{target.lineno}")
    twice = {name: places for name, places in where.items() if len(places) > 1}
    assert not twice, f"settings assigned more than once: {twice}"
    # The check sees the settings at all (a parsing slip would make it pass vacuously).
    assert {"MIDDLEWARE", "CELERY_BEAT_SCHEDULE", "DATABASES", "CACHES"} <= set(where)


def test_no_setting_is_patched_after_it_is_made():
    patched = []
    for module, tree in _modules().items():
        for node in _module_level(tree):
            for target in _targets(node):
                if not isinstance(target, ast.Name) and _is_setting(_root_name(target) or ""):
                    patched.append(f"{module}:{target.lineno} {ast.unparse(target)}")
            if isinstance(node, ast.Delete):
                patched += [f"{module}:{node.lineno} del {ast.unparse(t)}" for t in node.targets]
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATORS
                and _is_setting(_root_name(node.func.value) or "")
            ):
                patched.append(f"{module}:{node.lineno} {ast.unparse(node.func)}(...)")
    assert not patched, f"settings changed after they were made: {patched}"


def test_base_only_composes_the_modules():
    tree = _modules()["base.py"]
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    assert body and all(isinstance(node, ast.ImportFrom) and node.level == 1 for node in body), (
        "base.py should hold only `from .<concern> import *` lines"
    )


def test_no_import_is_kept_alive_with_noqa():
    kept = [
        f"{path.name}:{number}"
        for path in sorted(SETTINGS_DIR.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "noqa: F401" in line
    ]
    assert not kept, f"unused imports silenced instead of removed: {kept}"
