import sagas
import sagas.testing

PUBLIC = {
    "END",
    "ActionError",
    "DefinitionError",
    "KafkaSettings",
    "NonRetryableError",
    "Plan",
    "Retry",
    "Saga",
    "SagaClient",
    "SagaError",
    "SagaVersions",
    "Step",
    "StepContext",
    "StepKind",
    "Transition",
    "UnapplicableEventError",
    "WorkflowState",
    "WorkflowView",
    "compile_versions",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(sagas.__all__) == PUBLIC
    assert len(sagas.__all__) == len(PUBLIC)


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
    for name in sagas.testing.__all__:
        assert getattr(sagas.testing, name).__doc__, name
