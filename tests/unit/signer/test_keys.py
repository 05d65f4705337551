"""Signing keys at rest: envelope encryption under the KEK, where the KEK
comes from, and the policy gate's interim rules."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from maestro.runtime import context
from maestro.runtime.errors import PermissionDeniedError
from maestro.services.signer.config import SignerSettings
from maestro.services.signer.keys import DEV_KEK_FILE, KekError, KeyEncryptionKey
from maestro.services.signer.policy import InterimPolicyGate

pytestmark = pytest.mark.timeout(30)


def _kek_text() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_sealed_keys_open_only_with_their_kek_and_id() -> None:
    kek = KeyEncryptionKey(os.urandom(32))
    private = os.urandom(32)
    sealed = kek.seal("key-a", private)
    assert private not in sealed
    assert kek.open("key-a", sealed, kek.kek_id) == private
    assert kek.seal("key-a", private) != sealed  # fresh data key and nonces each time
    with pytest.raises(KekError, match="does not authenticate"):
        kek.open("key-b", sealed, kek.kek_id)  # moved to another key's row
    other = KeyEncryptionKey(os.urandom(32))
    with pytest.raises(KekError, match="wrong MAESTRO_SIGNER_KEK"):
        other.open("key-a", sealed, kek.kek_id)
    with pytest.raises(KekError, match="does not authenticate"):
        other.open("key-a", sealed, other.kek_id)  # a lying kek_id does not help
    corrupt = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(KekError):
        kek.open("key-a", corrupt, kek.kek_id)


def test_the_dev_kek_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = SignerSettings(data_dir=tmp_path)
    first = KeyEncryptionKey.from_settings(settings)
    path = tmp_path / DEV_KEK_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyEncryptionKey.from_settings(settings).kek_id == first.kek_id
    with pytest.raises(KekError, match="no key-encryption key"):
        KeyEncryptionKey.from_settings(
            SignerSettings(data_dir=tmp_path / "prod", generate_dev_kek=False)
        )


def test_the_kek_comes_from_the_setting_then_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _kek_text()
    monkeypatch.setenv("MAESTRO_SIGNER_KEK", text)
    from_env = KeyEncryptionKey.from_settings(SignerSettings(data_dir=tmp_path))
    assert from_env.kek_id == KeyEncryptionKey(base64.b64decode(text)).kek_id
    assert not (tmp_path / DEV_KEK_FILE).exists()
    monkeypatch.delenv("MAESTRO_SIGNER_KEK")
    path = tmp_path / "kek"
    path.write_text(text + "\n")
    path.chmod(0o644)
    with pytest.raises(KekError, match="accessible by others"):
        KeyEncryptionKey.from_settings(SignerSettings(data_dir=tmp_path, kek_file=path))
    path.chmod(0o440)  # as Kubernetes mounts a Secret for the pod's fsGroup
    from_file = KeyEncryptionKey.from_settings(SignerSettings(data_dir=tmp_path, kek_file=path))
    assert from_file.kek_id == from_env.kek_id
    with pytest.raises(KekError, match="32 bytes"):
        KeyEncryptionKey.from_settings(SignerSettings(kek=base64.b64encode(b"short").decode()))


async def test_interim_policy_gate_rules() -> None:
    gate = InterimPolicyGate()

    async def allowed(action: str, caller: str, roles: tuple[str, ...] = ()) -> bool:
        call = context.CallContext(
            caller_service=caller, principal=context.Principal(tenant="acme", roles=roles)
        )
        with context.bind(call):
            try:
                await gate.authorize(action, resource_type="x", resource_name="x", tenant="acme")
            except PermissionDeniedError as exc:
                assert exc.reason == "POLICY_DENIED"
                return False
            return True

    assert await allowed("receipts.create", "registry")
    assert await allowed("receipts.create", "scheduler")
    assert not await allowed("receipts.create", "gateway")
    assert not await allowed("receipts.create", "gateway", ("admin",))  # no forged receipts
    assert not await allowed("keys.rotate", "gateway", ("author",))
    assert await allowed("keys.rotate", "gateway", ("admin",))
    assert await allowed("receipts.get", "gateway")
    assert not await allowed("receipts.delete", "gateway", ("admin",))
