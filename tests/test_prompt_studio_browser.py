"""The prompt studio in real Chromium: a supervisor records a prompt through the browser's
microphone (Chromium's fake audio capture, fed from espeak-ng speech), listens to it, takes it
again, saves it, and the next simulated call plays it; an upload, a restore and the coverage bar;
all by keyboard where a person would use it, at 200 % zoom."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from browser_harness import (
    CHROMIUM, NARROW, SUPERVISOR, WebConsole, add_accounts, expect_flash, focused, no_sideways_scrolling, screenshot,
    watched_console,
)
from hotline_harness import BASE_URL, Hotline
from ivr.db.models import PromptRecording
from ivr.prompts.audio import WAVE_FORMAT_MULAW, read_telephone_wav
from studio_audio import FORMATS, encode, speech_pcm

WUU_CALLER = "+8613800000002"
MENU_WORDS = "查办理进度，请按1。预约回电，请按2。听或者取消预约，请按3。转人工，请按0。"


@pytest.fixture(scope="module")
def microphone_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone hears: 0.5 s of room, the menu spoken, 0.5 s of room."""
    return speech_pcm(MENU_WORDS, tmp_path_factory.mktemp("mic") / "menu.wav", lead_silence=0.5)


@pytest.fixture(scope="module")
def mic_browser(chromium: Browser, microphone_speech: Path) -> Iterator[Browser]:
    """A second Chromium, from the same Playwright, whose microphone plays the file once (no
    permission prompt)."""
    browser = chromium.browser_type.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone_speech}%noloop"])
    yield browser
    browser.close()


@pytest.fixture()
def studio_web(mic_browser: Browser, make_hotline) -> Iterator[WebConsole]:  # noqa: ARG001 - torn down first
    yield from watched_console(mic_browser)


def played(call) -> list[str]:
    return [h.url.replace(BASE_URL, "") for h in call.heard if h.url]


def test_a_prompt_recorded_in_the_browser_is_heard_on_the_next_call(studio_web: WebConsole, hotline: Hotline,
                                                                    microphone_speech: Path) -> None:
    add_accounts(hotline, SUPERVISOR)
    hotline.remember_language(WUU_CALLER, "wuu")
    page = studio_web.page(hotline.app, user=SUPERVISOR, path="/console/supervisor/prompts")
    total = page.locator("#coverage-bar-wuu").get_attribute("max")
    expect(page.locator("#coverage-wuu")).to_contain_text(f"已录 0 / {total}")
    page.get_by_role("link", name="main_menu", exact=True).click()
    expect(page.locator("#hears")).to_contain_text("普通话合成语音")

    # First take: the supervisor stops too early and takes it again.
    page.get_by_role("button", name="开始录音").click()
    expect(page.locator("#record-status")).to_contain_text("正在录音")
    page.wait_for_timeout(700)
    page.get_by_role("button", name="停止").click()
    expect(page.locator("#record-status")).to_contain_text("录好了")
    page.get_by_role("button", name="重录").click()
    expect(page.locator("#record-status")).to_contain_text("重新录")
    assert page.evaluate("document.getElementById('take-file').files.length") == 0

    # Chromium's fake microphone plays its file once, from when it is first opened: the second
    # take starts a new capture, so it hears the file from the start again.
    page.get_by_role("button", name="开始录音").click()
    level_seen = 0.0
    for _ in range(120):  # espeak-ng takes 15.8 s over the menu
        page.wait_for_timeout(150)
        level_seen = max(level_seen, page.evaluate("document.getElementById('record-level').value"))
    page.get_by_role("button", name="停止").click()
    expect(page.locator("#record-status")).to_contain_text("录好了")
    assert level_seen > 0.05, "the level meter moved while the caller's words came in"
    expect(page.locator("#record-preview")).to_have_attribute("src", re.compile(r"^blob:"))
    duration = page.evaluate("""() => new Promise(done => { const a = document.getElementById('record-preview');
        if (a.readyState >= 1 && isFinite(a.duration)) return done(a.duration);
        a.addEventListener('loadedmetadata', () => done(a.duration)); a.load(); })""")
    assert duration and duration > 0  # the preview plays in the page
    assert page.evaluate("document.getElementById('take-file').files[0].name").startswith("browser-recording.")
    page.get_by_role("button", name="保存这条录音").click()
    expect_flash(page, "已保存为第 1 版", "info")
    expect(page.locator("#hears")).to_contain_text("录音")
    expect(page.locator("#take-1")).to_contain_text("在用")
    screenshot(page, "prompt-studio-recorded")

    with hotline.rt.sessions() as db:
        take = db.execute(select(PromptRecording)).scalar_one()
    assert take.source_format.startswith("webm") and take.created_by == SUPERVISOR.username
    assert 14.0 < take.seconds < 16.2, take.seconds  # espeak-ng's 15.8 s menu, the room before and after trimmed
    call = hotline.call(WUU_CALLER)
    url = f"/prompts/rec/wuu/{take.id}/main_menu.wav"
    assert url in played(call)
    client = hotline.app.test_client()
    served = hotline.settings.var_dir / "served.wav"
    served.write_bytes(client.get(url).data)
    assert read_telephone_wav(served)[:3] == (WAVE_FORMAT_MULAW, 1, 8000)
    assert client.get(url.replace(".wav", ".txt")).get_data(as_text=True) == hotline.rt.flow.prompts["wuu"]["main_menu"]

    page.goto("/console/supervisor/prompts")
    expect(page.locator("#coverage-wuu")).to_contain_text(f"已录 1 / {total}")
    assert page.locator("#coverage-bar-wuu").get_attribute("value") == "1"


def test_every_format_uploaded_and_an_older_take_restored_by_keyboard_at_200_percent_zoom(studio_web: WebConsole, hotline: Hotline,
                                                           microphone_speech: Path, tmp_path: Path) -> None:
    add_accounts(hotline, SUPERVISOR)
    hotline.remember_language(WUU_CALLER, "wuu")
    page = studio_web.page(hotline.app, user=SUPERVISOR, viewport=NARROW,
                           path="/console/supervisor/prompts/wuu/main_menu")
    for number, ext in enumerate(sorted(FORMATS), start=1):  # every format phones and recorders produce
        upload = tmp_path / f"menu.{ext}"
        upload.write_bytes(encode(microphone_speech, ext))
        page.locator("#take-file").set_input_files(str(upload))
        page.locator("#take-file").focus()
        page.keyboard.press("Tab")
        assert focused(page)["id"] == "take-save"
        page.keyboard.press("Enter")
        expect_flash(page, f"已保存为第 {number} 版", "info")
    assert no_sideways_scrolling(page)
    restore = page.get_by_role("button", name="改回第 1 版")
    restore.focus()
    page.keyboard.press("Enter")
    expect_flash(page, "已改回第 1 版", "info")
    expect(page.locator("#take-1")).to_contain_text("在用")
    assert no_sideways_scrolling(page)
    with hotline.rt.sessions() as db:
        first = db.execute(select(PromptRecording.id).where(PromptRecording.version == 1)).scalar_one()
    assert f"/prompts/rec/wuu/{first}/main_menu.wav" in played(hotline.call(WUU_CALLER))
