"""The client services use to start, signal, cancel and query workflows, and its readers
of a saga's status, history and dead letters.

Built on ``schemas`` and ``topics`` only; it never imports the runtime (``processors``).
"""

from sagas.client.saga_client import SagaClient, SagaRef, StartResult

__all__ = ["SagaClient", "SagaRef", "StartResult"]
