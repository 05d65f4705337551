"""Money and orders: payouts, and the compensation of an order's fulfilment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maestro.services.executor.handlers import TaskContext, TaskKind
from maestro_samples._fake import invalid, number, require_secret, stable_id, text


async def disburse(ctx: TaskContext) -> Mapping[str, Any]:
    """Pays an amount out to a payee; one payment per expense, however often asked."""
    require_secret(ctx, "apiKey")
    expense = text(ctx.input, "expenseId")
    payee = text(ctx.input, "payee")
    amount = number(ctx.input, "amount")
    if amount <= 0:
        raise invalid("INVALID_AMOUNT", f"cannot pay out {amount:g}")
    return {
        "paymentId": stable_id("pay", expense),
        "payee": payee,
        "amount": amount,
        "status": "sent",
    }


async def fulfilment_cancel(ctx: TaskContext) -> Mapping[str, Any]:
    """Cancels a fulfilment order (saga compensation of the fulfilment POST).

    ``step_output`` is the output of the ``http`` step being undone.
    """
    if ctx.kind is not TaskKind.COMPENSATE:
        raise invalid("INVALID_CONFIG", "fulfilment-cancel only compensates a fulfilment")
    body = ctx.step_output.get("body")
    order = body.get("orderId", "") if isinstance(body, Mapping) else ""
    return {"cancelled": True, "orderId": order}
