"""The prompt studio without a browser: takes uploaded in every format, converted, versioned,
restored and audited; heard from the next call on, in another process too; refused files leave
nothing behind; the recording kit's script and bulk import (console and command line).
The browser's microphone: tests/test_prompt_studio_browser.py."""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hotline_harness import BASE_URL, Hotline
from ivr.cli import main as cli_main
from ivr.console.accounts import create_operator
from ivr.db.models import AuditEntry, PromptRecording
from ivr.prompts.audio import WAVE_FORMAT_MULAW, read_telephone_wav
from studio_audio import FORMATS, encode, silent_take, speech_pcm

SUPERVISOR, SUPERVISOR_PW = "chen", "supervisor password 1"
OPERATOR, OPERATOR_PW = "zhang", "operator password 1"
WUU_CALLER = "+8613800000002"
STUDIO = "/console/supervisor/prompts"


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The Wu main menu spoken (by espeak-ng's Mandarin voice) in every supported format."""
    folder = tmp_path_factory.mktemp("speech")
    pcm = speech_pcm("查办理进度，请按1。预约回电，请按2。听或者取消预约，请按3。转人工，请按0。",
                     folder / "menu.wav", lead_silence=1.0)
    return {ext: encode(pcm, ext) for ext in FORMATS}


@pytest.fixture()
def studio(hotline: Hotline) -> Hotline:
    with hotline.rt.sessions() as db, db.begin():
        create_operator(db, SUPERVISOR, SUPERVISOR_PW, "supervisor", hotline.clock.now())
        create_operator(db, OPERATOR, OPERATOR_PW, "operator", hotline.clock.now())
    hotline.remember_language(WUU_CALLER, "wuu")
    return hotline


def logged_in(hotline: Hotline, username: str = SUPERVISOR, password: str = SUPERVISOR_PW):
    client = hotline.app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    response = client.post("/console/login", data={"csrf_token": csrf(page), "username": username,
                                                  "password": password})
    assert response.status_code == 302
    return client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert found
    return found.group(1)


def upload(client, lang: str, prompt_id: str, data: bytes, filename: str):
    page = client.get(f"{STUDIO}/{lang}/{prompt_id}").get_data(as_text=True)
    return client.post(f"{STUDIO}/{lang}/{prompt_id}/takes", follow_redirects=True, content_type="multipart/form-data",
                       data={"csrf_token": csrf(page), "audio": (io.BytesIO(data), filename)})


def post(client, url: str, **fields: str):
    page = client.get(f"{STUDIO}?lang=wuu").get_data(as_text=True)
    return client.post(url, data={"csrf_token": csrf(page), **fields}, follow_redirects=True)


def played(call) -> list[str]:
    return [h.url.replace(BASE_URL, "") for h in call.heard if h.url]


def takes(hotline: Hotline) -> int:
    with hotline.rt.sessions() as db:
        return db.execute(select(func.count()).select_from(PromptRecording)).scalar_one()


def audit_actions(hotline: Hotline) -> list[tuple[str, dict]]:
    with hotline.rt.sessions() as db:
        return [(e.action, e.detail) for e in db.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
                if e.action.startswith("prompt_")]


def test_only_supervisors_reach_the_studio(studio: Hotline) -> None:
    assert studio.app.test_client().get(STUDIO).status_code == 302  # to the login
    assert logged_in(studio, OPERATOR, OPERATOR_PW).get(STUDIO).status_code == 403
    page = logged_in(studio).get(STUDIO).get_data(as_text=True)
    total = len([p for p in studio.rt.flow.prompts["cmn"] if not p.startswith("sms_")])
    assert f"上海话：已录 <strong>0</strong> / {total} 条提示语" in page
    assert 'id="row-main_menu"' in page and "普通话合成（没有录音）" in page


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_an_upload_in_each_format_is_converted_and_heard_on_the_next_call(studio: Hotline, speech, ext) -> None:
    client = logged_in(studio)
    page = upload(client, "wuu", "main_menu", speech[ext], f"menu.{ext}").get_data(as_text=True)
    assert "已保存为第 1 版" in page, page
    assert "来电人现在听到：<strong>录音</strong>" in page
    with studio.rt.sessions() as db:
        take = db.execute(select(PromptRecording)).scalar_one()

    call = studio.call(WUU_CALLER)
    url = f"/prompts/rec/wuu/{take.id}/main_menu.wav"
    assert url in played(call)
    wav = studio.app.test_client().get(url)
    served = studio.settings.var_dir / "served.wav"
    served.write_bytes(wav.data)
    tag, channels, rate, samples = read_telephone_wav(served)
    assert (tag, channels, rate) == (WAVE_FORMAT_MULAW, 1, 8000)
    assert abs(samples / rate - take.seconds) < 0.01
    assert 14.0 < take.seconds < 16.2  # espeak-ng's 15.8 s, the 1 s of silence before and after trimmed
    twin = studio.app.test_client().get(url.replace(".wav", ".txt")).get_data(as_text=True)
    assert twin == studio.rt.flow.prompts["wuu"]["main_menu"]


def test_takes_are_kept_restored_switched_off_and_audited(studio: Hotline, speech) -> None:
    client = logged_in(studio)
    upload(client, "wuu", "main_menu", speech["mp3"], "first.mp3")
    page = upload(client, "wuu", "main_menu", speech["webm"], "browser-recording.webm").get_data(as_text=True)
    assert "已保存为第 2 版" in page and 'id="take-1"' in page and 'id="take-2"' in page
    with studio.rt.sessions() as db:
        first, second = db.execute(select(PromptRecording.id).order_by(PromptRecording.version)).scalars()
    assert f"/prompts/rec/wuu/{second}/main_menu.wav" in played(studio.call(WUU_CALLER))

    page = post(client, f"{STUDIO}/wuu/main_menu/restore", version="1").get_data(as_text=True)
    assert "已改回第 1 版" in page
    assert f"/prompts/rec/wuu/{first}/main_menu.wav" in played(studio.call(WUU_CALLER))
    old = client.get(f"{STUDIO}/wuu/main_menu/takes/2.wav")
    assert old.status_code == 200 and old.data[:4] == b"RIFF"

    page = post(client, f"{STUDIO}/wuu/main_menu/off").get_data(as_text=True)
    assert "已停用录音" in page
    assert not any("/prompts/rec/" in url for url in played(studio.call(WUU_CALLER)))
    assert [a for a, _ in audit_actions(studio)] == ["prompt_recorded", "prompt_recorded", "prompt_restored",
                                                       "prompt_recording_off"]
    assert audit_actions(studio)[2][1] == {"language": "wuu", "prompt": "main_menu", "version": 1}


def test_a_take_saved_in_one_process_is_heard_on_the_next_call_in_another(make_hotline, speech, tmp_path) -> None:
    database = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    console_side = make_hotline(DATABASE_URL=database)
    calls_side = make_hotline(DATABASE_URL=database)  # another web process on the same database
    with console_side.rt.sessions() as db, db.begin():
        create_operator(db, SUPERVISOR, SUPERVISOR_PW, "supervisor", console_side.clock.now())
    calls_side.remember_language(WUU_CALLER, "wuu")
    assert not any("/prompts/rec/" in url for url in played(calls_side.call(WUU_CALLER)))
    upload(logged_in(console_side), "wuu", "main_menu", speech["m4a"], "menu.m4a")
    url = next(u for u in played(calls_side.call(WUU_CALLER)) if "/prompts/rec/" in u)
    assert calls_side.app.test_client().get(url).status_code == 200


@pytest.mark.parametrize("name, data, says", [
    ("menu.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 2000, "格式"),
    ("menu.mp3", b"\x89PNG\r\n\x1a\n" + b"\0" * 2000, ""),
    ("menu.wav", "这不是录音，是一段文字。".encode() * 200, ""),
])
def test_a_file_that_is_not_a_recording_is_refused_and_nothing_is_stored(studio: Hotline, name, data, says) -> None:
    page = upload(logged_in(studio), "wuu", "main_menu", data, name).get_data(as_text=True)
    assert "没有保存：" in page and says in page
    assert takes(studio) == 0 and audit_actions(studio) == []


def test_a_truncated_recording_is_refused(studio: Hotline, speech) -> None:
    page = upload(logged_in(studio), "wuu", "main_menu", speech["mp3"][:300], "menu.mp3").get_data(as_text=True)
    assert "没有保存：" in page and takes(studio) == 0


def test_a_request_over_the_size_limit_gets_a_clear_page(studio: Hotline) -> None:
    from ivr.web import MAX_REQUEST_BYTES
    response = upload(logged_in(studio), "wuu", "main_menu", b"\0" * (MAX_REQUEST_BYTES + 1), "huge.wav")
    assert response.status_code == 413 and "文件太大" in response.get_data(as_text=True)
    assert takes(studio) == 0


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_bulk_import_of_a_zip_reports_what_was_taken_and_why_not(studio: Hotline, speech) -> None:
    kit = _zip({"wuu/main_menu.mp3": speech["mp3"], "wuu/greeting.ogg": speech["ogg"],
                "wuu/no_such_prompt.wav": speech["wav"], "wuu/ask_id.mp3": speech["mp3"][:300],
                "wuu/notes.txt": b"hello", "__MACOSX/._main_menu.mp3": b"junk"})
    client = logged_in(studio)
    page = client.get(STUDIO + "?lang=wuu").get_data(as_text=True)
    response = client.post(f"{STUDIO}/wuu/import", content_type="multipart/form-data",
                           data={"csrf_token": csrf(page), "files": (io.BytesIO(kit), "shanghainese.zip")})
    report = response.get_data(as_text=True)
    assert "导入 2 条，没有导入 3 条" in report, report
    assert "文件名不是提示语编号" in report and "不是支持的录音格式" in report
    assert takes(studio) == 2
    page = client.get(STUDIO + "?lang=wuu").get_data(as_text=True)
    assert "上海话：已录 <strong>2</strong>" in page
    assert 'value="2"' in page  # the coverage bar moved


def test_the_recording_script_lists_every_prompt_to_record(studio: Hotline) -> None:
    page = logged_in(studio).get(f"{STUDIO}/wuu/script").get_data(as_text=True)
    assert "<code>main_menu.wav</code>" in page and studio.rt.flow.prompts["wuu"]["main_menu"] in page
    assert "sms_booking_confirmed" not in page  # text messages are not recorded
    assert "选项：每个选项之间停半秒" in page


def test_the_command_line_imports_a_folder(studio: Hotline, speech, tmp_path: Path, monkeypatch, capsys) -> None:
    folder = tmp_path / "kit"
    folder.mkdir()
    (folder / "main_menu.flac").write_bytes(speech["flac"])
    (folder / "typo_menu.flac").write_bytes(speech["flac"])
    monkeypatch.setenv("DATABASE_URL", studio.settings.database_url)
    monkeypatch.setenv("HOTLINE_VAR_DIR", str(studio.settings.var_dir))
    assert cli_main(["prompts", "import", str(folder), "--language", "wuu", "--by", "voice talent"]) == 1
    out, err = capsys.readouterr()
    assert re.search(r"ok\s+main_menu\s+v1", out) and "typo_menu.flac: 文件名不是提示语编号" in err
    assert "/prompts/rec/wuu/" in " ".join(played(studio.call(WUU_CALLER)))
    assert audit_actions(studio)[0][1]["prompt"] == "main_menu"


def test_a_prompt_with_values_is_said_with_recorded_pieces_once_all_are_recorded(studio: Hotline, tmp_path) -> None:
    """The Wu status count ("核对好了。侬有两桩事体，…") joins its two recorded segments and the
    recorded count word into one file; until every piece is there it is synthesised whole."""
    from ivr.prompts import library
    from ivr.prompts.catalog import pieces
    from ivr.prompts.loudness import TRIM_MARGIN_SECONDS
    take = silent_take(tmp_path, 0.5)  # a 0.5 s take per piece (the intake is tested above)
    caller = "+8613800000001"  # registered, several matters
    studio.remember_language(caller, "wuu")
    all_pieces = pieces(studio.rt.flow, "wuu")
    with studio.rt.sessions() as db, db.begin():
        for piece in all_pieces:
            if piece.piece_id != "status_count.2":
                library.save_take(db, "wuu", piece.piece_id, take, text=piece.text, source_name="piece.wav",
                                  actor=SUPERVISOR, now=studio.clock.now())

    def status_heard() -> str:
        call = studio.call(caller)
        for keys in ("2", "1", "1234#"):  # the menu (not a person first), status, the ID digits
            call.press(keys)
        return next(h.url.replace(BASE_URL, "") for h in call.heard if "核对好了" in (h.text or ""))

    assert "/prompts/tts/" in status_heard()  # one segment missing: the whole sentence synthesised
    page = logged_in(studio).get(f"{STUDIO}/wuu/status_count").get_data(as_text=True)
    assert re.search(r"status_count\.2</a>：[^<]*—— <strong>缺</strong>", page), page
    with studio.rt.sessions() as db, db.begin():
        library.save_take(db, "wuu", "status_count.2", take, text="…", source_name="piece.wav", actor=SUPERVISOR,
                          now=studio.clock.now())
    url = status_heard()
    assert url.startswith("/prompts/composed/"), url
    client = studio.app.test_client()
    words = client.get(url.replace(".wav", ".txt")).get_data(as_text=True)
    assert words.startswith("核对好了。侬有") and words.endswith("桩事体，先讲最新个。")
    composition = studio.rt.store.composers["wuu"].compose(words, lambda pid: True)
    pauses = sum(p for p in composition.parts if isinstance(p, float))
    takes_in_it = sum(1 for p in composition.parts if isinstance(p, str))
    served = studio.settings.var_dir / "composed.wav"
    served.write_bytes(client.get(url).data)
    _tag, _channels, rate, samples = read_telephone_wav(served)
    joined = 0.5 - 2 * (TRIM_MARGIN_SECONDS - 0.05)  # each piece joined with 0.05 s of its room kept
    assert takes_in_it >= 3 and abs(samples / rate - (joined * takes_in_it + pauses)) < 0.01


def test_calls_keep_their_recordings_when_the_database_cannot_answer(studio: Hotline, speech, caplog) -> None:
    """The index asks the database at each call start; when it cannot, it keeps what it had
    (and does not ask again at every call for a few seconds)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker
    upload(logged_in(studio), "wuu", "main_menu", speech["mp3"], "menu.mp3")
    index = studio.rt.store.recordings
    index.refresh()
    take = index.lookup("wuu", "main_menu")
    assert take is not None
    index.sessions = sessionmaker(create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none",
                                                connect_args={"connect_timeout": 1}))
    index.refresh()
    assert "could not read the choices" in caplog.text and index.lookup("wuu", "main_menu") == take
    assert index.file(take) is not None and index.file(take).exists()


def test_a_take_recorded_for_words_since_changed_is_flagged(studio: Hotline, speech) -> None:
    client = logged_in(studio)
    upload(client, "wuu", "main_menu", speech["mp3"], "menu.mp3")
    assert 'id="stale"' not in client.get(f"{STUDIO}/wuu/main_menu").get_data(as_text=True)
    studio.rt.flow.prompts["wuu"]["main_menu"] = "查进度，请按1。预约回电，请按2。转人工，请按0。"  # the script edited
    page = client.get(f"{STUDIO}/wuu/main_menu").get_data(as_text=True)
    assert 'id="stale"' in page and "文字已经改了，请重录" in page
