"""The container and Kubernetes files agree with each other and with the code they run.

No Docker engine or cluster is needed: the files are parsed, their commands go through the real
CLI parser, their environment through the real ``Settings``, the policy through the real loader.
``docker-compose config`` and ``kubectl kustomize`` run when installed and are skipped only when
the binary is absent (CI: ``apt-get install -y --no-install-recommends docker-compose``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamproc.cli import build_parser
from streamproc.config import Settings
from streamproc.core.policy import load_policy_text
from streamproc.devkit.harness import missing_tool
from streamproc.devkit.localkafka.broker import KAFKA_VERSION

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "deploy" / "kubernetes"
WORKERS = ("worker-1", "worker-2")

# --------------------------------------------------------------------------- loading


@cache
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


@cache
def k8s(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)


def k8s_one(name: str, kind: str) -> dict[str, Any]:
    (doc,) = [d for d in k8s(name) if d["kind"] == kind]
    return doc


@cache
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = (ln.strip() for ln in text.splitlines())
    return [
        (ln.split(None, 1)[0].upper(), ln.split(None, 1)[1])
        for ln in lines
        if ln and not ln.startswith("#")
    ]


def docker(instruction: str) -> list[str]:
    return [args for ins, args in dockerfile() if ins == instruction]


def docker_env() -> dict[str, str]:
    return dict(kv.split("=", 1) for args in docker("ENV") for kv in args.split())


def env_dict(env: dict[str, Any] | list[str] | None) -> dict[str, str]:
    if isinstance(env, list):
        return dict(e.split("=", 1) for e in env)
    return {k: "" if v is None else str(v) for k, v in (env or {}).items()}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """What the real ``Settings`` makes of this environment (and of nothing else)."""
    for name in [n for n in os.environ if n.startswith("STREAMPROC_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


def parse_cli(argv: list[str]) -> Any:
    """Parse with the real ``streamproc`` parser; an unknown command or flag fails the test."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`streamproc {shlex.join(argv)}` is refused by the CLI parser")


def streamproc_services() -> dict[str, dict[str, Any]]:
    """The compose services that run the Dockerfile's image."""
    out = {}
    for name, svc in compose()["services"].items():
        build = svc.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        file = COMPOSE.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        assert file.resolve() == DOCKERFILE, name
        out[name] = svc
    return out


def command_of(svc: dict[str, Any]) -> list[str]:
    cmd = svc.get("command")
    if cmd is None:
        return json.loads(docker("CMD")[-1])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def worker_container() -> dict[str, Any]:
    deployment = k8s_one("deployment-worker.yaml", "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def k8s_env() -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in worker_container()["env"] if "value" in e}


def container_port(port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    ports = worker_container()["ports"]
    if isinstance(port, int):
        assert port in [p["containerPort"] for p in ports]
        return port
    (match,) = [p["containerPort"] for p in ports if p.get("name") == port]
    return int(match)


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_runs_streamproc_as_a_non_root_user_listening_on_all_interfaces() -> None:
    # The base is an argument (CI builds one from Debian's packages: deploy/image/build.sh);
    # by default the official slim Python image.
    assert docker("FROM") == ["${BASE}"]
    assert docker("ARG") == ["BASE=python:3.11-slim"]
    user = docker("USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    assert json.loads(docker("ENTRYPOINT")[-1]) == ["streamproc"]
    assert parse_cli(json.loads(docker("CMD")[-1])).command == "worker"
    env = docker_env()
    assert env["STREAMPROC_WEB_HOST"] == "0.0.0.0"
    assert docker("EXPOSE") == [env["STREAMPROC_WEB_PORT"]] == ["6066"]


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    ignored = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    sources = [s for args in docker("COPY") if "--from" not in args for s in args.split()[:-1]]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not any(fnmatch.fnmatch(src, pat) for pat in ignored), src


# --------------------------------------------------------------------------- compose


def test_compose_kafka_is_a_single_kraft_node_of_the_tested_version() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    env = env_dict(kafka["environment"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "CONTROLLER://" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "/opt/kafka/bin/" in " ".join(kafka["healthcheck"]["test"])
    # Every client reaches the broker at the address it advertises.
    advertised = env["KAFKA_ADVERTISED_LISTENERS"].removeprefix("PLAINTEXT://")
    for name, svc in streamproc_services().items():
        assert env_dict(svc["environment"])["STREAMPROC_BROKER"] == advertised, name


def test_compose_workers_wait_for_kafka_and_are_health_checked_on_their_web_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = streamproc_services()
    assert set(WORKERS) <= set(services)
    for name in WORKERS:
        svc = services[name]
        assert parse_cli(command_of(svc)).command == "worker"
        assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
        env = env_dict(svc["environment"])
        assert env["STREAMPROC_WEB_HOST"] == "0.0.0.0"
        port = settings_from(env, monkeypatch).web_port
        assert f"http://127.0.0.1:{port}/" in " ".join(svc["healthcheck"]["test"])


def test_compose_shares_one_registry_volume_between_all_streamproc_containers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    volumes = set(compose()["volumes"])
    sources = set()
    for name, svc in streamproc_services().items():
        registry = str(settings_from(env_dict(svc["environment"]), monkeypatch).registry_dir)
        (source,) = [v.split(":")[0] for v in svc["volumes"] if v.split(":")[1] == registry]
        assert source in volumes, f"{name}: the registry must be a named volume"
        sources.add(source)
    assert len(sources) == 1


def test_compose_publishes_only_worker_1_and_only_on_localhost() -> None:
    published = {n: s["ports"] for n, s in compose()["services"].items() if s.get("ports")}
    assert list(published) == ["worker-1"]
    env = env_dict(compose()["services"]["worker-1"]["environment"])
    assert published["worker-1"] == [f"127.0.0.1:6066:{env['STREAMPROC_WEB_PORT']}"]


def test_compose_simulator_uses_real_flags_and_waits_for_healthy_workers() -> None:
    sim = streamproc_services()["simulator"]
    args = parse_cli(command_of(sim))
    assert args.command == "simulate"
    assert args.rate <= 1000  # what one worker keeps up with for one model (README)
    assert {w: sim["depends_on"][w]["condition"] for w in WORKERS} == dict.fromkeys(
        WORKERS, "service_healthy"
    )
    assert sim["healthcheck"] == {"disable": True}  # it serves no web port


def test_every_command_in_compose_parses() -> None:
    for svc in streamproc_services().values():
        parse_cli(command_of(svc))


def docker_compose() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    cmd = docker_compose()
    if cmd is None:
        missing_tool("no docker-compose: apt-get install -y --no-install-recommends docker-compose")
    run = subprocess.run(
        [*cmd, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr


# --------------------------------------------------------------------------- Kubernetes


def test_k8s_probes_service_and_container_use_the_configured_web_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = worker_container()
    web_port = settings_from(k8s_env(), monkeypatch).web_port
    assert k8s_env()["STREAMPROC_WEB_HOST"] == "0.0.0.0"
    assert [p["containerPort"] for p in container["ports"]] == [web_port]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container_port(container[probe]["httpGet"]["port"]) == web_port, probe
    service = k8s_one("service.yaml", "Service")
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert container_port(port["targetPort"]) == web_port
    assert service["metadata"]["annotations"]["prometheus.io/port"] == str(web_port)
    template = k8s_one("deployment-worker.yaml", "Deployment")["spec"]["template"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()


def test_k8s_startup_probe_holds_the_liveness_probe_back_with_no_idle_flags() -> None:
    container = worker_container()
    startup, liveness = container["startupProbe"], container["livenessProbe"]
    for probe in (startup, container["readinessProbe"], liveness):
        assert probe["httpGet"]["path"] == "/health"  # the path the worker serves (web.py)
    # The startup probe allows longer than the liveness probe would, or it would add nothing.
    allowed = startup["periodSeconds"] * startup["failureThreshold"]
    assert allowed > liveness["periodSeconds"] * liveness["failureThreshold"]
    assert allowed >= 120
    # With a startup probe the liveness probe starts after it succeeds: a delay does nothing.
    assert "initialDelaySeconds" not in liveness


def test_servicemonitor_scrapes_the_service_port_as_the_job_the_alert_rules_select() -> None:
    monitoring = K8S / "monitoring"
    (monitor,) = [d for d in yaml.safe_load_all((monitoring / "servicemonitor.yaml").read_text())]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    service = k8s_one("service.yaml", "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert endpoint["path"] == service["metadata"]["annotations"]["prometheus.io/path"]
    assert parse_duration(endpoint["scrapeTimeout"]) < parse_duration(endpoint["interval"])
    # The Operator names the job after the Service (no jobLabel set); the rules select that job.
    assert "jobLabel" not in monitor["spec"]
    rules = (ROOT / "deploy" / "prometheus" / "streamproc-alerts.yaml").read_text()
    assert f'up{{job="{service["metadata"]["name"]}"}}' in rules
    kustomization = yaml.safe_load((monitoring / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["servicemonitor.yaml"]


def parse_duration(text: str) -> int:
    """Seconds of a Prometheus duration such as ``30s`` or ``1m``."""
    match = re.fullmatch(r"(\d+)([smh])", text)
    assert match, text
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def test_k8s_worker_runs_a_real_command_non_root_with_memory_bounds() -> None:
    deployment = k8s_one("deployment-worker.yaml", "Deployment")
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = worker_container()
    assert parse_cli(container["args"]).command == "worker"
    resources = container["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"]


def test_keda_never_scales_past_the_partition_count(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(k8s_env(), monkeypatch)
    scaled = k8s_one("keda-scaledobject.yaml", "ScaledObject")
    spec = scaled["spec"]
    assert (
        spec["scaleTargetRef"]["name"]
        == k8s_one("deployment-worker.yaml", "Deployment")["metadata"]["name"]
    )
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= settings.partitions
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert str(meta["allowIdleConsumers"]).lower() == "false"
    assert meta["bootstrapServers"] == settings.broker
    # The faust app id, which is the consumer group: streamproc.service.app.create_app.
    assert meta["consumerGroup"] == settings.topic_prefix + settings.app_id
    assert meta["topic"] == settings.topic("predictions")
    assert int(meta["lagThreshold"]) > 0


def test_policy_configmap_is_mounted_where_streamproc_policy_points_and_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configmap = k8s_one("configmap-policy.yaml", "ConfigMap")
    pod = k8s_one("deployment-worker.yaml", "Deployment")["spec"]["template"]["spec"]
    name = configmap["metadata"]["name"]
    (volume,) = [v for v in pod["volumes"] if v.get("configMap", {}).get("name") == name]
    (mount,) = [m for m in worker_container()["volumeMounts"] if m["name"] == volume["name"]]
    policy = Path(settings_from(k8s_env(), monkeypatch).policy_file or "")
    assert policy.parent == Path(mount["mountPath"])
    book = load_policy_text(configmap["data"][policy.name], origin="configmap-policy.yaml")
    assert book.overrides, "the example shows per-model overrides"
    assert book.default.error is not None and book.default.rollback is not None


def test_k8s_registry_is_a_shared_volume_at_the_registry_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = settings_from(k8s_env(), monkeypatch).registry_dir
    pod = k8s_one("deployment-worker.yaml", "Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in worker_container()["volumeMounts"] if Path(m["mountPath"]) == registry]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    pvc = k8s_one("deployment-worker.yaml", "PersistentVolumeClaim")
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]


def test_kafka_secret_example_matches_what_the_worker_and_keda_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = k8s_one("secret-kafka.example.yaml", "Secret")
    name = secret["metadata"]["name"]
    keys = set(secret["stringData"])
    security = settings_from({**k8s_env(), **secret["stringData"]}, monkeypatch).security
    assert security.security_protocol == "SASL_SSL"
    assert security.username == secret["stringData"]["STREAMPROC_SASL_USERNAME"]
    assert security.password == secret["stringData"]["STREAMPROC_SASL_PASSWORD"]
    (ref,) = [e["secretRef"] for e in worker_container()["envFrom"] if "secretRef" in e]
    assert ref == {"name": name, "optional": True}  # plaintext clusters run without it
    auth = k8s_one("secret-kafka.example.yaml", "TriggerAuthentication")
    refs = auth["spec"]["secretTargetRef"]
    assert {r["parameter"] for r in refs} == {"username", "password"}
    assert all(r["name"] == name and r["key"] in keys for r in refs)


def test_kustomization_lists_every_manifest_but_the_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    manifests = {p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"} - {
        p.name for p in K8S.glob("*.example.yaml")
    }
    assert listed == manifests


def test_kubectl_kustomize_builds_the_manifests() -> None:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    run = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(run.stdout) if d}
    assert kinds == {"ConfigMap", "Deployment", "PersistentVolumeClaim", "Service", "ScaledObject"}


# --------------------------------------------------------------------------- all files


def test_every_streamproc_setting_used_is_one_the_code_reads() -> None:
    name = re.compile(r"\bSTREAMPROC_[A-Z0-9_]*[A-Z0-9]\b")
    code = [ROOT / "streamproc" / "config.py", ROOT / "streamproc" / "security.py"]
    known = {n for f in code for n in name.findall(f.read_text())}
    files = [COMPOSE, DOCKERFILE, *K8S.glob("**/*.yaml")]
    used = {n for f in files for n in name.findall(f.read_text())}
    assert used - known == set()
