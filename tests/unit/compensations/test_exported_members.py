from __future__ import annotations

import compensations
from tests.public_surface import public_names


def test_public_surface_is_exactly_the_chosen_names() -> None:
    assert set(compensations.__all__) == {
        "Recovery",
        "compensation_waves",
        "recovery_for",
        "retry_compensation",
    }
    assert public_names(compensations) == set(compensations.__all__)
