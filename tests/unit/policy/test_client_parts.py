"""Small parts of the enforcement client: classification names and the gate's
settings mixed into a service's settings."""

from __future__ import annotations

import pytest
from pydantic_settings import SettingsConfigDict

from maestro.runtime.policy import PolicyGateSettings, classification
from maestro.runtime.settings import ServiceSettings


def test_classification_names_and_numbers() -> None:
    assert classification(None) == classification("") == 0
    assert classification("confidential") == classification("CONFIDENTIAL") == 3
    assert classification("CLASSIFICATION_RESTRICTED") == classification(4) == 4
    assert classification("cosmic") == classification(42) == 0


def test_gate_settings_mix_into_a_services_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    class DemoSettings(ServiceSettings, PolicyGateSettings):
        model_config = SettingsConfigDict(env_prefix="MAESTRO_DEMO_", extra="ignore", frozen=True)

    monkeypatch.setenv("MAESTRO_DEMO_POLICY_CACHE_TTL_SECONDS", "0.5")
    settings = DemoSettings()
    assert settings.policy_cache_ttl_seconds == 0.5
    assert settings.policy_address == "127.0.0.1:50055"
    assert settings.policy_timeout_seconds == 2.0
