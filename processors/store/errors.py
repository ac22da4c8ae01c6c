"""The errors the state store raises, all under :class:`sagas.errors.SagaError`."""

from __future__ import annotations

from sagas.errors import SagaError


class StoreError(SagaError):
    """A state store could not be opened, read, written or restored."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        partition: int | None = None,
        non_retryable: bool = False,
    ) -> None:
        super().__init__(message, non_retryable=non_retryable)
        self.path = path
        self.partition = partition

    def __str__(self) -> str:
        where = [
            f"{name}={value}"
            for name, value in (("path", self.path), ("partition", self.partition))
            if value is not None
        ]
        return f"{self.message} ({', '.join(where)})" if where else self.message


class StoreClosedError(StoreError):
    """The partition store was used after it was closed or destroyed."""


class StoreLockedError(StoreError):
    """The partition store's directory is held by another open store (maybe another process)."""


class InvalidStoreDataError(StoreError):
    """A key or value given to the store is not ``bytes`` (values may also be ``None``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, non_retryable=True)


class ChangelogOffsetError(StoreError):
    """A changelog offset would move the store backwards, or the stored one is corrupt."""

    def __init__(
        self,
        message: str,
        *,
        stored_offset: int | None,
        offset: int | None,
        path: str | None = None,
        partition: int | None = None,
    ) -> None:
        super().__init__(message, path=path, partition=partition, non_retryable=True)
        self.stored_offset = stored_offset
        self.offset = offset


class ChangelogRestoreError(StoreError):
    """Reading the changelog topic back into a store failed."""

    def __init__(
        self,
        message: str,
        *,
        topic: str,
        partition: int,
        offset: int | None = None,
    ) -> None:
        super().__init__(message, partition=partition)
        self.topic = topic
        self.offset = offset

    def __str__(self) -> str:
        where = f"topic={self.topic}, partition={self.partition}, offset={self.offset}"
        return f"{self.message} ({where})"
