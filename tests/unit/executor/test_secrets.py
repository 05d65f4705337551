"""``secret://`` references and the concurrency slots, without servers."""

from __future__ import annotations

import asyncio

import pytest

from maestro.services.executor.handlers import HandlerError
from maestro.services.executor.secrets import EnvironmentSecrets, env_var, resolve_references
from maestro.services.executor.worker import Slots


def test_secret_names_map_to_environment_variables() -> None:
    assert env_var("risk-token") == "MAESTRO_SECRET_RISK_TOKEN"
    assert env_var("team.billing/api-key") == "MAESTRO_SECRET_TEAM_BILLING_API_KEY"
    assert env_var("risk-token", "acme-eu") == "MAESTRO_TENANT_SECRET_ACME_EU__RISK_TOKEN"


def test_references_resolve_at_any_depth_and_only_whole_values() -> None:
    secrets = EnvironmentSecrets({"MAESTRO_SECRET_DB_PASSWORD": "pw", "MAESTRO_SECRET_A": "a"})
    config = {
        "url": "https://x",
        "auth": {"password": "secret://db.password", "list": ["secret://a", 1, None]},
        "note": "not secret://a",
    }
    assert resolve_references(config, lambda name: secrets.resolve(name, tenant="acme")) == {
        "url": "https://x",
        "auth": {"password": "pw", "list": ["a", 1, None]},
        "note": "not secret://a",
    }
    assert config["auth"] == {"password": "secret://db.password", "list": ["secret://a", 1, None]}


@pytest.mark.parametrize("tenant", ["Acme", "a_b", "a--b", "-a", "a.b", ""])
def test_only_unambiguous_tenants_have_secrets_of_their_own(tenant: str) -> None:
    """``acme``/``Acme`` or ``a-b``/``a_b`` would share variables."""
    with pytest.raises(ValueError, match="no secrets of its own"):
        env_var("token", tenant)
    environ = {"MAESTRO_TENANT_SECRET_ACME__TOKEN": "acme's", "MAESTRO_SECRET_TOKEN": "shared"}
    assert EnvironmentSecrets(environ).resolve("token", tenant=tenant) == "shared"
    with pytest.raises(HandlerError) as error:
        EnvironmentSecrets(environ, shared=False).resolve("token", tenant=tenant)
    assert "no secrets of its own" in error.value.message


@pytest.mark.parametrize("name", ["missing", "", "../etc", "a b"])
def test_unknown_or_malformed_secrets_are_not_found(name: str) -> None:
    with pytest.raises(HandlerError) as error:
        EnvironmentSecrets({"MAESTRO_SECRET_OTHER": "x"}).resolve(name, tenant="acme")
    assert (error.value.code, error.value.non_retryable) == ("SECRET_NOT_FOUND", True)


async def test_slots_are_handed_to_waiters_first_come_first_served() -> None:
    slots = Slots(3)
    assert await slots.acquire(2) == 2
    assert await slots.acquire(5) == 1
    first = asyncio.create_task(slots.acquire(2))
    second = asyncio.create_task(slots.acquire(2))
    cancelled = asyncio.create_task(slots.acquire(2))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    slots.release(1)
    assert await first == 1  # the freed slot goes to the first waiter
    assert not second.done()
    slots.release(2)
    assert await second == 2
    assert slots.used == slots.total == 3
    slots.release(3)
    assert slots.free == 3
