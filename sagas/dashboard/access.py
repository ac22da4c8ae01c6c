"""Who may use the dashboard: the token check on every request, and the form key of actions."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "sagas_dashboard_token"
OPEN_PATHS = ("/login", "/static/")
"""Paths served without the token: the login form and the stylesheet it uses."""


def same(given: str | None, expected: str) -> bool:
    """Whether ``given`` is ``expected``, in time that does not depend on where they differ."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def new_form_key() -> str:
    """A secret of this process that every action form carries.

    A page of another site can make a browser post to the dashboard, but cannot read a
    confirmation page to learn the key, so it cannot post an action that is accepted.
    """
    return secrets.token_urlsafe(24)


class TokenGate:
    """Refuses (403) every request that does not carry the dashboard's token.

    The token comes as ``Authorization: Bearer <token>``, as the cookie the login form
    sets, or once as ``?token=`` in a link, which sets the cookie and drops it from the
    address.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response = self._check(request)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _check(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer ") and same(header.removeprefix("Bearer "), self.token):
            return None
        if same(request.cookies.get(COOKIE), self.token):
            return None
        if same(request.query_params.get("token"), self.token):
            rest = urlencode(
                [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            )
            response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), 303)
            remember(response, self.token)
            return response
        return PlainTextResponse(
            "403 Forbidden: this dashboard needs its token (sign in at /login).", 403
        )


def remember(response: Response, token: str) -> None:
    """Keep the token in a cookie that scripts cannot read and other sites do not send."""
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
