"""The single box's systemd units (infra/singlebox/systemd.py), its upgrade plan and the
reverse-proxy examples: every process `make run` runs has a unit whose ExecStart is a real
interpreter and module, hardened, restarted on failure, ordered after the data and the
migrations; `systemd-analyze verify` accepts them where it is installed."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from infra.run import PROCESSES, dedicated_hosts
from infra.singlebox import stack_service, upgrade
from infra.singlebox.systemd import HARDENING, Options, main, restart_order, units, write
from shared.platform.settings import REPO_ROOT, Settings
from shared.platform.template import load_template

SINGLEBOX = REPO_ROOT / "infra" / "singlebox"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(_env_file=None)


def parse(text: str) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values (a key may repeat: Environment, After)."""
    parsed: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line:
            key, value = line.split("=", 1)
            parsed[section][key].append(value)
    return parsed


def _services(made: dict[str, str]) -> dict[str, dict[str, dict[str, list[str]]]]:
    return {name: parse(text) for name, text in made.items() if name.endswith(".service")}


def test_every_process_of_make_run_has_a_unit(settings: Settings) -> None:
    made = units(Options(), settings)
    expected = {f"acs-{name}.service" for name in {**PROCESSES, **dedicated_hosts(settings)}}
    assert expected <= set(made)
    assert {
        "acs-stack.service",
        "acs-migrate.service",
        "acs-backup.service",
        "acs-backup.timer",
        "acs.target",
    } <= set(made)
    target = parse(made["acs.target"])
    members = set(target["Unit"]["Wants"][0].split())
    assert members == set(made) - {"acs.target", "acs-backup.service"}


def test_every_exec_start_is_the_interpreter_running_a_real_module(settings: Settings) -> None:
    template = load_template(settings.template_path, settings)
    options = Options(prefix=REPO_ROOT)
    for name, unit in _services(units(options, settings)).items():
        (command,) = unit["Service"]["ExecStart"]
        argv = command.split()
        assert Path(argv[0]) == options.python and Path(argv[0]).exists(), name
        assert argv[1] == "-m", name
        assert importlib.util.find_spec(argv[2]) is not None, f"{name}: no module {argv[2]}"
        if "--only" in argv:  # a dedicated host serves a function of the template
            assert argv[argv.index("--only") + 1] in template.functions


def test_units_are_hardened_and_write_only_to_the_data_and_backups(settings: Settings) -> None:
    options = Options(prefix=Path("/opt/acs"), user="acs", backup_dir=Path("/srv/backups"))
    for name, unit in _services(units(options, settings)).items():
        service = unit["Service"]
        for key, value in HARDENING:
            assert service[key] == [value], f"{name}: {key}"
        assert service["User"] == ["acs"] and service["Group"] == ["acs"]
        writable = service["ReadWritePaths"][0].split()
        assert writable[0] == "/opt/acs/.data"
        assert writable[1:] == (["/srv/backups"] if name == "acs-backup.service" else [])
        # Only the inference service sees the host's devices (a GPU).
        assert service["PrivateDevices"] == ["no" if name == "acs-inference.service" else "yes"]
        assert (
            "EnvironmentFile" in service
            and "SECRETS_FILE=/etc/adaptive-chat/secrets.env" in (service["Environment"])
        )
        if service["Type"] != ["oneshot"]:
            assert service["Restart"] == ["on-failure"], name


def test_processes_wait_for_the_data_and_the_migrations(settings: Settings) -> None:
    services = _services(units(Options(), settings))
    for name in (
        "acs-gateway.service",
        "acs-dispatcher.service",
        "acs-functions-internal.service",
        "acs-functions-train.service",
        "acs-inference.service",
    ):
        unit = services[name]["Unit"]
        assert unit["Requires"] == ["acs-migrate.service"]
        assert {"acs-migrate.service", "acs-stack.service"} <= set(" ".join(unit["After"]).split())
    assert services["acs-stack.service"]["Service"]["Type"] == ["notify"]
    assert "acs-stack.service" in services["acs-migrate.service"]["Unit"]["After"][0]


def test_system_postgres_and_valkey_instead_of_embedded_ones(settings: Settings) -> None:
    options = Options(
        embedded=("seaweedfs", "sqs"), system_units=("postgresql.service", "valkey-server.service")
    )
    services = _services(units(options, settings))
    assert services["acs-stack.service"]["Service"]["ExecStart"][0].endswith(
        "--services seaweedfs,sqs"
    )
    after = services["acs-migrate.service"]["Unit"]["After"][0].split()
    assert after == ["postgresql.service", "valkey-server.service", "acs-stack.service"]
    no_stack = units(Options(embedded=(), system_units=("postgresql.service",)), settings)
    assert "acs-stack.service" not in no_stack


def test_the_nightly_backup_prunes_and_its_timer_catches_up(settings: Settings) -> None:
    made = units(Options(backup_keep_days=14, backup_upload=True), settings)
    (command,) = parse(made["acs-backup.service"])["Service"]["ExecStart"]
    assert command.split()[1:] == [
        "-m",
        "infra.singlebox.backup",
        "dump",
        "--dir",
        "/var/backups/adaptive-chat",
        "--keep-days",
        "14",
        "--upload",
    ]
    timer = parse(made["acs-backup.timer"])["Timer"]
    assert timer["Persistent"] == ["true"] and timer["Unit"] == ["acs-backup.service"]


def test_root_and_unknown_services_are_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="unprivileged"):
        units(Options(user="root"), settings)
    with pytest.raises(ValueError, match="mysql"):
        units(Options(embedded=("postgres", "mysql")), settings)


def test_writing_again_removes_units_no_longer_generated(
    tmp_path: Path, settings: Settings
) -> None:
    write(tmp_path, units(Options(), settings))
    (tmp_path / "acs-gone.service").write_text("[Unit]\n")
    (tmp_path / "README").write_text("kept")
    write(tmp_path, units(Options(embedded=()), settings))
    names = {path.name for path in tmp_path.iterdir()}
    assert "acs-gone.service" not in names and "acs-stack.service" not in names
    assert "README" in names


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    out = tmp_path / "units"
    assert main(["--out", str(out), "--prefix", str(REPO_ROOT)]) == 0
    files = sorted(str(path) for path in out.iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", *files], capture_output=True, text=True, cwd=out, timeout=120
    )
    assert result.returncode == 0, result.stderr
    # It does check what it can: a unit whose interpreter is missing fails.
    broken = tmp_path / "broken"
    assert main(["--out", str(broken), "--prefix", "/nonexistent"]) == 0
    failed = subprocess.run(
        ["systemd-analyze", "verify", str(broken / "acs-gateway.service")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode != 0 and "not executable" in failed.stderr


def test_an_upgrade_stops_migrates_and_starts_in_order(settings: Settings) -> None:
    options = Options()
    order = restart_order(options, settings)
    assert order[-1] == "acs-gateway.service" and order[:2] == [
        "acs-inference.service",
        "acs-voice.service",
    ]
    calls: list[list[str]] = []

    def systemctl(cmd):
        calls.append(list(cmd))
        loaded = "loaded" if cmd[1] == "show" else ""
        return subprocess.CompletedProcess(cmd, 0, stdout=loaded, stderr="")

    upgrade.upgrade(options, order, systemctl=["systemctl"], run=systemctl)
    actions = [call[1:] for call in calls if call[1] != "show"]
    assert actions[0] == ["start", "acs-backup.service"]
    assert actions[1] == ["stop", *reversed(order)]
    assert actions[2] == ["restart", "acs-migrate.service"]
    assert actions[3:-1] == [["start", unit] for unit in order]
    assert actions[-1] == ["is-active", *order]


def test_an_upgrade_stops_nothing_while_a_unit_is_not_installed(settings: Settings) -> None:
    options = Options()
    order = restart_order(options, settings)
    calls: list[list[str]] = []

    def systemctl(cmd):
        calls.append(list(cmd))
        state = "not-found" if cmd[-1] == "acs-functions-train.service" else "loaded"
        return subprocess.CompletedProcess(cmd, 0, stdout=state, stderr="")

    with pytest.raises(upgrade.UpgradeError, match=r"acs-functions-train\.service"):
        upgrade.upgrade(options, order, systemctl=["systemctl"], run=systemctl)
    assert all(call[1] == "show" for call in calls)


def test_the_stack_unit_tells_systemd_it_is_ready(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert stack_service.notify("READY=1")
        assert server.recv(100) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not stack_service.notify("READY=1")


def test_the_proxy_examples_reach_the_gateway_with_websockets_and_streams_unbuffered() -> None:
    nginx = (SINGLEBOX / "nginx.conf").read_text()
    for needed in (
        "proxy_pass http://acs_gateway",
        "server 127.0.0.1:8080",
        "proxy_set_header Upgrade $http_upgrade",
        "proxy_buffering off",
        "Strict-Transport-Security",
        "X-Forwarded-Proto",
        "proxy_pass http://127.0.0.1:8333",
    ):
        assert needed in nginx, needed
    caddy = (SINGLEBOX / "Caddyfile").read_text()
    for needed in (
        "reverse_proxy 127.0.0.1:8080",
        "flush_interval -1",
        "Strict-Transport-Security",
        "reverse_proxy 127.0.0.1:8333",
    ):
        assert needed in caddy, needed
