"""The chart's job provider switch: off by default; on, RBAC for jobs.batch and the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.chart.test_chart import by_kind, render, validate

ON = {"jobProvider": {"enabled": True, "namespace": "analysis-jobs"}}


def test_default_render_has_no_job_rbac_and_no_token() -> None:
    docs = render(None)
    kinds = {doc["kind"] for doc in docs}
    assert not kinds & {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    pod = by_kind(docs)["Deployment"]["spec"]["template"]["spec"]
    assert "automountServiceAccountToken" not in pod
    assert by_kind(docs)["ServiceAccount"]["automountServiceAccountToken"] is False
    config = yaml.safe_load(by_kind(docs)["ConfigMap"]["data"]["config.yaml"])
    assert "kubernetes" not in config["providers"]


def test_enabled_job_provider_gets_exactly_the_verbs_it_uses() -> None:
    docs = render(ON)
    for doc in docs:
        validate(doc)
    role, binding = by_kind(docs)["Role"], by_kind(docs)["RoleBinding"]
    assert role["metadata"]["namespace"] == "analysis-jobs"
    assert role["rules"] == [
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["create", "get", "list", "watch", "delete"],
        }
    ]
    assert binding["metadata"]["namespace"] == "analysis-jobs"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    service_account = by_kind(docs)["ServiceAccount"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": service_account, "namespace": "delivery"}
    ]
    pod = by_kind(docs)["Deployment"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True


def test_enabled_job_provider_config_is_accepted_by_the_daemon(tmp_path: Path) -> None:
    from analysisd.config import load_settings

    values: dict[str, Any] = {**ON, "config": {"providers": {"limits": {"rate": 5}}}}
    config_yaml = by_kind(render(values))["ConfigMap"]["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(config_yaml)
    settings = load_settings({"config": str(path)}, environ={})
    assert settings.providers["kubernetes"] == {"inCluster": True, "namespace": "analysis-jobs"}
    assert settings.providers["limits"] == {"rate": 5}


def test_rbac_can_be_left_to_the_operator() -> None:
    docs = render({"jobProvider": {"enabled": True, "rbac": {"create": False}}})
    assert not {doc["kind"] for doc in docs} & {"Role", "RoleBinding"}
    config = yaml.safe_load(by_kind(docs)["ConfigMap"]["data"]["config.yaml"])
    assert config["providers"]["kubernetes"] == {"inCluster": True, "namespace": "delivery"}
