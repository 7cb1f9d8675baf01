"""`make run`'s supervisor (infra/supervisor.py) with tiny real processes: a dead child is
restarted with a growing, capped back-off that resets after a stable run; a failing start is
retried; a dead server is brought back; stop() drains with SIGTERM and kills what ignores it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from infra.supervisor import ChildProcess, Policy, ServerUnit, Supervisor
from tests.helpers import wait_for

pytestmark = pytest.mark.integration
PY = sys.executable


def _run_until(supervisor: Supervisor, predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        supervisor.tick()
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_dying_child_is_restarted_with_a_doubling_capped_back_off(caplog) -> None:
    caplog.set_level("WARNING", logger="supervisor")
    supervisor = Supervisor(Policy(base_s=0.1, cap_s=0.4, stable_s=60))
    supervisor.add(ChildProcess("crasher", [PY, "-c", "import sys; sys.exit(3)"]))
    _run_until(supervisor, lambda: supervisor.restarts("crasher") >= 4, timeout_s=10)
    deaths = [r for r in caplog.records if r.getMessage().startswith("process died")]
    assert [d.exit_code for d in deaths[:4]] == [3, 3, 3, 3]
    assert [d.delay_s for d in deaths[:4]] == [0.1, 0.2, 0.4, 0.4]  # doubling, capped
    assert [d.restarts for d in deaths[:4]] == [0, 1, 2, 3]
    restarted = [r for r in caplog.records if r.getMessage() == "process restarted"]
    assert restarted and restarted[0].unit == "crasher"
    supervisor.stop(timeout_s=2)


def test_the_back_off_resets_after_the_child_stayed_up(caplog) -> None:
    caplog.set_level("WARNING", logger="supervisor")
    supervisor = Supervisor(Policy(base_s=0.1, cap_s=5, stable_s=0.3))
    # Lives 0.5 s (longer than stable_s) each time: every death is a fresh incident.
    supervisor.add(ChildProcess("steady", [PY, "-c", "import time; time.sleep(0.5)"]))
    _run_until(supervisor, lambda: supervisor.restarts("steady") >= 3, timeout_s=15)
    deaths = [r for r in caplog.records if r.getMessage().startswith("process died")]
    assert [d.delay_s for d in deaths[:3]] == [0.1, 0.1, 0.1]
    assert all(d.exit_code == 0 for d in deaths[:3])  # a clean exit is restarted too
    supervisor.stop(timeout_s=2)


def test_a_killed_child_comes_back_as_a_new_process() -> None:
    supervisor = Supervisor(Policy(base_s=0.05, cap_s=0.1))
    child = ChildProcess("sleeper", [PY, "-c", "import time; time.sleep(60)"])
    supervisor.add(child)
    first = child.proc
    assert first is not None
    first.kill()  # kill -9
    _run_until(supervisor, lambda: child.proc is not first and child.dead() is None, 10)
    assert first.returncode == -9 and supervisor.restarts("sleeper") == 1
    assert supervisor.stop(timeout_s=5) == ["sleeper"]
    assert child.proc is not None and child.proc.returncode is not None


def test_stop_terminates_and_then_kills_what_ignores_sigterm() -> None:
    supervisor = Supervisor()
    stubborn = ChildProcess(
        "stubborn",
        [PY, "-c", "import signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
         "print('ready', flush=True)\ntime.sleep(60)"],
    )  # fmt: skip
    stubborn.start = lambda: setattr(  # type: ignore[method-assign]
        stubborn, "proc", subprocess.Popen(stubborn.cmd, stdout=subprocess.PIPE)
    )
    polite = ChildProcess("polite", [PY, "-c", "import time; time.sleep(60)"])
    supervisor.add(stubborn)
    supervisor.add(polite)
    assert stubborn.proc is not None and stubborn.proc.stdout is not None
    assert stubborn.proc.stdout.readline().strip() == b"ready"  # its SIGTERM handler is set
    started = time.monotonic()
    supervisor.stop(timeout_s=1)
    assert polite.proc is not None and polite.proc.returncode == -15  # SIGTERM
    assert stubborn.proc.returncode == -9  # killed after the drain bound
    assert time.monotonic() - started < 10


class _Server:
    """A stand-in stack server: a real `python -m http.server` on a free port."""

    name = "toy"

    def __init__(self) -> None:
        from tests.helpers import free_port

        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def running(self) -> bool:
        from infra.stack.process import port_open

        return self.proc is not None and self.proc.poll() is None and port_open(self.port)

    def start(self) -> None:
        self.starts += 1
        self.proc = subprocess.Popen(
            [PY, "-m", "http.server", "-b", "127.0.0.1", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.running, timeout_s=10, what="toy server")


def test_a_dead_server_is_started_again_and_reprovisioned() -> None:
    server, provisioned = _Server(), []
    server.start()
    unit = ServerUnit(server, after_start=lambda: provisioned.append(True), check_s=0.05)
    supervisor = Supervisor(Policy(base_s=0.05, cap_s=0.1))
    supervisor.add(unit, started=True)
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait()
    _run_until(supervisor, lambda: server.starts == 2 and server.running(), timeout_s=15)
    assert provisioned == [True]  # what it lost (moto: its queues) is re-created
    server.proc.kill()
    server.proc.wait()
