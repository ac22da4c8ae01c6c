"""The dashboard's web application: its routes, its token gate and its error pages."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sagas.dashboard import actions, pages
from sagas.dashboard.access import TokenGate, new_form_key, remember, same
from sagas.dashboard.rendering import STATIC, Dashboard, describe_error
from sagas.dashboard.seams import DashboardSources
from sagas.dashboard.settings import DashboardSettings


def create_app(sources: DashboardSources, settings: DashboardSettings) -> Starlette:
    """The dashboard of ``sources``, served as ``settings`` say."""
    if not sources.sagas:
        raise ValueError("the dashboard needs at least one saga")
    dash = Dashboard.build(sources, settings, new_form_key())

    def login_form(request: Request) -> Response:
        return dash.render(request, "login.html", wrong=False)

    async def login(request: Request) -> Response:
        form = await request.form()
        given = form.get("token")
        if settings.token is None or not same(given if isinstance(given, str) else None,
                                              settings.token):  # fmt: skip
            return dash.render(request, "login.html", 403, wrong=True)
        response = RedirectResponse("/workflows", 303)
        remember(response, settings.token)
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else describe_error(exc)
        return dash.render(request, "error.html", status, code=status, error=detail)

    async def server_error(request: Request, exc: Exception) -> Response:
        return dash.render(request, "error.html", 500, code=500, error=describe_error(exc))

    middleware = [] if settings.token is None else [Middleware(TokenGate, token=settings.token)]
    app = Starlette(
        routes=[
            Route("/", pages.home),
            Route("/workflows", pages.workflows),
            Route("/workflows/{saga}/{workflow_id:path}", pages.history),
            Route("/lag", pages.lag),
            Route("/dlq", pages.dead_letters),
            Route("/slo", pages.slo),
            Route("/confirm/{action}", actions.confirm),
            Route("/actions/{action}", actions.perform, methods=["POST"]),
            Route("/login", login_form),
            Route("/login", login, methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.dashboard = dash
    return app
