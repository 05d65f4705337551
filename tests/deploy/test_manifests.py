"""deploy/k8s: every manifest and every rendering is valid Kubernetes 1.37
(kubernetes-validate --strict), and the manifests agree with the code: probe
service names with the generated descriptors, env var names with the settings
classes, ports with the defaults, the Envoy sidecar with its generated config,
the migrations Job with the registry image, and each overlay does what
docs/deploy.md says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from maestro.runtime.health import LIVENESS
from tests.deploy.kustomize import Resource, dump, load_documents, load_kustomization
from tests.deploy.manifests import (
    BASE,
    BASE_ENVOY_IMAGE,
    CERT_DIR,
    DATABASE_SERVICES,
    ENVOY_DIR,
    GRPC_SERVICES,
    K8S,
    MIGRATE,
    MTLS_PORT,
    OVERLAYS,
    RENDERINGS,
    REPO,
    SERVICES,
    SETTINGS,
    all_containers,
    app_container,
    app_port,
    env_of,
    env_prefix,
    envoy_container,
    find,
    image_service,
    main_grpc_service,
    metrics_port,
    pod_spec,
    rendered,
    resource_files,
)

pytestmark = pytest.mark.timeout(60)

K8S_VERSION = "1.37.0"
VALIDATOR = Path(sys.executable).with_name("kubernetes-validate")


# -- schema validation ----------------------------------------------------------


def validate_strict(resource: Resource) -> None:
    """Raises unless ``resource`` is valid, with no unknown field, in 1.37.
    A kind without a schema is a failure too (the CLI only warns)."""
    kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


@pytest.mark.parametrize("path", resource_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_file_validates_strictly(path: Path) -> None:
    for resource in load_documents(path):
        validate_strict(resource)


def test_every_patch_targets_a_kind_with_a_schema() -> None:
    # Patches are partial objects, so only their kind is checked against the schemas.
    for overlay in OVERLAYS:
        directory = K8S / "overlays" / overlay
        for entry in load_kustomization(directory)["patches"]:
            for patch in load_documents(directory / entry["path"]):
                with pytest.raises(kubernetes_validate.ValidationError):
                    validate_strict({**patch, "spec": {"unknownField": 1}})


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_every_rendered_object_validates_strictly(rendering: str) -> None:
    for resource in rendered(rendering):
        validate_strict(resource)


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_kubernetes_validate_command_line_passes_each_rendering(
    rendering: str, tmp_path: Path
) -> None:
    out = tmp_path / f"{rendering}.yaml"
    out.write_text(dump(rendered(rendering)))
    done = subprocess.run(
        [str(VALIDATOR), "--strict", "-k", K8S_VERSION, "--quiet", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "", done.stdout  # no WARN (unknown kind) nor ERROR


def test_strict_validation_rejects_unknown_fields() -> None:
    deployment = find(rendered("base"), "Deployment", "registry")
    deployment["spec"]["template"]["spec"]["containers"][0]["healthcheck"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_strict(deployment)


# -- one set of objects per service ------------------------------------------------


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_each_service_has_its_objects_in_the_maestro_namespace(rendering: str) -> None:
    resources = rendered(rendering)
    namespace = find(resources, "Namespace", "maestro")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for service in SERVICES:
        for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"):
            find(resources, kind, service)
        assert pod_spec(find(resources, "Deployment", service))["serviceAccountName"] == service
    for r in resources:
        if r["kind"] != "Namespace":
            assert r["metadata"]["namespace"] == "maestro", r["metadata"]["name"]
        assert r["metadata"]["labels"]["app.kubernetes.io/part-of"] == "maestro"


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_selectors_select_their_pods(rendering: str) -> None:
    resources = rendered(rendering)
    for service in SERVICES:
        deployment = find(resources, "Deployment", service)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector == {"app.kubernetes.io/name": service}
        assert selector.items() <= pod_labels.items()
        assert find(resources, "Service", service)["spec"]["selector"] == selector
        pdb = find(resources, "PodDisruptionBudget", service)
        assert pdb["spec"]["selector"]["matchLabels"] == selector


# -- probes, ports and settings agree with the code ----------------------------------


@pytest.mark.parametrize("service", GRPC_SERVICES)
def test_probes_ask_the_real_grpc_health_service_names(service: str) -> None:
    app = app_container(find(rendered("base"), "Deployment", service))
    port = app_port(service)

    assert app["readinessProbe"]["grpc"] == {"port": port, "service": main_grpc_service(service)}
    # Liveness and start-up ask the always-on `liveness` name, so an outage of a
    # dependency makes the pod unready without getting it restarted.
    assert app["livenessProbe"]["grpc"] == {"port": port, "service": LIVENESS}
    assert app["startupProbe"]["grpc"] == {"port": port, "service": LIVENESS}
    # The name the probe asks about is one the server registers for health.
    module = __import__(f"maestro.services.{service}.server", fromlist=["server"])
    names = getattr(module, "SERVICE_NAMES", None) or [module.SERVICE_NAME]
    assert main_grpc_service(service) in names


def test_gateway_probes_its_http_health_endpoints() -> None:
    app = app_container(find(rendered("base"), "Deployment", "gateway"))
    assert app["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert app["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert app["ports"] == [{"name": "http", "containerPort": 8080}]


def maestro_containers(resources: list[Resource]) -> list[tuple[str, str, dict[str, Any]]]:
    """(object name, service, container) for every container running a Maestro image."""
    found = []
    for r in resources:
        if r["kind"] in ("Deployment", "Job"):
            for container in all_containers(r):
                service = image_service(container["image"])
                if service is not None:
                    found.append((r["metadata"]["name"], service, container))
    return found


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_every_env_var_is_a_settings_field_of_its_service(rendering: str) -> None:
    containers = maestro_containers(rendered(rendering))
    assert {service for _, service, _ in containers} == set(SERVICES)
    for owner, service, container in containers:
        prefix = env_prefix(service)
        fields = SETTINGS[service].model_fields
        assert container.get("envFrom") is None, owner  # every name is listed, so it is checked
        for name in env_of(container):
            assert name.startswith(prefix), f"{owner}: {name} lacks {prefix}"
            assert name.removeprefix(prefix).lower() in fields, f"{owner}: {name} is no setting"


_SECRET_URLS = {
    "_DATABASE_URL": "postgresql+psycopg://maestro:secret@postgres/maestro",
    "_REDIS_URL": "redis://:secret@redis:6379/0",
    "_JWT_ISSUER": "https://id.example.com/",
    "_JWT_AUDIENCE": "maestro",
    "_JWKS_URL": "https://id.example.com/.well-known/jwks.json",
}
"""Settings that come from Secrets (connection strings with credentials) and
from the operator's ConfigMaps (the gateway's token issuer)."""


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_env_values_are_valid_settings(rendering: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for owner, service, container in maestro_containers(rendered(rendering)):
        with monkeypatch.context() as env:
            for name, entry in env_of(container).items():
                if "valueFrom" in entry:
                    assert name.endswith(tuple(_SECRET_URLS)), owner
                    env.setenv(name, next(v for k, v in _SECRET_URLS.items() if name.endswith(k)))
                else:
                    env.setenv(name, entry["value"])
            values = SETTINGS[service]().model_dump()
        if owner == service:  # the service itself, not the migrations Job
            assert values["host"] == "0.0.0.0"
            assert values["port"] == app_port(service)
            if service in GRPC_SERVICES:
                assert values["metrics_host"] == "0.0.0.0"
                assert values["metrics_port"] == metrics_port(service)


@pytest.mark.parametrize("service", GRPC_SERVICES)
def test_ports_and_scrape_annotations(service: str) -> None:
    deployment = find(rendered("base"), "Deployment", service)
    app = app_container(deployment)
    ports = {p["name"]: p["containerPort"] for p in app["ports"]}
    assert ports == {"grpc": app_port(service), "metrics": metrics_port(service)}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(metrics_port(service)),
        "prometheus.io/path": "/metrics",
    }


def test_gateway_metrics_are_scraped_from_its_http_port() -> None:
    deployment = find(rendered("base"), "Deployment", "gateway")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("service", GRPC_SERVICES)
def test_peers_reach_a_service_only_through_mtls(service: str) -> None:
    resources = rendered("base")
    ports = find(resources, "Service", service)["spec"]["ports"]
    assert ports == [{"name": "grpc-mtls", "port": MTLS_PORT, "targetPort": "grpc-mtls"}]
    envoy = envoy_container(find(resources, "Deployment", service))
    assert {"name": "grpc-mtls", "containerPort": MTLS_PORT} in envoy["ports"]
    # The app's plaintext gRPC port is closed to other pods.
    (policy,) = [r for r in resources if r["kind"] == "NetworkPolicy"]
    allowed = policy["spec"]["ingress"][0]["ports"]
    assert {"protocol": "TCP", "port": MTLS_PORT} in allowed
    for rule in allowed:
        assert not rule["port"] <= app_port(service) <= rule.get("endPort", rule["port"])
    assert any(
        rule["port"] <= metrics_port(service) <= rule.get("endPort", rule["port"])
        for rule in allowed
    )


# -- the Envoy sidecar and its generated config ----------------------------------


def envoy_config(service: str) -> dict[str, Any]:
    path = ENVOY_DIR / f"{service}.yaml"
    assert path.is_file(), f"{path} is generated from deploy/mesh/topology.yaml"
    return dict(yaml.safe_load(path.read_text()))


def listeners(config: dict[str, Any]) -> dict[int, dict[str, Any]]:
    found = {}
    for listener in config["static_resources"]["listeners"]:
        address = listener["address"]["socket_address"]
        found[int(address["port_value"])] = {**listener, "_host": address["address"]}
    return found


def cluster_endpoints(config: dict[str, Any], name: str) -> list[tuple[str, int]]:
    (cluster,) = [c for c in config["static_resources"]["clusters"] if c["name"] == name]
    return [
        (
            e["endpoint"]["address"]["socket_address"]["address"],
            int(e["endpoint"]["address"]["socket_address"]["port_value"]),
        )
        for group in cluster["load_assignment"]["endpoints"]
        for e in group["lb_endpoints"]
    ]


def filenames(node: Any) -> set[str]:
    """Every ``filename`` in an Envoy config (certificates, keys, CAs)."""
    if isinstance(node, dict):
        own = {node["filename"]} if isinstance(node.get("filename"), str) else set()
        return own.union(*(filenames(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(filenames(v) for v in node))
    return set()


@pytest.mark.parametrize("rendering", RENDERINGS)
@pytest.mark.parametrize("service", SERVICES)
def test_envoy_runs_as_a_native_sidecar_with_its_generated_config(
    rendering: str, service: str
) -> None:
    resources = rendered(rendering)
    deployment = find(resources, "Deployment", service)
    envoy = envoy_container(deployment)
    assert envoy["restartPolicy"] == "Always"
    expected_image = "envoyproxy/envoy:v1.40.0" if rendering == "prod" else BASE_ENVOY_IMAGE
    assert envoy["image"] == expected_image
    assert envoy["args"][:2] == ["-c", "/etc/envoy/envoy.yaml"]

    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in envoy["volumeMounts"]}
    config_map = find(resources, "ConfigMap", volumes[mounts["/etc/envoy"]]["configMap"]["name"])
    assert config_map["metadata"]["name"] == f"envoy-{service}"
    assert config_map["data"] == {"envoy.yaml": (ENVOY_DIR / f"{service}.yaml").read_text()}
    assert volumes[mounts[CERT_DIR]]["secret"]["secretName"] == f"{service}-tls"


@pytest.mark.parametrize("service", SERVICES)
def test_envoy_config_matches_the_pod(service: str) -> None:
    config = envoy_config(service)
    deployment = find(rendered("base"), "Deployment", service)
    envoy, app = envoy_container(deployment), app_container(deployment)
    by_port = listeners(config)
    declared = {p["containerPort"] for p in envoy.get("ports", [])}

    # Every port the sidecar declares is a listener of its config on 0.0.0.0.
    for port in declared:
        assert by_port[port]["_host"] == "0.0.0.0", port
    if service in GRPC_SERVICES:
        assert MTLS_PORT in declared
        # Inbound mTLS ends at the app's gRPC port on loopback.
        assert ("127.0.0.1", app_port(service)) in cluster_endpoints(config, "app")
    else:
        assert MTLS_PORT not in by_port  # the gateway takes no mesh traffic
    # The Envoy probes ask a listener that answers /ready.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in envoy:
            get = envoy[probe]["httpGet"]
            port = next(p["containerPort"] for p in envoy["ports"] if p["name"] == get["port"])
            assert get["path"] == "/ready"
            assert "/ready" in yaml.safe_dump(by_port[port])
    # Peers are called through the outbound listener on loopback.
    addresses = {v["value"] for k, v in env_of(app).items() if k.endswith("_ADDRESS")}
    for address in addresses:
        host, port = address.rsplit(":", 1)
        assert host == "127.0.0.1"
        assert by_port[int(port)]["_host"] == "127.0.0.1"
    # Certificates come from the Secret mounted at CERT_DIR.
    assert filenames(config) == {f"{CERT_DIR}/tls.crt", f"{CERT_DIR}/tls.key", f"{CERT_DIR}/ca.crt"}


# -- security and resources ---------------------------------------------------


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_pods_run_non_root_with_read_only_root_filesystems(rendering: str) -> None:
    workloads = [r for r in rendered(rendering) if r["kind"] in ("Deployment", "Job")]
    assert workloads
    for workload in workloads:
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in all_containers(workload):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
            assert context.get("runAsUser", 1) != 0


def quantity(value: str | int) -> float:
    """A Kubernetes CPU or memory quantity as a number (cores or bytes)."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_every_container_has_requests_and_limits(rendering: str) -> None:
    for workload in (r for r in rendered(rendering) if r["kind"] in ("Deployment", "Job")):
        for container in all_containers(workload):
            resources = container["resources"]
            for key in ("cpu", "memory"):
                request = quantity(resources["requests"][key])
                limit = quantity(resources["limits"][key])
                assert 0 < request <= limit, (workload["metadata"]["name"], container["name"])


def app_requests(rendering: str, service: str) -> tuple[float, float]:
    requests = app_container(find(rendered(rendering), "Deployment", service))["resources"][
        "requests"
    ]
    return quantity(requests["cpu"]), quantity(requests["memory"])


@pytest.mark.parametrize("service", SERVICES)
def test_dev_is_smaller_than_base_and_prod_bigger(service: str) -> None:
    dev, base, prod = (app_requests(r, service) for r in ("dev", "base", "prod"))
    assert dev < base < prod


# -- configuration: databases, Redis, policy bundles, signer keys ---------------


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_tokens_are_demanded_and_tenants_kept_apart(rendering: str) -> None:
    """No rendering runs the gateway in dev mode (a request without a token
    would be an admin of any tenant), and the key and bundle, which serve every
    tenant, belong to a tenant of their own."""
    resources = rendered(rendering)
    env = env_of(app_container(find(resources, "Deployment", "gateway")))
    assert env["MAESTRO_GATEWAY_AUTH_MODE"]["value"] == "jwt"
    for setting, key in [("JWT_ISSUER", "jwt-issuer"), ("JWT_AUDIENCE", "jwt-audience"),
                         ("JWKS_URL", "jwks-url")]:  # fmt: skip
        assert env[f"MAESTRO_GATEWAY_{setting}"]["valueFrom"] == {
            "configMapKeyRef": {"name": "gateway-auth", "key": key}
        }
    for service in ("policy", "signer"):
        env = env_of(app_container(find(resources, "Deployment", service)))
        assert env[f"{env_prefix(service)}PLATFORM_TENANT"]["value"] == "platform"
    executor = env_of(app_container(find(resources, "Deployment", "executor")))
    assert executor["MAESTRO_EXECUTOR_SHARED_SECRETS"]["value"] == "false"  # own secrets only


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_database_urls_come_from_secrets(rendering: str) -> None:
    resources = rendered(rendering)
    for service in SERVICES:
        env = env_of(app_container(find(resources, "Deployment", service)))
        name = f"{env_prefix(service)}DATABASE_URL"
        if service in DATABASE_SERVICES:
            assert env[name] == {
                "name": name,
                "valueFrom": {"secretKeyRef": {"name": f"{service}-database", "key": "url"}},
            }
        else:
            assert name not in env


@pytest.mark.parametrize(
    ("service", "path", "source"),
    [
        ("policy", "/etc/maestro/policy", {"configMap": "policy-bundle"}),
        ("signer", "/etc/maestro/signer/keys", {"secret": "signer-keys"}),
    ],
)
def test_service_specific_configuration_is_mounted(
    service: str, path: str, source: dict[str, str]
) -> None:
    deployment = find(rendered("prod"), "Deployment", service)
    mounts = {m["mountPath"]: m for m in app_container(deployment)["volumeMounts"]}
    assert mounts[path]["readOnly"] is True
    volume = next(v for v in pod_spec(deployment)["volumes"] if v["name"] == mounts[path]["name"])
    ((kind, name),) = source.items()
    assert volume[kind][("secretName" if kind == "secret" else "name")] == name


# -- availability: replicas, disruption budgets, autoscaling ---------------------


def test_dev_runs_one_replica_of_everything() -> None:
    resources = rendered("dev")
    for service in SERVICES:
        replicas = find(resources, "Deployment", service)["spec"].get("replicas")
        assert replicas == (None if service == "executor" else 1), service
    hpa = find(resources, "HorizontalPodAutoscaler", "executor")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 2)


def test_prod_runs_at_least_two_replicas_and_keeps_one_through_disruptions() -> None:
    resources = rendered("prod")
    for service in SERVICES:
        spec = find(resources, "Deployment", service)["spec"]
        if service == "executor":
            assert "replicas" not in spec  # the autoscaler owns it
        else:
            assert spec["replicas"] >= 2, service
        pdb = find(resources, "PodDisruptionBudget", service)["spec"]
        assert pdb["minAvailable"] == 1
        assert "maxUnavailable" not in pdb
    hpa = find(resources, "HorizontalPodAutoscaler", "executor")["spec"]
    assert hpa["minReplicas"] >= 2
    assert hpa["maxReplicas"] >= 10


def test_base_budgets_allow_draining_a_single_replica() -> None:
    for service in SERVICES:
        pdb = find(rendered("base"), "PodDisruptionBudget", service)["spec"]
        assert pdb["maxUnavailable"] == 1
        assert "minAvailable" not in pdb


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_executors_scale_on_cpu_and_queue_depth(rendering: str) -> None:
    resources = rendered(rendering)
    (hpa,) = [r for r in resources if r["kind"] == "HorizontalPodAutoscaler"]
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "executor",
    }
    by_type = {m["type"]: m for m in spec["metrics"]}
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    assert by_type["External"]["external"]["metric"]["name"] == "maestro_task_queue_depth"
    assert "replicas" not in find(resources, "Deployment", "executor")["spec"]


# -- images and the migrations Job ------------------------------------------------


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_every_maestro_image_has_a_dockerfile_and_a_fixed_tag(rendering: str) -> None:
    for _, service, container in maestro_containers(rendered(rendering)):
        assert (REPO / "deploy" / "docker" / f"{service}.Dockerfile").is_file()
        tag = container["image"].rsplit(":", 1)[1]
        assert tag == {"dev": "dev"}.get(rendering, "0.1.0")


def test_migrations_run_only_from_the_overlays() -> None:
    assert not [r for r in rendered("base") if r["kind"] == "Job"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_job_upgrades_the_registry_schema_before_rollout(overlay: str) -> None:
    resources = rendered(overlay)
    job = find(resources, "Job", "registry-migrate")
    registry = app_container(find(resources, "Deployment", "registry"))
    (container,) = pod_spec(job)["containers"]

    assert container["image"] == registry["image"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migrations"
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PreSync"
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert env_of(container) == {
        "MAESTRO_REGISTRY_DATABASE_URL": env_of(registry)["MAESTRO_REGISTRY_DATABASE_URL"]
    }
    python, module, command = (
        container["command"][:2],
        container["command"][2],
        container["command"][3:],
    )
    assert (python, module) == (["python", "-m"], "alembic")
    assert command[0] == "-c"
    assert command[2:] == ["upgrade", "head"]


def test_migrations_job_points_at_the_alembic_ini_inside_the_image() -> None:
    job = find(rendered("prod"), "Job", "registry-migrate")
    ini = Path(pod_spec(job)["containers"][0]["command"][4])
    dockerfile = (REPO / "deploy" / "docker" / "registry.Dockerfile").read_text()

    # /opt/maestro is the image's venv; its Python is the base image's.
    venv, site_packages = Path("/opt/maestro"), ini.parents[4]
    assert f"python -m venv {venv}" in dockerfile
    assert site_packages == venv / "lib" / "python3.11" / "site-packages"
    assert "FROM python:3.11-slim" in dockerfile
    in_repo = REPO / "services" / "registry" / "src" / ini.relative_to(site_packages)
    assert in_repo.is_file(), in_repo
    assert in_repo.parent.joinpath("versions").is_dir()


def test_migrations_component_is_a_component() -> None:
    assert load_kustomization(MIGRATE)["kind"] == "Component"
    assert load_kustomization(BASE).get("components") is None
    for overlay in OVERLAYS:
        assert load_kustomization(K8S / "overlays" / overlay)["components"] == [
            "../../base/migrate"
        ]
