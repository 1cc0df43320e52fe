from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from browser_harness import chromium, web  # noqa: F401 - the browser fixtures, one Playwright per worker
from cloud_harness import api, cloud  # noqa: F401 - the fake Twilio REST API and a hotline behind it
from hotline_harness import COVERAGE, Hotline


@pytest.fixture(scope="session")
def prompt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompt-cache")


@pytest.fixture()
def make_hotline(tmp_path: Path, prompt_cache: Path) -> Iterator:
    made: list[Hotline] = []

    def make(**kwargs) -> Hotline:
        hotline = Hotline(tmp_path / f"h{len(made)}", prompt_cache, **kwargs)
        made.append(hotline)
        return hotline

    yield make
    for hotline in made:
        hotline.close()


@pytest.fixture()
def hotline(make_hotline) -> Hotline:
    return make_hotline()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if not COVERAGE.steps:
        return
    terminalreporter.write_line(
        f"scenario coverage (this worker): {len(COVERAGE.steps)} steps entered, "
        f"{len(COVERAGE.handlers)} distinct reprompt handlers fired")
