"""Which modules a package pulls in when it runs, followed through the project's own modules.

Read from the source (ast), not by importing: imports inside functions count too, since they run
on the first call, while ``if TYPE_CHECKING:`` blocks never run and do not count.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator


def module_file(root: Path, name: str) -> Path | None:
    """The source file of module ``name`` under ``root``, or None if it is not the project's."""
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def package_modules(root: Path, package: str) -> list[str]:
    """Every module of ``package`` (the package itself and all its submodules), or the one
    module if ``package`` names a module."""
    folder = root.joinpath(*package.split("."))
    if not folder.is_dir() and module_file(root, package) is not None:
        return [package]
    names = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """All nodes except the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _with_parents(name: str) -> set[str]:
    """Importing a.b.c runs a and a.b first."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def direct_imports(root: Path, name: str) -> set[str]:
    """The modules that running module ``name`` imports itself."""
    path = module_file(root, name)
    assert path is not None, f"{name} is not under {root}"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    own_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found |= _with_parents(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = own_package
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            found |= _with_parents(base)
            found |= {f"{base}.{a.name}" for a in node.names if module_file(root, f"{base}.{a.name}")}
    found.discard(name)
    return found


def import_closure(root: Path, package: str) -> dict[str, list[str]]:
    """Every module ``package`` imports, directly or through the project's modules, each with
    the chain of imports that leads to it (for the failure message)."""
    chains: dict[str, list[str]] = {name: [name] for name in package_modules(root, package)}
    todo = list(chains)
    while todo:
        name = todo.pop()
        for imported in sorted(direct_imports(root, name)):
            if imported in chains:
                continue
            chains[imported] = chains[name] + [imported]
            if module_file(root, imported) is not None:
                todo.append(imported)
    return chains


def forbidden_in(closure: dict[str, list[str]], forbidden: tuple[str, ...]) -> list[str]:
    """The import chains that reach a forbidden module (a name or any of its submodules)."""
    return [" → ".join(chain) for name, chain in sorted(closure.items())
            if any(name == f or name.startswith(f + ".") for f in forbidden)]
