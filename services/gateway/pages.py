"""The pages' plumbing: who is signed in, in which language, and the sign-in form."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.gateway.access import RateLimiter
from services.gateway.app import Gateway, gateway_of
from services.gateway.http import Refusal
from services.gateway.people import Role, Session, session_of, sign_in, sign_out

HERE = Path(__file__).parent
COOKIE = "siaga_session"
LANG_COOKIE = "siaga_lang"
LANGUAGES = ("id", "en")
# Tries at a name's password: a few at once, then one every six seconds (a person who
# mistypes is not slowed; guessing is, and each refused try still costs an argon2 check).
SIGN_INS = RateLimiter(rate_per_minute=10, burst=5)


def load_strings(path: Path = HERE / "templates" / "strings.toml") -> dict[str, dict[str, str]]:
    """What the pages say in each language; a key missing in one language is an error."""
    strings = tomllib.loads(path.read_text())
    keys = {lang: set(strings.get(lang, {})) for lang in LANGUAGES}
    if keys["id"] != keys["en"]:
        raise ValueError(f"{path}: keys differ between id and en: {keys['id'] ^ keys['en']}")
    return {lang: dict(strings[lang]) for lang in LANGUAGES}


STRINGS = load_strings()
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)


class SignInNeeded(Exception):
    """A page asked for by nobody signed in: to the sign-in form, and back afterwards."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


def language(request: Request) -> str:
    """The language asked for (`?lang=`), else the one chosen before, else Indonesian."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return asked if asked in LANGUAGES else "id"


def render(
    request: Request,
    template: str,
    *,
    session: Session | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page in the person's language; the language chosen is remembered."""
    lang = language(request)
    html = TEMPLATES.get_template(template).render(
        lang=lang,
        t=STRINGS[lang],
        person=session.person if session else None,
        csrf=session.csrf if session else "",
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
    return response


async def current_session(request: Request) -> Session | None:
    """The signed-in person's session, if any."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    gateway = gateway_of(request)
    return await session_of(gateway.pool, token=token, now=gateway.clock())


async def page_session(request: Request, roles: Iterable[Role]) -> Session:
    """The session of a person who may see this page; else to the sign-in form (nobody
    signed in) or a 403 (another role)."""
    session = await current_session(request)
    if session is None:
        raise SignInNeeded(request.url.path)
    if session.person.role not in set(roles):
        raise Refusal(403, STRINGS[language(request)]["forbidden"])
    return session


async def action_session(request: Request, roles: Iterable[Role], *, csrf: str | None) -> Session:
    """The session of a person who may do this: signed in (401), of a role that may
    (403), and sending the session's form token (403: a page of another site cannot)."""
    session = await current_session(request)
    if session is None:
        raise Refusal(401, "sign in first")
    if session.person.role not in set(roles):
        raise Refusal(403, f"a {session.person.role.value} may not do this")
    sent = csrf or request.headers.get("x-csrf-token")
    if not sent or sent != session.csrf:
        raise Refusal(403, "the form token is missing or stale: reload the page")
    return session


def _local(path: str | None) -> str | None:
    """A path on this site to go back to (never another site's address)."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return None


def home_of(role: Role) -> str:
    """Where a person lands after signing in."""
    return "/unit" if role is Role.UNIT else "/"


def _secure(gateway: Gateway) -> bool:
    return (gateway.settings.public_url or "").startswith("https://")


def page_routes(app: FastAPI) -> None:
    """The sign-in form, signing out, and the pages' scripts and styles."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    async def sign_in_needed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInNeeded)
        return RedirectResponse(f"/login?next={quote(exc.back_to)}", status_code=303)

    app.add_exception_handler(SignInNeeded, sign_in_needed)
    _sign_in_routes(app)
    _session_routes(app)


def _sign_in_routes(app: FastAPI) -> None:
    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request) -> HTMLResponse:
        """The sign-in form."""
        return render(request, "login.html", next=_local(request.query_params.get("next")) or "")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        """Check the password; a session cookie and the person's page, or the form again."""
        gateway = gateway_of(request)
        form = await request.form()
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        back = _local(str(form.get("next", "")))
        t = STRINGS[language(request)]
        if SIGN_INS.take(name.lower(), now=time.monotonic()):
            return render(request, "login.html", status=429, message=t["too_many"], next=back)
        async with gateway.pool.acquire() as conn:
            signed = await sign_in(
                conn,
                name=name,
                password=password,
                now=gateway.clock(),
                lifetime=timedelta(hours=gateway.settings.session_hours),
            )
        if signed is None:
            return render(request, "login.html", status=401, message=t["wrong_password"], next=back)
        token, session = signed
        response = RedirectResponse(back or home_of(session.person.role), status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(gateway.settings.session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=_secure(gateway),
        )
        return response


def _session_routes(app: FastAPI) -> None:
    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        """End the session (the form's token must be the session's)."""
        form = await request.form()
        await action_session(request, list(Role), csrf=str(form.get("csrf", "")))
        token = request.cookies.get(COOKIE, "")
        await sign_out(gateway_of(request).pool, token=token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/whoami", include_in_schema=False)
    async def whoami(request: Request) -> JSONResponse:
        """The signed-in person (for the pages' scripts): name, role, unit, agency."""
        session = await current_session(request)
        if session is None:
            raise Refusal(401, "sign in first")
        p = session.person
        return JSONResponse(
            {"name": p.name, "role": p.role.value, "unit_id": p.unit_id, "agency": p.agency}
        )
