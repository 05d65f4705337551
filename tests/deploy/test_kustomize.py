"""The offline kustomize renderer: each supported feature on a small tree, its
refusals, and — when kubectl is installed — byte-identical output to
``kubectl kustomize`` for those trees and for deploy/k8s itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from textwrap import dedent

import pytest
import yaml

from tests.deploy.kustomize import KustomizeError, dump, render, split_image, strategic_merge
from tests.deploy.manifests import BASE, K8S, OVERLAYS

pytestmark = pytest.mark.timeout(60)

KUBECTL = shutil.which("kubectl")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
        - {name: proxy, image: "envoyproxy/envoy:v1", restartPolicy: Always}
      containers:
        - name: web
          image: maestro/web:0.1.0
          args: [--a]
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
          resources: {limits: {cpu: "1"}, requests: {cpu: 100m}}
"""

# Small kustomize trees, each exercising some features; also cross-checked
# against kubectl when it is installed.
TREES: dict[str, dict[str, str]] = {
    "order-namespace-labels": {
        "kustomization.yaml": """\
            namespace: ns
            labels:
              - pairs: {team: core}
                includeTemplates: true
              - pairs: {tier: "1"}
            resources: [all.yaml]
            """,
        "all.yaml": DEPLOYMENT
        + """\
---
apiVersion: batch/v1
kind: Job
metadata: {name: b-job}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: j, image: "busybox:1"}]}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, maxReplicas: 2}
---
apiVersion: batch/v1
kind: Job
metadata: {name: a-job}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: j, image: "busybox:1"}]}}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: ns}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
""",
    },
    "overlay-patches-images-generators": {
        "base/kustomization.yaml": """\
            resources: [web.yaml]
            generatorOptions: {disableNameSuffixHash: true}
            configMapGenerator:
              - {name: conf, files: [conf/app.yaml, renamed.yaml=conf/app.yaml], literals: [K=v]}
              - {name: merged, literals: [A=1, B=2]}
              - {name: replaced, literals: [A=1]}
            secretGenerator:
              - {name: creds, literals: [user=admin, "N=1"]}
            """,
        "base/web.yaml": DEPLOYMENT,
        "base/conf/app.yaml": "listen: 8080\nnested:\n  - x\n",
        "overlay/kustomization.yaml": """\
            resources: [../base]
            namespace: prod
            generatorOptions: {disableNameSuffixHash: true}
            configMapGenerator:
              - {name: merged, behavior: merge, literals: [B=3, C=4]}
              - {name: replaced, behavior: replace, literals: [Z=9]}
            images:
              - {name: maestro/web, newTag: "2.0"}
              - {name: envoyproxy/envoy, newName: mirror.example/envoy, digest: "sha256:abc"}
              - {name: unused/image, newTag: x}
            patches:
              - path: patch.yaml
              - patch: |-
                  apiVersion: v1
                  kind: ConfigMap
                  metadata: {name: conf}
                  data: {K: null, extra: "yes"}
            """,
        "overlay/patch.yaml": """\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec:
              replicas: 3
              template:
                metadata: {annotations: {a: "1"}}
                spec:
                  initContainers:
                    - {name: proxy, args: [-c, x]}
                  containers:
                    - {name: sidecar, image: "busybox:1"}
                    - name: web
                      args: [--b]
                      env: [{name: C, value: "3"}, {name: A, value: "9"}]
                      resources: {limits: null}
            """,
    },
    "components": {
        "base/kustomization.yaml": "resources: [web.yaml]\n",
        "base/web.yaml": DEPLOYMENT,
        "component/kustomization.yaml": """\
            apiVersion: kustomize.config.k8s.io/v1alpha1
            kind: Component
            resources: [job.yaml]
            labels:
              - pairs: {from: component}
            """,
        "component/job.yaml": """\
            apiVersion: batch/v1
            kind: Job
            metadata: {name: migrate}
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers: [{name: m, image: maestro/web:0.1.0}]
            """,
        "overlay/kustomization.yaml": """\
            namespace: app
            resources: [../base]
            components: [../component]
            images: [{name: maestro/web, newTag: dev}]
            """,
    },
}

ROOTS = {
    "order-namespace-labels": ".",
    "overlay-patches-images-generators": "overlay",
    "components": "overlay",
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(content) if name.endswith("kustomization.yaml") else content)
    return root


def kinds_and_names(resources: list[dict[str, object]]) -> list[str]:
    return [f"{r['kind']}/{r['metadata']['name']}" for r in resources]  # type: ignore[index]


def test_legacy_order_namespace_and_labels(tmp_path: Path) -> None:
    out = render(write_tree(tmp_path, TREES["order-namespace-labels"]))

    assert kinds_and_names(out) == [
        "Namespace/ns",
        "ServiceAccount/web",
        "Service/web",
        "Deployment/web",
        "HorizontalPodAutoscaler/web",
        "Job/a-job",
        "Job/b-job",
    ]
    namespace, *namespaced = out
    assert "namespace" not in namespace["metadata"]
    assert {r["metadata"]["namespace"] for r in namespaced} == {"ns"}
    deployment = out[3]
    assert deployment["metadata"]["labels"] == {"app": "web", "team": "core", "tier": "1"}
    # includeTemplates only for the pairs that asked for it; selectors never change.
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "web", "team": "core"}
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert out[2]["spec"]["selector"] == {"app": "web"}


def test_overlay_patches_images_and_generators(tmp_path: Path) -> None:
    root = write_tree(tmp_path, TREES["overlay-patches-images-generators"])
    out = {f"{r['kind']}/{r['metadata']['name']}": r for r in render(root / "overlay")}

    assert out["ConfigMap/conf"]["data"] == {
        "app.yaml": "listen: 8080\nnested:\n  - x\n",
        "renamed.yaml": "listen: 8080\nnested:\n  - x\n",
        "extra": "yes",
    }
    assert out["ConfigMap/merged"]["data"] == {"A": "1", "B": "3", "C": "4"}
    assert out["ConfigMap/replaced"]["data"] == {"Z": "9"}
    secret = out["Secret/creds"]
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"user": "YWRtaW4=", "N": "MQ=="}
    assert {r["metadata"]["namespace"] for r in out.values()} == {"prod"}

    spec = out["Deployment/web"]["spec"]
    assert spec["replicas"] == 3
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"] == {"labels": {"app": "web"}, "annotations": {"a": "1"}}
    assert pod["initContainers"] == [
        {
            "name": "proxy",
            "image": "mirror.example/envoy@sha256:abc",
            "restartPolicy": "Always",
            "args": ["-c", "x"],
        }
    ]
    # Merge-keyed lists: the patch's items in its order, then the others.
    sidecar, web = pod["containers"]
    assert sidecar == {"name": "sidecar", "image": "busybox:1"}
    assert web["image"] == "maestro/web:2.0"
    assert web["args"] == ["--b"]  # not merge-keyed: replaced
    assert web["env"] == [
        {"name": "C", "value": "3"},
        {"name": "A", "value": "9"},
        {"name": "B", "value": "2"},
    ]
    assert web["resources"] == {"requests": {"cpu": "100m"}}  # null deletes


def test_components_join_the_including_kustomization(tmp_path: Path) -> None:
    root = write_tree(tmp_path, TREES["components"])
    out = render(root / "overlay")

    assert kinds_and_names(out) == ["Deployment/web", "Job/migrate"]
    deployment, job = out
    assert job["metadata"] == {
        "name": "migrate",
        "namespace": "app",
        "labels": {"from": "component"},
    }
    # The component's labels run over everything accumulated before it.
    assert deployment["metadata"]["labels"] == {"app": "web", "from": "component"}
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "maestro/web:dev"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "maestro/web:dev"


def test_a_component_is_not_a_resource(tmp_path: Path) -> None:
    root = write_tree(tmp_path, TREES["components"])
    (root / "overlay" / "kustomization.yaml").write_text("resources: [../base, ../component]\n")

    with pytest.raises(KustomizeError, match="Component"):
        render(root / "overlay")


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ("resources: [web.yaml]\ncommonLabels: {a: b}\n", "unsupported fields"),
        (
            "resources: [web.yaml]\nconfigMapGenerator: [{name: c, literals: [a=b]}]\n",
            "disableNameSuffixHash",
        ),
        (
            "resources: [web.yaml]\ngeneratorOptions: {disableNameSuffixHash: true}\n"
            "configMapGenerator: [{name: c, literals: [novalue]}]\n",
            "has no '='",
        ),
        (
            "resources: [web.yaml]\nlabels: [{pairs: {a: b}, includeSelectors: true}]\n",
            "includeSelectors",
        ),
        ("resources: [web.yaml, web.yaml]\n", "defined twice"),
        ("resources: [missing.yaml]\n", "missing resource"),
        (
            "resources: [web.yaml]\npatches:\n- patch: '{apiVersion: apps/v1, kind: Deployment, "
            "metadata: {name: nope}, spec: {replicas: 2}}'\n",
            "matches 0 resources",
        ),
        (
            "resources: [web.yaml]\npatches:\n- patch: '{apiVersion: apps/v1, kind: Deployment, "
            "metadata: {name: web}, spec: {template: {spec: {initContainers: [{name: proxy, "
            "image: x}], containers: [{name: web, env: [{value: x}]}]}}}}'\n",
            "'env' item without its merge key 'name'",
        ),
    ],
)
def test_refuses_what_it_does_not_implement(
    tmp_path: Path, kustomization: str, message: str
) -> None:
    write_tree(tmp_path, {"kustomization.yaml": kustomization, "web.yaml": DEPLOYMENT})
    with pytest.raises(KustomizeError, match=message):
        render(tmp_path)


def test_strategic_merge_leaves_its_inputs_alone() -> None:
    target = {"a": {"b": [1]}, "c": 1}
    patch = {"c": None, "d": {"e": None, "f": 1}, "g": [{"h": None}]}

    merged = strategic_merge(target, patch)

    # A list the target lacks is added as it is (no merge key needed); nulls
    # inside new values are dropped, as kustomize does.
    assert merged == {"a": {"b": [1]}, "d": {"f": 1}, "g": [{}]}
    assert target == {"a": {"b": [1]}, "c": 1}
    assert patch == {"c": None, "d": {"e": None, "f": 1}, "g": [{"h": None}]}


def test_strategic_merge_refuses_lists_it_cannot_merge() -> None:
    # Container ports merge by containerPort and protocol: not implemented.
    with pytest.raises(KustomizeError, match="'ports' is not supported"):
        strategic_merge({"ports": [{"containerPort": 1}]}, {"ports": [{"containerPort": 2}]})


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("maestro/registry:0.1.0", ("maestro/registry", ":0.1.0")),
        ("maestro/registry", ("maestro/registry", "")),
        ("registry.local:5000/maestro/registry", ("registry.local:5000/maestro/registry", "")),
        ("registry.local:5000/m/r:1", ("registry.local:5000/m/r", ":1")),
        ("envoy@sha256:abc", ("envoy", "@sha256:abc")),
    ],
)
def test_split_image(image: str, expected: tuple[str, str]) -> None:
    assert split_image(image) == expected


def test_dump_prints_like_kustomize() -> None:
    text = dump([{"kind": "ConfigMap", "data": {"f": "a: 1\n", "n": "1", "e": "", "s": "plain"}}])

    assert text == 'data:\n  e: ""\n  f: |\n    a: 1\n  n: "1"\n  s: plain\nkind: ConfigMap\n'


def test_renders_the_deploy_tree() -> None:
    for directory in (BASE, *(K8S / "overlays" / o for o in OVERLAYS)):
        assert render(directory), directory


# -- the same output as kubectl kustomize, where kubectl exists ---------------------
# Compared as parsed documents (same objects, same order, same values and types):
# the text differs only in YAML quoting choices (kyaml quotes YAML 1.1 booleans
# such as a key "N" in some places and not in others).


def kubectl_kustomize(directory: Path) -> list[object]:
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d is not None]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (CI renders without it)")
@pytest.mark.parametrize("tree", sorted(TREES))
def test_same_output_as_kubectl_for_the_feature_trees(tmp_path: Path, tree: str) -> None:
    root = write_tree(tmp_path, TREES[tree]) / ROOTS[tree]

    assert render(root) == kubectl_kustomize(root)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (CI renders without it)")
@pytest.mark.parametrize("rendering", ["base", *OVERLAYS])
def test_same_output_as_kubectl_for_deploy_k8s(rendering: str) -> None:
    directory = BASE if rendering == "base" else K8S / "overlays" / rendering

    ours = render(directory)
    assert ours == kubectl_kustomize(directory)
    # What the command line prints parses back to the same objects.
    assert [d for d in yaml.safe_load_all(dump(ours)) if d is not None] == ours
