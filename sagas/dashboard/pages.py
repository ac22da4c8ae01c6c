"""The read-only pages: workflows, one workflow's history, lag, the DLQ, the SLO panel."""

from __future__ import annotations

from functools import partial

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sagas.dashboard.rendering import Dashboard, attempt
from sagas.dashboard.seams import WorkflowQuery
from sagas.dashboard.timeline import step_summaries, timeline
from sagas.events import WorkflowStatus


def dashboard_of(request: Request) -> Dashboard:
    """The dashboard a request is served by."""
    dash: Dashboard = request.app.state.dashboard
    return dash


def saga_of(dash: Dashboard, name: str | None) -> str:
    """The saga a request names (default: the first shown); 404 for one not shown here."""
    if not name:
        return dash.sources.sagas[0]
    if name not in dash.sources.sagas:
        raise HTTPException(404, f"this dashboard does not show saga {name!r}")
    return name


def home(request: Request) -> Response:
    return RedirectResponse("/workflows", 303)


def workflows(request: Request) -> Response:
    dash = dashboard_of(request)
    params = request.query_params
    saga = saga_of(dash, params.get("saga"))
    status_text = params.get("status", "")
    try:
        status = WorkflowStatus(status_text) if status_text else None
    except ValueError as exc:
        raise HTTPException(400, f"no workflow status is called {status_text!r}") from exc
    page_text = params.get("page", "1")
    page = int(page_text) if page_text.isdigit() else 1
    query = WorkflowQuery(
        saga=saga,
        text=params.get("q", ""),
        status=status,
        page=page,
        page_size=dash.settings.page_size,
    )
    lister = dash.sources.workflows
    # One saga whose topics cannot be read must not hide the others' counts.
    counts = {name: attempt(partial(lister.counts, name)) for name in dash.sources.sagas}
    found, error = attempt(lambda: lister.search(query))
    return dash.render(
        request,
        "workflows.html",
        status_code=200 if error is None else 503,
        saga=saga,
        query=query,
        counts=counts,
        statuses=list(WorkflowStatus),
        found=found,
        error=error,
    )


def history(request: Request) -> Response:
    dash = dashboard_of(request)
    saga = saga_of(dash, request.path_params["saga"])
    workflow_id = request.path_params["workflow_id"]
    events, error = attempt(lambda: dash.sources.histories.history(saga, workflow_id))
    status = None
    if error is None:
        status, error = attempt(lambda: dash.sources.workflows.get(saga, workflow_id))
    if error is None and not events:
        error = f"no events of workflow {workflow_id!r} in saga {saga!r}"
        return dash.render(
            request, "history.html", 404, saga=saga, workflow_id=workflow_id, error=error
        )
    return dash.render(
        request,
        "history.html",
        status_code=200 if error is None else 503,
        saga=saga,
        workflow_id=workflow_id,
        status=status,
        entries=timeline(events or []),
        steps=step_summaries(events or []),
        error=error,
    )


def lag(request: Request) -> Response:
    dash = dashboard_of(request)
    rows, errors = [], []
    for saga in dash.sources.sagas:
        groups = dash.sources.groups[saga]
        found, error = attempt(partial(dash.sources.lag.lag, groups))
        rows.extend(found or [])
        if error is not None:
            errors.append(f"{saga}: {error}")
    error = "; ".join(errors) or None
    return dash.render(
        request,
        "lag.html",
        status_code=200 if error is None else 503,
        rows=rows,
        measures_seconds=dash.sources.lag.measures_seconds,
        error=error,
    )


def dead_letters(request: Request) -> Response:
    dash = dashboard_of(request)
    saga = saga_of(dash, request.query_params.get("saga"))
    letters, error = attempt(lambda: dash.sources.dead_letters.letters(saga))
    return dash.render(
        request,
        "dlq.html",
        status_code=200 if error is None else 503,
        saga=saga,
        letters=letters or [],
        can_discard=dash.sources.dead_letters.can_discard,
        error=error,
    )


def slo(request: Request) -> Response:
    dash = dashboard_of(request)
    if dash.slo is None:
        return dash.render(request, "slo.html", configured=False, panel=None)
    source = dash.slo
    panel, error = attempt(lambda: source.panel(dash.sources.sagas))
    return dash.render(
        request,
        "slo.html",
        status_code=200 if error is None else 503,
        configured=True,
        prometheus_url=source.url,
        panel=panel,
        error=error,
    )
