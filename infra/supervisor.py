"""Supervision for `make run` (DESIGN.md §7): a dead process is restarted, not fatal.

Each supervised unit is either a child process (the inference service, the gateway, the
internal host, the train function's host, the dispatcher) or a local stack server this run
started (Postgres, Valkey, SeaweedFS, the SQS server, the mail sink), watched through
`infra/stack`'s own liveness check.
A unit found dead is logged (one JSON line: name, exit code, restart count, delay) and started
again after an exponential back-off, so a process that dies at once does not spin; the back-off
resets once the unit has stayed up for `stable_s`. Only a stop request (Ctrl-C / SIGTERM, seen
by the caller) ends supervision; `stop()` then drains the children: SIGTERM, wait, SIGKILL.

The loop is single-threaded and polls (`tick`): a server's restart waits for its readiness in
the loop, which delays noticing another death by that long, never longer than the stack's
readiness bound.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shared.platform.runtime.backoff import backoff_delay

log = logging.getLogger("supervisor")


@dataclass(frozen=True)
class Policy:
    base_s: float = 1.0
    cap_s: float = 30.0
    stable_s: float = 60.0  # up this long: the next death starts the back-off afresh
    jitter: float = 0.0  # one machine, few units: no herd to spread; tests want exact delays


class Unit:
    """Something that can be started and checked; subclasses say how."""

    name: str

    def start(self) -> None:
        raise NotImplementedError

    def dead(self) -> int | None:
        """None while alive; otherwise the exit code (or -1 when it is not known)."""
        raise NotImplementedError

    def stop(self, timeout_s: float) -> None:
        """Only children are stopped here; the stack's servers are stopped by `stack.down`."""


class ChildProcess(Unit):
    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ):
        self.name, self.cmd, self.env, self.cwd = name, list(cmd), env, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env)

    def dead(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=max(timeout_s, 0))
            return True
        except subprocess.TimeoutExpired:
            return False


class Server(Protocol):
    """What `infra.stack` servers offer (LocalPostgres, LocalValkey, ...)."""

    name: str

    def running(self) -> bool: ...

    def start(self) -> None: ...


class ServerUnit(Unit):
    """A local stack server (`infra.stack.local_servers`): `running()` checks it, `start()`
    starts it and waits for readiness; `after_start` re-provisions what it lost (the SQS
    server keeps its queues in memory). Two failed checks in a row make it dead, so one slow
    answer is not a restart."""

    def __init__(
        self,
        server: Server,
        *,
        after_start: Callable[[], None] | None = None,
        check_s: float = 2.0,
    ):
        self.server = server
        self.name = server.name
        self.after_start = after_start
        self.check_s = check_s  # a check opens a connection: not on every tick
        self._misses = 0
        self._checked_at = 0.0

    def start(self) -> None:
        self.server.start()
        if self.after_start is not None:
            self.after_start()
        self._misses = 0

    def dead(self) -> int | None:
        now = time.monotonic()
        if now - self._checked_at < self.check_s:
            return None
        self._checked_at = now
        if self.server.running():
            self._misses = 0
            return None
        self._misses += 1
        return -1 if self._misses >= 2 else None


@dataclass
class _State:
    unit: Unit
    started_at: float = 0.0
    restarts: int = 0  # restarts so far, for the log
    failures: int = 0  # consecutive quick deaths, for the back-off
    restart_at: float | None = None  # a restart is due at this time
    exit_code: int | None = None


@dataclass
class Supervisor:
    policy: Policy = field(default_factory=Policy)
    clock: Callable[[], float] = time.monotonic
    states: dict[str, _State] = field(default_factory=dict)

    def add(self, unit: Unit, *, started: bool = False) -> None:
        """`started`: the unit is already running (a stack server `stack.up` just started)."""
        state = _State(unit, started_at=self.clock() if started else 0.0)
        self.states[unit.name] = state
        if not started:
            self._start(state)

    def restarts(self, name: str) -> int:
        return self.states[name].restarts

    def _start(self, state: _State) -> bool:
        try:
            state.unit.start()
        except Exception as exc:  # a failed start is a death: back off and try again
            log.error("start failed", extra={"unit": state.unit.name, "error": str(exc)[:500]})
            self._schedule(state, exit_code=None)
            return False
        state.started_at = self.clock()
        state.restart_at = None
        return True

    def _schedule(self, state: _State, *, exit_code: int | None) -> None:
        now = self.clock()
        if state.started_at and now - state.started_at >= self.policy.stable_s:
            state.failures = 0  # it had been fine for a while: this is a new incident
        state.failures += 1
        delay = backoff_delay(
            state.failures,
            base_s=self.policy.base_s,
            cap_s=self.policy.cap_s,
            jitter=self.policy.jitter,
        )
        state.restart_at = now + delay
        state.started_at = 0.0
        state.exit_code = exit_code
        log.warning(
            "process died; restarting after back-off",
            extra={"unit": state.unit.name, "exit_code": exit_code,
                   "restarts": state.restarts, "delay_s": round(delay, 2)},
        )  # fmt: skip

    def tick(self) -> None:
        """Notices deaths and performs the restarts that are due."""
        for state in self.states.values():
            if state.restart_at is None:
                code = state.unit.dead()
                if code is not None:
                    self._schedule(state, exit_code=code)
            if state.restart_at is not None and self.clock() >= state.restart_at:
                state.restarts += 1
                if self._start(state):
                    log.warning(
                        "process restarted",
                        extra={"unit": state.unit.name, "restarts": state.restarts,
                               "previous_exit_code": state.exit_code},
                    )  # fmt: skip

    def stop(self, timeout_s: float = 35.0) -> list[str]:
        """Drains the child processes: SIGTERM to all, a shared wait, then SIGKILL."""
        children = [s.unit for s in self.states.values() if isinstance(s.unit, ChildProcess)]
        for child in children:
            child.signal(signal.SIGTERM)
        deadline = self.clock() + timeout_s
        for child in children:
            if not child.wait(deadline - self.clock()):
                log.warning("did not drain in time; killing it", extra={"unit": child.name})
                child.signal(signal.SIGKILL)
                child.wait(5)
        return [child.name for child in children]
