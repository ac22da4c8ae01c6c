"""The engine: a saga definition compiled to a plan, and the plan's pure decisions.

The runtime (``processors``) and the test kit drive it; a saga module never imports it.
``compile_saga`` checks one definition and names the saga and step of every mistake;
``compile_versions`` compiles the versions of one saga that a worker runs side by side.
"""

from sagas.engine.compiler import compile_saga
from sagas.engine.execution import StepFunctions, answer_event, run_command
from sagas.engine.plan import Plan, timer_fired
from sagas.engine.state import Phase, StepRun, WorkflowState
from sagas.engine.timers import TimerId, TimerKind
from sagas.engine.transition import CommandOrder, Transition
from sagas.engine.versions import SagaVersions, compile_versions

__all__ = [
    "CommandOrder",
    "Phase",
    "Plan",
    "SagaVersions",
    "StepFunctions",
    "StepRun",
    "TimerId",
    "TimerKind",
    "Transition",
    "WorkflowState",
    "answer_event",
    "compile_saga",
    "compile_versions",
    "run_command",
    "timer_fired",
]
