"""The spawner: a KubeSpawner whose profiles come from the site catalogue."""

from __future__ import annotations

from typing import Any

from kubespawner import KubeSpawner
from traitlets import Unicode, default

from ..sites import Catalogue, Site, load_catalogue
from . import pod as podspec


class InterTwinSpawner(KubeSpawner):
    """Spawn JupyterLab on a site of the catalogue: the UKRI cloud, or an HPC/HTC site via the
    interLink virtual node of that site."""

    site_catalogue_path = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Path of the site catalogue YAML. None uses the catalogue shipped with
        intertwin-hub (UKRI, Vega, PSNC, KBFI). Adding a site is an edit of this file.""",
    )

    _catalogue: Catalogue | None = None

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            self._catalogue = load_catalogue(self.site_catalogue_path)
        return self._catalogue

    @default("profile_list")
    def _default_profile_list(self) -> list[dict[str, Any]]:
        return [
            {"display_name": s.title, "description": s.description, "slug": s.slug,
             "default": i == 0}
            for i, s in enumerate(self.catalogue)
        ]

    def chosen_site(self) -> Site | None:
        slug = (self.user_options or {}).get("profile")
        if slug is None and len(self.catalogue):
            slug = self.catalogue.sites[0].slug
        return self.catalogue.get(slug) if slug else None

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        site = self.chosen_site()
        if site is not None:
            env.update(podspec.site_env(site))
        return env

    async def get_pod_manifest(self) -> Any:
        # after KubeSpawner's profile overrides, so nothing a profile sets can undo the
        # site rules (hook order: reference/jupyterhub.md §3)
        pod = await super().get_pod_manifest()
        site = self.chosen_site()
        if site is None:
            return pod
        labels = pod.metadata.labels
        labels[podspec.LABEL_SITE] = site.slug
        labels[podspec.LABEL_WORKLOAD] = "notebook"
        pod.metadata.annotations = {**(pod.metadata.annotations or {}),
                                    **podspec.site_annotations(site, None, 0)}
        if site.offload:
            pod.spec.node_selector = {"kubernetes.io/hostname": site.node.name}
            pod.spec.tolerations = [
                *(pod.spec.tolerations or []),
                *podspec.offload_tolerations(),
            ]
            pod.spec.automount_service_account_token = False
        return pod
