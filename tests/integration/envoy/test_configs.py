"""Every generated Envoy configuration passes ``envoy --mode validate``: the
local shape (as ``maestro up --envoy`` writes it) and each committed Kubernetes
sidecar file (deploy/k8s/base/envoy/<service>.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro.cli.envoy import validate
from maestro.cli.envoy_config import LocalPlan, write_local
from maestro.cli.topology import Topology, load_topology
from tests.conftest import REPO
from tests.integration.envoy.conftest import TOPOLOGY

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

K8S_DIR = REPO / "deploy" / "k8s" / "base" / "envoy"


def test_the_local_shape_validates(topology: Topology, certs: Path, tmp_path: Path) -> None:
    config = write_local(topology, LocalPlan.from_topology(topology), certs, tmp_path)
    result = validate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize("service", list(load_topology(TOPOLOGY).services))
def test_each_k8s_sidecar_validates(
    service: str, topology: Topology, certs: Path, tmp_path: Path
) -> None:
    # Envoy loads the certificate files while validating; point the pod's mount
    # (/etc/maestro/tls) at this service's development certificates.
    text = (K8S_DIR / f"{service}.yaml").read_text()
    assert topology.k8s.cert_dir in text
    config = tmp_path / f"{service}.yaml"
    config.write_text(text.replace(topology.k8s.cert_dir, str(certs / service)))
    result = validate(config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_catches_a_broken_config(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(
        "static_resources:\n  clusters:\n  - name: x\n    type: STATIK\n    connect_timeout: 1s\n"
    )
    assert validate(config).returncode != 0
