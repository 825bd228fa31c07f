"""deploy/k8s/: every manifest is valid against Kubernetes' own schemas (kubernetes-validate, strict: an unknown
or misspelt field fails), KEDA's objects against the fields KEDA documents, and the deployment says what the
README promises: a Deployment and a ScaledObject per queue, workers as PID 1 in exec form with a grace period
that outlasts their shutdown, and listLength sized with the pods' prefetch counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import Kind
from workers.lifecycle.steps import prefetch_multiplier
from workers.pipelines import PIPELINE_KINDS
from workers.runtime.names import LANE_QUEUES
from workers.runtime.queues import work_queues
from workers.settings import Settings

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
KUBERNETES_DEFAULT_GRACE_SECONDS = 30
WORK_QUEUES = set(work_queues(PIPELINE_KINDS))  # every queue a worker consumes, escalation queues included

# The fields of KEDA's keda.sh/v1alpha1 objects these manifests use, as KEDA's documentation gives them (ScaledObject
# spec, the redis and redis-sentinel list scalers, TriggerAuthentication's secretTargetRef). KEDA's CRDs are not
# vendored here; an unknown field fails, as kubernetes-validate's strict mode does for built-in kinds.
_STRING = {"type": "string"}
_COUNT = {"type": "string", "pattern": "^[0-9]+$"}
_LIST_SCALER_COMMON = {"listName": _STRING, "listLength": _COUNT, "activationListLength": _COUNT,
                       "databaseIndex": _COUNT, "enableTLS": _STRING}
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"}, "kind": {"const": "ScaledObject"}, "metadata": {"type": "object"},
            "spec": {
                "type": "object", "required": ["scaleTargetRef", "triggers"], "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {"type": "object", "required": ["name"], "additionalProperties": False,
                                       "properties": {"name": _STRING, "kind": _STRING, "apiVersion": _STRING}},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "triggers": {"type": "array", "minItems": 1, "items": {"oneOf": [
                        {"type": "object", "required": ["type", "metadata"], "additionalProperties": False, "properties": {
                            "type": {"const": "redis"}, "authenticationRef": {"type": "object", "required": ["name"]},
                            "metadata": {"type": "object", "required": ["listName", "listLength"],
                                         "additionalProperties": False,
                                         "properties": {"address": _STRING, "addressFromEnv": _STRING,
                                                        **_LIST_SCALER_COMMON}}}},
                        {"type": "object", "required": ["type", "metadata"], "additionalProperties": False, "properties": {
                            "type": {"const": "redis-sentinel"}, "authenticationRef": {"type": "object", "required": ["name"]},
                            "metadata": {"type": "object", "required": ["listName", "listLength"],
                                         "additionalProperties": False,
                                         "properties": {"addresses": _STRING, "addressesFromEnv": _STRING,
                                                        "sentinelMaster": _STRING, "sentinelMasterFromEnv": _STRING,
                                                        **_LIST_SCALER_COMMON}}}},
                    ]}},
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"}, "kind": {"const": "TriggerAuthentication"},
            "spec": {"type": "object", "additionalProperties": False, "properties": {"secretTargetRef": {
                "type": "array", "items": {"type": "object", "required": ["parameter", "name", "key"],
                                           "additionalProperties": False,
                                           "properties": {"parameter": {"enum": ["username", "password",
                                                                                 "sentinelUsername",
                                                                                 "sentinelPassword"]},
                                                          "name": _STRING, "key": _STRING}}}}},
        },
    },
}


def documents_in(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def manifests(folder: Path = K8S) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, document) for path in sorted(folder.rglob("*.yaml")) for document in documents_in(path)]


def by_kind(kind: str, folder: Path = K8S) -> dict[str, dict[str, Any]]:
    return {document["metadata"]["name"]: document for _, document in manifests(folder) if document["kind"] == kind}


def worker_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def option(command: list[str], name: str, default: str) -> str:
    return command[command.index(name) + 1] if name in command else default


def consumed_queue(command: list[str]) -> str:
    """The queue a worker's command consumes: -Q's, or its kind's lane queue with --lane."""
    queue = option(command, "--queues", "")
    lane = option(command, "--lane", "")
    return LANE_QUEUES[lane][Kind(queue)] if lane else queue


def prefetch_per_pod(deployment: dict[str, Any]) -> int:
    """What one worker pod takes out of its queue before processing it: Celery's prefetch as the worker's
    bootstep sizes it (workers/lifecycle/steps.py) for the Deployment's queue and --concurrency."""
    command = worker_container(deployment)["command"]
    concurrency = int(option(command, "--concurrency", "2"))
    kind = Kind(option(command, "--queues", "documents").removesuffix(".escalate"))
    return prefetch_multiplier(Settings(), [kind], concurrency) * concurrency


def test_every_manifest_is_valid_against_the_kubernetes_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed "
                                              "(pip install -e '.[test]')")
    checked = 0
    for path, document in manifests():
        if document["apiVersion"].startswith(("keda.sh/", "kustomize.config.k8s.io/")):
            continue  # not built-in kinds: KEDA's below, Kustomize's in test_the_kustomizations_list_existing_files
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
        checked += 1
    assert checked >= 10


def test_keda_objects_use_only_fields_keda_documents() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (pip install -e '.[test]')")
    keda = [(path, document) for path, document in manifests() if document["apiVersion"].startswith("keda.sh/")]
    assert len(keda) == 2 * (1 + len(WORK_QUEUES))
    for path, document in keda:
        jsonschema.validate(document, KEDA_SCHEMAS[document["kind"]])


def test_the_kustomizations_list_existing_files() -> None:
    for path in K8S.rglob("kustomization.yaml"):
        config = documents_in(path)[0]
        for entry in config.get("resources", []) + [patch["path"] for patch in config.get("patches", [])]:
            assert (path.parent / entry).exists(), f"{path}: {entry}"


def test_a_worker_deployment_per_queue_as_pid_1_with_a_grace_period_that_outlasts_its_shutdown() -> None:
    deployments = by_kind("Deployment")
    assert {deployment["metadata"]["annotations"]["slimline.dev/queue"] for deployment in deployments.values()} \
        == WORK_QUEUES
    for name, deployment in deployments.items():
        container = worker_container(deployment)
        command = container["command"]
        # Exec form: celery itself is PID 1 and gets the kubelet's SIGTERM (no shell in between).
        assert isinstance(command, list) and command[:4] == ["celery", "-A", "tasks.app", "worker"], name
        assert consumed_queue(command) == deployment["metadata"]["annotations"]["slimline.dev/queue"], name
        assert option(command, "--hostname", "").endswith("@%h"), name  # each pod its own Celery node
        assert not {"sh", "bash", "-c"} & set(command) and "args" not in container, name
        # SIGTERM must stay Celery's warm shutdown: the running batch finishes. A soft shutdown (REMAP_SIGTERM)
        # would not wait for it: celery-batches' requests never reach Celery's active requests.
        assert "REMAP_SIGTERM" not in {variable["name"] for variable in container.get("env", [])}, name
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > KUBERNETES_DEFAULT_GRACE_SECONDS, name
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready", name
        queue = deployment["metadata"]["annotations"]["slimline.dev/queue"]
        assert (option(command, "--tier", "compact") == "escalated") == queue.endswith(".escalate"), name
    assert by_kind("Deployment")["slimline-worker-products"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"] >= 300  # generation: a batch can take minutes


@pytest.mark.parametrize("flavour,trigger", [("redis", "redis"), ("sentinel", "redis-sentinel")])
def test_a_scaled_object_per_queue_sized_with_the_prefetch_counted(flavour: str, trigger: str) -> None:
    deployments = by_kind("Deployment", K8S / "base")
    scaled = by_kind("ScaledObject", K8S / flavour)
    assert {scaled_object["metadata"]["annotations"]["slimline.dev/queue"] for scaled_object in scaled.values()} \
        == WORK_QUEUES
    for name, scaled_object in scaled.items():
        annotations = scaled_object["metadata"]["annotations"]
        target = deployments[scaled_object["spec"]["scaleTargetRef"]["name"]]
        assert target["metadata"]["annotations"]["slimline.dev/queue"] == annotations["slimline.dev/queue"], name
        (scaler,) = scaled_object["spec"]["triggers"]
        assert scaler["type"] == trigger
        metadata = scaler["metadata"]
        assert metadata["listName"] == annotations["slimline.dev/queue"]
        assert "activationListLength" in metadata
        # KEDA sees the list only; each pod holds up to its prefetch outside it: listLength + prefetch = the
        # backlog per pod the manifest aims for.
        prefetch = prefetch_per_pod(target)
        assert int(annotations["slimline.dev/prefetch-per-pod"]) == prefetch, name
        assert int(metadata["listLength"]) == int(annotations["slimline.dev/backlog-per-pod"]) - prefetch > 0, name
    assert scaled["slimline-transactions"]["spec"]["minReplicaCount"] >= 1  # real time: never scaled to zero
