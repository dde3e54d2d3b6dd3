"""Configuration of the DataLake panel's server side.

Every trait defaults from rucio-jupyterlab's ``RUCIO_*`` environment convention (what the hub's
InterTwinSpawner injects, ``intertwin_hub/spawner/pod.py::rucio_env``), so an interTwin image
configured for rucio-jupyterlab works unchanged; ``c.DataLake.<trait>`` overrides it.
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Bool, Enum, Float, Int, Unicode, default, validate
from traitlets.config import Configurable


def _env(name: str, fallback: str = "") -> str:
    return os.environ.get(name, "").strip() or fallback


def _env_int(name: str, fallback: int) -> int:
    try:
        return int(_env(name)) if _env(name) else fallback
    except ValueError:
        return fallback


class DataLake(Configurable):
    """The Rucio DataLake as this JupyterLab session sees it: which Rucio, as whom, and where
    "make available here" puts data (the scratch RSE of the site the session runs at)."""

    rucio_base_url = Unicode(
        config=True,
        help="Base URL of the Rucio server, without a trailing slash "
        "(default: $RUCIO_BASE_URL). Empty: the DataLake panel says Rucio is not set up.",
    )

    @default("rucio_base_url")
    def _default_base_url(self) -> str:
        return _env("RUCIO_BASE_URL").rstrip("/")

    rucio_auth_url = Unicode(
        config=True,
        help="Base URL of Rucio's authentication server, used for userpass sign-in "
        "(default: $RUCIO_AUTH_URL, else the base URL).",
    )

    @default("rucio_auth_url")
    def _default_auth_url(self) -> str:
        return _env("RUCIO_AUTH_URL").rstrip("/")

    destination_rse = Unicode(
        None,
        allow_none=True,
        config=True,
        help="The scratch RSE of the site this session runs at: where 'make available here' "
        "replicates data (default: $RUCIO_DESTINATION_RSE). None: the site has no scratch "
        "RSE and make-available is disabled with a reason.",
    )

    @default("destination_rse")
    def _default_rse(self) -> str | None:
        return _env("RUCIO_DESTINATION_RSE") or None

    rse_mount_path = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Where the destination RSE is mounted on the compute node (default: "
        "$RUCIO_RSE_MOUNT_PATH). A replica's local path is its PFN minus the RSE "
        "protocol prefix (or as pfn_prefix / path_begins_at say), joined to this "
        "directory.",
    )

    @default("rse_mount_path")
    def _default_mount(self) -> str | None:
        return _env("RUCIO_RSE_MOUNT_PATH") or None

    path_begins_at = Int(
        None,
        allow_none=True,
        config=True,
        help="How a replica's PFN maps onto rse_mount_path when the site's catalogue says so: "
        "drop this many leading path components of the PFN and join the rest to the mount "
        "(rucio-jupyterlab's setting; default: $RUCIO_PATH_BEGINS_AT). None: drop the "
        "prefix of the RSE protocol that made the PFN (any scheme: file, davs, root).",
    )

    @default("path_begins_at")
    def _default_path_begins_at(self) -> int | None:
        n = _env_int("RUCIO_PATH_BEGINS_AT", -1)
        return n if n >= 0 else None

    pfn_prefix = Unicode(
        None,
        allow_none=True,
        config=True,
        help="An explicit PFN prefix (e.g. davs://door.example.org:2880/pnfs/example.org/"
        "data/intertwin/) that stands for rse_mount_path: a PFN starting with it is the "
        "mount path plus the rest (default: $INTERTWIN_RUCIO_PFN_PREFIX). Takes "
        "precedence over path_begins_at.",
    )

    @default("pfn_prefix")
    def _default_pfn_prefix(self) -> str | None:
        return _env("INTERTWIN_RUCIO_PFN_PREFIX") or None

    site_name = Unicode(
        config=True,
        help="Rucio site name of this session (the RSEs' `site` attribute, e.g. VEGA; default: "
        "$RUCIO_SITE_NAME). Sent as client_location so Rucio answers with lan PFNs.",
    )

    @default("site_name")
    def _default_site(self) -> str:
        return _env("RUCIO_SITE_NAME")

    site_title = Unicode(
        config=True,
        help="The site as users read it, e.g. 'Offload to Vega HPC - dev VO' (default: "
        "$INTERTWIN_SITE_TITLE, else the site name).",
    )

    @default("site_title")
    def _default_site_title(self) -> str:
        return _env("INTERTWIN_SITE_TITLE")

    default_lifetime_days = Int(
        config=True,
        help="Lifetime in days of a replication rule when the user does not choose one "
        "(default: $RUCIO_REPLICATION_RULE_LIFETIME_DAYS, else 7; 0 or less means 7: "
        "scratch space is never claimed forever from this panel).",
    )

    @default("default_lifetime_days")
    def _default_lifetime(self) -> int:
        return _env_int("RUCIO_REPLICATION_RULE_LIFETIME_DAYS", 7)

    max_lifetime_days = Int(
        90,
        config=True,
        help="Longest lifetime in days a user may ask for (creating or extending a rule).",
    )

    auth_type = Enum(
        ["oidc", "userpass"],
        config=True,
        help="How to authenticate to Rucio: 'oidc' sends a token (an OIDC JWT, or a Rucio token) "
        "read from the environment or a file (see oidc_auth); 'userpass' signs in with "
        "username/password and keeps the Rucio token in memory only (default: "
        "$RUCIO_AUTH_TYPE, else $RUCIO_DEFAULT_AUTH_TYPE, else 'oidc').",
    )

    @default("auth_type")
    def _default_auth_type(self) -> str:
        value = _env("RUCIO_AUTH_TYPE") or _env("RUCIO_DEFAULT_AUTH_TYPE") or "oidc"
        return value if value in ("oidc", "userpass") else "oidc"

    oidc_auth = Enum(
        ["env", "file"],
        config=True,
        help="Where the token comes from with auth_type 'oidc': 'env' (the variable oidc_env_name "
        "of this server's environment) or 'file' (oidc_file_name, re-read when Rucio refuses "
        "the token, so a refresher can renew it without a restart). Default: "
        "$RUCIO_OIDC_AUTH, else 'env'.",
    )

    @default("oidc_auth")
    def _default_oidc_auth(self) -> str:
        value = _env("RUCIO_OIDC_AUTH", "env")
        return value if value in ("env", "file") else "env"

    oidc_env_name = Unicode(
        config=True,
        help="Environment variable holding the token (default: $RUCIO_OIDC_ENV_NAME, else "
        "RUCIO_ACCESS_TOKEN).",
    )

    @default("oidc_env_name")
    def _default_oidc_env(self) -> str:
        return _env("RUCIO_OIDC_ENV_NAME", "RUCIO_ACCESS_TOKEN")

    oidc_file_name = Unicode(
        config=True,
        help="File holding the token (default: $RUCIO_OIDC_FILE_NAME). It should be readable by "
        "this user only.",
    )

    @default("oidc_file_name")
    def _default_oidc_file(self) -> str:
        return _env("RUCIO_OIDC_FILE_NAME")

    token_from_service = Bool(
        config=True,
        help="Renew the Rucio token through the intertwin hub service (GET "
        "{service_url}api/token/rucio with this server's JupyterHub token), which refreshes "
        "the user's sign-in and exchanges it for Rucio's audience: a session keeps reaching "
        "the DataLake after the token of spawn time expires (default: "
        "$INTERTWIN_RUCIO_TOKEN_FROM_SERVICE, which InterTwinSpawner sets when the hub logs in "
        "through an identity provider; else False: the token from oidc_auth, or userpass).",
    )

    @default("token_from_service")
    def _default_token_from_service(self) -> bool:
        return _env("INTERTWIN_RUCIO_TOKEN_FROM_SERVICE").lower() in ("1", "true", "yes")

    service_url = Unicode(
        config=True,
        help="The intertwin hub service's URL, for token_from_service (default: "
        "$INTERTWIN_SERVICE_URL, which InterTwinSpawner sets).",
    )

    @default("service_url")
    def _default_service_url(self) -> str:
        return _env("INTERTWIN_SERVICE_URL")

    hub_api_token = Unicode(
        config=True,
        help="This server's JupyterHub token, sent to the intertwin service for "
        "token_from_service (default: $JUPYTERHUB_API_TOKEN). Kept in memory.",
    )

    @default("hub_api_token")
    def _default_hub_api_token(self) -> str:
        return _env("JUPYTERHUB_API_TOKEN")

    token_min_life = Float(
        15.0,
        config=True,
        help="With token_from_service: a token with fewer seconds than this left is renewed "
        "before it is used (the service answers the same token until it is about to expire).",
    )

    account = Unicode(
        config=True,
        help="The user's Rucio account (default: $RUCIO_ACCOUNT). Empty: asked from Rucio "
        "(whoami) with the user's token. Never a shared or root account.",
    )

    @default("account")
    def _default_account(self) -> str:
        return _env("RUCIO_ACCOUNT")

    username = Unicode(
        config=True,
        help="Rucio userpass identity, for auth_type 'userpass' (default: "
        "$RUCIO_USERNAME, else the account).",
    )

    @default("username")
    def _default_username(self) -> str:
        return _env("RUCIO_USERNAME")

    password = Unicode(
        config=True,
        help="Rucio userpass password, for auth_type 'userpass' (default: "
        "$RUCIO_PASSWORD). Kept in memory; never written to disk.",
    )

    @default("password")
    def _default_password(self) -> str:
        return _env("RUCIO_PASSWORD")

    vo = Unicode(
        config=True, help="Rucio VO for multi-VO servers (default: $RUCIO_VO, else 'def')."
    )

    @default("vo")
    def _default_vo(self) -> str:
        return _env("RUCIO_VO", "def")

    ca_cert = Unicode(
        config=True,
        help="CA bundle or directory to verify Rucio's TLS certificate (default: "
        "$RUCIO_CA_CERT; empty: the system's CA bundle).",
    )

    @default("ca_cert")
    def _default_ca_cert(self) -> str:
        return _env("RUCIO_CA_CERT")

    request_timeout = Float(
        30.0, config=True, help="Seconds to wait for Rucio on one request before answering 503."
    )

    listing_cache_seconds = Float(
        300.0,
        config=True,
        help="How long a collection's content (or a search result) read from Rucio is reused "
        "for paging before it is read again.",
    )

    listing_cache_entries = Int(
        16,
        config=True,
        help="How many listings (collection contents, search results) are kept in memory at "
        "once; the least recently used is dropped first.",
    )

    listing_window_rows = Int(
        10_000,
        config=True,
        help="Most rows of one listing kept in memory. Rucio streams a listing from its start "
        "(it has no offsets), so paging further drops the oldest rows, and asking for a "
        "dropped row reads the stream again up to it. Bounds memory whatever the size of "
        "a collection or of a wildcard search.",
    )

    listing_readahead_rows = Int(
        2_000,
        config=True,
        help="How far a listing reads past the furthest row asked for, so the next page is "
        "ready; it then waits (Rucio's stream is not read further until asked).",
    )

    listing_idle_seconds = Float(
        60.0,
        config=True,
        help="A waiting listing nobody asks anything of for this long closes its Rucio "
        "stream (a later page reads it again).",
    )

    deep_replicas_max_files = Int(
        10_000,
        config=True,
        help="When Rucio has no collection-replica summary for a dataset, count its replicas "
        "per RSE from file replicas only up to this many files (slow for larger ones).",
    )

    max_page_size = Int(1000, config=True, help="Largest `limit` a client may ask for in one page.")

    @validate("rucio_base_url", "rucio_auth_url")
    def _strip_slash(self, proposal: Any) -> str:
        return str(proposal["value"]).rstrip("/")

    @validate("destination_rse", "rse_mount_path", "pfn_prefix")
    def _empty_is_none(self, proposal: Any) -> str | None:
        return proposal["value"] or None

    @property
    def auth_url(self) -> str:
        return self.rucio_auth_url or self.rucio_base_url

    @property
    def lifetime_days(self) -> int:
        """The default lifetime actually used (a non-positive setting means 7 days)."""
        days = self.default_lifetime_days if self.default_lifetime_days > 0 else 7
        return min(days, self.max_lifetime_days)
