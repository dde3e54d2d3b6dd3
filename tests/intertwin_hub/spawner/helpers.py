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

    @property
    def escaped_name(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return f"/user/{self.name}/"


def spawner(groups: tuple[str, ...] = (DEV,), **config: Any) -> InterTwinSpawner:
    return InterTwinSpawner(_mock=True, user=FakeUser(groups=[Group(g) for g in groups]),
                            **config)


async def manifest(options: dict[str, Any], groups: tuple[str, ...] = (DEV,),
                   **config: Any) -> dict[str, Any]:
    s = spawner(groups, **config)
    s.user_options = options
    await s.load_user_options()
    pod = await s.get_pod_manifest()
    return ApiClient().sanitize_for_serialization(pod)  # type: ignore[no-any-return]
