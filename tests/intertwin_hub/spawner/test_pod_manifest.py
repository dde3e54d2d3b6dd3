"""Pod manifests for the four profiles: what interLink and the scheduler need."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest

from intertwin_hub.spawner.compat import SpawnException

from .helpers import DEV, POD_UID, build, hub_path, manifest, spawner

pytestmark = pytest.mark.asyncio

OFFLOAD_TOLERATIONS = [
    {"key": "virtual-node.interlink/no-schedule", "operator": "Exists", "effect": "NoSchedule"},
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 3600,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 3600,
    },
]


def container(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0]  # type: ignore[no-any-return]


def resources(pod: dict[str, Any]) -> dict[str, dict[str, str]]:
    res = container(pod)["resources"]
    return {k: {r: str(v) for r, v in res[k].items()} for k in ("limits", "requests")}


def env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container(pod)["env"]}


async def test_vega_with_two_a100() -> None:
    pod = await manifest({"profile": "vega", "resources": "medium", "gpus": "gpu-2"})
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "vega-vk"}
    assert [
        t for t in spec["tolerations"] if t["key"] in {t["key"] for t in OFFLOAD_TOLERATIONS}
    ] == OFFLOAD_TOLERATIONS
    res = resources(pod)
    assert res["limits"] == {"cpu": "16.0", "memory": str(64 * 2**30), "nvidia.com/gpu": "2"}
    assert res["requests"] == res["limits"]
    ann = pod["metadata"]["annotations"]
    assert ann["slurm-job.vk.io/flags"] == (
        "--partition=gpu --gres=gpu:2 --time=04:00:00 --account=intertwin"
    )
    assert "interlink.eu/pod-vpn" not in ann  # the shipped catalogue: Vega is reached by wstunnel
    # the VO that admits alice at Vega is the one her usage is accounted to
    assert ann["intertwin.eu/vo"] == "dev.intertwin.eu"
    labels = pod["metadata"]["labels"]
    assert labels["intertwin.eu/site"] == "vega"
    assert labels["intertwin.eu/workload"] == "notebook"
    assert labels["hub.jupyter.org/username"] == "alice"
    assert spec["automountServiceAccountToken"] is False
    assert not any("persistentVolumeClaim" in v for v in spec.get("volumes") or [])
    assert container(pod)["image"] == "ghcr.io/intertwin-eu/itwinai:jlab-slim-latest"
    e = env(pod)
    assert (e["INTERTWIN_SITE"], e["INTERTWIN_SCRATCH_RSE"]) == ("vega", "VEGA-DCACHE")
    assert e["INTERTWIN_SCRATCH_PATH"] == "/dcache/sling.si/projects/intertwin"
    # the session's status bar: "Vega, 2 x A100"
    assert (e["INTERTWIN_SITE_NAME"], e["INTERTWIN_GPU_MODEL"]) == ("Vega", "A100")
    # no public hub URL in this hub's config: the session is not told where the service is
    assert "INTERTWIN_SERVICE_URL" not in e


async def test_sessions_are_told_where_the_intertwin_service_is() -> None:
    """From the hub's public URL (the service's proxy route), or as the deployment says."""
    s = spawner(public_hub_url="https://hub.intertwin.eu/prefix/hub/")
    assert s.service_url == "https://hub.intertwin.eu/prefix/services/intertwin/"
    e = env(await manifest({"profile": "kbfi"}, public_hub_url="https://hub.intertwin.eu/hub/"))
    assert e["INTERTWIN_SERVICE_URL"] == "https://hub.intertwin.eu/services/intertwin/"
    assert "INTERTWIN_GPU_MODEL" not in e  # KBFI has no GPUs
    e = env(
        await manifest({"profile": "ukri"}, service_url="http://proxy:8000/services/intertwin/")
    )
    assert e["INTERTWIN_SERVICE_URL"] == "http://proxy:8000/services/intertwin/"


async def test_psnc_with_h100_partition() -> None:
    pod = await manifest({"profile": "psnc", "gpus": "proxima-4"})
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "psnc-vk"}
    assert container(pod)["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert (
        "--partition=proxima --gres=gpu:4"
        in pod["metadata"]["annotations"]["slurm-job.vk.io/flags"]
    )


async def test_kbfi_arc_has_no_gpu_and_no_slurm_flags() -> None:
    pod = await manifest({"profile": "kbfi"}, groups=())
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "kbfi-vk"}
    res = resources(pod)
    assert "nvidia.com/gpu" not in res["limits"]
    # the ARC plugin takes memory from the requests (its xRSL has a memory
    # attribute and no CPU count)
    assert res["requests"]["memory"] == str(8 * 2**30)
    assert "slurm-job.vk.io/flags" not in pod["metadata"]["annotations"]


async def test_ukri_cloud_pod_is_ordinary() -> None:
    pod = await manifest({"profile": "ukri", "gpus": "1", "image": "minimal"}, groups=())
    spec = pod["spec"]
    assert not (spec.get("nodeSelector") or {}).get("kubernetes.io/hostname")
    assert "virtual-node.interlink/no-schedule" not in {
        t["key"] for t in spec.get("tolerations") or []
    }
    assert container(pod)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container(pod)["image"] == "quay.io/jupyter/minimal-notebook:2026-10-20"
    assert "interlink.eu/pod-vpn" not in pod["metadata"]["annotations"]


async def test_other_image_allowed_by_the_site_rule() -> None:
    pod = await manifest({"profile": "vega", "image--unlisted-choice": "/cvmfs/x.cern.ch/img"})
    assert container(pod)["image"] == "/cvmfs/x.cern.ch/img"
    assert pod["metadata"]["annotations"]["intertwin.eu/other-image"] == "true"


def secret_volume(pod: Any) -> str:
    return str(next(v for v in pod.spec.volumes if v.name == "intertwin-env").secret.secret_name)


async def test_every_spawn_mounts_an_env_secret_of_its_own_name() -> None:
    """A Secret left by an earlier spawn of the same server (and the token in it) can never be
    mounted by the next pod: each spawn names its own."""
    s = spawner()
    first = secret_volume(await hub_path(s, {"profile": "vega"}))
    s.clear_state()  # what JupyterHub's User.spawn does before each start
    second = secret_volume(await hub_path(s, {"profile": "vega"}))
    assert first != second
    assert all(re.fullmatch(r"jupyter-alice-env-[0-9a-f]{8}", n) for n in (first, second))


async def test_the_env_secret_name_is_kept_in_the_state_until_it_is_cleared() -> None:
    """After a hub restart the spawner knows its Secret (from the state JupyterHub stored) and
    deletes that one when the server stops; clear_state, after the stop, forgets it."""
    s = spawner()
    name = secret_volume(await hub_path(s, {"profile": "ukri"}))
    state = s.get_state()
    assert state["env_secret_name"] == name
    after_restart = spawner()
    after_restart.load_state(state)
    assert after_restart.env_secret_name == name
    after_restart.clear_state()
    assert "env_secret_name" not in after_restart.get_state()


class RecordingApi:
    """The Kubernetes calls of a pod creation, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def create_namespaced_pod(self, namespace: str, pod: Any, **kw: Any) -> None:
        self.calls.append(("create pod", pod.metadata.name))

    async def read_namespaced_pod(self, name: str, namespace: str) -> Any:
        self.calls.append(("read pod", name))
        return SimpleNamespace(metadata=SimpleNamespace(uid=POD_UID))

    async def create_namespaced_secret(self, namespace: str, body: Any) -> None:
        self.calls.append(("create secret", body.metadata.name))

    async def delete_namespaced_secret(self, name: str, namespace: str) -> None:
        self.calls.append(("delete secret", name))


async def test_the_pod_is_created_first_and_then_its_secret() -> None:
    """No Secret call precedes the pod's creation (the spawn waits for nothing more than
    KubeSpawner's own POST); the Secret follows, owned by the pod."""
    s = spawner()
    pod = await hub_path(s, {"profile": "vega"})
    api = RecordingApi()
    s.api = api
    assert await s._make_create_pod_request(pod, 10)
    assert api.calls == [
        ("create pod", "jupyter-alice"),
        ("read pod", "jupyter-alice"),
        ("create secret", secret_volume(pod)),
    ]


@pytest.mark.parametrize("profile", ["vega", "ukri"])
async def test_no_token_in_the_pod_spec(profile: str) -> None:
    pod, secrets = await build({"profile": profile}, api_token="s3cret-hub-token-value")
    assert "s3cret-hub-token-value" not in json.dumps(pod)
    [secret] = secrets
    # a name of this spawn's own: <pod>-env-<8 hex digits>
    assert re.fullmatch(r"jupyter-alice-env-[0-9a-f]{8}", secret["metadata"]["name"])
    assert secret["stringData"]["JUPYTERHUB_API_TOKEN"] == "s3cret-hub-token-value"
    c = container(pod)
    assert "JUPYTERHUB_API_TOKEN" not in {e["name"] for e in c["env"]}
    # it travels as a file of a Secret volume (what interLink can ship) and is exported by a
    # prelude before the real command
    vol = next(v for v in pod["spec"]["volumes"] if v["name"] == "intertwin-env")
    assert vol["secret"]["secretName"] == secret["metadata"]["name"]
    assert {"name": "intertwin-env", "mountPath": "/var/run/intertwin/env", "readOnly": True} in c[
        "volumeMounts"
    ]
    # the prelude is the container's args (the image's CMD): the image's ENTRYPOINT still runs
    assert not c.get("command")
    assert c["args"][:2] == ["/bin/sh", "-c"]
    assert c["args"][4].endswith("jupyterhub-singleuser")
    # owned by the pod, so Kubernetes deletes it with the pod even if the hub cannot
    assert secret["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "jupyter-alice",
            "uid": POD_UID,
            "blockOwnerDeletion": False,
            "controller": False,
        }
    ]


async def test_a_command_set_by_the_hub_config_is_wrapped_with_its_args() -> None:
    """A command (from the hub configuration) already replaces the entrypoint: the prelude
    runs it with its args."""
    pod, _ = await build(
        {"profile": "vega"}, api_token="t", extra_container_config={"command": ["tini", "--"]}
    )
    c = container(pod)
    assert c["command"][:2] == ["/bin/sh", "-c"]
    assert c["args"][:3] == ["tini", "--", "jupyterhub-singleuser"]


async def test_the_prelude_exports_the_secret_files_then_execs_the_command(tmp_path: Any) -> None:
    import asyncio

    from intertwin_hub.spawner.pod import secret_env_command

    (tmp_path / "JUPYTERHUB_API_TOKEN").write_text("tok 1")
    (tmp_path / "RUCIO_ACCESS_TOKEN").write_text("rucio'2")
    show = 'echo "$JUPYTERHUB_API_TOKEN|$RUCIO_ACCESS_TOKEN|$0"'
    command, args = secret_env_command([], ["sh", "-c", show, "x"])
    proc = await asyncio.create_subprocess_exec(
        *command,
        *args,
        stdout=asyncio.subprocess.PIPE,
        env={"INTERTWIN_SECRET_ENV_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    out, _ = await proc.communicate()
    assert (proc.returncode, out) == (0, b"tok 1|rucio'2|x\n")


@pytest.mark.parametrize(
    ("reach", "present", "absent"),
    [
        (
            "pod-vpn",
            {"interlink.eu/pod-vpn": "true"},
            "interlink.virtual-kubelet.io/wstunnel-timeout",
        ),
        (
            "wstunnel",
            {"interlink.virtual-kubelet.io/wstunnel-timeout": "5m"},
            "interlink.eu/pod-vpn",
        ),
    ],
)
async def test_the_sites_reach_mode_sets_its_annotations_only(
    reach: str, present: dict[str, str], absent: str
) -> None:
    # the hub-wide extra_annotations carry both; only the site's mode may reach the VK
    extra = {
        "interlink.eu/pod-vpn": "true",
        "interlink.virtual-kubelet.io/wstunnel-timeout": "1s",
        "team": "x",
    }
    pod = await manifest({"profile": "vega"}, site_reach={"vega": reach}, extra_annotations=extra)
    ann = pod["metadata"]["annotations"]
    assert ann.items() >= present.items()
    assert absent not in ann
    assert ann["team"] == "x"
    # wstunnel exposes the pod's containerPorts: the notebook port must be declared
    assert container(pod)["ports"][0]["containerPort"] == 8888


async def test_the_shipped_catalogue_reaches_offload_sites_through_wstunnel() -> None:
    for profile in ("vega", "psnc", "kbfi"):
        ann = (await manifest({"profile": profile}))["metadata"]["annotations"]
        assert "interlink.eu/pod-vpn" not in ann, profile
        assert ann["interlink.virtual-kubelet.io/wstunnel-timeout"] == "5m"


async def test_an_unknown_reach_in_the_hub_config_is_a_sentence() -> None:
    with pytest.raises(SpawnException) as e:
        await manifest({"profile": "vega"}, site_reach={"vega": "vpn"})
    assert "Offload to Vega HPC - dev VO is reached by 'vpn'" in str(e.value)


async def test_a_profile_override_cannot_undo_site_rules() -> None:
    pod = await manifest(
        {"profile": "vega"},
        node_selector={"kubernetes.io/hostname": "x"},
        tolerations=[{"key": "virtual-node.interlink/no-schedule", "value": "false"}],
    )
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "vega-vk"}
    tol = [t for t in spec["tolerations"] if t["key"] == "virtual-node.interlink/no-schedule"]
    assert tol == [OFFLOAD_TOLERATIONS[0]]


@pytest.mark.parametrize(
    ("options", "groups", "says"),
    [
        ({"profile": "vega"}, (), "open only to members of the dev.intertwin.eu VO"),
        ({"profile": "nowhere"}, (DEV,), "There is no site 'nowhere'"),
        ({"profile": "vega", "gpus": "gpu-8"}, (DEV,), "offers at most 4 GPUs"),
        ({"profile": "vega", "resources": "huge"}, (DEV,), "'huge' is not a CPU and Memory choice"),
        (
            {"profile": "vega", "image--unlisted-choice": "evil.example/miner:1"},
            (DEV,),
            "cannot run at Offload to Vega HPC",
        ),
        ({"profile": "kbfi", "gpus": "1"}, (), "has no GPUs"),
        ({"profile": "ukri", "nodeSelector": "x"}, (), "Unknown server option 'nodeSelector'"),
    ],
)
async def test_refusals_are_400_with_a_sentence(
    options: dict[str, Any], groups: tuple[str, ...], says: str
) -> None:
    with pytest.raises(SpawnException) as e:
        await manifest(options, groups=groups)
    assert e.value.status_code == 400
    assert says in e.value.message


async def test_rucio_config_follows_the_site_and_the_token_is_secret() -> None:
    instance = {"RUCIO_BASE_URL": "https://rucio.example", "RUCIO_AUTH_URL": "https://auth.ex"}
    pod, secrets = await build(
        {"profile": "vega"}, rucio_instance=instance, auth_state={"access_token": "oidc-access-xyz"}
    )
    e = env(pod)
    # the user's own OIDC token, in the Secret only
    assert "oidc-access-xyz" not in json.dumps(pod)
    assert secrets[0]["stringData"]["RUCIO_ACCESS_TOKEN"] == "oidc-access-xyz"
    assert e["RUCIO_BASE_URL"] == "https://rucio.example"
    assert (e["RUCIO_DESTINATION_RSE"], e["RUCIO_RSE_MOUNT_PATH"]) == (
        "VEGA-DCACHE",
        "/dcache/sling.si/projects/intertwin",
    )
    assert (e["RUCIO_OIDC_AUTH"], e["RUCIO_OIDC_ENV_NAME"]) == ("env", "RUCIO_ACCESS_TOKEN")
    pod, _ = await build({"profile": "ukri"}, groups=(), rucio_instance=instance)
    assert "RUCIO_DESTINATION_RSE" not in env(pod)  # UKRI has no scratch RSE


async def test_sessions_are_told_to_renew_their_datalake_token_through_the_service() -> None:
    instance = {"RUCIO_BASE_URL": "https://rucio.example"}
    url = "https://hub.example/services/intertwin/"
    pod, _ = await build(
        {"profile": "vega"},
        rucio_instance=instance,
        service_url=url,
        rucio_token_from_service=True,
    )
    assert env(pod)["INTERTWIN_RUCIO_TOKEN_FROM_SERVICE"] == "1"
    assert env(pod)["INTERTWIN_SERVICE_URL"] == url
    # by default (the demo login's Rucio tokens), and without a Rucio, not
    pod, _ = await build({"profile": "vega"}, rucio_instance=instance, service_url=url)
    assert "INTERTWIN_RUCIO_TOKEN_FROM_SERVICE" not in env(pod)
    pod, _ = await build({"profile": "vega"}, service_url=url, rucio_token_from_service=True)
    assert "INTERTWIN_RUCIO_TOKEN_FROM_SERVICE" not in env(pod)


async def test_a_deployment_may_mount_a_sites_scratch_elsewhere() -> None:
    instance = {"RUCIO_BASE_URL": "https://rucio.example"}
    pod, _ = await build(
        {"profile": "vega"},
        rucio_instance=instance,
        scratch_mount_paths={"vega": "/srv/rse/VEGA-DCACHE/"},
    )
    assert env(pod)["RUCIO_RSE_MOUNT_PATH"] == "/srv/rse/VEGA-DCACHE/"
    assert env(pod)["INTERTWIN_SCRATCH_PATH"] == "/srv/rse/VEGA-DCACHE/"
    pod, _ = await build(
        {"profile": "psnc"},
        rucio_instance=instance,
        scratch_mount_paths={"vega": "/srv/rse/VEGA-DCACHE/"},
    )
    assert env(pod)["RUCIO_RSE_MOUNT_PATH"] == "/mnt/dcache/intertwin"  # the catalogue's


async def test_a_site_added_to_the_catalogue_is_offered_and_routed(tmp_path: Any) -> None:
    from pathlib import Path

    import yaml

    import intertwin_hub

    data = yaml.safe_load((Path(intertwin_hub.__file__).parent / "sites.yaml").read_text())
    data["sites"].append(
        {
            "slug": "jsc",
            "name": "JSC",
            "title": "Offload to JUWELS Booster - dev VO",
            "description": "Offload Jupyterlab session on a JUWELS Booster node",
            "kind": "offload",
            "node": {
                "name": "jsc-vk",
                "cpu": "48",
                "memory": "512Gi",
                "gpu": {"model": "A100", "count": 4},
            },
            "batch": {"system": "slurm", "account": "intertwin", "time": "01:00:00"},
            "allowed_vos": ["dev.intertwin.eu"],
            "resources": [
                {"slug": "node", "label": "48 CPU, 512 GiB", "cpu": 48, "memory": "500Gi"}
            ],
            "partitions": [
                {"slug": "booster", "label": "booster (A100)", "gpu_choices": [4], "max_gpus": 4}
            ],
            "images": [{"slug": "itwinai", "label": "itwinai", "image": "ghcr.io/x/itwinai:1"}],
            "scratch": {"rse": "JSC-TEAPOT", "mount_path": "/p/scratch/intertwin"},
            "start_timeout": 1800,
            "reach": "pod-vpn",
        }
    )
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(data))
    s = spawner(site_catalogue_path=str(path))
    assert "jsc" in [p["slug"] for p in s.profile_list(s)]
    pod = await manifest({"profile": "jsc", "gpus": "booster-4"}, site_catalogue_path=str(path))
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "jsc-vk"}
    assert (
        "--partition=booster --gres=gpu:4"
        in pod["metadata"]["annotations"]["slurm-job.vk.io/flags"]
    )
