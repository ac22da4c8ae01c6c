"""User onboarding: create the account, welcome, wait 3 days, tutorial, the trial, offer.

The waits are durable timers: a worker restart in between loses nothing. The trial's
length comes from the input (``trial_days``): the plan computes it once, when the
workflow reaches the sleep, and records the due time, so a replay never asks again.
``OUTBOX`` stands in for the account and mail services, by idempotency key.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind

OUTBOX: dict[str, str] = {}
"""Effects applied, by idempotency key; a stand-in for the account and mail services."""


class SignUp(BaseModel):
    """A new user to onboard."""

    user_id: str
    email: str
    trial_days: int = 7
    """How long the trial lasts before the offer goes out."""


class Account(BaseModel):
    """The account created for the user."""

    account_id: str


saga = Saga("onboarding", input=SignUp, version=1)
_MAIL_RETRY = Retry(max_attempts=5, initial_interval=timedelta(minutes=1))


@saga.step(timeout=timedelta(seconds=30))
def create_account(ctx: StepContext[SignUp]) -> Account:
    """Create the user's account."""
    OUTBOX.setdefault(ctx.idempotency_key, f"account for {ctx.input.email}")
    return Account(account_id=f"acc-{ctx.input.user_id}")


@create_account.compensation
def delete_account(ctx: StepContext[SignUp]) -> None:
    """Remove an account whose welcome could not be sent."""
    OUTBOX.setdefault(ctx.idempotency_key, f"deleted {ctx.result_of(create_account).account_id}")


def _mail(name: str, subject: str) -> None:
    def send(ctx: StepContext[SignUp]) -> None:
        OUTBOX.setdefault(ctx.idempotency_key, f"{subject} to {ctx.input.email}")

    saga.step(
        name=name,
        kind=StepKind.RETRIABLE,
        retry=_MAIL_RETRY,
        timeout=timedelta(seconds=30),
        queue="mail",
    )(send)


_mail("send_welcome", "welcome")
saga.sleep("wait_3_days", timedelta(days=3))
_mail("send_tutorial", "tutorial")
# The node keeps the name it had when the trial was always 7 days, so that workflows
# recorded then still replay.
saga.sleep("wait_7_days", lambda view: timedelta(days=view.input.trial_days))
_mail("send_offer", "offer")
