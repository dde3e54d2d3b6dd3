"""Small helpers to drive the testbed hub's REST API and login form."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import aiohttp


async def start(
    session: aiohttp.ClientSession, api: str, user: str, server: str, options: dict[str, Any]
) -> tuple[int, str]:
    async with session.post(f"{api}/users/{user}") as r:
        assert r.status in (201, 409), await r.text()
    async with session.post(
        # the options as the whole body: JupyterHub 5 reads them so, and JupyterHub 6 still does
        # (its {"user_options": ...} form is new in 6.0)
        f"{api}/users/{user}/servers/{server}",
        json=options,
    ) as r:
        return r.status, await r.text()


async def follow(
    session: aiohttp.ClientSession, api: str, user: str, server: str, timeout: float = 240
) -> list[dict[str, Any]]:
    events = []
    async with session.get(
        f"{api}/users/{user}/servers/{server}/progress",
        timeout=aiohttp.ClientTimeout(total=timeout),
    ) as r:
        assert r.status == 200, await r.text()
        async for raw in r.content:
            line = raw.decode().strip()
            if line.startswith("data:"):
                ev = json.loads(line[5:])
                events.append(ev)
                if ev.get("ready") or ev.get("failed"):
                    break
    return events


async def spawn(
    session: aiohttp.ClientSession, api: str, user: str, server: str, options: dict[str, Any]
) -> list[dict[str, Any]]:
    status, text = await start(session, api, user, server, options)
    assert status in (201, 202), text
    return await follow(session, api, user, server)


async def stop(session: aiohttp.ClientSession, api: str, user: str, server: str) -> None:
    async with session.delete(f"{api}/users/{user}/servers/{server}", json={"remove": True}) as r:
        assert r.status in (202, 204), await r.text()


async def login(hub_url: str, user: str, password: str) -> aiohttp.ClientSession:
    """A browser-like session logged in through the hub's login form."""
    s = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with s.get(f"{hub_url}/hub/login") as r:
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', await r.text())
    data = {"username": user, "password": password}
    if xsrf:
        data["_xsrf"] = xsrf.group(1)
    async with s.post(f"{hub_url}/hub/login", data=data, allow_redirects=False) as r:
        assert r.status == 302, await r.text()
    return s


def form_action(html: str) -> str:
    """The spawn form's target; JupyterHub carries the XSRF token in its query string."""
    m = re.search(r'<form[^>]*id="spawn_form"[^>]*action="([^"]+)"', html, re.S)
    assert m, "no spawn form on the page"
    return unescape(m.group(1))


async def checkin_login(
    hub_url: str, idp_url: str, user: str, password: str, next_url: str = "/hub/home"
) -> tuple[aiohttp.ClientSession, int, str, str]:
    """Log in as a browser does on a hub whose login is Keycloak (EGI Check-in) at
    ``idp_url``: the hub's oauth_login redirects to Keycloak's login form, the form is posted,
    Keycloak redirects to the hub's oauth_callback, which redirects to ``next_url``. Returns
    the session (with the hub's cookie when the login succeeded) and the last page's status,
    text and URL."""
    # Keycloak marks its cookies Secure on loopback too (a browser's "potentially trustworthy"
    # origin, https://w3c.github.io/webappsec-secure-contexts/): send them back over HTTP
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[idp_url])
    s = aiohttp.ClientSession(cookie_jar=jar)
    async with s.get(f"{hub_url}/hub/oauth_login", params={"next": next_url}) as r:
        page = await r.text()
        assert r.status == 200 and "kc-form-login" in page, f"{r.status} {r.url}: {page[:500]}"
    m = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page, re.S)
    assert m, "no login form on Keycloak's page"
    form = {"username": user, "password": password, "credentialId": ""}
    async with s.post(unescape(m.group(1)), data=form) as r:
        return s, r.status, await r.text(), str(r.url)


async def logged_in(hub: dict[str, Any], user: str) -> None:
    """``user`` logs in once on a hub of the ``checkin_hub`` kind (through its Keycloak), as
    they would before anyone spawns for them: the hub then knows their VOs (groups) and holds
    their tokens."""
    from testbed.keycloak import USERS_PASSWORD

    session, status, page, url = await checkin_login(
        hub["url"], hub["idp_url"], user, USERS_PASSWORD
    )
    async with session:
        assert status == 200 and url.endswith("/hub/home"), f"{status} {url}: {page[:500]}"


async def token_from_token_page(
    session: aiohttp.ClientSession, hub_url: str, user: str, note: str
) -> str:
    """A token as ``user`` makes one on the hub's Token page after logging in (``session``:
    their browser-like session, e.g. from ``checkin_login``): ``POST
    /hub/api/users/<user>/tokens`` with the session's cookie and the page's XSRF token (its
    ``jhdata.xsrf_token``) in the ``_xsrf`` parameter, as the page's script (JupyterHub's
    jhapi.js) sends it. Without scopes the token has the user's own permissions (JupyterHub's
    default ``token`` role)."""
    async with session.get(f"{hub_url}/hub/token") as r:
        page = await r.text()
        assert r.status == 200, f"{r.status} {r.url}: {page[:500]}"
    m = re.search(r'xsrf_token:\s*"([^"]+)"', page)
    assert m, "no xsrf_token on the hub's Token page"
    async with session.post(
        f"{hub_url}/hub/api/users/{user}/tokens",
        params={"_xsrf": m.group(1)},
        json={"note": note},
    ) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["token"])
