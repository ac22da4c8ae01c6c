"""What every page handler shares: the sources, the templates, and reads that fail softly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from sagas.dashboard.seams import DashboardSources
from sagas.dashboard.settings import DashboardSettings
from sagas.dashboard.slo import PrometheusSlo
from sagas.errors import SagaError

T = TypeVar("T")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def format_ms(value: int | None) -> str:
    """A time in epoch milliseconds as UTC text, to the second."""
    if not value:
        return "-"
    return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def describe_error(exc: BaseException) -> str:
    """One line saying what went wrong, for a page: never a traceback."""
    text = str(exc) if isinstance(exc, SagaError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


@dataclass
class Dashboard:
    """The dashboard's sources and settings, and how its pages are rendered."""

    sources: DashboardSources
    settings: DashboardSettings
    form_key: str
    templates: Jinja2Templates
    slo: PrometheusSlo | None

    @classmethod
    def build(
        cls, sources: DashboardSources, settings: DashboardSettings, form_key: str
    ) -> Dashboard:
        templates = Jinja2Templates(directory=str(TEMPLATES))
        templates.env.filters["ms_time"] = format_ms
        slo = PrometheusSlo(settings.prometheus_url) if settings.prometheus_url else None
        return cls(sources, settings, form_key, templates, slo)

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> Response:
        context.setdefault("error", None)
        return self.templates.TemplateResponse(
            request,
            name,
            {"sagas": self.sources.sagas, "section": name.removesuffix(".html"), **context},
            status_code=status_code,
        )


def attempt(read: Callable[[], T]) -> tuple[T | None, str | None]:
    """Run a read of Kafka (or Prometheus): its value, or None and the error's one line."""
    try:
        return read(), None
    except Exception as exc:  # a page shows any failed read as its error, never a trace
        return None, describe_error(exc)
