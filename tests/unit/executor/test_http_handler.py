"""The built-in ``http`` handler against a real local HTTP server."""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import free_port
from tests.unit.executor.conftest import Executor, Scheduler, StartExecutor
from tests.unit.executor.support import HttpTarget, make_task


async def test_get_sends_the_idempotency_key_and_returns_json(
    scheduler: Scheduler, executor: Executor, http_target: HttpTarget
) -> None:
    task = make_task(
        "http",
        config={"url": f"{http_target.url}/json", "query": {"page": 1}},
        input={"query": {"q": "cats"}, "headers": {"Idempotency-Key": "forged"}},
    )
    scheduler.queue.add(task)
    output = await scheduler.queue.completed(task.task_id)

    (seen,) = http_target.requests
    assert seen.method == "GET"
    assert seen.headers["Idempotency-Key"] == task.idempotency_key
    assert seen.query == {"page": ["1"], "q": ["cats"]}
    assert output["status"] == 200
    assert output["body"]["method"] == "GET"
    assert output["headers"]["content-type"] == "application/json"
    assert output["headers"]["x-trace"] == "abc"
    assert "set-cookie" not in output["headers"]


async def test_body_makes_a_json_post_and_input_overrides_config(
    scheduler: Scheduler, executor: Executor, http_target: HttpTarget
) -> None:
    task = make_task(
        "http",
        config={"url": f"{http_target.url}/wrong", "body": {"from": "config"}},
        input={"url": f"{http_target.url}/json", "body": {"amount": 12}},
    )
    scheduler.queue.add(task)
    output = await scheduler.queue.completed(task.task_id)
    assert output["body"]["method"] == "POST"
    assert json.loads(output["body"]["body"]) == {"amount": 12}
    assert output["body"]["content_type"] == "application/json"
    assert [r.path for r in http_target.requests] == ["/json"]


async def test_text_bodies_and_responses(
    scheduler: Scheduler, executor: Executor, http_target: HttpTarget
) -> None:
    task = make_task("http", config={"url": f"{http_target.url}/text", "method": "put"})
    post = make_task("http", config={"url": f"{http_target.url}/json", "body": "plain words"})
    scheduler.queue.add(task, post)
    output = await scheduler.queue.completed(task.task_id)
    assert output["body"] == "héllo"
    assert [r.method for r in http_target.requests if r.path == "/text"] == ["PUT"]
    echoed = (await scheduler.queue.completed(post.task_id))["body"]
    assert (echoed["body"], echoed["content_type"]) == ("plain words", "text/plain; charset=utf-8")


async def test_large_bodies_are_truncated_at_1_mib(
    scheduler: Scheduler, executor: Executor, http_target: HttpTarget
) -> None:
    task = make_task("http", config={"url": f"{http_target.url}/big"})
    scheduler.queue.add(task)
    output = await scheduler.queue.completed(task.task_id)
    assert output["truncated"] is True
    assert len(output["body"]) == 1024 * 1024


@pytest.mark.parametrize(
    ("status", "non_retryable"),
    [(500, False), (503, False), (429, False), (408, False), (404, True), (400, True)],
)
async def test_error_statuses_fail_with_http_codes(
    scheduler: Scheduler,
    executor: Executor,
    http_target: HttpTarget,
    status: int,
    non_retryable: bool,
) -> None:
    task = make_task("http", config={"url": f"{http_target.url}/status/{status}"})
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert failure.code == f"HTTP_{status}"
    assert failure.non_retryable is non_retryable
    assert dict(failure.details) == {"status": status, "body": "boom"}


async def test_timeout_is_retryable_and_bounded(
    scheduler: Scheduler, executor: Executor, http_target: HttpTarget
) -> None:
    task = make_task("http", config={"url": f"{http_target.url}/slow", "timeout": 0.2})
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert (failure.code, failure.non_retryable) == ("HTTP_TIMEOUT", False)


async def test_connect_error_is_retryable(scheduler: Scheduler, executor: Executor) -> None:
    task = make_task("http", config={"url": f"http://127.0.0.1:{free_port()}/x"})
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert (failure.code, failure.non_retryable) == ("HTTP_CONNECT_ERROR", False)


@pytest.mark.parametrize(
    "config",
    [{}, {"url": "not a url"}, {"url": "ftp://example.com/x"}, {"url": "http://x", "method": 7}],
)
async def test_bad_config_is_invalid_config(
    scheduler: Scheduler, executor: Executor, config: dict[str, object]
) -> None:
    task = make_task("http", config=config)
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert (failure.code, failure.non_retryable) == ("INVALID_CONFIG", True)


async def test_secrets_resolve_for_the_tasks_tenant_and_are_not_logged(
    scheduler: Scheduler,
    executor: Executor,
    http_target: HttpTarget,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("MAESTRO_TENANT_SECRET_ACME__RISK_API_TOKEN", "acme-s3cr3t")
    monkeypatch.setenv("MAESTRO_SECRET_RISK_API_TOKEN", "shared-s3cr3t")
    monkeypatch.setenv("MAESTRO_SECRET_TEAM_PATH", "from-config")
    caplog.set_level(logging.DEBUG)
    config = {
        "url": f"{http_target.url}/json",
        "headers": {"Authorization": "secret://risk-api.token"},
        "body": {"path": "secret://team/path"},
    }
    acme = make_task("http", config=config, tenant="acme")
    globex = make_task("http", config=config, tenant="globex")
    for task in (acme, globex):
        scheduler.queue.add(task)
    outputs = [await scheduler.queue.completed(t.task_id) for t in (acme, globex)]
    seen = sorted(r.headers["Authorization"] for r in http_target.requests)
    assert seen == ["acme-s3cr3t", "shared-s3cr3t"]  # the tenant's own first, then shared
    assert all(json.loads(o["body"]["body"]) == {"path": "from-config"} for o in outputs)
    assert "s3cr3t" not in caplog.text


async def test_a_multi_tenant_worker_resolves_only_each_tenants_own_secrets(
    scheduler: Scheduler,
    start_executor: StartExecutor,
    http_target: HttpTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await start_executor(shared_secrets=False)
    monkeypatch.setenv("MAESTRO_TENANT_SECRET_ACME__TOKEN", "acme-only")
    monkeypatch.setenv("MAESTRO_SECRET_TOKEN", "shared")
    config = {"url": f"{http_target.url}/json", "headers": {"Authorization": "secret://token"}}
    globex = make_task("http", config=config, tenant="globex")
    scheduler.queue.add(globex)
    failure = await scheduler.queue.failed(globex.task_id)
    assert (failure.code, failure.non_retryable) == ("SECRET_NOT_FOUND", True)
    assert "MAESTRO_TENANT_SECRET_GLOBEX__TOKEN" in failure.message
    assert "MAESTRO_SECRET_TOKEN" not in failure.message
    acme = make_task("http", config=config, tenant="acme")
    scheduler.queue.add(acme)
    await scheduler.queue.completed(acme.task_id)
    assert [r.headers["Authorization"] for r in http_target.requests] == ["acme-only"]


async def test_runtime_data_cannot_reach_or_redirect_a_secret(
    scheduler: Scheduler,
    executor: Executor,
    http_target: HttpTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A secret in an input header is refused, and with secrets in config an
    input url may change the path but not the scheme, host or port."""
    monkeypatch.setenv("MAESTRO_SECRET_TOKEN", "s3cr3t")
    config = {"url": f"{http_target.url}/json", "headers": {"Authorization": "secret://token"}}
    elsewhere = f"http://localhost:{free_port()}/collect"
    refused = {
        "SECRET_IN_INPUT": make_task(
            "http", config={"url": config["url"]}, input={"headers": {"X": "secret://token"}}
        ),
        "SECRET_URL_FROM_INPUT": make_task("http", config=config, input={"url": elsewhere}),
        "SECRET_URL_FROM_INPUT ": make_task(  # another site behind the same address
            "http", config=config, input={"headers": {"host": "collector.example"}}
        ),
    }
    for task in refused.values():
        scheduler.queue.add(task)
    for code, task in refused.items():
        failure = await scheduler.queue.failed(task.task_id)
        assert (failure.code, failure.non_retryable) == (code.strip(), True)
    assert http_target.requests == []
    same_origin = make_task("http", config=config, input={"url": f"{http_target.url}/json?x=1"})
    scheduler.queue.add(same_origin)
    await scheduler.queue.completed(same_origin.task_id)
    assert [r.headers["Authorization"] for r in http_target.requests] == ["s3cr3t"]


async def test_missing_secret_fails_before_any_request(
    scheduler: Scheduler, executor: Executor, http_target: HttpTarget
) -> None:
    task = make_task(
        "http",
        config={"url": f"{http_target.url}/json", "headers": {"Authorization": "secret://nope"}},
    )
    scheduler.queue.add(task)
    failure = await scheduler.queue.failed(task.task_id)
    assert (failure.code, failure.non_retryable) == ("SECRET_NOT_FOUND", True)
    assert "MAESTRO_SECRET_NOPE" in failure.message
    assert http_target.requests == []
