"""tests/rigs/kube_api.py is the Kubernetes API as far as Jobs go: kubectl, a second real
client (client-go), talks to it over TLS and gets what an apiserver answers; and the
job provider works against it over TLS with the CA from the kubeconfig."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysisd.engine.dispatch import bind_metrics, take_measurement
from analysisd.engine.measure import NoSecrets, prepare_run
from analysisd.spec import AnalysisRunSpec
from providers.registry import ProviderRegistry
from tests.rigs.kube_api import KubeAPI
from tests.rigs.peers import peer_missing

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"
JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "smoke", "labels": {"app": "smoke"}},
    "spec": {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "curl", "image": "curlimages/curl:8.8.0"}],
            }
        },
    },
}


class Kubectl:
    def __init__(self, kubeconfig: Path, folder: Path) -> None:
        self.kubeconfig = kubeconfig
        self.folder = folder

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            "kubectl",
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.folder / "cache"),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    def manifest(self, name: str, job: dict[str, Any]) -> str:
        path = self.folder / name
        path.write_text(yaml.safe_dump(job))
        return str(path)


@pytest.fixture
def kubectl_binary() -> str:
    found = shutil.which("kubectl")
    if found is None:
        peer_missing("kubectl is not installed (Debian's kubernetes-client)")
    return found


async def test_kubectl_creates_gets_lists_and_deletes_jobs(
    kubectl_binary: str, tmp_path: Path
) -> None:
    async with KubeAPI(token="kubectl-token", tls=True) as kube:
        kube.outcome = lambda _job: (None, 0.0)
        kubectl = Kubectl(kube.kubeconfig(tmp_path / "kc", namespace=NAMESPACE), tmp_path)
        path = kubectl.manifest("job.yaml", JOB)

        assert await kubectl("create", "-f", path, "--validate=false") == (
            0,
            "job.batch/smoke created\n",
            "",
        )
        code, _, err = await kubectl("create", "-f", path, "--validate=false")
        assert code == 1
        assert err == (
            f'Error from server (AlreadyExists): error when creating "{path}": '
            'jobs.batch "smoke" already exists\n'
        )

        code, out, _ = await kubectl("get", "job", "smoke", "-o", "yaml")
        assert code == 0
        got = yaml.safe_load(out)
        meta = got["metadata"]
        assert meta["namespace"] == NAMESPACE and meta["uid"] and meta["resourceVersion"]
        assert (
            got["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"]
            == meta["uid"]
        )
        assert got["status"]["active"] == 1

        code, out, _ = await kubectl("get", "jobs", "-l", "app=smoke", "-o", "name")
        assert (code, out) == (0, "job.batch/smoke\n")
        code, out, err = await kubectl("get", "jobs", "-l", "app in (other)")
        assert (code, out, err) == (0, "", f"No resources found in {NAMESPACE} namespace.\n")

        assert await kubectl("delete", "job", "smoke") == (0, 'job.batch "smoke" deleted\n', "")
        assert kube.deletions == [(NAMESPACE, "smoke", "Background")]  # kubectl's policy
        code, _, err = await kubectl("get", "job", "smoke")
        assert (code, err) == (1, 'Error from server (NotFound): jobs.batch "smoke" not found\n')


async def test_kubectl_sees_the_apiservers_refusals(kubectl_binary: str, tmp_path: Path) -> None:
    async with KubeAPI(token="kubectl-token", tls=True) as kube:
        wrong = Kubectl(kube.kubeconfig(tmp_path / "wrong", token="nope"), tmp_path)
        code, _, err = await wrong("get", "jobs", "-n", NAMESPACE)
        assert (code, err) == (1, "error: You must be logged in to the server (Unauthorized)\n")

        kubectl = Kubectl(kube.kubeconfig(tmp_path / "kc", namespace=NAMESPACE), tmp_path)
        bad = {**JOB, "metadata": {"name": "bad"}}
        bad["spec"] = {
            **JOB["spec"],
            "template": {"spec": {"containers": JOB["spec"]["template"]["spec"]["containers"]}},
        }
        code, _, err = await kubectl(
            "create", "-f", kubectl.manifest("bad.yaml", bad), "--validate=false"
        )
        assert code == 1
        assert (
            'The Job "bad" is invalid: spec.template.spec.restartPolicy: Required value: '
            'valid values: "OnFailure", "Never"'
        ) in err

        kube.forbidden = {"list"}
        code, _, err = await kubectl("get", "jobs")
        assert (code, err) == (
            1,
            "Error from server (Forbidden): jobs.batch is forbidden: User "
            '"system:serviceaccount:analysisd:analysisd" cannot list resource "jobs" in API '
            f'group "batch" in the namespace "{NAMESPACE}"\n',
        )


async def test_the_job_provider_speaks_tls_with_the_kubeconfigs_ca(tmp_path: Path) -> None:
    async with KubeAPI(token="sa-token", tls=True) as kube:
        kubeconfig = kube.kubeconfig(tmp_path / "kc", namespace=NAMESPACE)
        settings = {"kubernetes": {"kubeconfig": str(kubeconfig)}}
        spec = AnalysisRunSpec.model_validate(
            {"metrics": [{"name": "smoke", "provider": {"job": {"spec": JOB["spec"]}}}]}
        )
        prepared = prepare_run(spec, NoSecrets())
        async with ProviderRegistry(secrets=lambda _n, _k: None, settings=settings) as registry:
            bind_metrics(registry, prepared)
            measurement = await take_measurement(
                registry,
                prepared,
                prepared.metrics[0],
                clock=lambda: datetime.now(UTC),
                started=datetime.now(UTC),
            )
        assert kube.url.startswith("https://")
        assert (measurement.phase, measurement.message) == ("Successful", "")
        ((namespace, _name),) = kube.jobs
        assert namespace == NAMESPACE


async def test_in_cluster_service_account_is_read_as_a_pod_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes_asyncio.config import incluster_config

    import providers.job.cluster as cluster_module

    async with KubeAPI(token="projected-sa-token", tls=True) as kube:
        # What the kubelet mounts and sets in a pod, pointed at the rig.
        account = tmp_path / "serviceaccount"
        account.mkdir()
        (account / "token").write_text("projected-sa-token")
        (account / "ca.crt").write_bytes(kube.ca_pem)
        (account / "namespace").write_text("team-b\n")
        host, port = kube.url.removeprefix("https://").split(":")
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(account / "token"))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(account / "ca.crt"))
        monkeypatch.setattr(cluster_module, "SERVICE_ACCOUNT_NAMESPACE", account / "namespace")
        settings = {"kubernetes": {"inCluster": True}}
        async with ProviderRegistry(secrets=lambda _n, _k: None, settings=settings) as registry:
            reading = await registry.measure("job", {"spec": JOB["spec"]})
        assert reading.metadata["analysisd.io/phase"] == "Successful"
        ((namespace, name),) = kube.jobs
        assert (namespace, name) == ("team-b", reading.metadata["job-name"])
