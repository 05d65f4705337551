"""Retry service config generated from the protos' idempotency levels."""

from __future__ import annotations

import json

from maestro.compiler.v1 import compiler_service_pb2
from maestro.runtime.clients import CompilerClient, idempotent_methods, retry_service_config
from maestro.scheduler.v1 import scheduler_service_pb2

COMPILER = compiler_service_pb2.DESCRIPTOR.services_by_name["CompilerService"]
TASK_QUEUE = scheduler_service_pb2.DESCRIPTOR.services_by_name["TaskQueueService"]


def test_task_queue_poll_is_not_retryable() -> None:
    methods = idempotent_methods(TASK_QUEUE)
    assert "PollTasks" not in methods
    assert {"HeartbeatTask", "CompleteTask", "FailTask"} <= set(methods)


def test_every_compiler_method_is_retryable() -> None:
    assert sorted(idempotent_methods(COMPILER)) == sorted(m.name for m in COMPILER.methods)
    assert len(COMPILER.methods) >= 7
    assert CompilerClient.SERVICES == (COMPILER,)


def test_service_config_json() -> None:
    config = json.loads(retry_service_config([COMPILER, TASK_QUEUE]))
    (method_config,) = config["methodConfig"]
    names = {(n["service"], n["method"]) for n in method_config["name"]}
    assert ("maestro.compiler.v1.CompilerService", "DigestWorkflow") in names
    assert ("maestro.scheduler.v1.TaskQueueService", "HeartbeatTask") in names
    assert ("maestro.scheduler.v1.TaskQueueService", "CompleteTask") in names
    assert ("maestro.scheduler.v1.TaskQueueService", "PollTasks") not in names
    assert (
        len(names)
        == len(method_config["name"])
        == len(COMPILER.methods) + len(idempotent_methods(TASK_QUEUE))
    )
    policy = method_config["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]
    assert policy["maxAttempts"] == 4
    assert policy["initialBackoff"] == "0.05s"
    assert policy["maxBackoff"] == "1.0s"
    assert policy["backoffMultiplier"] == 2.0
    throttling = config["retryThrottling"]
    assert throttling["maxTokens"] > 0
    assert 0 < throttling["tokenRatio"] <= 1


def test_service_config_without_retryable_methods_has_no_method_config() -> None:
    config = json.loads(retry_service_config([]))
    assert config["methodConfig"] == []
    assert "retryThrottling" in config


def test_custom_backoff() -> None:
    config = json.loads(
        retry_service_config([COMPILER], max_attempts=2, initial_backoff_seconds=0.5)
    )
    policy = config["methodConfig"][0]["retryPolicy"]
    assert policy["maxAttempts"] == 2
    assert policy["initialBackoff"] == "0.5s"
