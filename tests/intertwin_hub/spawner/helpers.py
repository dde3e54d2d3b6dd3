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


class OfflineSpawner(InterTwinSpawner):
    """Builds pods without a cluster: the env Secret is kept here instead of created."""

    created_secrets: list[Any]

    async def create_env_secret(self, body: Any) -> None:
        self.created_secrets = [*getattr(self, "created_secrets", []), body]


def spawner(groups: tuple[str, ...] = (DEV,), auth_state: dict[str, Any] | None = None,
            **config: Any) -> OfflineSpawner:
    user = FakeUser(groups=[Group(g) for g in groups], auth_state=auth_state)
    return OfflineSpawner(_mock=True, user=user, **config)


async def manifest(options: dict[str, Any], groups: tuple[str, ...] = (DEV,),
                   **config: Any) -> dict[str, Any]:
    return (await build(options, groups, **config))[0]


async def build(options: dict[str, Any], groups: tuple[str, ...] = (DEV,),
                auth_state: dict[str, Any] | None = None,
                **config: Any) -> tuple[dict[str, Any], list[Any]]:
    """The pod manifest and the Secrets the spawner would create with it."""
    s = spawner(groups, auth_state, **config)
    s.user_options = options
    await s.load_user_options()
    pod = await s.get_pod_manifest()
    api = ApiClient()
    return (api.sanitize_for_serialization(pod),
            [api.sanitize_for_serialization(b) for b in getattr(s, "created_secrets", [])])
