"""The site catalogue: load and validate the YAML that describes every site.

Sites are data, not code. This module turns the catalogue into frozen dataclasses and refuses a
malformed file with an error naming the bad key (``sites[1].node.name: required``), so an
operator's typo fails at hub start-up, not at a user's spawn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

DEFAULT_CATALOGUE = "sites.yaml"
_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
# a PFN prefix: scheme://host[:port]/path/
_PFN_PREFIX = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s]*/\S*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
# a Slurm partition name as it goes into --partition= (Leonardo's boost_usr_prod)
_BATCH_PARTITION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity_bytes(q: str) -> int:
    """A Kubernetes memory quantity ("16Gi") in bytes, as KubeSpawner's mem traits want.
    Raises ValueError for anything else, "512m" included: Kubernetes' "m" is milli, which
    means thousandths of a byte for memory."""
    num = q.rstrip("kKMGTi")
    unit = q[len(num) :]
    if unit not in _UNITS or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", num):
        raise ValueError(f"{q!r} is not a memory size such as 512Mi, 16Gi or 1T")
    return int(float(num) * _UNITS[unit])


class CatalogueError(ValueError):
    """The site catalogue is malformed; the message names the key at fault."""


@dataclass(frozen=True)
class GPU:
    model: str
    count: int


@dataclass(frozen=True)
class VirtualNode:
    name: str
    cpu: str
    memory: str
    gpu: GPU | None


@dataclass(frozen=True)
class Resource:
    slug: str
    label: str
    cpu: float
    memory: str


@dataclass(frozen=True)
class Partition:
    slug: str
    label: str
    gpu_choices: tuple[int, ...]
    max_gpus: int
    # the batch system's own partition name (slugs forbid "_", Slurm names need not)
    name: str = ""
    # the longest a batch job may ask for in this partition, in seconds (None: the site's)
    max_time: int | None = None

    @property
    def batch_name(self) -> str:
        return self.name or self.slug


@dataclass(frozen=True)
class Image:
    slug: str
    label: str
    image: str


@dataclass(frozen=True)
class OtherImageRule:
    allowed_patterns: tuple[str, ...]
    message: str

    def allows(self, image: str) -> bool:
        return any(re.fullmatch(p, image) for p in self.allowed_patterns)


@dataclass(frozen=True)
class Batch:
    system: Literal["slurm", "arc"]
    account: str | None = None
    time: str | None = None
    # the longest a batch job may ask for, in seconds (a partition may say otherwise)
    max_time: int | None = None
    # batch cells (``%%offload``) one user may have queued or running at the site at once
    max_cells_per_user: int = 4
    # GPUs one user may hold at the site at once (notebook servers and batch cells); a new
    # batch cell over it is refused. None: only each partition's own max_gpus applies
    max_gpus_per_user: int | None = None


# a time limit as users type it in ``%%offload --time`` (90s, 30m, 4h, 2d) or in Slurm's forms
_WITH_UNIT = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_SLURM_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def duration_seconds(text: str) -> int:
    """A time limit in seconds: ``30m``, ``4h``, or Slurm's ``--time`` forms
    (https://slurm.schedmd.com/sbatch.html#OPT_time): ``M``, ``M:S``, ``H:M:S``, ``D-H``,
    ``D-H:M``, ``D-H:M:S``. ValueError for anything else."""
    t = text.strip()
    m = _WITH_UNIT.fullmatch(t)
    if m:
        return int(float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    m = _SLURM_TIME.fullmatch(t)
    if not m:
        raise ValueError(f"{text!r} is not a time such as 30m, 2h or 04:00:00")
    days, *parts = m.groups()
    nums = [int(p) for p in parts if p is not None]
    if days is not None:
        d = int(days) * 86400
        h, mi, sec = [*nums, 0, 0][:3]
        return d + h * 3600 + mi * 60 + sec
    if len(nums) == 1:
        return nums[0] * 60
    if len(nums) == 2:
        return nums[0] * 60 + nums[1]
    return nums[0] * 3600 + nums[1] * 60 + nums[2]


def slurm_time(seconds: int) -> str:
    """Seconds as Slurm's ``D-HH:MM:SS`` (``HH:MM:SS`` under a day)."""
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    clock = f"{h:02d}:{m:02d}:{s:02d}"
    return f"{days}-{clock}" if days else clock


@dataclass(frozen=True)
class Scratch:
    """Where "make available here" puts data and where the compute node sees it.

    A replica's local path is its PFN on the RSE with a leading part removed, joined to
    ``mount_path``: by default the prefix of the RSE protocol that produced the PFN (right when
    the site mounts the RSE's root), else ``pfn_prefix`` (an explicit PFN prefix, e.g.
    ``davs://dcache.example.org:2880/pnfs/example.org/data/intertwin/``) or ``path_begins_at``
    (the number of leading path components of the PFN to drop, rucio-jupyterlab's setting).
    Both are needed for RSEs that expose only ``davs``/``root`` with a namespace that differs
    from the mount."""

    rse: str | None
    mount_path: str
    pfn_prefix: str | None = None
    path_begins_at: int | None = None


BUDGET_PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Budget:
    """A VO's allowance at a site per calendar period (UTC; weeks from Monday): GPU hours and
    CPU-core hours of allocation, either may be absent (no limit)."""

    vo: str
    period: Literal["day", "week", "month"]
    gpu_hours: float | None = None
    cpu_hours: float | None = None


# How the hub reaches an offloaded notebook: "pod-vpn" where the site routes the virtual
# node's PodCIDR to the hub's cluster, "wstunnel" through interLink's tunnel.
REACH_MODES = ("pod-vpn", "wstunnel")


@dataclass(frozen=True)
class Site:
    slug: str
    name: str
    title: str
    description: str
    kind: Literal["cloud", "offload"]
    node: VirtualNode
    allowed_vos: tuple[str, ...]
    resources: tuple[Resource, ...]
    images: tuple[Image, ...]
    other_image: OtherImageRule | None
    scratch: Scratch
    start_timeout: int
    batch: Batch | None = None
    partitions: tuple[Partition, ...] = ()
    gpu_choices: tuple[int, ...] = ()
    gpu_label: str = "GPU"
    reach: Literal["pod-vpn", "wstunnel"] | None = None
    budgets: tuple[Budget, ...] = ()

    @property
    def offload(self) -> bool:
        return self.kind == "offload"

    def allows(self, vos: set[str] | frozenset[str]) -> bool:
        """Whether a user in these VOs may use the site (no list: everyone)."""
        return not self.allowed_vos or bool(set(self.allowed_vos) & set(vos))

    def budget_of(self, vo: str | None) -> Budget | None:
        return next((b for b in self.budgets if b.vo == vo), None)


@dataclass(frozen=True)
class Catalogue:
    sites: tuple[Site, ...]

    def __iter__(self) -> Iterator[Site]:
        return iter(self.sites)

    def __len__(self) -> int:
        return len(self.sites)

    def get(self, slug: str) -> Site | None:
        return next((s for s in self.sites if s.slug == slug), None)

    def by_node(self, node_name: str) -> Site | None:
        return next((s for s in self.sites if s.node.name == node_name), None)

    def visible_to(self, vos: set[str] | frozenset[str]) -> list[Site]:
        return [s for s in self.sites if s.allows(vos)]


class _Reader:
    """Typed access to one mapping of the YAML, with the key path for error messages."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise CatalogueError(f"{where}: must be a mapping, got {type(data).__name__}")
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def raw(self, key: str, required: bool = True, default: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise CatalogueError(f"{self.path(key)}: required")
            return default
        return self.data[key]

    def text(
        self,
        key: str,
        required: bool = True,
        pattern: re.Pattern[str] | None = None,
        default: str | None = None,
    ) -> Any:
        v = self.raw(key, required, default)
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            raise CatalogueError(f"{self.path(key)}: must be a non-empty string")
        if pattern is not None and not pattern.fullmatch(v):
            raise CatalogueError(f"{self.path(key)}: {v!r} does not match {pattern.pattern}")
        return v

    def integer(self, key: str, required: bool = True, default: int = 0, minimum: int = 0) -> int:
        v = self.raw(key, required, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise CatalogueError(f"{self.path(key)}: must be an integer >= {minimum}")
        return v

    def items(self, key: str, required: bool = True) -> list[Any]:
        v = self.raw(key, required, [])
        if not isinstance(v, list):
            raise CatalogueError(f"{self.path(key)}: must be a list")
        return v

    def child(self, key: str, required: bool = True) -> _Reader | None:
        v = self.raw(key, required)
        return None if v is None else _Reader(v, self.path(key))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise CatalogueError(f"{self.path(unknown[0])}: unknown key")


def _quantity(r: _Reader, key: str) -> str:
    v = r.raw(key)
    s = str(v)
    if not _QUANTITY.fullmatch(s):
        raise CatalogueError(f"{r.path(key)}: {v!r} is not a Kubernetes quantity")
    return s


def _memory(r: _Reader, key: str) -> str:
    s = _quantity(r, key)
    try:
        quantity_bytes(s)
    except ValueError:
        raise CatalogueError(
            f"{r.path(key)}: {s!r} is not a memory size; write it with a byte unit such as "
            '512Mi, 16Gi or 1T (Kubernetes\' "m" means thousandths)'
        ) from None
    return s


def _duration(r: _Reader, key: str) -> int | None:
    v = r.raw(key, required=False)
    if v is None:
        return None
    try:
        return duration_seconds(str(v))
    except ValueError as e:
        raise CatalogueError(f"{r.path(key)}: {e}") from None


def _unique(items: Sequence[Any], where: str) -> None:
    seen: set[str] = set()
    for i in items:
        if i.slug in seen:
            raise CatalogueError(f"{where}: duplicate slug {i.slug!r}")
        seen.add(i.slug)


def _int_list(r: _Reader, key: str, required: bool) -> tuple[int, ...]:
    vals = r.items(key, required)
    for i, v in enumerate(vals):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise CatalogueError(f"{r.path(key)}[{i}]: must be an integer >= 0")
    return tuple(vals)


def _site(r: _Reader) -> Site:
    slug = r.text("slug", pattern=_SLUG)
    kind = r.text("kind")
    if kind not in ("cloud", "offload"):
        raise CatalogueError(f"{r.path('kind')}: must be 'cloud' or 'offload', got {kind!r}")

    nr = r.child("node")
    assert nr is not None
    gr = nr.child("gpu", required=False)
    gpu = None
    if gr is not None:
        gpu = GPU(model=gr.text("model"), count=gr.integer("count", minimum=1))
        gr.done()
    node = VirtualNode(
        name=nr.text("name", pattern=re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")),
        cpu=_quantity(nr, "cpu"),
        memory=_memory(nr, "memory"),
        gpu=gpu,
    )
    nr.done()

    resources = []
    for i, item in enumerate(r.items("resources")):
        rr = _Reader(item, f"{r.path('resources')}[{i}]")
        cpu = rr.raw("cpu")
        if isinstance(cpu, bool) or not isinstance(cpu, int | float) or cpu <= 0:
            raise CatalogueError(f"{rr.path('cpu')}: must be a positive number")
        resources.append(
            Resource(
                rr.text("slug", pattern=_SLUG), rr.text("label"), float(cpu), _memory(rr, "memory")
            )
        )
        rr.done()
    if not resources:
        raise CatalogueError(f"{r.path('resources')}: at least one choice is required")
    _unique(resources, r.path("resources"))

    partitions = []
    for i, item in enumerate(r.items("partitions", required=False)):
        pr = _Reader(item, f"{r.path('partitions')}[{i}]")
        slug_ = pr.text("slug", pattern=_SLUG)
        p = Partition(
            slug_,
            pr.text("label"),
            _int_list(pr, "gpu_choices", True),
            pr.integer("max_gpus"),
            pr.text("name", required=False, pattern=_BATCH_PARTITION, default=slug_),
            _duration(pr, "max_time"),
        )
        if any(g > p.max_gpus for g in p.gpu_choices):
            raise CatalogueError(f"{pr.path('gpu_choices')}: a choice exceeds max_gpus")
        pr.done()
        partitions.append(p)
    _unique(partitions, r.path("partitions"))

    gpu_choices: tuple[int, ...] = ()
    gpu_label = "GPU"
    gsr = r.child("gpus", required=False)
    if gsr is not None:
        gpu_choices = _int_list(gsr, "choices", True)
        gpu_label = gsr.text("label", required=False, default="GPU")
        gsr.done()
    offered = gpu_choices + tuple(x for p in partitions for x in p.gpu_choices)
    if any(g > 0 for g in offered) and gpu is None:
        raise CatalogueError(f"{r.path('node.gpu')}: GPUs are offered but the node has none")

    images = []
    for i, item in enumerate(r.items("images")):
        ir = _Reader(item, f"{r.path('images')}[{i}]")
        images.append(Image(ir.text("slug", pattern=_SLUG), ir.text("label"), ir.text("image")))
        ir.done()
    if not images:
        raise CatalogueError(f"{r.path('images')}: at least one image is required")
    _unique(images, r.path("images"))

    other = None
    orr = r.child("other_image", required=False)
    if orr is not None:
        pats = orr.items("allowed_patterns")
        for i, p in enumerate(pats):
            try:
                re.compile(p)
            except (re.error, TypeError) as e:
                where = f"{orr.path('allowed_patterns')}[{i}]"
                raise CatalogueError(f"{where}: bad pattern: {e}") from e
        other = OtherImageRule(tuple(pats), orr.text("message"))
        orr.done()

    sr = r.child("scratch")
    assert sr is not None
    begins = (
        sr.integer("path_begins_at")
        if sr.raw("path_begins_at", required=False) is not None
        else None
    )
    scratch = Scratch(
        sr.text("rse", required=False),
        sr.text("mount_path"),
        sr.text("pfn_prefix", required=False, pattern=_PFN_PREFIX),
        begins,
    )
    if not scratch.mount_path.startswith("/"):
        raise CatalogueError(f"{sr.path('mount_path')}: must be an absolute path")
    if scratch.pfn_prefix is not None and scratch.path_begins_at is not None:
        raise CatalogueError(
            f"{sr.path('pfn_prefix')}: give pfn_prefix or path_begins_at, not both"
        )
    sr.done()

    batch = None
    br = r.child("batch", required=(kind == "offload"))
    if br is not None:
        system = br.text("system")
        if system not in ("slurm", "arc"):
            raise CatalogueError(f"{br.path('system')}: must be 'slurm' or 'arc', got {system!r}")
        batch = Batch(
            system,
            br.text("account", required=False),
            br.text("time", required=False),
            _duration(br, "max_time"),
            br.integer("max_cells_per_user", required=False, default=4, minimum=1),
            (
                br.integer("max_gpus_per_user", minimum=1)
                if br.raw("max_gpus_per_user", False) is not None
                else None
            ),
        )
        if batch.time is not None:
            _duration(br, "time")
        br.done()

    reach = r.text("reach", required=False)
    if kind == "offload" and reach not in REACH_MODES:
        got = "" if reach is None else f", got {reach!r}"
        raise CatalogueError(
            f"{r.path('reach')}: an offload site must say how the hub reaches its notebooks: "
            f"'pod-vpn' (the site routes the virtual node's PodCIDR) or 'wstunnel' "
            f"(interLink's tunnel){got}"
        )
    if kind == "cloud" and reach is not None:
        raise CatalogueError(
            f"{r.path('reach')}: only for offload sites (a cloud site's "
            "pods are on the hub's own pod network)"
        )

    vos = r.items("allowed_vos", required=False)
    if not all(isinstance(v, str) and v for v in vos):
        raise CatalogueError(f"{r.path('allowed_vos')}: must be a list of VO names")

    budgets = []
    for i, item in enumerate(r.items("budgets", required=False)):
        bw = _Reader(item, f"{r.path('budgets')}[{i}]")
        period = bw.text("period")
        if period not in BUDGET_PERIODS:
            raise CatalogueError(
                f"{bw.path('period')}: must be one of {', '.join(BUDGET_PERIODS)}, got {period!r}"
            )
        hours = {}
        for key in ("gpu_hours", "cpu_hours"):
            v = bw.raw(key, required=False)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v <= 0):
                raise CatalogueError(f"{bw.path(key)}: must be a number of hours > 0")
            hours[key] = None if v is None else float(v)
        if hours["gpu_hours"] is None and hours["cpu_hours"] is None:
            raise CatalogueError(f"{bw.path('gpu_hours')}: give gpu_hours, cpu_hours or both")
        budgets.append(Budget(bw.text("vo"), period, **hours))
        bw.done()
    if len({b.vo for b in budgets}) != len(budgets):
        raise CatalogueError(f"{r.path('budgets')}: one budget per VO")

    site = Site(
        slug=slug,
        name=r.text("name"),
        title=r.text("title"),
        description=r.text("description"),
        kind=kind,
        node=node,
        allowed_vos=tuple(vos),
        resources=tuple(resources),
        images=tuple(images),
        other_image=other,
        scratch=scratch,
        start_timeout=r.integer("start_timeout", minimum=1),
        batch=batch,
        partitions=tuple(partitions),
        gpu_choices=gpu_choices,
        gpu_label=gpu_label,
        reach=reach,
        budgets=tuple(budgets),
    )
    r.done()
    return site


def parse_catalogue(data: Any, source: str = "catalogue") -> Catalogue:
    top = _Reader(data, "")
    items = top.items("sites")
    top.done()
    sites = tuple(_site(_Reader(item, f"sites[{i}]")) for i, item in enumerate(items))
    if not sites:
        raise CatalogueError(f"{source}: sites: at least one site is required")
    for attr in ("slug", "title"):
        seen: set[str] = set()
        for i, s in enumerate(sites):
            if getattr(s, attr) in seen:
                raise CatalogueError(f"sites[{i}].{attr}: duplicate {getattr(s, attr)!r}")
            seen.add(getattr(s, attr))
    nodes = [s.node.name for s in sites]
    if len(set(nodes)) != len(nodes):
        raise CatalogueError("sites: two sites share one node.name")
    return Catalogue(sites)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load a catalogue file, or the shipped default when ``path`` is None."""
    if path is None:
        text = resources.files("intertwin_hub").joinpath(DEFAULT_CATALOGUE).read_text()
        source = DEFAULT_CATALOGUE
    else:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise CatalogueError(f"cannot read site catalogue {path}: {e.strerror}") from e
        source = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CatalogueError(f"{source}: not valid YAML: {e}") from e
    try:
        return parse_catalogue(data, source)
    except CatalogueError as e:
        raise CatalogueError(f"{source}: {e}") from None
