"""The login side of runway's auth manager (``auth.py``): a FastAPI app Airflow mounts under ``/auth``.

- ``POST /auth/token`` (JSON or form ``username``, ``password``): 201 ``{"access_token": JWT}`` for the REST API
  (``Authorization: Bearer``); 401 for a wrong name or password, 400 when one is missing. The same contract as
  SimpleAuthManager's, so clients and Airflow's docs work unchanged;
- ``POST /auth/token/cli``: the same, with ``[api_auth] jwt_cli_expiration_time`` (``airflowctl``);
- ``GET /auth/login?next=...``: a plain HTML form (no script); ``POST /auth/login`` sets Airflow's ``_token``
  cookie (HttpOnly, SameSite=Lax) and sends the browser back to ``next`` when it is on this server.

The form refuses a post sent from another site (``Origin`` / ``Sec-Fetch-Site``), so no page elsewhere can log a
visitor in under an account of its choosing. No password is logged or echoed back.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from airflow.api_fastapi.app import get_cookie_path
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.simple.datamodels.login import LoginBody, LoginResponse
from airflow.api_fastapi.auth.managers.simple.utils import parse_login_body
from airflow.api_fastapi.core_api.security import is_safe_url
from airflow.configuration import conf
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

Authenticate = Callable[[str, str], BaseUser | None]
IssueToken = Callable[[BaseUser, int], str]
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to Airflow (runway)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;display:flex;justify-content:center;margin-top:12vh}}
form{{display:flex;flex-direction:column;gap:.6em;width:18em}}input,button{{font-size:1em;padding:.4em}}
.error{{color:#b00020}}</style></head>
<body><form method="post" action="login">
<h1>Sign in to Airflow</h1>{error}
<input type="hidden" name="next" value="{next}">
<label>User <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>
"""


def login_page(*, next_url: str, error: str = "") -> str:
    """The login form; ``next_url`` and ``error`` are escaped."""
    shown = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return _PAGE.format(error=shown, next=html.escape(next_url, quote=True))


def from_this_site(request: Request) -> bool:
    """Whether a browser's post came from this server's own page (or from no page: a script or a test)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def login_app(*, authenticate: Authenticate, issue_token: IssueToken) -> FastAPI:
    """The app Airflow mounts under ``/auth``.

    Args:
        authenticate: name, password -> the user, or None when they do not match.
        issue_token: user, lifetime in seconds -> a signed Airflow JWT.
    """
    app = FastAPI(title="runway login", docs_url=None, redoc_url=None, openapi_url=None)

    def token_for(body: LoginBody, expires_in_s: int) -> LoginResponse:
        if not body.username or not body.password:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "Username and password must be provided")
        user = authenticate(body.username, body.password)
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Invalid credentials")
        return LoginResponse(access_token=issue_token(user, expires_in_s))

    @app.post("/token", status_code=status.HTTP_201_CREATED)
    def create_token(body: Annotated[LoginBody, Depends(parse_login_body)]) -> LoginResponse:
        return token_for(body, conf.getint("api_auth", "jwt_expiration_time"))

    @app.post("/token/cli", status_code=status.HTTP_201_CREATED)
    def create_token_cli(body: LoginBody) -> LoginResponse:
        return token_for(body, conf.getint("api_auth", "jwt_cli_expiration_time"))

    @app.get("/login", response_class=HTMLResponse)
    def form(next: str = "") -> HTMLResponse:
        return HTMLResponse(login_page(next_url=next), headers=PAGE_HEADERS)

    @app.post("/login")
    async def sign_in(request: Request) -> Response:
        if not from_this_site(request):
            return HTMLResponse("a sign-in from another site is refused", status.HTTP_403_FORBIDDEN, PAGE_HEADERS)
        fields = await request.form()
        name, password, next_url = (str(fields.get(key) or "") for key in ("username", "password", "next"))
        user = await run_in_threadpool(authenticate, name, password) if name and password else None
        if user is None:
            page = login_page(next_url=next_url, error="Wrong user name or password.")
            return HTMLResponse(page, status.HTTP_401_UNAUTHORIZED, PAGE_HEADERS)
        home = conf.get("api", "base_url", fallback="/") or "/"
        target = next_url if next_url and is_safe_url(next_url, request=request) else home
        response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
        secure = request.base_url.scheme == "https" or bool(conf.get("api", "ssl_cert", fallback=""))
        token = issue_token(user, conf.getint("api_auth", "jwt_expiration_time"))
        response.set_cookie(
            COOKIE_NAME_JWT_TOKEN, token, path=get_cookie_path(), secure=secure, httponly=True, samesite="lax"
        )
        return response

    return app
