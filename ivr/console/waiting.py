"""Who is waiting for a person right now, and taking one of them to an operator's phone.

Taking is two steps: mark the handoff taken in the database (a conditional update, so two
operators never get the same caller), then ask the telephony (the TelephonyControl port) to move
that caller out of the queue to /twilio/console/connect, which dials the operator.  If that
fails, the mark is undone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, sessionmaker

from ivr.audit import audit
from ivr.config import Settings
from ivr.console.history import notification_words
from ivr.console.story import reason_words, story_lines
from ivr.db.models import CallSession, Handoff, Notification, Operator
from ivr.privacy import mask_phone
from ivr.telephony.control import CallGone, TelephonyControl, TelephonyError
from ivr.timeutil import from_db, to_db

LANGUAGES = {"cmn": "普通话", "wuu": "上海话"}


class TakeError(RuntimeError):
    """Taking a caller did not work; the message is safe to show the operator."""


@dataclass(frozen=True)
class WaitingCaller:
    handoff_id: int
    call_sid: str
    number: str  # masked
    language: str
    verified: bool
    reason: str
    waited_seconds: int
    story: list[str]
    news: list[str] = field(default_factory=list)  # what the hotline told this number lately


NEWS_DAYS = 7  # notifications an operator is shown for a caller


def recent_news(db: Session, phone: str, now: datetime) -> list[str]:
    """This number's notifications of the last week in words, newest first, so an operator
    does not ask the caller again what a notification call already told them."""
    rows = db.execute(select(Notification).where(
        Notification.phone == phone, Notification.created_at >= to_db(now - timedelta(days=NEWS_DAYS)))
        .order_by(Notification.created_at.desc()).limit(3)).scalars()
    return [f"{from_db(n.created_at):%m月%d日} 热线通知办件新进展：{notification_words(n)}" for n in rows]


def _waiting(what: Any) -> Select:
    """Handoffs of callers still in the queue, longest wait first."""
    return (select(what).join(CallSession, CallSession.call_sid == Handoff.call_sid)
            .where(Handoff.status == "waiting", CallSession.status == "in-progress")
            .order_by(Handoff.created_at, Handoff.id))


def waiting_now(db: Session, now: datetime) -> list[WaitingCaller]:
    rows = db.execute(_waiting(Handoff)).scalars().all()
    return [_view(h, max(int((to_db(now) - h.created_at).total_seconds()), 0), recent_news(db, h.caller, now))
            for h in rows]


def _view(handoff: Handoff, waited_seconds: int, news: list[str] | None = None) -> WaitingCaller:
    return WaitingCaller(handoff_id=handoff.id, call_sid=handoff.call_sid, number=mask_phone(handoff.caller),
                         language=LANGUAGES.get(handoff.language, handoff.language), verified=handoff.verified,
                         reason=reason_words(handoff.reason), waited_seconds=waited_seconds,
                         story=story_lines(handoff.story), news=news or [])


def _mark_taken(db: Session, handoff_id: int | None, operator: str, now: datetime) -> Handoff:
    candidates = [handoff_id] if handoff_id else db.execute(_waiting(Handoff.id)).scalars().all()
    for candidate in candidates:
        taken = db.execute(update(Handoff).where(Handoff.id == candidate, Handoff.status == "waiting")
                           .values(status="taken", taken_by=operator, taken_at=to_db(now))).rowcount
        if taken:
            return db.get(Handoff, candidate)  # type: ignore[return-value]
    raise TakeError("这位来电人已被其他坐席接听或已挂断" if handoff_id else "现在没有人在等候")


def take_caller(sessions: sessionmaker[Session], telephony: TelephonyControl, settings: Settings,
                queue_name: str, operator: Operator, handoff_id: int | None, now: datetime) -> WaitingCaller:
    """Connect the chosen (or longest-waiting) caller to `operator`'s phone."""
    if not operator.phone:
        raise TakeError("请先让主管为您的账号登记电话号码，才能接听来电")
    with sessions() as db, db.begin():
        taken = _view(_mark_taken(db, handoff_id, operator.username, now), 0)
    url = f"{settings.public_base_url}/twilio/console/connect?handoff={taken.handoff_id}"
    try:
        telephony.take_queued_call(queue_name, taken.call_sid, url)
    except TelephonyError as exc:
        gone = isinstance(exc, CallGone)
        message = "来电人已经离开队列" if gone else exc.message
        with sessions() as db, db.begin():
            db.execute(update(Handoff).where(Handoff.id == taken.handoff_id).values(
                status="hung_up" if gone else "waiting", taken_by=None, taken_at=None,
                ended_at=to_db(now) if gone else None))
            audit(db, operator.username, "take_call_failed", now, handoff=taken.handoff_id, number=taken.number,
                  error=message)
        raise TakeError(message) from None
    with sessions() as db, db.begin():
        audit(db, operator.username, "take_call", now, handoff=taken.handoff_id, number=taken.number)
    return taken


def taken_by(db: Session, operator: str) -> list[WaitingCaller]:
    """The callers an operator took and is (or is about to be) talking to, with their story."""
    rows = db.execute(select(Handoff).where(Handoff.status == "taken", Handoff.taken_by == operator)
                      .order_by(Handoff.taken_at.desc())).scalars().all()
    return [_view(h, 0, recent_news(db, h.caller, from_db(h.taken_at or h.created_at))) for h in rows]
