"""Test sagas whose participants fail on a known schedule, and the ledger of their effects."""
