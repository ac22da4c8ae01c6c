import sagas
import sagas.client
import sagas.testing
from tests.public_surface import public_names

PUBLIC = {
    "END",
    "ActionError",
    "DefinitionError",
    "KafkaSettings",
    "NonRetryableError",
    "Retry",
    "Saga",
    "SagaError",
    "Step",
    "StepContext",
    "StepExecutor",
    "StepKind",
    "UnapplicableEventError",
    "UpdateRejectedError",
    "WorkflowView",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(sagas.__all__) == PUBLIC
    assert len(sagas.__all__) == len(PUBLIC)
    assert public_names(sagas) == PUBLIC


def test_the_front_door_holds_no_engine_client_or_runtime() -> None:
    # What a saga module imports must not carry the machinery that runs it.
    for name in ("Plan", "Transition", "WorkflowState", "SagaVersions", "compile_versions"):
        assert not hasattr(sagas, name), name
    assert "__getattr__" not in vars(sagas)


def test_client_exports() -> None:
    assert set(sagas.client.__all__) == {"SagaClient", "SagaRef", "StartResult"}
    assert public_names(sagas.client) == set(sagas.client.__all__)


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in sagas.__all__:
        member = getattr(sagas, name)
        if callable(member):
            assert member.__doc__, name


def test_testing_exports() -> None:
    assert set(sagas.testing.__all__) == {
        "Execution",
        "Fault",
        "SagaTestEnvironment",
        "MatrixCase",
        "failure_matrix",
        "assert_failure_matrix",
        "HistoryMismatchError",
        "dump_history",
        "load_history",
        "replay_history",
    }
    assert public_names(sagas.testing) == set(sagas.testing.__all__)
    for name in sagas.testing.__all__:
        assert getattr(sagas.testing, name).__doc__, name
