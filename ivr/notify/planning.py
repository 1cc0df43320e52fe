"""Which numbers the hotline calls with news, when, and what happens after each call.

Run by the worker each pass, each step its own short transaction:
1. `gather`: untold changes with no notification yet join the number's open notification, or
   start one — at most one a day and `per_week` a week per number; none for a number that
   opted out (its news waits for its next call to the hotline).
2. `place_due`: a queued notification whose time has come, inside the call hours on a working
   day, with no call of that number with the hotline going on, becomes an outbound call in the
   outbox (ivr.outbox), keyed by notification and try, so a second worker or a retried pass
   never calls twice.
3. `call_ended` (the telephony's status callback): heard or opted out is the end; otherwise
   another try after `retry_minutes`, and after the last one an SMS with no personal detail.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ivr.config import SHANGHAI, Settings
from ivr.db.models import CallerPreference, CallSession, MatterChange, Notification, NotificationOptOut
from ivr.notify.changes import numbers_to_tell
from ivr.notify.rules import NotificationRules
from ivr.outbox.queueing import queue_notification_call, queue_sms
from ivr.privacy import mask_phone
from ivr.scheduling.calendar import WorkCalendar
from ivr.service_rules import PolicySource
from ivr.scheduling.hours import is_open
from ivr.timeutil import to_db

log = logging.getLogger(__name__)
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
RECENT_CALL = timedelta(hours=1)  # a call session older than this without an end is a lost one


def _day_start(now: datetime) -> datetime:
    local = now.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


GATHER_BATCH = 40  # numbers per transaction (≈ 0.06 s): a large import never holds the write lock for long
# Between two batches: SQLite's writers in other processes poll for the lock, and a loop that takes
# it again at once would keep the web workers' call turns waiting (bench/import_notifications.py).
BATCH_PAUSE_S = 0.02


def gather(db: Session, rules: NotificationRules, now: datetime, phones: list[str] | None = None) -> int:
    """Untold changes of `phones` (default: all waiting) → notifications; returns how many
    notifications it started."""
    phones = numbers_to_tell(db) if phones is None else phones
    started = 0
    today, week = to_db(_day_start(now)), to_db(_day_start(now) - timedelta(days=6))
    locking = db.get_bind().dialect.name != "sqlite"
    for phone in phones:
        waiting = select(MatterChange.id).where(MatterChange.phone == phone, MatterChange.notification_id.is_(None),
                                                MatterChange.told.is_(False))
        if locking:  # another worker has this number's changes in hand: it tells them
            waiting = waiting.with_for_update(skip_locked=True)
        change_ids = db.execute(waiting).scalars().all()
        if not change_ids:
            continue
        open_one = db.execute(select(Notification).where(
            Notification.phone == phone, Notification.status.in_(("queued", "calling")))
            .order_by(Notification.id.desc())).scalars().first()
        if open_one is None:
            counts = db.execute(select(func.count()).where(Notification.phone == phone,
                                                           Notification.created_at >= today)).scalar_one(), \
                db.execute(select(func.count()).where(Notification.phone == phone,
                                                      Notification.created_at >= week)).scalar_one()
            if counts[0] >= 1 or counts[1] >= rules.per_week:
                continue  # told today already, or enough this week: the news waits
            status = "cancelled" if db.get(NotificationOptOut, phone) is not None else "queued"
            preference = db.get(CallerPreference, phone)
            open_one = Notification(phone=phone, language=preference.language if preference else "cmn",
                                    status=status, attempts=0, next_attempt_at=to_db(now), created_at=to_db(now),
                                    updated_at=to_db(now), last_result="opted_out" if status == "cancelled" else None)
            db.add(open_one)
            db.flush()
            started += 1
        db.execute(update(MatterChange).where(MatterChange.id.in_(change_ids)).values(notification_id=open_one.id))
    return started


def _in_a_call(db: Session, phone: str, now: datetime) -> bool:
    return db.execute(select(CallSession.call_sid).where(
        CallSession.caller == phone, CallSession.status == "in-progress", CallSession.ended_at.is_(None),
        CallSession.updated_at >= to_db(now - RECENT_CALL)).limit(1)).first() is not None


CALLS_PER_PASS = 20  # the outbox sends 50 a pass; the lines stay free for callers calling in


def place_due(db: Session, rules: NotificationRules, calendar: WorkCalendar, settings: Settings,
              now: datetime, limit: int = CALLS_PER_PASS) -> int:
    """Queued notifications whose time has come → outbound calls in the outbox (at most `limit`
    a pass: a morning with thousands of changes is called through over the call hours)."""
    if not is_open(now, rules.call_hours, calendar):
        return 0
    query = select(Notification).where(Notification.status == "queued",
                                       Notification.next_attempt_at <= to_db(now)).order_by(Notification.id).limit(limit)
    if db.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)  # two workers take different rows
    placed = 0
    for notification in db.execute(query).scalars().all():
        if db.get(NotificationOptOut, notification.phone) is not None:
            notification.status, notification.last_result = "cancelled", "opted_out"
            continue
        if _in_a_call(db, notification.phone, now):
            notification.next_attempt_at = to_db(now + timedelta(minutes=10))
            continue
        notification.attempts += 1
        notification.status, notification.updated_at = "calling", to_db(now)
        base = settings.public_base_url
        queue_notification_call(db, notification.id, notification.attempts, notification.phone,
                                settings.callback_from_number, f"{base}/twilio/notify/answered?n={notification.id}",
                                f"{base}/twilio/notify/status?n={notification.id}", settings.callback_ring_seconds,
                                now)
        log.info("notification %d: calling %s (try %d)", notification.id, mask_phone(notification.phone),
                 notification.attempts)
        placed += 1
    return placed


def answered(db: Session, notification_id: int, call_sid: str, now: datetime) -> Notification | None:
    notification = db.get(Notification, notification_id)
    if notification is None or notification.call_sid not in (None, call_sid):
        return None
    notification.call_sid = call_sid
    if notification.status == "calling":
        notification.status, notification.updated_at = "reached", to_db(now)
    return notification


def call_ended(db: Session, notification_id: int, call_sid: str, call_status: str, rules: NotificationRules,
               sms_body: str, now: datetime) -> Notification | None:
    """Not heard (no answer, busy, voicemail, or nobody pressed 1): another try later, or the end."""
    notification = db.get(Notification, notification_id)
    if notification is None or call_status not in FINAL_CALL_STATUSES or \
            notification.call_sid not in (None, call_sid) or notification.status not in ("calling", "reached"):
        return notification
    notification.last_result, notification.updated_at, notification.call_sid = call_status, to_db(now), None
    if notification.attempts < rules.tries:
        notification.status = "queued"
        notification.next_attempt_at = to_db(now + timedelta(minutes=rules.retry_minutes))
        return notification
    notification.status = "not_reached"
    if rules.sms_when_not_reached and notification.phone.startswith("+861") and not notification.sms_sent:
        queue_sms(db, notification.phone, sms_body, f"notify-sms:{notification.id}", now)
        notification.sms_sent = True
    log.info("notification %d: %s not reached after %d tries%s", notification.id, mask_phone(notification.phone),
             notification.attempts, "; SMS queued" if notification.sms_sent else "")
    return notification


def placing_failed(db: Session, notification_id: int, now: datetime) -> None:
    """The outbox gave up placing the call: the notification tries again in an hour (that try
    still counts, so a number the carrier refuses is not called for ever)."""
    notification = db.get(Notification, notification_id)
    if notification is not None and notification.status == "calling":
        notification.status, notification.last_result = "queued", "not_placed"
        notification.next_attempt_at = to_db(now + timedelta(hours=1))




def run_pass(sessions, rules: NotificationRules, policies: PolicySource, settings: Settings,
             now: datetime) -> tuple[int, int]:
    """The worker's part: gather, then place what is due, each in its own transaction (the
    outbox sends the calls right after, in the same pass)."""
    with sessions() as db:
        waiting = numbers_to_tell(db)
    started = 0
    for first in range(0, len(waiting), GATHER_BATCH):
        if first:
            time.sleep(BATCH_PAUSE_S)
        with sessions() as db, db.begin():
            started += gather(db, rules, now, waiting[first:first + GATHER_BATCH])
    with sessions() as db, db.begin():
        # The supervisors' days off (console, service rules) count as for callbacks.
        placed = place_due(db, rules, policies.current(db).calendar, settings, now)
    return started, placed
