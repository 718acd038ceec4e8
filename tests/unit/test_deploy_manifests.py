"""deploy/k8s: every manifest valid against the Kubernetes API schemas (offline), and the
KEDA autoscaling held to the stages' code: consumer groups, topics, partitions."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from schemas.topics import Topics
from services.common.runtime import AUTO_OFFSET_RESET
from services.stages import STAGES, declaration

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# The oldest Kubernetes the manifests are meant for (deploy/README.md); the package ships
# the schemas of several releases and validates against the newest not after this one.
KUBERNETES = "1.30"
KEDA_API = "keda.sh/v1alpha1"
# Triggers whose metric is the pods' own use of a resource (against their requests).
RESOURCE_TRIGGERS = {"cpu", "memory"}
# KEDA's kafka trigger names SASL mechanisms its own way.
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}


@dataclass(frozen=True)
class Manifest:
    """One document of a manifest file."""

    path: Path
    doc: dict[str, Any]

    @property
    def id(self) -> str:
        """Where it is, for test ids and messages."""
        name = self.doc.get("metadata", {}).get("name")
        return f"{self.path.relative_to(K8S)}:{self.doc.get('kind')}/{name}"


def kustomization(directory: Path) -> dict[str, Any]:
    """A folder's kustomization (or component)."""
    found: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return found


def listed(directory: Path) -> Iterator[Path]:
    """The manifest files a kustomization lists, and those of the folders it lists, and of
    the components in its folder (applied or not: all of them are shipped)."""
    for entry in kustomization(directory).get("resources", []):
        path = (directory / entry).resolve()
        yield from listed(path) if path.is_dir() else [path]
    for child in sorted(p for p in directory.iterdir() if (p / "kustomization.yaml").exists()):
        if kustomization(child).get("kind") == "Component":
            yield from listed(child)


@cache
def manifests() -> tuple[Manifest, ...]:
    """Every document of every manifest shipped in deploy/k8s."""
    return tuple(
        Manifest(path, doc)
        for path in listed(K8S)
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    )


def of_kind(kind: str) -> list[dict[str, Any]]:
    """The documents of one kind."""
    return [m.doc for m in manifests() if m.doc.get("kind") == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    """The one document of a kind with that name."""
    found = [doc for doc in of_kind(kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name!r}"
    return found[0]


def config() -> dict[str, str]:
    """The ConfigMap every container reads."""
    data: dict[str, str] = named("ConfigMap", "siaga-config")["data"]
    return data


def secret_keys() -> set[str]:
    """The keys of the Secret template."""
    return set(named("Secret", "siaga-secrets")["stringData"])


def partitions() -> int:
    """The partitions of every topic `siaga init` creates."""
    return int(config()["SIAGA_KAFKA_PARTITIONS"])


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The one container of a Siaga pod (KEDA reads the environment of the first)."""
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


def environment(deployment: dict[str, Any]) -> set[str]:
    """The variables a Deployment's container gets, from its sources and its own env."""
    names = {var["name"] for var in container(deployment).get("env", [])}
    for source in container(deployment).get("envFrom", []):
        if "configMapRef" in source:
            names |= set(named("ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            names |= set(named("Secret", source["secretRef"]["name"])["stringData"])
    return names


def deployment_of(stage: str) -> dict[str, Any]:
    """The Deployment running `siaga run STAGE`."""
    found = [d for d in of_kind("Deployment") if container(d).get("args") == ["run", stage]]
    assert len(found) == 1, f"{len(found)} Deployments run stage {stage!r}"
    return found[0]


def scaled_object_of(deployment: dict[str, Any]) -> dict[str, Any]:
    """The ScaledObject that sizes a Deployment."""
    name = deployment["metadata"]["name"]
    found = [s for s in of_kind("ScaledObject") if s["spec"]["scaleTargetRef"]["name"] == name]
    assert len(found) == 1, f"{len(found)} ScaledObjects scale Deployment {name}"
    return found[0]


def kafka_triggers(scaled: dict[str, Any]) -> list[dict[str, str]]:
    """The metadata of a ScaledObject's kafka triggers."""
    return [t["metadata"] for t in scaled["spec"]["triggers"] if t["type"] == "kafka"]


# ---------------------------------------------------------------- the files


@pytest.mark.parametrize(
    "directory",
    [K8S, *sorted(p.parent for p in K8S.glob("*/kustomization.yaml"))],
    ids=lambda d: str(d.relative_to(K8S.parent)),
)
def test_each_kustomization_lists_every_manifest_of_its_folder(directory: Path) -> None:
    on_disk = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    entries = kustomization(directory).get("resources", [])
    files = [e for e in entries if not (directory / e).is_dir()]
    assert sorted(files) == sorted(on_disk)


def test_the_keda_component_is_there_to_be_turned_on_in_the_base() -> None:
    assert kustomization(K8S / "keda")["kind"] == "Component"
    assert "keda" not in kustomization(K8S).get("components", []), "KEDA must stay optional"
    # deploy/README.md says: uncomment these lines.
    assert "# components:\n#   - keda\n" in (K8S / "kustomization.yaml").read_text()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to connect anywhere fails the test: validation must be offline."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"a connection was attempted to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("manifest", manifests(), ids=lambda m: m.id)
def test_each_manifest_is_valid(manifest: Manifest) -> None:
    if manifest.doc["apiVersion"] == KEDA_API:
        # Custom resources: kubernetes-validate has no schema for them.
        check_keda_shape(manifest.doc)
        return
    try:
        kubernetes_validate.validate(manifest.doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = ".".join(str(p) for p in e.path)
        pytest.fail(f"{manifest.id}: {where}: {e.message}")


SCALED_OBJECT_SPEC = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
}  # fmt: skip
TRIGGER = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
TRIGGER_AUTH_SPEC = {"secretTargetRef", "env", "podIdentity", "configMapTargetRef"}


def check_keda_shape(doc: dict[str, Any]) -> None:
    """What KEDA requires of its objects, and no field it does not know at the top."""
    meta, spec = doc["metadata"], doc["spec"]
    assert isinstance(meta["name"], str) and meta["namespace"] == kustomization(K8S)["namespace"]
    if doc["kind"] == "TriggerAuthentication":
        assert set(spec) and set(spec) <= TRIGGER_AUTH_SPEC, sorted(spec)
        for ref in spec.get("secretTargetRef", []):
            assert set(ref) == {"parameter", "name", "key"}, ref
        for ref in spec.get("env", []):
            assert {"parameter", "name"} <= set(ref) <= {"parameter", "name", "containerName"}
        return
    assert doc["kind"] == "ScaledObject", doc["kind"]
    assert set(spec) <= SCALED_OBJECT_SPEC, sorted(set(spec) - SCALED_OBJECT_SPEC)
    target = spec["scaleTargetRef"]
    assert isinstance(target["name"], str)
    assert target.get("kind", "Deployment") == "Deployment"
    assert target.get("apiVersion", "apps/v1") == "apps/v1"
    for key in ("minReplicaCount", "maxReplicaCount"):
        assert type(spec[key]) is int, f"{key} must be a whole number"
    assert spec["triggers"], "a ScaledObject needs a trigger"
    for trigger in spec["triggers"]:
        assert set(trigger) <= TRIGGER, sorted(set(trigger) - TRIGGER)
        assert isinstance(trigger["type"], str)
        # KEDA reads trigger metadata as strings only: `"20"`, not `20` or `true`.
        assert all(isinstance(v, str) for v in trigger["metadata"].values()), trigger


# ---------------------------------------------------------------- pods


@pytest.mark.parametrize(
    "workload",
    [m for m in manifests() if m.doc["kind"] in ("Deployment", "Job")],
    ids=lambda m: m.id,
)
def test_each_pod_is_hardened_and_bounded(workload: Manifest) -> None:
    pod = workload.doc["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"]:
        context = c["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(c["resources"]["requests"])
        assert {"cpu", "memory"} <= set(c["resources"]["limits"])
        if workload.doc["kind"] == "Deployment":
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


def effective_env(deployment: dict[str, Any]) -> dict[str, str]:
    """The values of the container's variables: its own env over its sources'."""
    values: dict[str, str] = {}
    for source in container(deployment).get("envFrom", []):
        if "configMapRef" in source:
            values |= named("ConfigMap", source["configMapRef"]["name"])["data"]
    values |= {v["name"]: v["value"] for v in container(deployment).get("env", []) if "value" in v}
    return values


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_each_server_of_a_pod_has_a_port_of_its_own_and_declared(
    deployment: dict[str, Any],
) -> None:
    # The gateway runs two HTTP servers (its API, and the stage's probes and metrics).
    env = effective_env(deployment)
    ports = [int(v) for k, v in env.items() if k.startswith("SIAGA_") and k.endswith("_PORT")]
    assert len(ports) == len(set(ports)), f"two servers on one port: {sorted(ports)}"
    declared = {p["containerPort"] for p in container(deployment)["ports"]}
    assert set(ports) <= declared


def test_the_gateway_service_forwards_port_80_to_the_gateways_http_port() -> None:
    service = named("Service", "siaga-gateway")
    gateway = deployment_of("gateway")
    assert service["spec"]["selector"] == gateway["spec"]["selector"]["matchLabels"]
    (port,) = service["spec"]["ports"]
    (http,) = [p for p in container(gateway)["ports"] if p["name"] == port["targetPort"]]
    assert port["port"] == 80 and http["containerPort"] == 8080
    env = {var["name"]: var.get("value") for var in container(gateway).get("env", [])}
    assert env["SIAGA_GATEWAY_HOST"] == "0.0.0.0"
    assert env["SIAGA_GATEWAY_PORT"] == str(http["containerPort"])
    for key in ("SIAGA_WHATSAPP_VERIFY_TOKEN", "SIAGA_WHATSAPP_APP_SECRET", "SIAGA_SMS_AUTH_TOKEN"):
        assert key in environment(gateway)


# ---------------------------------------------------------------- autoscaling


def test_every_deployment_is_sized_by_one_scaled_object_and_every_target_exists() -> None:
    # The KEDA component takes `replicas` off every Deployment: each needs a ScaledObject.
    deployments = {d["metadata"]["name"] for d in of_kind("Deployment")}
    targets = [s["spec"]["scaleTargetRef"]["name"] for s in of_kind("ScaledObject")]
    assert sorted(targets) == sorted(deployments)


@pytest.mark.parametrize("scaled", of_kind("ScaledObject"), ids=lambda s: s["metadata"]["name"])
def test_replicas_never_reach_zero_nor_pass_the_partitions(scaled: dict[str, Any]) -> None:
    spec = scaled["spec"]
    assert spec.get("idleReplicaCount") is None, "idle means zero replicas"
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions()


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_scales_on_the_lag_of_exactly_what_it_reads(stage: str) -> None:
    topics = Topics(prefix=config()["SIAGA_TOPIC_PREFIX"])
    scaled = scaled_object_of(deployment_of(stage))
    triggers = kafka_triggers(scaled)
    if not triggers:
        # A stage whose work is not its lag (the gateway's HTTP) scales on its pods' use.
        kinds = {t["type"] for t in scaled["spec"]["triggers"]}
        assert kinds <= RESOURCE_TRIGGERS, f"{stage}: neither lag nor resource: {kinds}"
        return
    group = declaration(stage).group_id(topics)
    wanted = [(group, topic) for topic in declaration(stage).subscriptions(topics)]
    found = [(t["consumerGroup"], t["topic"]) for t in triggers]
    assert sorted(found) == sorted(wanted), f"{stage}: triggers differ from the code"
    for trigger in triggers:
        assert trigger["offsetResetPolicy"] == AUTO_OFFSET_RESET
        assert int(trigger["lagThreshold"]) >= 1


@pytest.mark.parametrize(
    "scaled",
    [s for s in of_kind("ScaledObject") if kafka_triggers(s)],
    ids=lambda s: s["metadata"]["name"],
)
def test_lag_triggers_reach_the_brokers_as_the_stages_do(scaled: dict[str, Any]) -> None:
    settings, target = config(), named("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    # Only a stage's lag is known to the code; anything else would go unchecked.
    command, stage = container(target)["args"][:2]
    assert command == "run" and stage in STAGES, "lag triggers on a Deployment of no stage"
    protocol = settings["SIAGA_KAFKA_SECURITY_PROTOCOL"]
    for trigger in scaled["spec"]["triggers"]:
        meta = trigger["metadata"]
        if "bootstrapServersFromEnv" in meta:
            assert meta["bootstrapServersFromEnv"] in environment(target)
        else:
            assert meta["bootstrapServers"] == settings["SIAGA_KAFKA_BOOTSTRAP"]
        assert (meta.get("tls") == "enable") == protocol.endswith("SSL")
        sasl = KEDA_SASL[settings["SIAGA_KAFKA_SASL_MECHANISM"]]
        assert meta.get("sasl") == (sasl if protocol.startswith("SASL") else None)
        if "sasl" in meta:
            check_credentials(trigger["authenticationRef"]["name"], target)


def check_credentials(name: str, target: dict[str, Any]) -> None:
    """The TriggerAuthentication gives a user and password, from what exists."""
    spec = named("TriggerAuthentication", name)["spec"]
    given = set()
    for ref in spec.get("secretTargetRef", []):
        assert ref["key"] in named("Secret", ref["name"])["stringData"], ref
        given.add(ref["parameter"])
    for ref in spec.get("env", []):
        assert ref["name"] in environment(target), ref
        given.add(ref["parameter"])
    assert {"username", "password"} <= given


@pytest.mark.parametrize(
    "scaled",
    [s for s in of_kind("ScaledObject") if not kafka_triggers(s)],
    ids=lambda s: s["metadata"]["name"],
)
def test_resource_triggers_have_requests_to_measure_against(scaled: dict[str, Any]) -> None:
    target = named("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] in RESOURCE_TRIGGERS
        assert trigger["type"] in container(target)["resources"]["requests"]
        assert trigger["metricType"] == "Utilization"
        assert 1 <= int(trigger["metadata"]["value"]) <= 100


# ---------------------------------------------------------------- as kubectl builds them


def build(directory: Path) -> list[dict[str, Any]]:
    """What `kubectl apply -k` would apply."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomize build is not checked")
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc is not None]


@pytest.mark.parametrize("keda", [False, True], ids=["plain", "with-keda"])
def test_kubectl_builds_a_valid_set_with_keda_sizing_the_deployments(
    keda: bool, tmp_path: Path
) -> None:
    copy = shutil.copytree(K8S, tmp_path / "k8s")
    if keda:
        text = (copy / "kustomization.yaml").read_text()
        (copy / "kustomization.yaml").write_text(
            text.replace("# components:\n#   - keda\n", "components:\n  - keda\n")
        )
    docs = build(copy)
    kinds = [d["kind"] for d in docs]
    assert kinds.count("ScaledObject") == (kinds.count("Deployment") if keda else 0)
    for doc in docs:
        assert doc["metadata"].get("namespace", "siaga") == "siaga"
        if doc["kind"] == "Deployment":
            assert ("replicas" in doc["spec"]) is not keda, doc["metadata"]["name"]
        if doc["apiVersion"] != KEDA_API:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
