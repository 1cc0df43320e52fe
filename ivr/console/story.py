"""A call's story in plain words for operators, so the caller never has to repeat themselves.

The story is written by the engine with ID entries already masked; this only chooses words.
"""
from __future__ import annotations

STEP_NAMES = {
    "start": "接通", "choose_language": "选语言", "welcome_new": "欢迎", "welcome_back": "欢迎",
    "senior_check": "老年人确认", "senior_offer": "慢速播报", "main_menu": "主菜单", "help": "帮助",
    "status": "查进度", "ask_case_no": "输入办件编号", "case_not_found": "编号未找到", "ask_id": "身份核验",
    "id_wrong": "身份核验未通过", "id_locked": "核验次数已满", "locked_offer": "核验锁定",
    "status_found": "找到办件", "status_read": "听进度", "status_more": "听进度", "status_next": "听进度", "status_last": "听进度",
    "status_none": "没有办件", "booking": "预约回电", "confirm_own_number": "确认回电号码",
    "ask_number": "输入回电号码", "number_invalid": "号码有误", "confirm_number": "确认号码",
    "slots": "选时段", "choose_slot": "选时段", "slots_full": "时段已满", "confirm_booking": "确认预约",
    "booked": "已预约", "slot_taken": "时段被占", "manage": "管理预约", "manage_menu": "管理预约",
    "cancel_confirm": "确认取消", "cancelled": "已取消", "person": "转人工", "connecting": "转人工",
    "queue": "排队等候", "queue_left": "离开排队", "queue_timeout": "排队超时", "queue_full": "排队已满",
    "after_hours": "非工作时间", "after_person": "人工之后", "goodbye": "结束",
    # The call the hotline makes when a matter moves on (and the offer to a caller who calls in first).
    "notify_intro": "通知来电", "notify_check": "身份核验", "notify_ask_id": "身份核验",
    "notify_id_wrong": "身份核验未通过", "notify_read": "听新进展", "notify_news": "听新进展",
    "notify_last": "听新进展", "notify_stop_confirm": "确认不再通知", "notify_stopped": "已停止通知",
    "notify_sms": "短信发送", "notify_sms_sent": "短信已发", "notify_sms_not_mobile": "不是手机号",
    "notify_more": "听新进展", "news_offer": "有新进展", "news_check": "查新进展",
}
REASONS = {
    "asked_for_person": "主动要求人工", "pressed_0": "按 0 要人工", "silence": "多次无应答",
    "repeated_failures": "多次没听懂", "id_check_failed": "身份核验未通过", "senior_first": "老年人优先",
    "system_error": "系统故障", "callback_retry": "预约回电重拨",
}


# What an operator wants to know from the engine's action results; the rest is plumbing.
RESULTS = {
    ("identify_caller", "returning"): "打过热线", ("check_senior", "senior"): "65 岁以上",
    ("status_identify", "registered"): "本号码有登记的办件", ("status_identify", "unregistered"): "本号码没有登记办件",
    ("status_identify", "verified"): "本次通话已核验", ("check_case_no", "found"): "办件编号正确",
    ("check_case_no", "wrong"): "办件编号不对", ("verify_id", "ok"): "核验通过", ("verify_id", "wrong"): "核验不对",
    ("verify_id", "locked"): "核验次数用完", ("status_page", "none"): "没有办件", ("status_page", "more"): "听了办件进度", ("status_page", "next"): "听了办件进度",
    ("status_page", "last"): "听了办件进度", ("check_callback_number", "invalid"): "号码无效",
    ("offer_callback_slots", "none"): "没有空的回电时段", ("book_slot", "full"): "时段刚被约满",
    ("load_booking", "found"): "已有预约", ("request_person", "closed"): "非工作时间",
    ("news_verify", "ok"): "核验通过", ("news_verify", "wrong"): "核验不对",
    ("send_news_sms", "sent"): "已用短信发送", ("send_news_sms", "not_mobile"): "不是手机号，没有发短信",
}
# Entries that start a line of their own: how the call began, before any step.
HEADLINES = {"notification_call": "热线打电话通知了办件新进展"}


INTENTS = {
    "status_query": "查进度", "book_callback": "要回电", "manage_callback": "改预约", "operator": "要人工",
    "repeat": "再听一遍", "help": "求助", "yes": "是", "no": "不是", "goodbye": "再见", "slower": "说慢一点",
    "language_cmn": "普通话", "language_wuu": "上海话", "digits": "说了数字", "slot": "选时段",
    "pension": "养老金", "medical_insurance": "医保", "housing_fund": "公积金",
    "social_security_card": "社保卡", "application": "申请",
}


def reason_words(reason: str) -> str:
    base, _, extra = reason.partition("+")
    words = REASONS.get(base, base)
    return f"{words}（非工作时间）" if extra == "after_hours" else words


def _entry_words(entry: dict) -> str | None:
    event = entry.get("event")
    if event == "keys":
        return f"按键 {entry.get('keys', '')}"
    if event == "speech":
        intent = str(entry.get("intent") or "")
        heard = "（内容已隐藏）" if entry.get("masked") else INTENTS.get(intent, intent or "没听懂")
        return f"说话：{heard}"
    if event == "silence":
        return "没有应答"
    if event == "nomatch":
        return "按键无效"
    if event == "result":
        return RESULTS.get((str(entry.get("action")), str(entry.get("result"))))
    if event == "handoff":
        return reason_words(str(entry.get("reason", "")))
    if event in ("cancelled", "not_confirmed"):
        return {"cancelled": "取消了预约", "not_confirmed": "没有确认"}[event]
    if event == "news_heard":
        return f"核验后听了 {entry.get('count', 0)} 件新进展"
    if event == "notifications_stopped":
        return "不再接收通知电话"
    if event == "news_offered":
        return "来电时提示有新进展"
    return None


def is_notification_call(story: list[dict]) -> bool:
    """Whether the hotline made this call to tell the person news (the story opens so)."""
    return any(entry.get("event") == "notification_call" for entry in story)


def story_lines(story: list[dict]) -> list[str]:
    """One line per step the caller went through, with what they answered there.

    A notification call opens with a line of its own, so whoever reads the story next knows the
    hotline called this person with news; anything noted before the first step gets its own line
    too rather than being lost."""
    lines: list[tuple[str, list[str]]] = []
    for entry in story:
        event = entry.get("event")
        if event == "step":
            lines.append((STEP_NAMES.get(str(entry.get("step")), str(entry.get("step"))), []))
            continue
        if event in HEADLINES:
            lines.append((HEADLINES[str(event)], []))
            continue
        words = _entry_words(entry)
        if words and lines:
            lines[-1][1].append(words)
        elif words:
            lines.append((words, []))
    merged: list[str] = []
    for name, details in lines:
        text = name + (f"：{'，'.join(details)}" if details else "")
        if not merged or merged[-1] != text:
            merged.append(text)
    return merged
