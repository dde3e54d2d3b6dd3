"""InterTwinSpawner: KubeSpawner that routes notebooks to interTwin sites through interLink."""

from .spawner import InterTwinSpawner

__all__ = ["InterTwinSpawner"]
