"""Document signing: send for signature, wait up to 30 days for ``signed``; on
timeout send a reminder and wait 7 more days, then cancel the document; once
signed, process it.

``DOCUMENTS`` stands in for the e-signature service, by idempotency key.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import END, Retry, Saga, StepContext, StepKind

DOCUMENTS: dict[str, str] = {}
"""Effects applied, by idempotency key; a stand-in for the e-signature service."""


class SigningRequest(BaseModel):
    """A document to have signed."""

    document_id: str
    signer: str


class Signature(BaseModel):
    """The ``signed`` signal's payload."""

    signed_by: str


saga = Saga("signing", input=SigningRequest, version=1)
_RETRY = Retry(max_attempts=5, initial_interval=timedelta(minutes=1))
_TIMEOUT = timedelta(seconds=30)


@saga.step(timeout=timedelta(seconds=30))
def send_for_signature(ctx: StepContext[SigningRequest]) -> str:
    """Send the document to the signer."""
    DOCUMENTS.setdefault(ctx.idempotency_key, f"sent to {ctx.input.signer}")
    return f"envelope-{ctx.input.document_id}"


@send_for_signature.compensation
def withdraw_envelope(ctx: StepContext[SigningRequest]) -> None:
    """Withdraw the envelope of a cancelled signing."""
    DOCUMENTS.setdefault(ctx.idempotency_key, f"withdrew {ctx.result_of(send_for_signature)}")


saga.wait_for(
    "wait_for_signature",
    signal="signed",
    payload=Signature,
    timeout=timedelta(days=30),
    on_timeout="send_reminder",
    then="process_document",
)


@saga.step(kind=StepKind.RETRIABLE, retry=_RETRY, timeout=_TIMEOUT)
def send_reminder(ctx: StepContext[SigningRequest]) -> None:
    """Remind the signer once."""
    DOCUMENTS.setdefault(ctx.idempotency_key, f"reminded {ctx.input.signer}")


saga.wait_for(
    "wait_after_reminder",
    signal="signed",
    payload=Signature,
    timeout=timedelta(days=7),
    on_timeout="cancel_document",
    then="process_document",
)


@saga.step(kind=StepKind.RETRIABLE, retry=_RETRY, timeout=_TIMEOUT, then=END)
def cancel_document(ctx: StepContext[SigningRequest]) -> None:
    """Cancel a document nobody signed in 37 days."""
    DOCUMENTS.setdefault(ctx.idempotency_key, f"cancelled {ctx.input.document_id}")


@saga.step(kind=StepKind.RETRIABLE, retry=_RETRY, timeout=_TIMEOUT)
def process_document(ctx: StepContext[SigningRequest]) -> None:
    """File the signed document."""
    signature: Signature = ctx.signal("signed")
    DOCUMENTS.setdefault(ctx.idempotency_key, f"filed, signed by {signature.signed_by}")
