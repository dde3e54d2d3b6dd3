from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio.client import ApiClient

from intertwin_hub.spawner import InterTwinSpawner

DEV = "urn:mace:egi.eu:group:dev.intertwin.eu:role=member#aai.egi.eu"


@dataclass
class Group:
    name: str


@dataclass
class FakeUser:
    name: str = "alice"
    groups: list[Group] = field(default_factory=list)
    id: int = 1
    auth_state: dict[str, Any] | None = None

    async def get_auth_state(self) -> dict[str, Any] | None:
        return self.auth_state

    @property
    def escaped_name(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return f"/user/{self.name}/"


POD_UID = "0b4c5d6e-pod-uid"


class OfflineSpawner(InterTwinSpawner):
    """Builds pods without a cluster: the env Secret the spawner would create after the pod
    (owned by a pod of uid ``POD_UID``) is kept here instead."""

    @property
    def created_secrets(self) -> list[Any]:
        if self._env_secret_data is None:
            return []
        return [self.get_env_secret_manifest(POD_UID)]


def spawner(
    groups: tuple[str, ...] = (DEV,), auth_state: dict[str, Any] | None = None, **config: Any
) -> OfflineSpawner:
    user = FakeUser(groups=[Group(g) for g in groups], auth_state=auth_state)
    return OfflineSpawner(_mock=True, user=user, **config)


async def manifest(
    options: dict[str, Any], groups: tuple[str, ...] = (DEV,), **config: Any
) -> dict[str, Any]:
    return (await build(options, groups, **config))[0]


async def build(
    options: dict[str, Any],
    groups: tuple[str, ...] = (DEV,),
    auth_state: dict[str, Any] | None = None,
    **config: Any,
) -> tuple[dict[str, Any], list[Any]]:
    """The pod manifest and the Secrets the spawner would create with it."""
    s = spawner(groups, auth_state, **config)
    pod = await hub_path(s, options)
    api = ApiClient()
    return (
        api.sanitize_for_serialization(pod),
        [api.sanitize_for_serialization(b) for b in s.created_secrets],
    )


async def hub_path(s: InterTwinSpawner, options: Any) -> Any:
    """What JupyterHub (User.spawn) and KubeSpawner (_start) run with a user's options, up to
    the pod manifest: set user_options, the apply_user_options hook (through JupyterHub's own
    runner, which turns errors into HTTP 400), then load_user_options and get_pod_manifest."""
    s.user_options = options
    await s._run_apply_user_options(s.user_options)
    await s.load_user_options()
    return await s.get_pod_manifest()
