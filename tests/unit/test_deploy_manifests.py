"""The production manifests (deploy/k8s) and the local cluster's Compose file, checked offline: every Kubernetes
object against the API's JSON schemas (strict: unknown fields fail), and against the code they deploy — queues,
probe paths, settings names, selectors, references between objects."""

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as k8s

from api.main import app
from shared.config import Settings
from worker.queues import Queue

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBE_VERSION = "1.30.0"
# Environment variables read by libraries rather than by our Settings.
LIBRARY_ENV = re.compile(r"^(AWS_\w+|DOCKER_HOST|DOCKER_TLS_VERIFY|DOCKER_CERT_PATH|PROMETHEUS_MULTIPROC_DIR|POD_NAME|"
                         r"FLOWER_\w+)$")


def objects() -> list[dict[str, Any]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [o for o in objects() if o["kind"] == kind]


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in objects()
            if o["kind"] in ("Deployment", "Job")]


def settings_env_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("obj", objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_objects_match_the_kubernetes_schemas(obj: dict[str, Any]) -> None:
    k8s.validate(obj, KUBE_VERSION, strict=True)


def test_the_schema_check_rejects_a_broken_object() -> None:
    deployment = copy.deepcopy(by_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # a typo of "resources"
    with pytest.raises(k8s.ValidationError):
        k8s.validate(deployment, KUBE_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_one_worker_deployment_per_queue_and_exactly_one_beat() -> None:
    queues = []
    for name, spec in pod_specs():
        cmd = spec["containers"][0]["command"]
        if "worker" in cmd and "celery" in cmd[0]:
            queues.append(cmd[cmd.index("-Q") + 1])
            assert name == f"assistants-worker-{queues[-1]}"
    assert sorted(queues) == sorted(q.value for q in Queue)
    beats = [o for o in by_kind("Deployment") if "beat" in o["spec"]["template"]["spec"]["containers"][0]["command"]]
    assert len(beats) == 1 and beats[0]["spec"]["replicas"] == 1
    assert beats[0]["spec"]["strategy"]["type"] == "Recreate"
    assert not [h for h in by_kind("HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] ==
                beats[0]["metadata"]["name"]]


def test_every_container_has_resources_and_the_api_probes_exist() -> None:
    routes = {getattr(r, "path", None) for r in app.routes}
    for name, spec in pod_specs():
        for c in spec["containers"]:
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], name
            assert c["resources"]["limits"]["memory"], name
            for probe in ("readinessProbe", "livenessProbe"):
                path = c.get(probe, {}).get("httpGet", {}).get("path")
                if path and name == "assistants-api":
                    assert path in routes, f"{name} {probe} {path} is not a route"
    api = next(s for n, s in pod_specs() if n == "assistants-api")["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_selectors_and_references_resolve() -> None:
    deployments = {o["metadata"]["name"]: o for o in by_kind("Deployment")}
    pod_labels = [o["spec"]["template"]["metadata"]["labels"] for o in deployments.values()]
    for d in deployments.values():
        assert d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    for pdb in by_kind("PodDisruptionBudget"):
        assert any(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items() for labels in pod_labels)
    for svc in by_kind("Service"):
        assert any(svc["spec"]["selector"].items() <= labels.items() for labels in pod_labels)
    for hpa in by_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    config_maps = {o["metadata"]["name"] for o in by_kind("ConfigMap")}
    secrets = {o["metadata"]["name"] for o in by_kind("Secret")}
    for name, spec in pod_specs():
        for c in spec["containers"]:
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, name
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, name
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, name


def test_configured_names_are_settings_the_code_reads() -> None:
    known = settings_env_names()
    names = set()
    for o in by_kind("ConfigMap"):
        names |= set(o["data"])
    for o in by_kind("Secret"):
        if o["metadata"]["name"] == "assistants-secrets":
            names |= set(o["stringData"])
    for _, spec in pod_specs():
        for c in spec["containers"]:
            names |= {e["name"] for e in c.get("env", [])}
    unknown = {n for n in names if n not in known and not LIBRARY_ENV.match(n)}
    assert not unknown, f"not settings of shared/config.py: {unknown}"


def test_compose_file_services_and_settings() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "docker-compose.yml").read_text())
    services = compose["services"]
    worker_queues = sorted(name.removeprefix("worker-") for name in services if name.startswith("worker-"))
    assert worker_queues == sorted(q.value for q in Queue)
    for name in worker_queues:
        command = " ".join(services[f"worker-{name}"]["command"])
        assert f"-Q {name}" in command
    assert "deploy" not in services["beat"]  # never replicated
    known = settings_env_names()
    for name, svc in services.items():
        env = svc.get("environment") or {}
        unknown = {k for k in env if k not in known and not LIBRARY_ENV.match(k)
                   and not (name == "postgres" and k.startswith("POSTGRES_")) and k != "RUNS_CONCURRENCY"}
        assert not unknown, f"{name}: {unknown}"
    # Only the code worker talks to Docker, and no service but it mounts the socket.
    socket_users = [n for n, s in services.items() if any("docker.sock" in v for v in s.get("volumes", []))]
    assert socket_users == ["worker-code"]


def test_compose_healthchecks_are_cheap() -> None:
    """Docker execs a healthcheck in its container every interval for as long as it runs (~50 ms of CPU each
    before the check itself): none starts a Python interpreter, none runs more often than every 5 s."""
    services = yaml.safe_load((ROOT / "deploy" / "compose" / "docker-compose.yml").read_text())["services"]
    checks = {name: s["healthcheck"] for name, s in services.items() if "healthcheck" in s}
    assert {"postgres", "redis", "api"} <= set(checks)
    for name, check in checks.items():
        assert "python" not in " ".join(check["test"]), name
        assert int(check["interval"].removesuffix("s")) >= 5, name
