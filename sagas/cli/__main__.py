"""``python -m sagas.cli``: the same as the ``sagas`` command."""

from sagas.cli import main

main()
