"""The mesh topology agrees with the code, the committed Kubernetes sidecar
configs are exactly what it generates, and the generated routes and clusters
do what the topology says (retries only for idempotent RPCs, etc.)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from maestro.cli.envoy_config import LocalPlan, dump, free_ports, k8s_config, local_config
from maestro.cli.main import app
from maestro.cli.topology import Rpcs, Topology, check, derived_rpcs, load_topology
from maestro.runtime.settings import DEFAULT_GRPC_PORTS
from tests.conftest import REPO

TOPOLOGY_PATH = REPO / "deploy" / "mesh" / "topology.yaml"
K8S_DIR = REPO / "deploy" / "k8s" / "base" / "envoy"


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(TOPOLOGY_PATH)


def test_the_topology_agrees_with_protos_settings_and_wiring(topology: Topology) -> None:
    assert check(topology) == []
    for name, port in DEFAULT_GRPC_PORTS.items():
        assert topology.services[name].port == port
        listed = topology.services[name].rpcs
        for grpc_service, rpcs in derived_rpcs(name).items():
            assert set(listed[grpc_service].idempotent) == set(rpcs.idempotent)
            assert set(listed[grpc_service].non_idempotent) == set(rpcs.non_idempotent)


def test_a_topology_that_disagrees_with_the_protos_is_refused(topology: Topology) -> None:
    compiler = topology.services["compiler"]
    rpcs = compiler.rpcs["maestro.compiler.v1.CompilerService"]
    wrong = rpcs.model_copy(
        update={
            "idempotent": tuple(m for m in rpcs.idempotent if m != "DigestWorkflow"),
            "non_idempotent": ("DigestWorkflow",),
        }
    )
    services = dict(topology.services)
    services["compiler"] = compiler.model_copy(
        update={"rpcs": {"maestro.compiler.v1.CompilerService": wrong}}
    )
    problems = check(topology.model_copy(update={"services": services}))
    assert any("idempotency_level" in p and "DigestWorkflow" in p for p in problems), problems

    scheduler = topology.services["scheduler"]
    services["scheduler"] = scheduler.model_copy(
        update={"rpcs": {"maestro.scheduler.v1.SchedulerService": Rpcs()}}
    )
    problems = check(topology.model_copy(update={"services": services}))
    assert any("TaskQueueService" in p for p in problems), problems


def test_the_cli_check_fails_on_disagreement(tmp_path: Path) -> None:
    text = TOPOLOGY_PATH.read_text().replace("non_idempotent: [PollTasks]", "non_idempotent: []")
    broken = tmp_path / "topology.yaml"
    broken.write_text(
        text.replace("idempotent: [HeartbeatTask,", "idempotent: [PollTasks, HeartbeatTask,")
    )
    result = CliRunner().invoke(app, ["mesh", "check", "--topology", str(broken)])
    assert result.exit_code == 1
    assert "PollTasks" in result.output
    ok = CliRunner().invoke(app, ["mesh", "check", "--topology", str(TOPOLOGY_PATH)])
    assert ok.exit_code == 0, ok.output


def test_an_unknown_callee_is_rejected(topology: Topology) -> None:
    data: dict[str, Any] = topology.model_dump()
    data["services"]["registry"]["calls"] = ["compiler", "nope"]
    with pytest.raises(ValueError, match="unknown service 'nope'"):
        Topology.model_validate(data)


def test_committed_k8s_sidecars_are_what_the_topology_generates(
    topology: Topology, tmp_path: Path
) -> None:
    assert sorted(p.name for p in K8S_DIR.iterdir()) == sorted(
        f"{s}.yaml" for s in topology.services
    )
    for service in topology.services:
        committed = (K8S_DIR / f"{service}.yaml").read_text()
        assert committed == dump(k8s_config(topology, service)), (
            f"{service}.yaml is stale: run `maestro mesh envoy-config --shape k8s "
            f"--out deploy/k8s/base/envoy`"
        )
    # The CLI writes the same files.
    result = CliRunner().invoke(
        app,
        ["mesh", "envoy-config", "--shape", "k8s", "--out", str(tmp_path), "--topology",
         str(TOPOLOGY_PATH)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for service in topology.services:
        assert (tmp_path / f"{service}.yaml").read_text() == (
            K8S_DIR / f"{service}.yaml"
        ).read_text()


def _listener(config: dict[str, Any], name: str) -> dict[str, Any]:
    [listener] = [x for x in config["static_resources"]["listeners"] if x["name"] == name]
    return listener


def _routes(listener: dict[str, Any], vhost: str) -> list[dict[str, Any]]:
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    [host] = [v for v in hcm["route_config"]["virtual_hosts"] if v["name"] == vhost]
    routes: list[dict[str, Any]] = host["routes"]
    return routes


def _route_for(routes: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """The first route Envoy would pick for ``path`` (exact, regex or prefix)."""
    import re

    for route in routes:
        match = route["match"]
        if (
            match.get("path") == path
            or ("safe_regex" in match and re.fullmatch(match["safe_regex"]["regex"], path))
            or ("prefix" in match and path.startswith(match["prefix"]))
        ):
            return route
    raise AssertionError(f"no route for {path}")


def test_k8s_routes_retry_exactly_the_idempotent_rpcs(topology: Topology) -> None:
    config = k8s_config(topology, "gateway")
    outbound = _listener(config, "outbound_gateway")
    assert outbound["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 15001}
    routes = _routes(outbound, "by-grpc-service")
    for service in ("compiler", "registry", "scheduler", "executor", "policy", "signer"):
        for grpc_service, rpcs in topology.services[service].rpcs.items():
            for method in rpcs.idempotent:
                route = _route_for(routes, f"/{grpc_service}/{method}")["route"]
                assert route["cluster"] == f"out_{service}"
                policy = route["retry_policy"]
                assert policy["retry_on"] == "unavailable,resource-exhausted,connect-failure,reset"
                assert policy["num_retries"] == 3
            for method in rpcs.non_idempotent:
                assert (
                    "retry_policy" not in _route_for(routes, f"/{grpc_service}/{method}")["route"]
                )
    poll = _route_for(routes, "/maestro.scheduler.v1.TaskQueueService/PollTasks")["route"]
    assert poll["timeout"] == "65s"
    stream = _route_for(routes, "/maestro.scheduler.v1.SchedulerService/StreamExecutionEvents")
    assert stream["route"]["timeout"] == "0s"
    assert "per_try_timeout" not in stream["route"]["retry_policy"]
    digest = _route_for(routes, "/maestro.compiler.v1.CompilerService/DigestWorkflow")["route"]
    assert digest["retry_policy"]["per_try_timeout"] == "2s"
    assert digest["timeout"] == "5s"
    # A method this config does not know of yet still routes, without retries.
    newer = _route_for(routes, "/maestro.compiler.v1.CompilerService/Newer")["route"]
    assert newer["cluster"] == "out_compiler"
    assert "retry_policy" not in newer
    # By authority, Health and reflection reach the named service.
    health = _route_for(_routes(outbound, "registry"), "/grpc.health.v1.Health/Check")
    assert health["route"]["cluster"] == "out_registry"


def test_k8s_clusters_use_mtls_budgets_outlier_detection_and_health_checks(
    topology: Topology,
) -> None:
    config = k8s_config(topology, "registry")
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert set(clusters) == {"app", "envoy_admin", "out_compiler", "out_policy", "out_signer"}
    compiler = clusters["out_compiler"]
    assert compiler["type"] == "STRICT_DNS"
    address = compiler["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert address["address"]["socket_address"] == {
        "address": "compiler.maestro.svc.cluster.local",
        "port_value": 15443,
    }
    tls = compiler["transport_socket"]["typed_config"]["common_tls_context"]
    assert tls["tls_certificates"][0]["certificate_chain"]["filename"] == "/etc/maestro/tls/tls.crt"
    assert tls["validation_context"]["trusted_ca"]["filename"] == "/etc/maestro/tls/ca.crt"
    assert tls["validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "URI", "matcher": {"exact": "spiffe://maestro.local/compiler"}}
    ]
    budget = compiler["circuit_breakers"]["thresholds"][0]["retry_budget"]
    assert budget == {"budget_percent": {"value": 20.0}, "min_retry_concurrency": 3}
    assert compiler["outlier_detection"]["consecutive_gateway_failure"] == 2
    assert compiler["outlier_detection"]["enforcing_consecutive_gateway_failure"] == 100
    [health_check] = compiler["health_checks"]
    assert health_check["grpc_health_check"]["service_name"] == (
        "maestro.compiler.v1.CompilerService"
    )
    assert clusters["app"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"][
        "address"
    ]["socket_address"] == {"address": "127.0.0.1", "port_value": 50052}


def test_k8s_inbound_requires_client_certificates_and_allows_only_callers(
    topology: Topology,
) -> None:
    inbound = _listener(k8s_config(topology, "compiler"), "inbound")
    assert inbound["address"]["socket_address"]["port_value"] == 15443
    chain = inbound["filter_chains"][0]
    assert chain["transport_socket"]["typed_config"]["require_client_certificate"] is True
    hcm = chain["filters"][0]["typed_config"]
    assert hcm["forward_client_cert_details"] == "SANITIZE_SET"
    assert hcm["set_current_client_cert_details"]["uri"] is True
    [rbac, _router] = hcm["http_filters"]
    principals = rbac["typed_config"]["rules"]["policies"]["callers"]["principals"]
    allowed = {p["authenticated"]["principal_name"]["exact"] for p in principals}
    assert allowed == {
        "spiffe://maestro.local/registry",
        "spiffe://maestro.local/gateway",
        "spiffe://maestro.local/operator",
    }
    # The compiler calls nobody: no outbound listener.
    names = {x["name"] for x in k8s_config(topology, "compiler")["static_resources"]["listeners"]}
    assert names == {"inbound", "health"}
    # The gateway is HTTP: outbound only.
    names = {x["name"] for x in k8s_config(topology, "gateway")["static_resources"]["listeners"]}
    assert names == {"outbound_gateway"}


def test_the_local_shape_wires_each_caller_with_its_own_identity(
    topology: Topology, tmp_path: Path
) -> None:
    plan = LocalPlan.from_topology(topology)
    config = local_config(topology, plan, tmp_path)
    listeners = {x["name"]: x for x in config["static_resources"]["listeners"]}
    assert {f"inbound_{s}_0" for s in topology.grpc_services} <= set(listeners)
    assert {"outbound_registry", "outbound_gateway", "outbound_operator"} <= set(listeners)
    assert plan.front == topology.local.front_port
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    tls = clusters["out_registry_compiler"]["transport_socket"]["typed_config"]
    cert = tls["common_tls_context"]["tls_certificates"][0]["certificate_chain"]["filename"]
    assert cert == str((tmp_path / "registry" / "tls.crt").resolve())
    endpoint = clusters["out_registry_compiler"]["load_assignment"]["endpoints"][0]
    assert (
        endpoint["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"]
        == (topology.local.inbound_ports["compiler"])
    )


def test_free_ports_are_distinct_unbound_and_avoid_the_excluded() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        excluded = set(free_ports(20))
        ports = free_ports(200, exclude=excluded)
        assert len(set(ports)) == 200
        assert not set(ports) & (excluded | {busy_port})
    for port in ports[:20]:  # released: each can be bound now
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_free_plan_gives_every_listener_its_own_port_apart_from_the_services(
    topology: Topology,
) -> None:
    app = {name: free_ports(2) for name in topology.grpc_services}
    taken = free_ports(10, exclude={p for ps in app.values() for p in ps})
    plan = LocalPlan.free(topology, app, taken=taken)
    listeners = [*(p for ps in plan.inbound.values() for p in ps), *plan.outbound.values()]
    ours = [*listeners, plan.admin]
    assert len(set(ours)) == len(ours) == 2 * len(app) + len(plan.outbound) + 1
    assert not set(ours) & ({p for ps in app.values() for p in ps} | set(taken))
    assert {n: len(p) for n, p in plan.inbound.items()} == {n: 2 for n in app}
