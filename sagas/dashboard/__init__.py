"""The built-in web dashboard: workflows, histories, lag, the DLQ, SLOs, and actions.

``sagas dashboard MODULE:SAGA`` serves it; :func:`create_app` builds the application of
any :class:`DashboardSources`, so that tests and other hosts can serve it too.
"""

from __future__ import annotations

from sagas.dashboard.app import create_app
from sagas.dashboard.seams import DashboardSources
from sagas.dashboard.settings import DashboardSettings

__all__ = ["DashboardSettings", "DashboardSources", "create_app"]
