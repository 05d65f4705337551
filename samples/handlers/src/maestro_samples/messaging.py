"""Messages to people: Slack, email and the helpdesk. Each returns the id the
real service would assign, derived from the attempt's idempotency key (a
redelivered attempt reports the same message)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maestro.services.executor.handlers import TaskContext
from maestro_samples._fake import invalid, optional_text, require_secret, stable_id, text

DEFAULT_QUEUE = "tier-2"


async def slack_post(ctx: TaskContext) -> Mapping[str, Any]:
    """Posts a message to a Slack channel."""
    require_secret(ctx, "token")
    channel = text(ctx.config, "channel", where="config")
    if not channel.startswith("#"):
        raise invalid("INVALID_CONFIG", "config `channel` must look like #name")
    message = text(ctx.input, "text")
    ts = int(stable_id("ts", ctx.idempotency_key).removeprefix("ts-"), 16)
    return {
        "ok": True,
        "channel": channel,
        "ts": f"{ts % 10**10}.{ts % 10**6:06d}",
        "text": message,
    }


async def email(ctx: TaskContext) -> Mapping[str, Any]:
    """Sends a templated email; every other input is a template variable."""
    template = text(ctx.config, "template", where="config")
    to = text(ctx.input, "to")
    variables = {k: v for k, v in ctx.input.items() if k != "to"}
    return {
        "messageId": stable_id("msg", ctx.idempotency_key),
        "to": to,
        "template": template,
        "variables": sorted(variables),
    }


async def helpdesk_reply(ctx: TaskContext) -> Mapping[str, Any]:
    """Replies to the customer on a helpdesk ticket."""
    require_secret(ctx, "token")
    ticket = text(ctx.input, "ticketId")
    text(ctx.input, "body")
    return {
        "replyId": stable_id("reply", ctx.idempotency_key),
        "ticketId": ticket,
        "status": "sent",
    }


async def helpdesk_note(ctx: TaskContext) -> Mapping[str, Any]:
    """Adds an internal note to a helpdesk ticket and moves it to a queue."""
    require_secret(ctx, "token")
    ticket = text(ctx.input, "ticketId")
    text(ctx.input, "body")
    queue = optional_text(ctx.config, "queue") or DEFAULT_QUEUE
    return {"noteId": stable_id("note", ctx.idempotency_key), "ticketId": ticket, "queue": queue}
