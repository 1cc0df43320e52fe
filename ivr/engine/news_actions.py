"""Actions of status-change notifications: news offered to a caller, the read-out by SMS, and
stopping the calls.  The identity check and the read-out are the status flow's own
(verify_id with arg "news", status_page)."""
from __future__ import annotations

from ivr.engine.builtin_actions import ActionContext, action


@action("yes", "no")
def news_waiting(ctx: ActionContext) -> str:
    """A caller with news they have not heard is offered it before the menu."""
    state = ctx.state
    if state.vars.get("news_offered") or not state.caller or not ctx.repo.news_waiting(state.caller):
        return "no"
    state.vars["news_offered"] = True
    state.note("news_offered")
    return "yes"


@action("sent", "not_mobile")
def send_news_sms(ctx: ActionContext) -> str:
    """What the caller just heard, as a text to the registered mobile whose matters they are
    (never to another number, nothing beyond the read-out)."""
    state = ctx.state
    phone = state.vars.get("status_phone") or state.caller
    pages = state.vars.get("status_pages") or []
    if not state.verified or not pages or not phone.startswith("+861"):
        return "not_mobile"
    body = ctx.words("sms_news", text=" ".join(pages))
    ctx.repo.queue_sms(phone, body, f"news-sms:{state.call_sid}", ctx.now)
    return "sent"


@action("done")
def stop_notifications(ctx: ActionContext) -> str:
    phone = ctx.state.vars.get("status_phone") or ctx.state.caller
    ctx.repo.stop_notifications(phone, ctx.now)
    ctx.state.note("notifications_stopped")
    return "done"
