"""Compensation semantics: which completed steps to undo, in what order, and when to give up."""

from compensations.policy import Recovery, compensation_waves, recovery_for, retry_compensation

__all__ = ["Recovery", "compensation_waves", "recovery_for", "retry_compensation"]
