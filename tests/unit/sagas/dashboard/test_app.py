"""The web application over in-memory sources: access, confirmations, and failed reads."""

from __future__ import annotations

import re
import socket

import pytest
from starlette.testclient import TestClient

from sagas.dashboard import DashboardSettings, create_app
from sagas.dashboard.seams import DeadLetterRow
from sagas.events import Event, EventType, Origin, StatusRecord, WorkflowStatus
from tests.unit.sagas.dashboard.memory_sources import MemoryShop

TOKEN = "s3cret-token"


def shop_with_workflows() -> MemoryShop:
    shop = MemoryShop(broken={"broken"})
    shop.statuses["shop"] = {
        "w-1": StatusRecord("w-1", "shop", 1, WorkflowStatus.RUNNING, 1_000, 2_000),
        "w-2": StatusRecord("w-2", "shop", 1, WorkflowStatus.COMPLETED, 1_000, 3_000),
    }
    shop.events[("shop", "w-1")] = [
        Event("e1", "w-1", "shop", 1, EventType.STARTED, Origin.PROCESSOR, 1_000),
        Event("e2", "w-1", "shop", 1, EventType.STEP_SCHEDULED, Origin.PROCESSOR, 1_005,
              step="reserve", attempt=1),
    ]  # fmt: skip
    shop.letters["shop"] = [DeadLetterRow("shop", 0, 7, "w-9", "unknown_version", "v2", 10)]
    return shop


def client_of(shop: MemoryShop, **settings: object) -> TestClient:
    app = create_app(shop.sources(["shop", "broken"]), DashboardSettings(**settings))  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False)


def form_key(page: str) -> str:
    found = re.search(r'name="form_key" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def test_pages_show_what_the_sources_hold() -> None:
    web = client_of(shop_with_workflows())
    listing = web.get("/workflows?saga=shop")
    assert listing.status_code == 200
    assert 'data-workflow="w-1"' in listing.text
    assert 'data-workflow="w-2"' in listing.text
    history = web.get("/workflows/shop/w-1")
    assert history.status_code == 200
    assert history.text.index('data-type="started"') < history.text.index("step_scheduled")
    assert "/confirm/cancel?saga=shop&amp;workflow=w-1" in history.text
    assert web.get("/workflows/shop/w-404").status_code == 404
    assert "unknown_version" in web.get("/dlq?saga=shop").text


def test_a_failed_read_shows_its_one_line_error_not_a_trace() -> None:
    web = client_of(shop_with_workflows())
    for path in ("/workflows?saga=broken", "/workflows/broken/w-1", "/dlq?saga=broken"):
        page = web.get(path)
        assert page.status_code == 503, path
        assert "reading dash.events failed: broker down (saga=broken)" in page.text
        assert "Traceback" not in page.text
    # The other saga's counts are still shown beside the broken one's error.
    listing = web.get("/workflows?saga=broken")
    assert 'data-saga="shop"' in listing.text
    assert 'data-status="RUNNING"' in listing.text


def test_unknown_sagas_and_actions_are_not_found() -> None:
    web = client_of(shop_with_workflows())
    assert web.get("/workflows?saga=other").status_code == 404
    assert web.get("/confirm/explode?saga=shop&workflow=w-1").status_code == 404
    assert web.get("/workflows?saga=shop&status=SLEEPY").status_code == 400


def test_an_action_runs_only_from_its_confirmation_page() -> None:
    shop = shop_with_workflows()
    web = client_of(shop)
    confirm = web.get("/confirm/cancel?saga=shop&workflow=w-1")
    assert confirm.status_code == 200
    assert "compensates every step it completed" in confirm.text
    fields = {"saga": "shop", "workflow": "w-1", "confirm": "yes", "reason": "no longer needed"}
    assert web.post("/actions/cancel", data=fields).status_code == 403  # no form key
    assert web.post("/actions/cancel", data={**fields, "form_key": "guessed"}).status_code == 403
    key = form_key(confirm.text)
    unconfirmed = {**fields, "form_key": key, "confirm": "no"}
    assert web.post("/actions/cancel", data=unconfirmed).status_code == 400
    assert shop.done == []
    done = web.post("/actions/cancel", data={**fields, "form_key": key})
    assert done.status_code == 200
    assert shop.done == [("cancel", "shop", "w-1", "no longer needed")]


def test_terminate_needs_a_reason_and_redrive_a_position() -> None:
    shop = shop_with_workflows()
    web = client_of(shop)
    key = form_key(web.get("/confirm/terminate?saga=shop&workflow=w-1").text)
    fields = {"saga": "shop", "workflow": "w-1", "confirm": "yes", "form_key": key}
    assert web.post("/actions/terminate", data=fields).status_code == 400
    assert web.post("/actions/terminate", data={**fields, "reason": "stuck"}).status_code == 200
    assert web.get("/confirm/redrive?saga=shop&at=zero").status_code == 400
    redrive = {"saga": "shop", "at": "0:7", "confirm": "yes", "form_key": key}
    assert "Redrove 1 record(s) from 0:7" in web.post("/actions/redrive", data=redrive).text
    assert shop.done == [("terminate", "shop", "w-1", "stuck"), ("redrive", "shop", "0:7")]
    failed = web.post("/actions/redrive", data={**redrive, "saga": "broken"})
    assert failed.status_code == 502
    assert "broker down" in failed.text


def test_discard_is_offered_only_when_the_desk_can_discard() -> None:
    shop = shop_with_workflows()
    assert "Discard…" not in client_of(shop).get("/dlq?saga=shop").text
    assert client_of(shop).get("/confirm/discard?saga=shop&at=0:7").status_code == 404
    shop.can_discard = True
    assert "Discard…" in client_of(shop).get("/dlq?saga=shop").text


def test_lag_seconds_show_only_when_measured() -> None:
    shop = shop_with_workflows()
    page = client_of(shop).get("/lag").text
    assert "not measured" in page
    assert '<td class="n seconds">—</td>' in page
    shop.measures_seconds = True
    assert '<td class="n seconds">1.5</td>' in client_of(shop).get("/lag").text


def test_every_request_without_the_token_is_refused() -> None:
    web = client_of(shop_with_workflows(), token=TOKEN)
    assert web.get("/workflows").status_code == 403
    assert web.get("/workflows", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert web.post("/actions/cancel", data={"saga": "shop"}).status_code == 403
    assert web.get("/static/dashboard.css").status_code == 200
    assert web.get("/workflows", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert web.post("/login", data={"token": "nope"}).status_code == 403
    signed_in = web.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert signed_in.status_code == 303
    assert web.get("/workflows").status_code == 200  # the cookie the login set


def test_a_token_in_a_link_becomes_a_cookie() -> None:
    web = client_of(shop_with_workflows(), token=TOKEN)
    first = web.get(f"/workflows?saga=shop&token={TOKEN}", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/workflows?saga=shop"
    assert web.get("/workflows?saga=shop").status_code == 200


def test_the_slo_panel_is_honest_about_its_source() -> None:
    assert "Not configured" in client_of(shop_with_workflows()).get("/slo").text
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nobody answers there
    web = client_of(shop_with_workflows(), prometheus_url=f"http://127.0.0.1:{port}")
    page = web.get("/slo")
    assert page.status_code == 503
    assert f"asking Prometheus at http://127.0.0.1:{port} failed" in page.text


def test_a_dashboard_needs_a_saga() -> None:
    with pytest.raises(ValueError, match="at least one saga"):
        create_app(MemoryShop().sources([]), DashboardSettings())
