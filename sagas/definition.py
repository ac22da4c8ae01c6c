"""The authoring API: a saga and the steps, waits, branches and groups it is made of.

A team declares one :class:`Saga` per module; the declaration order is the
order the workflow runs in, unless a ``then=``, an ``on_timeout=``, an
``on_failure=`` or a branch jumps forward to a later node. Nothing here runs
anything, and nothing here knows the engine: ``sagas.engine.compile_saga`` checks a
declaration and turns it into the plan the runtime follows.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Generic, Literal, Protocol, TypeVar, overload

from pydantic import BaseModel

from sagas.context import StepContext, WorkflowView
from sagas.errors import DefinitionError
from sagas.retry import Retry
from sagas.visibility import QueryFunction, QueryView, SearchAttribute

InputT = TypeVar("InputT", bound=BaseModel)
ResultT = TypeVar("ResultT")

END: Final = "END"
"""A jump target that ends the workflow successfully."""


class StepKind(StrEnum):
    """A step's role in the saga (Garcia-Molina & Salem; Richardson's taxonomy)."""

    COMPENSATABLE = "compensatable"
    """Can be undone by its compensation if a later step fails."""
    PIVOT = "pivot"
    """The point of no return: once it succeeds, the saga only goes forward."""
    RETRIABLE = "retriable"
    """Follows the pivot; is retried until it succeeds or its bounded retries run out."""


class StepExecutor(StrEnum):
    """Where a worker runs a step's plain (non-async) action."""

    THREAD = "thread"
    """In a thread of the worker (an async action is awaited on its loop either way)."""
    PROCESS = "process"
    """In a process of the worker's pool, for CPU-bound work: it runs in parallel with
    the other steps, and past its deadline its process is killed (a thread cannot be)."""


Action = Callable[[StepContext[Any]], Awaitable[Any] | Any]

Duration = timedelta | Callable[[WorkflowView[Any]], timedelta]
"""A duration: a constant, or a pure function of the workflow view (input, results,
signals) that the plan calls once and records, like a branch chooser."""

Instant = datetime | Callable[[WorkflowView[Any]], datetime]
"""A moment (timezone-aware): a constant, or a pure function of the workflow view."""


@dataclass(eq=False)
class Compensation:
    """The undo of a compensatable step, with its own retry policy and timeout."""

    fn: Action
    retry: Retry
    timeout: timedelta | None


@dataclass(eq=False)
class Node:
    """One place of a saga's graph; ``then`` names the node after it (default: the next one)."""

    name: str
    then: str | Node | None = field(default=None, kw_only=True)


@dataclass(eq=False)
class Step(Node, Generic[InputT, ResultT]):
    """A step: an action sent as a command to ``queue`` and answered by a worker.

    Use the object a ``@saga.step`` decorator returns to declare its compensation
    (``@charge.compensation``) and to read its typed result (``ctx.result_of(charge)``).
    """

    fn: Action | None = field(default=None, kw_only=True)
    retry: Retry = field(default_factory=Retry, kw_only=True)
    timeout: Duration | None = field(default=None, kw_only=True)
    queue: str | None = field(default=None, kw_only=True)
    dispatch_objective: timedelta | None = field(default=None, kw_only=True)
    kind: StepKind = field(default=StepKind.COMPENSATABLE, kw_only=True)
    executor: StepExecutor | Literal["thread", "process"] = field(
        default=StepExecutor.THREAD, kw_only=True
    )
    """Where the action runs (the compensation runs in a thread)."""
    on_failure: str | Node | None = field(default=None, kw_only=True)
    undo: Compensation | None = field(default=None, kw_only=True)
    group: Parallel | None = field(default=None, kw_only=True)
    child_saga: Saga[Any] | None = field(default=None, kw_only=True)
    child_input: Callable[[WorkflowView[Any]], BaseModel] | None = field(default=None, kw_only=True)
    heartbeat_timeout: timedelta | None = field(default=None, kw_only=True)
    """The longest a started attempt (one that has beaten once) may go without
    ``ctx.heartbeat``; past it, the attempt failed."""
    child_start_timeout: timedelta | None = field(default=None, kw_only=True)
    schedule_to_start: Duration | None = field(default=None, kw_only=True)
    """How long each attempt's command may wait for a worker to start it; past it, the
    attempt failed (and is retried as the retry policy says)."""
    schedule_to_close: Duration | None = field(default=None, kw_only=True)
    """The bound on all of the step's attempts, retry pauses included, from its first
    scheduling; past it, the step failed for good. Each command's deadline is the earlier
    of its attempt's timeout and this bound, so a worker gives the attempt up at it."""

    @overload
    def compensation(
        self, fn: Action, *, retry: Retry | None = None, timeout: timedelta | None = None
    ) -> Action: ...
    @overload
    def compensation(
        self, *, retry: Retry | None = None, timeout: timedelta | None = None
    ) -> Callable[[Action], Action]: ...
    def compensation(
        self,
        fn: Action | None = None,
        *,
        retry: Retry | None = None,
        timeout: timedelta | None = None,
    ) -> Action | Callable[[Action], Action]:
        """Declare the function that undoes this step (a decorator, with or without options)."""

        def register(function: Action) -> Action:
            if self.undo is not None:
                raise DefinitionError("step already has a compensation", step=self.name)
            self.undo = Compensation(
                fn=function,
                retry=retry if retry is not None else DEFAULT_COMPENSATION_RETRY,
                timeout=timeout,
            )
            return function

        return register(fn) if fn is not None else register


DEFAULT_COMPENSATION_RETRY: Final = Retry(max_attempts=10, max_interval=timedelta(minutes=5))
"""Compensations must almost always succeed, so they get more and longer retries."""


@dataclass(eq=False)
class Sleep(Node):
    """A durable pause: the workflow goes on ``duration`` after it reaches this node, or
    at ``until`` (at once if that moment has passed); exactly one of the two is set."""

    duration: Duration | None = field(default=None, kw_only=True)
    until: Instant | None = field(default=None, kw_only=True)


@dataclass(eq=False)
class Wait(Node):
    """A wait for one of ``signals``; a signal that arrived earlier is taken at once.

    Without ``timeout`` it waits forever. When the timeout passes, the workflow
    jumps to ``on_timeout``, or fails (compensating) when there is none.
    """

    signals: tuple[str, ...] = field(kw_only=True)
    timeout: Duration | None = field(default=None, kw_only=True)
    payload: Any = field(default=None, kw_only=True)
    on_timeout: str | Node | None = field(default=None, kw_only=True)


@dataclass(eq=False)
class Branch(Node):
    """A choice of the next node, made by a pure function of the workflow so far."""

    choose: Callable[[WorkflowView[Any]], str | Node] = field(kw_only=True)
    targets: tuple[str | Node, ...] = field(kw_only=True)


@dataclass(eq=False)
class Parallel(Node):
    """A group of steps that run at the same time and join before the next node."""

    members: list[Step[Any, Any]] = field(default_factory=list, kw_only=True)


@dataclass(eq=False)
class ContinueAsNew(Node):
    """The end of this run: the workflow starts again, under the same id, with a new input.

    ``input`` builds the next run's input (the saga's input model) from this run; the
    old run's state is dropped and its history stays in the event log.
    """

    input: Callable[[WorkflowView[Any]], BaseModel] = field(kw_only=True)


UpdateHandler = Callable[[WorkflowView[Any], Any], Any]


@dataclass(eq=False)
class Update:
    """A named change a client applies to a running workflow and waits for (``client.update``).

    ``handler(view, payload)`` is a pure function whose JSON-able return value is the
    update's result; once applied, later steps read the payload with ``ctx.update(name)``.
    ``before`` names the step from which on the update is refused.
    """

    name: str
    payload: Any
    handler: UpdateHandler
    before: str | Node | None = None
    check: UpdateHandler | None = None

    def validator(self, fn: UpdateHandler) -> UpdateHandler:
        """Declare the check that runs before the handler; what it raises rejects the update."""
        if self.check is not None:
            raise DefinitionError("update already has a validator", step=self.name)
        self.check = fn
        return fn


class StepDecorator(Protocol[InputT]):
    """What ``saga.step(...)`` with options returns: a decorator typed for async or plain."""

    @overload
    def __call__(
        self, fn: Callable[[StepContext[InputT]], Coroutine[Any, Any, ResultT]]
    ) -> Step[InputT, ResultT]: ...
    @overload
    def __call__(self, fn: Callable[[StepContext[InputT]], ResultT]) -> Step[InputT, ResultT]: ...


class Saga(Generic[InputT]):
    """A saga definition: a name, a version, an input model and its nodes in order."""

    def __init__(
        self,
        name: str,
        *,
        input: type[InputT],
        version: int = 1,
        queue: str | None = None,
        dispatch_objective: timedelta | None = None,
        search_attributes: Sequence[SearchAttribute[InputT]] = (),
        retention: timedelta | None = None,
    ) -> None:
        self.name = name
        self.input = input
        self.version = version
        self.queue = queue if queue is not None else name
        self.dispatch_objective = dispatch_objective
        """The p99 a step's command should start within (metrics and alerts only)."""
        self.search_attributes = tuple(search_attributes)
        """The values workflows are listed and searched by (``sagas list --where``)."""
        self.retention = retention
        """How long an ended workflow is kept before its state and status are removed."""
        self.queries: dict[str, QueryFunction] = {}
        self.updates: dict[str, Update] = {}
        self.nodes: list[Node] = []
        self.derived_from: Saga[InputT] | None = None
        """The version this one was derived from (:meth:`derive`), if any."""
        self._group: Parallel | None = None
        self._sealed = False
        # Every version derived from one root shares this list, so that deriving a
        # version twice is refused wherever in the line it is asked for.
        self._line: list[Saga[InputT]] = [self]
        self.module: str | None = _caller_module()
        """The module whose code declared this saga (as ``namedtuple`` records it): where
        a process that did not inherit it imports the definition from."""

    def __repr__(self) -> str:
        return f"Saga({self.name!r}, version={self.version})"

    def _fail(self, message: str, step: str | None = None) -> DefinitionError:
        return DefinitionError(f"version {self.version}: {message}", saga=self.name, step=step)

    def _add(self, node: Node, *, after: str | None = None, replaces: str | None = None) -> None:
        if self._sealed:
            raise DefinitionError(
                f"cannot add {node.name!r}: the saga is already compiled", saga=self.name
            )
        if after is not None or replaces is not None:
            self._place(node, after, replaces)
            return
        if self._group is not None:
            self._join(self._group, node, len(self._group.members))
            return
        self.nodes.append(node)

    def _join(self, group: Parallel, node: Node, index: int) -> None:
        if not isinstance(node, Step) or node.child_saga is not None:
            raise DefinitionError(
                f"only steps can be declared inside parallel group {group.name!r}",
                saga=self.name,
                step=node.name,
            )
        node.group = group
        group.members.insert(index, node)

    def _locate(self, name: str, doing: str) -> tuple[list[Any], int, Parallel | None]:
        """Where the node ``name`` is: its list (the saga's or a group's), index and group."""
        for i, node in enumerate(self.nodes):
            if node.name == name:
                return self.nodes, i, None
            if isinstance(node, Parallel):
                for j, member in enumerate(node.members):
                    if member.name == name:
                        return node.members, j, node
        known = ", ".join(_node_names(self.nodes)) or "none"
        raise self._fail(
            f"cannot {doing} {name!r}: there is no such step (its steps: {known})", name
        )

    def _place(self, node: Node, after: str | None, replaces: str | None) -> None:
        if after is not None and replaces is not None:
            raise self._fail("give after= or replaces=, not both", node.name)
        if self._group is not None:
            raise self._fail(
                f"after= and replaces= cannot be used inside parallel group {self._group.name!r}",
                node.name,
            )
        if replaces is not None:
            container, index, group = self._locate(replaces, "replace")
        else:
            assert after is not None
            container, index, group = self._locate(after, "put a step after")
            index += 1
        if group is not None:
            self._join(group, node, index)  # refuses what a group cannot hold, changing nothing
        else:
            container.insert(index, node)
        if replaces is not None:
            del container[index + 1]  # the replaced node, now right after its replacement

    def derive(self, *, version: int) -> Saga[InputT]:
        """A new version of this saga, made of this version's nodes, to change in place.

        The copy keeps the name, input model, queue, objectives, search attributes,
        retention, queries and updates; then ``@v2.step(replaces="charge")``,
        ``@v2.step(after="reserve")`` (any node takes ``after=``/``replaces=``) and
        ``v2.remove("notify")`` change what differs, and nothing else is restated.
        Derive once this version is complete: later changes to it are not copied.
        """
        if isinstance(version, bool) or not isinstance(version, int):
            raise self._fail(f"cannot derive version {version!r}: a version is a positive int")
        if version <= self.version:
            raise self._fail(
                f"cannot derive version {version}: a derived version must be newer than "
                f"{self.version}"
            )
        if any(saga.version == version for saga in self._line):
            raise self._fail(f"cannot derive version {version}: it is already derived")
        if self._group is not None:
            raise self._fail(f"cannot derive inside parallel group {self._group.name!r}")
        derived = Saga(
            self.name,
            input=self.input,
            version=version,
            queue=self.queue,
            dispatch_objective=self.dispatch_objective,
            search_attributes=self.search_attributes,
            retention=self.retention,
        )
        derived.queries = dict(self.queries)
        derived.updates = {name: replace(update) for name, update in self.updates.items()}
        derived.nodes = [_copy_node(node) for node in self.nodes]
        derived.derived_from = self
        derived._line = self._line
        self._line.append(derived)
        return derived

    def remove(self, name: str) -> None:
        """Drop the node ``name`` (of a derived version, usually) from this version."""
        if self._sealed:
            raise DefinitionError(
                f"cannot remove {name!r}: the saga is already compiled", saga=self.name
            )
        container, index, _ = self._locate(name, "remove")
        del container[index]

    @overload
    def step(
        self, fn: Callable[[StepContext[InputT]], Coroutine[Any, Any, ResultT]]
    ) -> Step[InputT, ResultT]: ...
    @overload
    def step(self, fn: Callable[[StepContext[InputT]], ResultT]) -> Step[InputT, ResultT]: ...
    @overload
    def step(
        self,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: Duration | None = None,
        queue: str | None = None,
        kind: StepKind = StepKind.COMPENSATABLE,
        executor: StepExecutor | Literal["thread", "process"] = StepExecutor.THREAD,
        then: str | Node | None = None,
        on_failure: str | Node | None = None,
        dispatch_objective: timedelta | None = None,
        heartbeat_timeout: timedelta | None = None,
        schedule_to_start: Duration | None = None,
        schedule_to_close: Duration | None = None,
        after: str | None = None,
        replaces: str | None = None,
    ) -> StepDecorator[InputT]: ...
    def step(
        self,
        fn: Callable[[StepContext[InputT]], Any] | None = None,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: Duration | None = None,
        queue: str | None = None,
        kind: StepKind = StepKind.COMPENSATABLE,
        executor: StepExecutor | Literal["thread", "process"] = StepExecutor.THREAD,
        then: str | Node | None = None,
        on_failure: str | Node | None = None,
        dispatch_objective: timedelta | None = None,
        heartbeat_timeout: timedelta | None = None,
        schedule_to_start: Duration | None = None,
        schedule_to_close: Duration | None = None,
        after: str | None = None,
        replaces: str | None = None,
    ) -> Any:
        """Declare a step (a decorator, with or without options).

        ``retry`` defaults to ``Retry()``; ``timeout`` is start-to-close, a timedelta
        or a function of the workflow view giving one (computed once per attempt and
        recorded); ``heartbeat_timeout`` (needs ``timeout``) fails an attempt that goes
        that long without ``ctx.heartbeat``; ``schedule_to_start`` fails an attempt no
        worker has started within it; ``schedule_to_close`` bounds all attempts, retry
        pauses included, and fails the step for good past it (the worker gives an attempt
        up at the earlier of its timeout and this bound; both durations like ``timeout``);
        ``queue`` defaults to the saga's queue; ``on_failure`` routes a permanent
        failure of this step to a later node instead of compensating;
        ``dispatch_objective`` (default: the saga's) is the p99 within which the
        step's command should start, watched by the metrics and alert rules.
        ``executor="process"`` runs a plain action defined at module level in the
        worker's process pool (CPU-bound work), killed at its deadline.
        A step goes after the nodes declared so far, or right ``after`` the node so
        named, or in place of the node it ``replaces`` (whose name it takes unless
        ``name`` says otherwise); the last two change a version made with :meth:`derive`.
        """

        def register(function: Callable[[StepContext[InputT]], Any]) -> Step[InputT, Any]:
            default = replaces if replaces is not None else function.__name__
            node: Step[InputT, Any] = Step(
                name if name is not None else default,
                then=then,
                fn=function,
                retry=retry if retry is not None else Retry(),
                timeout=timeout,
                queue=queue,
                dispatch_objective=dispatch_objective,
                kind=kind,
                executor=executor,
                on_failure=on_failure,
                heartbeat_timeout=heartbeat_timeout,
                schedule_to_start=schedule_to_start,
                schedule_to_close=schedule_to_close,
            )
            self._add(node, after=after, replaces=replaces)
            return node

        return register(fn) if fn is not None else register

    def sleep(
        self,
        name: str,
        duration: Duration,
        *,
        then: str | Node | None = None,
        after: str | None = None,
        replaces: str | None = None,
    ) -> Sleep:
        """Declare a durable pause of ``duration``: a timedelta, or a function of the
        workflow view giving one (called once when the workflow gets here, and recorded).
        ``after``/``replaces`` place it as for :meth:`step`."""
        node = Sleep(name, duration=duration, then=then)
        self._add(node, after=after, replaces=replaces)
        return node

    def sleep_until(
        self,
        name: str,
        at: Instant,
        *,
        then: str | Node | None = None,
        after: str | None = None,
        replaces: str | None = None,
    ) -> Sleep:
        """Declare a durable pause until ``at``: a timezone-aware datetime, or a function of
        the workflow view giving one; a moment already past goes on at once.
        ``after``/``replaces`` place it as for :meth:`step`."""
        node = Sleep(name, until=at, then=then)
        self._add(node, after=after, replaces=replaces)
        return node

    def wait_for(
        self,
        name: str,
        *,
        signal: str | Sequence[str] | None = None,
        timeout: Duration | None = None,
        payload: Any = None,
        on_timeout: str | Node | None = None,
        then: str | Node | None = None,
        after: str | None = None,
        replaces: str | None = None,
    ) -> Wait:
        """Declare a wait for a signal (default: one named like the wait) or one of several.

        ``payload`` is the type (a pydantic model, usually) that later steps read
        the signal's data as, with ``ctx.signal(<signal name>)``. ``after``/``replaces``
        place it as for :meth:`step`.
        """
        signals = (signal,) if isinstance(signal, str) else tuple(signal or (name,))
        node = Wait(
            name,
            signals=signals,
            timeout=timeout,
            payload=payload,
            on_timeout=on_timeout,
            then=then,
        )
        self._add(node, after=after, replaces=replaces)
        return node

    def branch(
        self,
        *,
        targets: Sequence[str | Node],
        name: str | None = None,
        after: str | None = None,
        replaces: str | None = None,
    ) -> Callable[[Callable[[WorkflowView[InputT]], str | Node]], Branch]:
        """Declare a branch (a decorator): the function returns one of ``targets``.

        The function must be pure: it sees the input, results and signals so far
        and decides once; its choice is recorded so that a replay never calls it.
        ``after``/``replaces`` place it as for :meth:`step`.
        """

        def register(choose: Callable[[WorkflowView[InputT]], str | Node]) -> Branch:
            node = Branch(
                name if name is not None else choose.__name__,
                choose=choose,
                targets=tuple(targets),
            )
            self._add(node, after=after, replaces=replaces)
            return node

        return register

    @contextmanager
    def parallel(
        self,
        name: str,
        *,
        then: str | Node | None = None,
        after: str | None = None,
        replaces: str | None = None,
    ) -> Iterator[Parallel]:
        """Declare a parallel group: the steps declared inside the ``with`` block run at once.
        ``after``/``replaces`` place the group as for :meth:`step`."""
        if self._group is not None:
            raise DefinitionError(
                f"parallel group {name!r} cannot be nested in {self._group.name!r}",
                saga=self.name,
            )
        group = Parallel(name, then=then)
        self._add(group, after=after, replaces=replaces)
        self._group = group
        try:
            yield group
        finally:
            self._group = None

    def child(
        self,
        name: str,
        *,
        saga: Saga[Any],
        input: Callable[[WorkflowView[InputT]], BaseModel],
        kind: StepKind = StepKind.COMPENSATABLE,
        then: str | Node | None = None,
        on_failure: str | Node | None = None,
        start_timeout: timedelta | None = timedelta(seconds=30),
        timeout: Duration | None = None,
        after: str | None = None,
        replaces: str | None = None,
    ) -> Step[InputT, dict[str, Any]]:
        """Declare a step that starts a child saga and waits for its outcome.

        ``input`` builds the child's input from this workflow. The child's failure is
        this step's failure (it is not retried: a child workflow id runs once); its
        result is the child's result object. Cancelling this workflow cancels the child.
        A child whose start no processor of its saga answers within ``start_timeout``
        is named in this workflow's status ("no processor answers"); the step still waits.
        A child that has not ended within ``timeout`` (a timedelta or a function of the
        workflow view) fails this step for good and is cancelled, so it compensates itself.
        Compensating this step runs the child's own compensations, latest first, unless
        the step has a compensation of its own. ``after``/``replaces`` place it as for
        :meth:`step`.
        """
        node: Step[InputT, dict[str, Any]] = Step(
            name,
            then=then,
            kind=kind,
            on_failure=on_failure,
            child_saga=saga,
            child_input=input,
            child_start_timeout=start_timeout,
            timeout=timeout,
            retry=Retry(max_attempts=1),
        )
        self._add(node, after=after, replaces=replaces)
        return node

    def continue_as_new(
        self,
        name: str,
        *,
        input: Callable[[WorkflowView[InputT]], InputT],
        after: str | None = None,
        replaces: str | None = None,
    ) -> ContinueAsNew:
        """Declare the end of a run that starts the workflow again with ``input(view)``.

        Status, describe and history name the chain of runs (run id, previous run id);
        signals received and not yet taken carry over to the next run. ``after``/``replaces``
        place it as for :meth:`step`.
        """
        node = ContinueAsNew(name, input=input)
        self._add(node, after=after, replaces=replaces)
        return node

    def update(
        self,
        name: str,
        *,
        payload: Any,
        before: str | Node | None = None,
    ) -> Callable[[Callable[[WorkflowView[InputT], Any], Any]], Update]:
        """Declare an update (a decorator on its handler); see :class:`Update`.

        In a saga with a pivot or retriable step, ``before`` must name that step or an
        earlier one: after the point of no return nothing is compensated, so an update
        there could change what was already committed.
        """

        def register(handler: Callable[[WorkflowView[InputT], Any], Any]) -> Update:
            if self._sealed:
                raise DefinitionError(
                    f"cannot add update {name!r}: the saga is already compiled", saga=self.name
                )
            if name in self.updates:
                raise DefinitionError(
                    f"update {name!r} is declared twice", saga=self.name, step=name
                )
            update = Update(name, payload, handler, before)
            self.updates[name] = update
            return update

        return register

    def seal(self) -> None:
        """Refuse any further node: the saga is compiled, and its plan must match it."""
        self._sealed = True

    def query(self, fn: Callable[[QueryView[InputT]], Any]) -> Callable[[QueryView[InputT]], Any]:
        """Declare a read-only query answered from a workflow's view (``client.query``).

        It gets a copy of the workflow's input, results, signals and status and returns a
        JSON-able value; it runs in the processor that owns the workflow, off its
        processing thread, with a time limit.
        """
        name = getattr(fn, "__name__", None)
        if not isinstance(name, str) or name in self.queries:
            raise DefinitionError(
                f"query {name!r} is declared twice or has no name", saga=self.name
            )
        if self._sealed:
            raise DefinitionError(
                f"cannot add query {name!r}: the saga is already compiled", saga=self.name
            )
        self.queries[name] = fn
        return fn


def _node_names(nodes: Sequence[Node]) -> Iterator[str]:
    for node in nodes:
        yield node.name
        if isinstance(node, Parallel):
            yield from (member.name for member in node.members)


def _copy_node(node: Node) -> Node:
    """A node of a derived version: its own object, so that changing it leaves the base be."""
    if not isinstance(node, Parallel):
        return copy.copy(node)
    group = copy.copy(node)
    group.members = [replace(member, group=group) for member in node.members]
    return group


def _caller_module() -> str | None:
    # The first frame outside this module and typing: the code that declared the saga,
    # past ``Saga[Order](...)`` (typing's generic alias calls __init__) and derive()
    # (which builds its version through Saga()).
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in (__name__, "typing"):
        frame = frame.f_back  # type: ignore[assignment]
    name = frame.f_globals.get("__name__") if frame is not None else None
    return name if isinstance(name, str) else None
