"""Validation of a saga definition and its compilation into a :class:`~sagas.engine.plan.Plan`."""

from __future__ import annotations

import inspect
import pickle
import re
import typing
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from pydantic import TypeAdapter

from sagas.definition import (
    DEFAULT_COMPENSATION_RETRY,
    END,
    Branch,
    ContinueAsNew,
    Node,
    Parallel,
    Saga,
    Sleep,
    Step,
    StepExecutor,
    StepKind,
    Update,
    Wait,
)
from sagas.engine.deadlines import DueTime, check_duration, instant_ms
from sagas.engine.nodes import (
    BranchNode,
    ChildNode,
    CompensationSpec,
    ContinueAsNewNode,
    ParallelNode,
    SleepNode,
    StepNode,
    StepSpec,
    UpdateSpec,
    WaitNode,
)
from sagas.engine.nodes import (
    Node as CompiledNode,
)
from sagas.engine.plan import Plan
from sagas.engine.process_call import resolve_action
from sagas.errors import DefinitionError
from sagas.payloads import adapter_for, check_model_type, return_annotation
from sagas.retry import Retry, duration_ms
from sagas.visibility import visibility_of

# Names end up in topic names, timer ids and JSON keys: keep them to Kafka's topic
# alphabet so none of them needs escaping anywhere.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_name(name: object, what: str, *, saga: str | None = None, step: str | None = None) -> str:
    """``name`` if it is a valid saga, step, queue or signal name; ``DefinitionError`` otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise DefinitionError(
            f"{what} {name!r} is not valid: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            saga=saga,
            step=step,
        )
    if name == END:
        raise DefinitionError(f"{what} cannot be named {END!r}", saga=saga, step=step)
    return name


class _Compiler:
    """Checks one saga definition and builds its plan; one instance per compilation."""

    def __init__(self, saga: Saga[Any]) -> None:
        self.saga = saga
        self.name = check_name(saga.name, "saga name")
        self.index: dict[str, int] = {}
        self.step_index: dict[str, int] = {}

    def fail(self, message: str, step: str | None = None) -> DefinitionError:
        return DefinitionError(message, saga=self.name, step=step)

    def compile(self) -> Plan:
        saga = self.saga
        if isinstance(saga.version, bool) or not isinstance(saga.version, int) or saga.version < 1:
            raise self.fail(f"version must be a positive int, got {saga.version!r}")
        input_model = check_model_type(saga.input, "input", saga=self.name)
        check_name(saga.queue, "queue", saga=self.name)
        if not saga.nodes:
            raise self.fail("the saga has no steps")
        self._index_names()
        results: dict[str, TypeAdapter[Any]] = {}
        signals: dict[str, TypeAdapter[Any]] = {}
        signal_types: dict[str, Any] = {}
        steps: dict[str, StepSpec] = {}
        nodes: list[CompiledNode] = []
        self._check_kinds()
        for i, node in enumerate(saga.nodes):
            after = self._target(node.then, node, "then") if node.then is not None else i + 1
            if isinstance(node, Step):
                spec = self._step(node, i, results)
                steps[spec.name] = spec
                if node.child_saga is not None and node.child_input is not None:
                    start_timeout = (
                        None
                        if node.child_start_timeout is None
                        else self._duration(node.child_start_timeout, "start_timeout", node.name)
                    )
                    child_timeout = (
                        None
                        if node.timeout is None
                        else self._due(node.timeout, "timeout", node.name)
                    )
                    nodes.append(
                        ChildNode(
                            node.name,
                            i,
                            after,
                            node.name,
                            node.child_saga.name,
                            node.child_input,
                            start_timeout,
                            child_timeout,
                        )
                    )
                else:
                    nodes.append(StepNode(node.name, i, after, node.name))
            elif isinstance(node, Parallel):
                if not node.members:
                    raise self.fail(f"parallel group {node.name!r} has no steps", node.name)
                for member in node.members:
                    if member.then is not None or member.on_failure is not None:
                        raise self.fail(
                            "a step in a parallel group cannot have then= or on_failure=",
                            member.name,
                        )
                    spec = self._step(member, i, results)
                    steps[spec.name] = spec
                nodes.append(ParallelNode(node.name, i, after, tuple(m.name for m in node.members)))
            elif isinstance(node, Sleep):
                nodes.append(SleepNode(node.name, i, after, self._sleep(node)))
            elif isinstance(node, Wait):
                nodes.append(self._wait(node, i, after, signals, signal_types))
            elif isinstance(node, Branch):
                nodes.append(self._branch(node, i, after))
            elif isinstance(node, ContinueAsNew):
                nodes.append(self._continue_as_new(node, i, after, input_model))
            else:
                raise self.fail(f"unknown node {node!r}", node.name)
        updates = {name: self._update(update, signals) for name, update in saga.updates.items()}
        plan = Plan(
            updates=updates,
            name=self.name,
            version=saga.version,
            nodes=tuple(nodes),
            steps=steps,
            input_model=input_model,
            results=results,
            signals=signals,
            visibility=visibility_of(
                self.name, saga.search_attributes, saga.queries, saga.retention
            ),
        )
        self._check_picklable(plan)
        return plan

    def _executor(self, step: Step[Any, Any]) -> None:
        """Refuse ``executor="process"`` on what a spawned process cannot import and run."""
        try:
            executor = StepExecutor(step.executor)
        except ValueError:
            raise self.fail(
                f"executor must be 'thread' or 'process', got {step.executor!r}", step.name
            ) from None
        if executor is StepExecutor.THREAD:
            return
        fn = step.fn
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise self.fail(
                "executor='process' is for plain functions: an async action runs on the "
                "worker's loop",
                step.name,
            )
        qualname = getattr(fn, "__qualname__", "")
        module = getattr(fn, "__module__", None)
        if not inspect.isfunction(fn) or "<" in qualname or not isinstance(module, str):
            raise self.fail(
                "executor='process' needs a function defined at module level (not a "
                f"lambda, nested function or other callable), got {fn!r}",
                step.name,
            )
        if resolve_action(module, qualname) is not fn:
            raise self.fail(
                f"executor='process': {module}.{qualname} does not import as this step's "
                "function, so a worker's process could not run it",
                step.name,
            )

    def _check_picklable(self, plan: Plan) -> None:
        """A process step's context is sent to its process: its types must pickle."""
        for step in self._flat_steps():
            if step.fn is None or step.executor != StepExecutor.PROCESS:
                continue
            try:
                pickle.dumps((plan.types, step.retry))
            except Exception as exc:
                raise self.fail(
                    "executor='process': the saga's payload types or the step's retry "
                    f"policy cannot be sent to a process ({exc}); declare them at module level",
                    step.name,
                ) from None

    def _continue_as_new(
        self, node: ContinueAsNew, i: int, after: int, input_model: type[Any]
    ) -> ContinueAsNewNode:
        if node.then is not None:
            raise self.fail("continue_as_new ends the run: it cannot have then=", node.name)
        if not callable(node.input) or inspect.iscoroutinefunction(node.input):
            raise self.fail("continue_as_new needs a plain (not async) input function", node.name)
        # A run that reaches its end without waiting for anything would start again at
        # once, for ever: something before it must wait (a step, a sleep or a signal).
        if not any(isinstance(n, Step | Parallel | Sleep | Wait) for n in self.saga.nodes[:i]):
            raise self.fail(
                "continue_as_new needs a step, sleep or wait before it, or every run would "
                "start the next at once",
                node.name,
            )
        try:
            returned = typing.get_type_hints(node.input).get("return")
        except (NameError, TypeError):
            returned = None  # an annotation that does not resolve: checked when it runs
        if isinstance(returned, type) and returned is not input_model:
            raise self.fail(
                f"continue_as_new input returns {returned.__name__}, not the saga's input "
                f"{input_model.__name__}",
                node.name,
            )
        return ContinueAsNewNode(node.name, i, after, node.input, input_model)

    def _update(self, update: Update, signals: dict[str, TypeAdapter[Any]]) -> UpdateSpec:
        name = check_name(update.name, "update name", saga=self.name, step=update.name)
        if name in signals:
            raise self.fail(f"update {name!r} has the name of a signal", name)
        if not callable(update.handler) or inspect.iscoroutinefunction(update.handler):
            raise self.fail(f"update {name!r} needs a plain (not async) handler", name)
        if update.check is not None and not callable(update.check):
            raise self.fail(f"the validator of update {name!r} is not a function", name)
        flat = [step.name for step in self._flat_steps()]
        before = update.before.name if isinstance(update.before, Node) else update.before
        if before is not None and before not in flat:
            raise self.fail(f"update {name!r}: before= names an unknown step {before!r}", name)
        forward = next(
            (s.name for s in self._flat_steps() if s.kind is not StepKind.COMPENSATABLE), None
        )
        if forward is not None and (before is None or flat.index(before) > flat.index(forward)):
            raise self.fail(
                f"update {name!r} could change the workflow after {forward!r}, the point of no "
                f"return, where nothing is compensated; declare before={forward!r} or an "
                "earlier step",
                name,
            )
        payload = adapter_for(update.payload, "update payload type", saga=self.name, step=name)
        signals[name] = payload
        return UpdateSpec(name, payload, update.handler, update.check, before)

    def _index_names(self) -> None:
        for i, node in enumerate(self.saga.nodes):
            self._claim(node.name, i)
            if isinstance(node, Parallel):
                for member in node.members:
                    self._claim(member.name, i, member=True)

    def _claim(self, name: str, index: int, *, member: bool = False) -> None:
        check_name(name, "step name", saga=self.name, step=name if isinstance(name, str) else None)
        if name in self.index or name in self.step_index:
            raise self.fail(f"duplicate step name {name!r}", name)
        if member:
            self.step_index[name] = index
        else:
            self.index[name] = index

    def _flat_steps(self) -> list[Step[Any, Any]]:
        flat: list[Step[Any, Any]] = []
        for node in self.saga.nodes:
            if isinstance(node, Step):
                flat.append(node)
            elif isinstance(node, Parallel):
                flat.extend(node.members)
        return flat

    def _check_kinds(self) -> None:
        pivot: str | None = None
        forward: str | None = None
        for step in self._flat_steps():
            if not isinstance(step.kind, StepKind):
                raise self.fail(f"kind must be a StepKind, got {step.kind!r}", step.name)
            if step.kind is StepKind.PIVOT:
                if pivot is not None:
                    raise self.fail(
                        f"more than one pivot step ({pivot!r} and {step.name!r})", step.name
                    )
                if step.group is not None:
                    raise self.fail("a pivot step cannot be in a parallel group", step.name)
                pivot = step.name
            elif step.kind is StepKind.COMPENSATABLE and forward is not None:
                raise self.fail(
                    f"compensatable step {step.name!r} comes after {forward!r}, the point of "
                    "no return; make it retriable or move it before",
                    step.name,
                )
            if step.kind is not StepKind.COMPENSATABLE:
                forward = forward or step.name
        for node in self.saga.nodes:
            if isinstance(node, Parallel) and len({m.kind for m in node.members}) > 1:
                raise self.fail("the steps of a parallel group must all be of one kind", node.name)

    def _duration(self, value: Any, what: str, step: str) -> int:
        try:
            return duration_ms(value, what)
        except DefinitionError as exc:
            raise self.fail(exc.message, step) from exc

    def _due(self, value: Any, what: str, step: str) -> DueTime:
        """A duration from data: a checked constant, or a plain function to call later."""
        if callable(value) and not isinstance(value, timedelta):
            if inspect.iscoroutinefunction(value):
                raise self.fail(f"{what} must be a timedelta or a plain (not async) function", step)
            return DueTime(None, value, what=what)
        try:
            return DueTime(check_duration(value, what), what=what)
        except ValueError as exc:
            raise self.fail(str(exc), step) from exc

    def _sleep(self, sleep: Sleep) -> DueTime:
        if (sleep.duration is None) == (sleep.until is None):
            raise self.fail("a sleep needs a duration or an until, not both", sleep.name)
        if sleep.duration is not None:
            return self._due(sleep.duration, "sleep duration", sleep.name)
        until = sleep.until
        if callable(until) and not isinstance(until, datetime):
            if inspect.iscoroutinefunction(until):
                raise self.fail("sleep_until needs a datetime or a plain function", sleep.name)
            return DueTime(None, until, absolute=True, what="sleep_until time")
        try:
            return DueTime(instant_ms(until, "sleep_until time"), absolute=True)
        except ValueError as exc:
            raise self.fail(str(exc), sleep.name) from exc

    def _target(self, target: str | Node | None, source: Node, what: str) -> int:
        name = target.name if isinstance(target, Node) else target
        if name == END:
            return len(self.saga.nodes)
        if not isinstance(name, str) or name not in self.index:
            hint = (
                " (a step inside a parallel group cannot be a target)"
                if (isinstance(name, str) and name in self.step_index)
                else ""
            )
            raise self.fail(f"{what} names an unknown target {name!r}{hint}", source.name)
        index = self.index[name]
        if index <= self.index.get(source.name, self.step_index.get(source.name, -1)):
            raise self.fail(
                f"{what} target {name!r} is not after {source.name!r}: jumps only go forward, "
                "so every node runs at most once",
                source.name,
            )
        return index

    def _dispatch_objective(self, step: Step[Any, Any]) -> int | None:
        objective = step.dispatch_objective or self.saga.dispatch_objective
        if objective is None:
            return None
        return self._duration(objective, "dispatch_objective", step.name)

    def _step(
        self, step: Step[Any, Any], node: int, results: dict[str, TypeAdapter[Any]]
    ) -> StepSpec:
        name = step.name
        if not isinstance(step.retry, Retry):
            raise self.fail(f"retry must be a Retry, got {step.retry!r}", name)
        queue = check_name(
            step.queue if step.queue is not None else self.saga.queue,
            "queue",
            saga=self.name,
            step=name,
        )
        due = None if step.timeout is None else self._due(step.timeout, "timeout", name)
        timeout = None if due is None else due.fixed_ms
        timeout_fn = None if due is None else due.compute
        heartbeat = None
        if step.heartbeat_timeout is not None:
            if due is None:
                raise self.fail(
                    "heartbeat_timeout needs a timeout: a step that may run forever "
                    "cannot be told apart from one that hangs",
                    name,
                )
            heartbeat = self._due(step.heartbeat_timeout, "heartbeat_timeout", name).fixed_ms
            if heartbeat is None:
                raise self.fail("heartbeat_timeout must be a timedelta", name)
            if timeout is not None and heartbeat > timeout:
                raise self.fail("heartbeat_timeout is longer than the step's timeout", name)
        to_start, to_close = self._schedule_bounds(step)
        on_failure = (
            None if step.on_failure is None else self._target(step.on_failure, step, "on_failure")
        )
        compensation = None
        if step.undo is not None:
            if step.kind is not StepKind.COMPENSATABLE:
                raise self.fail(f"a {step.kind.value} step cannot have a compensation", name)
            if not callable(step.undo.fn) or not isinstance(step.undo.retry, Retry):
                raise self.fail("the compensation must be a function with a Retry", name)
            undo_timeout = (
                None
                if step.undo.timeout is None
                else self._duration(step.undo.timeout, "compensation timeout", name)
            )
            compensation = CompensationSpec(step.undo.retry, undo_timeout)
        elif step.kind is StepKind.COMPENSATABLE and step.child_saga is not None:
            # A completed child saga is undone by its own compensations, latest first.
            compensation = CompensationSpec(DEFAULT_COMPENSATION_RETRY, None)
        elif step.kind is StepKind.COMPENSATABLE:
            raise self.fail(
                "compensatable step has no compensation; declare one with "
                f"@{name}.compensation or mark it kind=StepKind.PIVOT or RETRIABLE",
                name,
            )
        if step.child_saga is not None:
            if (
                not isinstance(step.child_saga, Saga)
                or not callable(step.child_input)
                or inspect.iscoroutinefunction(step.child_input)
            ):
                raise self.fail("a child step needs a Saga and a plain input function", name)
            child = check_name(step.child_saga.name, "child saga name", saga=self.name, step=name)
            results[name] = TypeAdapter(dict[str, Any])
            return StepSpec(
                name,
                node,
                step.kind,
                queue,
                step.retry,
                None,
                compensation,
                None,
                on_failure,
                child_saga=child,
                child_undo=step.undo is None and compensation is not None,
            )
        if not callable(step.fn):
            raise self.fail("a step needs a function", name)
        self._executor(step)
        if step.kind is StepKind.RETRIABLE and (not step.retry.is_bounded or due is None):
            raise self.fail(
                "a retriable step needs a bounded retry (Retry(max_attempts=N)) and a timeout", name
            )
        results[name] = adapter_for(
            return_annotation(step.fn, saga=self.name, step=name),
            "result type",
            saga=self.name,
            step=name,
        )
        group = step.group.name if step.group is not None else None
        return StepSpec(
            name,
            node,
            step.kind,
            queue,
            step.retry,
            timeout,
            compensation,
            group,
            on_failure,
            dispatch_objective_ms=self._dispatch_objective(step),
            timeout_fn=timeout_fn,
            heartbeat_ms=heartbeat,
            schedule_to_start=to_start,
            schedule_to_close=to_close,
        )

    def _schedule_bounds(self, step: Step[Any, Any]) -> tuple[DueTime | None, DueTime | None]:
        """A step's schedule_to_start and schedule_to_close, checked against each other."""
        name = step.name
        to_start = (
            None
            if step.schedule_to_start is None
            else self._due(step.schedule_to_start, "schedule_to_start", name)
        )
        to_close = (
            None
            if step.schedule_to_close is None
            else self._due(step.schedule_to_close, "schedule_to_close", name)
        )
        if step.child_saga is not None and (to_start is not None or to_close is not None):
            raise self.fail(
                "a child step has no schedule_to_start or schedule_to_close: give the child "
                "saga as a whole a timeout= instead",
                name,
            )
        # A schedule_to_close shorter than the timeout is allowed: each command carries the
        # earlier of the two as its deadline, so it caps the attempt as it caps the step.
        close_ms = None if to_close is None else to_close.fixed_ms
        start_ms = None if to_start is None else to_start.fixed_ms
        if close_ms is not None and start_ms is not None and start_ms > close_ms:
            raise self.fail(
                f"schedule_to_start ({_ms(start_ms)}) is longer than schedule_to_close "
                f"({_ms(close_ms)}): the step would fail for good before its attempt timed out",
                name,
            )
        return to_start, to_close

    def _wait(
        self,
        wait: Wait,
        i: int,
        after: int,
        signals: dict[str, TypeAdapter[Any]],
        signal_types: dict[str, Any],
    ) -> WaitNode:
        if not wait.signals:
            raise self.fail("a wait needs at least one signal name", wait.name)
        for signal in wait.signals:
            check_name(signal, "signal name", saga=self.name, step=wait.name)
            if signal in signal_types and signal_types[signal] is not wait.payload:
                raise self.fail(
                    f"signal {signal!r} is waited for with two payload types "
                    f"({signal_types[signal]!r} and {wait.payload!r})",
                    wait.name,
                )
            signal_types[signal] = wait.payload
            signals[signal] = (
                adapter_for(wait.payload, "signal payload type", saga=self.name, step=wait.name)
                if wait.payload is not None
                else (TypeAdapter(Any))
            )
        timeout = (
            None if wait.timeout is None else self._due(wait.timeout, "wait timeout", wait.name)
        )
        if wait.on_timeout is not None and timeout is None:
            raise self.fail("on_timeout needs a timeout", wait.name)
        on_timeout = (
            None if wait.on_timeout is None else self._target(wait.on_timeout, wait, "on_timeout")
        )
        return WaitNode(wait.name, i, after, frozenset(wait.signals), timeout, on_timeout)

    def _branch(self, branch: Branch, i: int, after: int) -> BranchNode:
        if not callable(branch.choose) or inspect.iscoroutinefunction(branch.choose):
            raise self.fail("a branch needs a plain (not async) function that chooses", branch.name)
        if not branch.targets:
            raise self.fail("a branch needs at least one target", branch.name)
        targets = tuple(
            (t.name if isinstance(t, Node) else str(t), self._target(t, branch, "branch"))
            for t in branch.targets
        )
        return BranchNode(branch.name, i, after, branch.choose, targets)


def _ms(ms: int) -> str:
    """A duration in ms as a definition error shows it (``timedelta`` text)."""
    return str(timedelta(milliseconds=ms))


# A definition compiles once: its plan is shared by every caller, and the definition is
# sealed so that it cannot grow a node its plan does not have.
_PLANS: WeakKeyDictionary[Saga[Any], Plan] = WeakKeyDictionary()


def compile_saga(saga: Saga[Any]) -> Plan:
    """Validate ``saga`` and build its plan (once; later calls return the same plan).

    Raises ``DefinitionError`` naming the saga and step of the mistake.
    """
    if not isinstance(saga, Saga):
        raise DefinitionError(f"expected a Saga, got {saga!r}")
    plan = _PLANS.get(saga)
    if plan is None:
        plan = _Compiler(saga).compile()
        saga.seal()
        _PLANS[saga] = plan
    return plan
