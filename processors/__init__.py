"""The runtime of kafka-sagas: the saga processor, step workers, their state store and metrics.

It exports nothing itself; its parts are imported from their modules
(``processors.runner``, ``processors.store``, ``processors.settings``).
"""

__all__: list[str] = []
