"""The hotline carries a licence other cities can adopt it under, and its dependencies' licences
are written down: a new pin without a licence line, or a copyleft package running inside the
service that nobody reviewed, fails here."""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import re
from pathlib import Path

import pytest

from licence_check import (canonical, declared_licence, imported_distributions, is_copyleft,
                           pinned_requirements, unreviewed_copyleft, with_their_requirements)

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "licences.md"
REQUIREMENTS = ("requirements.txt", "requirements-test-model.txt")
# The Apache License 2.0 exactly as https://www.apache.org/licenses/LICENSE-2.0.txt gives it.
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def table(heading: str) -> list[list[str]]:
    """The rows of the first table under ``## heading`` in docs/licences.md, as cells."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def listed_packages() -> dict[str, tuple[str, str, str]]:
    """canonical name → (version, licence, runs in) from the pinned packages' table."""
    listed = {}
    for name, version, licence, runs_in in table("Python packages pinned in requirements.txt and "
                                                 "requirements-test-model.txt"):
        listed[canonical(re.sub(r"\[.*\]", "", name))] = (version, licence, runs_in)
    return listed


def all_pins() -> dict[str, tuple[str, frozenset[str]]]:
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    for name in REQUIREMENTS:
        pins.update(pinned_requirements(ROOT / name))
    return pins


def in_the_service() -> set[str]:
    """Every Python package loaded by the hotline's processes: what ivr imports, what the doc
    says runs there (e.g. a database driver SQLAlchemy loads by URL), and all they need."""
    pins = all_pins()
    service = {name for name, (_, _, runs_in) in listed_packages().items() if runs_in == "service"}
    roots = imported_distributions(ROOT, "ivr") | service
    return with_their_requirements({name: pins.get(name, ("", frozenset()))[1] for name in roots})


def test_the_hotline_is_under_the_apache_licence_2_0() -> None:
    assert hashlib.sha256((ROOT / "LICENSE").read_bytes()).hexdigest() == APACHE_2_0_SHA256
    assert "Apache License, Version 2.0" in (ROOT / "NOTICE").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    licence = readme.split("\n## Licence\n", 1)[1]
    assert "Apache License 2.0" in licence and "(LICENSE)" in licence and "docs/licences.md" in licence


def test_every_pinned_requirement_has_a_licence_line() -> None:
    listed = listed_packages()
    missing = [f"{name}=={version}" for name, (version, _) in sorted(all_pins().items())
               if name not in listed or listed[name][0] != version or not listed[name][1]]
    assert not missing, f"add to {DOC.name} (version, licence, where it runs): {missing}"
    assert {runs_in for _, _, runs_in in listed.values()} <= {"service", "tests"}


def test_listed_licences_agree_with_the_packages_metadata() -> None:
    disagree = []
    for name, (_, licence, _) in sorted(listed_packages().items()):
        try:
            meta = md.metadata(name)
        except md.PackageNotFoundError:
            continue  # not installed here: its pin is still checked above
        declared = declared_licence(name)
        if meta.get("License-Expression") and licence != declared:
            disagree.append(f"{name}: listed {licence!r}, metadata {declared!r}")
        elif declared and is_copyleft(licence) != is_copyleft(declared):
            disagree.append(f"{name}: listed {licence!r}, metadata {declared!r}")
    assert not disagree, "\n".join(disagree)


def test_what_ivr_imports_is_listed_as_running_in_the_service() -> None:
    listed = listed_packages()
    wrong = sorted(name for name in imported_distributions(ROOT, "ivr")
                   if name in listed and listed[name][2] != "service")
    assert not wrong, f"ivr imports these, so they run in the service: {wrong}"


def test_no_unreviewed_copyleft_package_runs_in_the_service() -> None:
    reviewed = {canonical(row[0]) for row in table("Copyleft packages in the service's processes, reviewed")}
    licences = {name: declared_licence(name) for name in in_the_service()}
    assert "psycopg-binary" in licences and "certifi" in licences  # dependencies of dependencies count
    unreviewed = unreviewed_copyleft(licences, reviewed)
    assert not unreviewed, f"review in {DOC.name} or replace: {unreviewed}"


@pytest.mark.parametrize(("licence", "copyleft"), [
    ("GPL-3.0-or-later", True), ("LGPL-3.0-only", True), ("AGPL-3.0", True), ("MPL-2.0 AND MIT", True),
    ("GNU General Public License v2 (GPLv2)", True), ("Mozilla Public License 2.0 (MPL 2.0)", True),
    ("EUPL-1.2", True), ("MIT", False), ("Apache-2.0", False), ("BSD-3-Clause", False),
    ("MIT AND PSF-2.0", False), ("Apache Software License", False), ("", False),
])
def test_copyleft_licences_are_recognised(licence: str, copyleft: bool) -> None:
    assert is_copyleft(licence) is copyleft


def test_a_gpl_package_nobody_reviewed_is_flagged() -> None:
    licences = {"speechlib": "GPL-3.0-or-later", "fastlib": "MIT", "psycopg": "LGPL-3.0-only"}
    assert unreviewed_copyleft(licences, reviewed={"psycopg"}) == ["speechlib: GPL-3.0-or-later"]
