"""What a user may ask for: the form/REST ``user_options`` checked against the catalogue.

Everything a user sends is validated here, server-side, whether it came from the spawn form or
the REST API. The result is a :class:`Selection` made only of catalogue objects, so nothing
outside the catalogue can reach a pod. Refusals are sentences a scientist understands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..sites import Catalogue, Image, Partition, Resource, Site

# option keys, as they appear in user_options and in the form (profile-option-<site>--<key>)
RESOURCES = "resources"
GPUS = "gpus"
IMAGE = "image"
OTHER_IMAGE = "image--unlisted-choice"
KNOWN = {"profile", RESOURCES, GPUS, IMAGE, OTHER_IMAGE}
MAX_IMAGE_LENGTH = 300

# EGI Check-in entitlements: urn:mace:egi.eu:group:<vo>[:<subgroup>...][:role=<r>]#<authority>
_ENTITLEMENT = re.compile(r"^urn:mace:egi\.eu:group:(?P<vo>[^:#]+)(?::[^#]*)?(?:#.*)?$")


class OptionsError(ValueError):
    """The request cannot be honoured; the message is meant for the scientist."""


@dataclass(frozen=True)
class Selection:
    site: Site
    resource: Resource
    partition: Partition | None
    gpus: int
    image: str
    other_image: bool
    # the VO the server's usage is accounted to (APEL's FQAN, the usage ledger, budgets)
    vo: str | None = None

    def user_options(self) -> dict[str, str]:
        """The selection as canonical ``user_options`` (catalogue slugs and keys only), so
        KubeSpawner's own profile lookups see exactly what was validated, never the raw text
        ("minimal\n", the number 1) that validation tolerated."""
        opts = {"profile": self.site.slug, RESOURCES: self.resource.slug}
        if gpu_choices(self.site):
            opts[GPUS] = gpu_choice_key(self.partition, self.gpus)
        if self.other_image:
            opts[OTHER_IMAGE] = self.image
        else:
            opts[IMAGE] = next(i.slug for i in self.site.images if i.image == self.image)
        return opts


def vos_of(groups: Iterable[str]) -> frozenset[str]:
    """VO names from JupyterHub group names: EGI entitlements map to their VO, any other group
    name is taken as a VO name itself (the testbed and local accounts)."""
    vos = set()
    for g in groups:
        m = _ENTITLEMENT.match(g)
        vos.add(m.group("vo") if m else g)
    return frozenset(vos)


def gpu_choice_key(partition: Partition | None, gpus: int) -> str:
    return f"{partition.slug}-{gpus}" if partition else str(gpus)


def gpu_choices(site: Site) -> list[tuple[str, Partition | None, int]]:
    if site.partitions:
        return [(gpu_choice_key(p, n), p, n) for p in site.partitions for n in p.gpu_choices]
    return [(gpu_choice_key(None, n), None, n) for n in site.gpu_choices]


def _text(options: Mapping[str, Any], key: str) -> str | None:
    v = options.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise OptionsError(f"The option {key!r} must be text, not {type(v).__name__}.")
    return str(v).strip()


def _pick(value: str | None, choices: list[Any], key: Any, what: str, site: Site) -> Any:
    if value is None or value == "":
        return choices[0]
    for c in choices:
        if key(c) == value:
            return c
    offered = ", ".join(repr(key(c)) for c in choices)
    raise OptionsError(
        f"{value!r} is not a {what} choice at {site.title}. Choose one of: {offered}."
    )


def validate(
    catalogue: Catalogue, vos: Iterable[str], options: Mapping[str, Any] | None
) -> Selection:
    """Check ``options`` for a user in ``vos``; return what they may have or raise."""
    options = options or {}
    if not isinstance(options, Mapping):
        raise OptionsError("Server options must be a JSON object.")
    unknown = sorted(str(k) for k in options if k not in KNOWN)
    if unknown:
        raise OptionsError(
            f"Unknown server option {unknown[0]!r}. The options are: profile, "
            f"{RESOURCES}, {GPUS}, {IMAGE}, {OTHER_IMAGE}."
        )
    vos = frozenset(vos)
    visible = catalogue.visible_to(vos)
    slug = _text(options, "profile")
    if not slug:
        if not visible:
            raise OptionsError("Your account is not in any VO that may start a server here.")
        site = visible[0]
    else:
        found = catalogue.get(slug)
        if found is None:
            names = ", ".join(f"{s.slug} ({s.title})" for s in visible)
            raise OptionsError(f"There is no site {slug!r}. Choose one of: {names}.")
        site = found
    if not site.allows(vos):
        raise OptionsError(
            f"{site.title} is open only to members of the "
            f"{' or '.join(site.allowed_vos)} VO, and your account is not a "
            "member. Ask your VO manager in EGI Check-in to add you."
        )

    resource = _pick(
        _text(options, RESOURCES), list(site.resources), lambda r: r.slug, "CPU and Memory", site
    )

    choices = gpu_choices(site)
    raw_gpus = _text(options, GPUS)
    if not choices:
        if raw_gpus not in (None, "", "0"):
            raise OptionsError(f"{site.title} has no GPUs; remove the GPU option.")
        partition, gpus = None, 0
    else:
        _check_gpu_limit(site, raw_gpus)
        _, partition, gpus = _pick(
            raw_gpus,
            choices,
            lambda c: c[0],
            "Partition and GPUs" if site.partitions else "GPU",
            site,
        )

    listed, other = _text(options, IMAGE), _text(options, OTHER_IMAGE)
    if other:
        if listed:
            raise OptionsError("Choose either an image from the list or Other image, not both.")
        rule = site.other_image
        if rule is None:
            raise OptionsError(f"{site.title} runs only the listed images.")
        traversal = ".." in other.split("/")
        if len(other) > MAX_IMAGE_LENGTH or traversal or not rule.allows(other):
            raise OptionsError(
                f"The image {other[:80]!r} cannot run at {site.title}. {rule.message}"
            )
        image, is_other = other, True
    else:
        chosen: Image = _pick(listed, list(site.images), lambda i: i.slug, "Image", site)
        image, is_other = chosen.image, False
    return Selection(site, resource, partition, gpus, image, is_other, accounted_vo(site, vos))


def accounted_vo(site: Site, vos: frozenset[str]) -> str | None:
    """The VO a user's work at ``site`` is accounted to: one that admits them there (the
    first by name when several do), for an open site their first VO by name, else None."""
    admitting = vos & set(site.allowed_vos) if site.allowed_vos else vos
    return min(admitting) if admitting else None


def _check_gpu_limit(site: Site, raw: str | None) -> None:
    """A friendlier refusal than "not a choice" when the GPU count is simply too high."""
    if not raw:
        return
    part, _, count = raw.rpartition("-") if site.partitions else ("", "", raw)
    # ASCII digits only: str.isdigit() accepts "²", which int() then refuses
    if not (count.isascii() and count.isdigit()):
        return
    wanted = int(count)
    if site.partitions:
        p = next((p for p in site.partitions if p.slug == part), None)
        limit = p.max_gpus if p else None
        where = f"the {part} partition of {site.title}"
    else:
        limit = max(site.gpu_choices, default=0)
        where = site.title
    if limit is not None and wanted > limit:
        raise OptionsError(
            f"{where} offers at most {limit} GPUs per session; you asked for {wanted}."
        )


# --- batch cells (``%%offload``) ---------------------------------------------------------------

# batch cells a user may have queued or running at a site whose catalogue entry sets no limit
DEFAULT_MAX_CELLS_PER_USER = 4


@dataclass(frozen=True)
class BatchSelection:
    """A validated batch cell: the spawner's :class:`Selection` (site, resources, partition,
    GPUs, image) plus the time limit it asked for, in seconds (None: the site's default)."""

    selection: Selection
    time: int | None

    @property
    def site(self) -> Site:
        return self.selection.site


def max_cells_per_user(site: Site) -> int:
    return site.batch.max_cells_per_user if site.batch else DEFAULT_MAX_CELLS_PER_USER


def validate_batch(
    catalogue: Catalogue, vos: Iterable[str], request: Mapping[str, Any]
) -> BatchSelection:
    """Check a batch cell's request (site, partition, gpus, cpus, memory, time, image) for a
    user in ``vos`` with the spawner's own rules (:func:`validate`): the same VO, partition,
    GPU and image checks and the same refusals. CPUs and memory pick the smallest of the
    site's resource choices that holds both, so nothing outside the catalogue reaches a pod;
    the time must be within the partition's (else the site's) ``max_time``."""
    site = catalogue.get(str(request.get("site") or "")) if request.get("site") else None
    options: dict[str, Any] = {}
    if request.get("site") is not None:
        options["profile"] = _text(request, "site")
    if site is None:
        # an unknown site or none given: validate says which sites there are
        return BatchSelection(validate(catalogue, vos, options), None)
    # who may use the site first, as the spawn form does: a non-member hears that, not GPU rules
    validate(catalogue, vos, options)
    options[GPUS] = _batch_gpus(site, request)
    options[RESOURCES] = _batch_resource(site, request)
    image = _text(request, "image")
    if image:
        listed = next((i for i in site.images if image in (i.slug, i.image)), None)
        options[IMAGE if listed else OTHER_IMAGE] = listed.slug if listed else image
    sel = validate(catalogue, vos, {k: v for k, v in options.items() if v is not None})
    return BatchSelection(sel, _batch_time(sel, request))


def _count(request: Mapping[str, Any], key: str) -> int | None:
    v = request.get(key)
    if v is None or v == "":
        return None
    text = str(v).strip()
    if isinstance(v, bool) or not (text.isascii() and text.isdigit()):
        raise OptionsError(f"{key} must be a whole number, not {str(v)[:40]!r}.")
    return int(text)


def _batch_gpus(site: Site, request: Mapping[str, Any]) -> str | None:
    """The spawner's GPU choice key (``gpu-1`` for a partition, ``1`` without) for the
    request's partition and GPU count."""
    gpus = _count(request, "gpus")
    partition = _text(request, "partition")
    if not site.partitions:
        if partition:
            raise OptionsError(f"{site.title} has no partitions to choose from.")
        return None if gpus is None else str(gpus)
    if partition:
        p = next((p for p in site.partitions if partition in (p.slug, p.batch_name)), None)
        if p is None:
            offered = ", ".join(repr(p.slug) for p in site.partitions)
            raise OptionsError(
                f"{partition!r} is not a partition of {site.title}. Choose one of: {offered}."
            )
        if gpus is None:
            gpus = p.gpu_choices[0]
        return gpu_choice_key(p, gpus)
    if gpus is None:
        return None
    # the first partition that offers that many GPUs (--gpus 0 on Vega: the cpu partition)
    for p in site.partitions:
        if gpus in p.gpu_choices:
            return gpu_choice_key(p, gpus)
    most = max(p.max_gpus for p in site.partitions)
    if gpus > most:
        raise OptionsError(
            f"{site.title} offers at most {most} GPUs per job; you asked for {gpus}."
        )
    counts = sorted({n for p in site.partitions for n in p.gpu_choices})
    raise OptionsError(
        f"{site.title} offers {', '.join(map(str, counts))} GPUs per job; you asked for {gpus}."
    )


def _batch_resource(site: Site, request: Mapping[str, Any]) -> str | None:
    from ..sites import quantity_bytes

    cpus = _count(request, "cpus")
    memory = _text(request, "memory")
    if cpus is None and not memory:
        return None
    mem = 0
    if memory:
        # users write 32G and mean GiB, as Slurm's --mem does
        text = memory[:-1] if memory.endswith("B") else memory
        text = text + "i" if text[-1:] in ("K", "M", "G", "T") else text
        try:
            mem = quantity_bytes(text)
        except ValueError:
            raise OptionsError(
                f"memory must be a size such as 16G or 512Mi, not {memory[:40]!r}."
            ) from None
    fits = [r for r in site.resources if r.cpu >= (cpus or 0) and quantity_bytes(r.memory) >= mem]
    if not fits:
        biggest = max(site.resources, key=lambda r: (r.cpu, quantity_bytes(r.memory)))
        raise OptionsError(
            f"{site.title} runs jobs of at most {biggest.label}; you asked for "
            + " and ".join(
                x
                for x in (f"{cpus} CPU" if cpus else "", f"{memory} of memory" if memory else "")
                if x
            )
            + "."
        )
    return min(fits, key=lambda r: (r.cpu, quantity_bytes(r.memory))).slug


def _batch_time(sel: Selection, request: Mapping[str, Any]) -> int | None:
    from ..sites import duration_seconds, slurm_time

    raw = _text(request, "time")
    if not raw:
        return None
    try:
        seconds = duration_seconds(raw)
    except ValueError as e:
        raise OptionsError(f"time: {e}.") from None
    if seconds <= 0:
        raise OptionsError("time must be longer than nothing.")
    limit, where = None, sel.site.title
    if sel.partition and sel.partition.max_time:
        limit, where = sel.partition.max_time, f"the {sel.partition.slug} partition of {where}"
    elif sel.site.batch:
        limit = sel.site.batch.max_time
    if limit is not None and seconds > limit:
        raise OptionsError(
            f"{where} runs jobs for at most {slurm_time(limit)}; you asked for "
            f"{slurm_time(seconds)}."
        )
    return seconds
