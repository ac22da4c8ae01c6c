"""Actions from the page: each one asks for confirmation on a page of its own, then runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from sagas.dashboard.access import same
from sagas.dashboard.pages import dashboard_of, saga_of
from sagas.dashboard.rendering import Dashboard, attempt


@dataclass(frozen=True, slots=True)
class Target:
    """What an action is about: a workflow, or a DLQ record at ``partition:offset``."""

    action: str
    saga: str
    workflow_id: str | None
    at: tuple[int, int] | None

    @property
    def at_text(self) -> str | None:
        return None if self.at is None else f"{self.at[0]}:{self.at[1]}"

    def fields(self) -> dict[str, str]:
        """The form fields that name this target again."""
        values = {"saga": self.saga}
        if self.workflow_id is not None:
            values["workflow"] = self.workflow_id
        if self.at_text is not None:
            values["at"] = self.at_text
        return values

    @property
    def back(self) -> str:
        """The page the action was started from."""
        if self.workflow_id is not None:
            return f"/workflows/{self.saga}/{self.workflow_id}"
        return "/dlq?" + urlencode({"saga": self.saga})


WORKFLOW_ACTIONS = ("cancel", "terminate")
LETTER_ACTIONS = ("redrive", "discard")


def _target(dash: Dashboard, action: str, values: Mapping[str, str]) -> Target:
    if action == "discard" and not dash.sources.dead_letters.can_discard:
        raise HTTPException(404, "discarding dead-lettered records is not supported yet")
    if action not in WORKFLOW_ACTIONS + LETTER_ACTIONS:
        raise HTTPException(404, f"no action is called {action!r}")
    saga = saga_of(dash, values.get("saga"))
    if action in WORKFLOW_ACTIONS:
        workflow_id = values.get("workflow", "")
        if not workflow_id:
            raise HTTPException(400, f"{action} needs the workflow id")
        return Target(action, saga, workflow_id, None)
    partition, _, offset = values.get("at", "").partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise HTTPException(400, f"{action} needs the record's position as PARTITION:OFFSET")
    return Target(action, saga, None, (int(partition), int(offset)))


def confirm(request: Request) -> Response:
    """The confirmation page of an action: what it will do, and the form that does it."""
    dash = dashboard_of(request)
    target = _target(dash, request.path_params["action"], request.query_params)
    return dash.render(
        request, "confirm.html", target=target, fields=target.fields(), form_key=dash.form_key
    )


async def perform(request: Request) -> Response:
    """Run a confirmed action; a post without the confirmation or the form key is refused."""
    dash = dashboard_of(request)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not same(values.get("form_key"), dash.form_key):
        raise HTTPException(403, "this action was not confirmed on this dashboard's own page")
    target = _target(dash, request.path_params["action"], values)
    if values.get("confirm") != "yes":
        raise HTTPException(400, "the action was not confirmed")
    reason = values.get("reason", "").strip()
    if target.action == "terminate" and not reason:
        raise HTTPException(400, "terminating a workflow needs a reason (it is recorded)")
    run = _runner(dash, target, reason or "cancelled from the dashboard")
    message, error = await run_in_threadpool(attempt, run)
    return dash.render(
        request,
        "done.html",
        status_code=200 if error is None else 502,
        target=target,
        message=message,
        error=error,
    )


def _runner(dash: Dashboard, target: Target, reason: str) -> Callable[[], str]:
    control, letters = dash.sources.control, dash.sources.dead_letters
    saga, workflow_id, at = target.saga, target.workflow_id or "", target.at or (0, 0)

    def cancel() -> str:
        control.cancel(saga, workflow_id, reason)
        return f"Asked workflow {workflow_id} to cancel: it compensates, then ends CANCELLED."

    def terminate() -> str:
        control.terminate(saga, workflow_id, reason)
        return f"Asked workflow {workflow_id} to terminate, without compensation."

    def redrive() -> str:
        sent = letters.redrive(saga, *at)
        return f"Redrove {sent} record(s) from {target.at_text}: the workflow goes on."

    def discard() -> str:
        letters.discard(saga, *at)
        return f"Discarded the record at {target.at_text}."

    runs = {"cancel": cancel, "terminate": terminate, "redrive": redrive, "discard": discard}
    return runs[target.action]
