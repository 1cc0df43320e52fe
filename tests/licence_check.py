"""What licences the installed Python packages declare, and which of them run inside the service.

Read from the installed metadata (License-Expression, License, classifiers), so an upgrade that
changes a licence is seen without anyone re-reading the package.
"""
from __future__ import annotations

import importlib.metadata as md
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

from import_closure import import_closure

# Licences whose terms reach the code that uses them: GPL family (also LGPL, AGPL) and the
# weak, file-level ones (MPL, EPL, EUPL, CDDL, OSL). Each needs a reviewer's word.
COPYLEFT = re.compile(r"\b(?:A|L)?GPL|General Public License|\bMPL\b|Mozilla Public|\bEPL\b|"
                      r"Eclipse Public|\bEUPL\b|European Union Public|\bCDDL\b|\bOSL\b|copyleft",
                      re.IGNORECASE)
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(?P<extras>[^\]]*)\])?==(?P<version>[^\s;]+)")


def canonical(name: str) -> str:
    """The package name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_copyleft(licence: str) -> bool:
    return bool(COPYLEFT.search(licence))


def pinned_requirements(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """canonical name → (pinned version, extras asked for) for each ``name==version`` line."""
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line.split("#")[0].strip())
        if match:
            extras = frozenset(e.strip() for e in (match["extras"] or "").split(",") if e.strip())
            pins[canonical(match["name"])] = (match["version"], extras)
    return pins


def declared_licence(name: str) -> str:
    """The licence a package's metadata states: its SPDX expression if it has one, else its
    License field and licence classifiers ("" when it states none)."""
    meta = md.metadata(name)
    if meta.get("License-Expression"):
        return meta["License-Expression"].strip()
    parts = []
    field = (meta.get("License") or "").strip()
    if field and field.upper() != "UNKNOWN" and "\n" not in field:
        parts.append(field)
    parts += [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return " / ".join(parts)


def _requirements(name: str, extras: frozenset[str]) -> dict[str, frozenset[str]]:
    """The packages ``name`` (with ``extras``) needs at run time here, with their extras."""
    needed: dict[str, frozenset[str]] = {}
    for line in md.requires(name) or []:
        req = Requirement(line)
        environments = [{"extra": extra} for extra in ("", *extras)]
        if req.marker is None or any(req.marker.evaluate(env) for env in environments):
            needed[canonical(req.name)] = frozenset(req.extras)
    return needed


def with_their_requirements(roots: dict[str, frozenset[str]]) -> set[str]:
    """The packages ``roots`` load, with everything they need in turn (as installed here)."""
    seen: set[str] = set()
    todo = list(roots.items())
    while todo:
        name, extras = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += list(_requirements(name, extras).items())
        except md.PackageNotFoundError:
            continue  # not installed here (another platform's requirement)
    return seen


def imported_distributions(root: Path, package: str) -> set[str]:
    """The installed packages whose modules ``package`` imports (its whole import closure)."""
    owners = md.packages_distributions()
    tops = {name.split(".")[0] for name in import_closure(root, package)}
    return {canonical(dist) for top in tops - set(sys.stdlib_module_names) for dist in owners.get(top, [])}


def unreviewed_copyleft(licences: dict[str, str], reviewed: set[str]) -> list[str]:
    """``name: licence`` for every copyleft package not in ``reviewed``."""
    return [f"{name}: {licence}" for name, licence in sorted(licences.items())
            if is_copyleft(licence) and name not in reviewed]
