"""`make systemd` (`python -m infra.singlebox.systemd`): systemd units for a single box
(docs/single-box.md), written into a folder (build/systemd/ by default) for an operator to
install into /etc/systemd/system.

One unit per process `make run` supervises (infra/run.py: the inference and voice services,
the gateway, the internal function host, each dedicated function host, the dispatcher), each
run directly with Restart=on-failure; the embedded data services as one unit of their own
(infra/singlebox/stack_service.py), or the system's Postgres and Valkey units; migrations as
a oneshot that the processes needing the database wait for; the nightly backup as a oneshot
and its timer; and a target that groups them. Every unit runs as an unprivileged user,
with the system read-only but for the data folder (and the backup folder for the backup).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infra.run import PROCESSES, dedicated_hosts
from infra.singlebox.stack_service import DEFAULT_SERVICES, SERVERS
from shared.platform.settings import REPO_ROOT, Settings, get_settings

Section = list[tuple[str, str]]


@dataclass(frozen=True)
class Options:
    prefix: Path = REPO_ROOT  # the checkout, with its .venv
    user: str = "acs"
    env_file: Path = Path("/etc/adaptive-chat/acs.env")
    secrets_file: Path | None = Path("/etc/adaptive-chat/secrets.env")
    data_dir: Path | None = None  # None: <prefix>/.data, as settings' default
    backup_dir: Path = Path("/var/backups/adaptive-chat")
    backup_keep_days: int = 7
    backup_upload: bool = False
    backup_calendar: str = "*-*-* 02:30:00"
    embedded: tuple[str, ...] = DEFAULT_SERVICES  # the data services the stack unit runs
    system_units: tuple[str, ...] = ()  # e.g. postgresql.service, valkey-server.service
    name: str = "acs"  # unit name prefix
    extra_environment: dict[str, str] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.prefix / ".venv" / "bin" / "python"

    @property
    def data(self) -> Path:
        return self.data_dir or self.prefix / ".data"

    def unit(self, what: str) -> str:
        return f"{self.name}-{what}.service"

    @property
    def target(self) -> str:
        return f"{self.name}.target"


# Hardening shared by every unit (systemd.exec(5)). Not MemoryDenyWriteExecute: XLA and
# libffi write code at run time. The inference unit keeps the host's devices (a GPU).
HARDENING: Section = [
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "read-only"),
    ("PrivateTmp", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictNamespaces", "yes"),
    ("LockPersonality", "yes"),
    ("SystemCallArchitectures", "native"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"),
    ("CapabilityBoundingSet", ""),
    ("UMask", "0077"),
]

# What each process is, for its Description.
ROLES = {
    "inference": "the inference service (the model, on 127.0.0.1)",
    "voice": "the voice service (speech to text and text to speech, on 127.0.0.1)",
    "gateway": "the gateway (public API and web app, behind the reverse proxy)",
    "functions-internal": "the internal function host (queue and scheduled functions)",
    "dispatcher": "the dispatcher (queues, schedules, the outbox relay)",
}
# Processes that work without the database at start (the others need migrations applied).
NO_DATABASE = {"voice"}
# Restart order for an upgrade (the public face last, once what it calls is back).
FIRST, LAST = ("inference", "voice"), ("dispatcher", "gateway")


def render(sections: Sequence[tuple[str, Section]]) -> str:
    out = []
    for title, entries in sections:
        out.append(f"[{title}]")
        out += [f"{key}={value}" for key, value in entries]
        out.append("")
    return "\n".join(out)


def processes(options: Options, settings: Settings) -> dict[str, list[str]]:
    """`make run`'s processes (infra/run.py), run by the box's interpreter, in restart order."""
    found = {**PROCESSES, **dedicated_hosts(settings)}
    commands = {name: [str(options.python), *cmd[1:]] for name, cmd in found.items()}
    middle = [name for name in commands if name not in (*FIRST, *LAST)]
    return {name: commands[name] for name in (*FIRST, *middle, *LAST) if name in commands}


def _environment(options: Options, settings: Settings) -> Section:
    env = {
        "PYTHONPATH": str(options.prefix),
        "PYTHONUNBUFFERED": "1",
        "DATA_DIR": str(options.data),
        "XDG_CACHE_HOME": str(options.data / "cache"),  # a system user's home is read-only
        # As `make run` does; the environment file may point elsewhere (it wins over these).
        "INFERENCE_URL": f"http://127.0.0.1:{settings.inference_port}",
        "VOICE_URL": f"http://127.0.0.1:{settings.voice_port}",
        **options.extra_environment,
    }
    if options.secrets_file is not None:
        env["SECRETS_FILE"] = str(options.secrets_file)
    return [("Environment", f"{key}={value}") for key, value in env.items()] + [
        ("EnvironmentFile", str(options.env_file))
    ]


def _service(options: Options, settings: Settings, *, writable: Sequence[Path],
             devices: bool = False) -> Section:  # fmt: skip
    paths = " ".join(str(path) for path in writable)
    return [
        ("User", options.user),
        ("Group", options.user),
        ("WorkingDirectory", str(options.prefix)),
        *_environment(options, settings),
        *HARDENING,
        ("ReadWritePaths", paths),
        ("PrivateDevices", "no" if devices else "yes"),
    ]


def _data_dependencies(options: Options) -> Section:
    units = [*options.system_units, *([options.unit("stack")] if options.embedded else [])]
    if not units:
        return []
    return [("Wants", " ".join(units)), ("After", " ".join(units))]


def stack_unit(options: Options, settings: Settings) -> str:
    cmd = (
        f"{options.python} -m infra.singlebox.stack_service --services {','.join(options.embedded)}"
    )
    return render([
        ("Unit", [("Description", f"Adaptive Chat: data services ({', '.join(options.embedded)})"),
                  ("PartOf", options.target), ("After", "network.target")]),
        ("Service", [
            ("Type", "notify"), ("NotifyAccess", "main"), ("ExecStart", cmd),
            ("Restart", "on-failure"), ("RestartSec", "5"),
            ("TimeoutStartSec", "300"), ("TimeoutStopSec", "90"), ("KillMode", "mixed"),
            *_service(options, settings, writable=[options.data]),
        ]),
        ("Install", [("WantedBy", options.target)]),
    ])  # fmt: skip


def migrate_unit(options: Options, settings: Settings) -> str:
    return render([
        ("Unit", [("Description", "Adaptive Chat: database migrations and seeds"),
                  ("PartOf", options.target), *_data_dependencies(options)]),
        ("Service", [
            ("Type", "oneshot"), ("RemainAfterExit", "yes"),
            ("ExecStart", f"{options.python} -m infra.migrate"), ("TimeoutStartSec", "600"),
            *_service(options, settings, writable=[options.data]),
        ]),
        ("Install", [("WantedBy", options.target)]),
    ])  # fmt: skip


def process_unit(options: Options, settings: Settings, name: str, cmd: list[str]) -> str:
    needs = [] if name in NO_DATABASE else [options.unit("migrate")]
    role = ROLES.get(name, f"the host of {cmd[-1]} (a process of its own, niced)")
    return render([
        ("Unit", [("Description", f"Adaptive Chat: {role}"), ("PartOf", options.target),
                  *([("Requires", " ".join(needs))] if needs else []),
                  *_data_dependencies(options),
                  *([("After", " ".join(needs))] if needs else [])]),
        ("Service", [
            ("Type", "simple"), ("ExecStart", " ".join(cmd)),
            ("Restart", "on-failure"), ("RestartSec", "2"),
            ("TimeoutStopSec", "45"), ("KillMode", "mixed"),
            *_service(options, settings, writable=[options.data], devices=name == "inference"),
        ]),
        ("Install", [("WantedBy", options.target)]),
    ])  # fmt: skip


def backup_units(options: Options, settings: Settings) -> dict[str, str]:
    cmd = (f"{options.python} -m infra.singlebox.backup dump --dir {options.backup_dir}"
           f" --keep-days {options.backup_keep_days}"
           + (" --upload" if options.backup_upload else ""))  # fmt: skip
    service = render([
        ("Unit", [("Description", "Adaptive Chat: nightly database backup (pg_dump)"),
                  *_data_dependencies(options)]),
        ("Service", [
            ("Type", "oneshot"), ("ExecStart", cmd), ("Nice", "10"),
            ("IOSchedulingClass", "idle"),
            *_service(options, settings, writable=[options.data, options.backup_dir]),
        ]),
    ])  # fmt: skip
    timer = render([
        ("Unit", [("Description", "Adaptive Chat: run the database backup nightly"),
                  ("PartOf", options.target)]),
        ("Timer", [("OnCalendar", options.backup_calendar), ("Persistent", "true"),
                   ("RandomizedDelaySec", "10min"), ("Unit", options.unit("backup"))]),
        ("Install", [("WantedBy", f"timers.target {options.target}")]),
    ])  # fmt: skip
    return {options.unit("backup"): service, f"{options.name}-backup.timer": timer}


def units(options: Options, settings: Settings) -> dict[str, str]:
    """File name -> content, every unit of the box."""
    if options.user == "root":
        raise ValueError("the units run as an unprivileged user: choose USER (e.g. acs)")
    unknown = sorted(set(options.embedded) - set(SERVERS))
    if unknown:
        raise ValueError(f"unknown embedded services: {', '.join(unknown)}")
    made: dict[str, str] = {}
    if options.embedded:
        made[options.unit("stack")] = stack_unit(options, settings)
    made[options.unit("migrate")] = migrate_unit(options, settings)
    for name, cmd in processes(options, settings).items():
        made[options.unit(name)] = process_unit(options, settings, name, cmd)
    made.update(backup_units(options, settings))
    members = [name for name in made if name != options.unit("backup")]
    made[options.target] = render([
        ("Unit", [("Description", "Adaptive Chat on this machine"), ("Wants", " ".join(members)),
                  ("After", "network-online.target")]),
        ("Install", [("WantedBy", "multi-user.target")]),
    ])  # fmt: skip
    return made


def restart_order(options: Options, settings: Settings) -> list[str]:
    """The units an upgrade restarts, in order (the data services and the backup stay)."""
    return [options.unit(name) for name in processes(options, settings)]


def write(out: Path, made: dict[str, str]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*"):  # a unit no longer generated must not linger
        if stale.suffix in (".service", ".timer", ".target"):
            stale.unlink()
    paths = []
    for name, text in made.items():
        path = out / name
        path.write_text(text)
        paths.append(path)
    return paths


def _csv(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def main(argv: list[str] | None = None) -> int:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m infra.singlebox.systemd")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "systemd")
    parser.add_argument("--prefix", type=Path, default=defaults.prefix)
    parser.add_argument("--user", default=defaults.user)
    parser.add_argument("--env-file", type=Path, default=defaults.env_file)
    parser.add_argument("--secrets-file", default=str(defaults.secrets_file),
                        help="SECRETS_FILE for every unit; empty: none")  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--backup-dir", type=Path, default=defaults.backup_dir)
    parser.add_argument("--backup-keep-days", type=int, default=defaults.backup_keep_days)
    parser.add_argument("--backup-upload", action="store_true")
    parser.add_argument("--embedded", default=",".join(defaults.embedded),
                        help="data services the stack unit runs; empty: none")  # fmt: skip
    parser.add_argument("--system-units", default="",
                        help="e.g. postgresql.service,valkey-server.service")  # fmt: skip
    parser.add_argument("--name", default=defaults.name)
    args = parser.parse_args(argv)
    options = Options(
        prefix=args.prefix.resolve(), user=args.user, env_file=args.env_file,
        secrets_file=Path(args.secrets_file) if args.secrets_file else None,
        data_dir=args.data_dir, backup_dir=args.backup_dir,
        backup_keep_days=args.backup_keep_days, backup_upload=args.backup_upload,
        embedded=_csv(args.embedded), system_units=_csv(args.system_units), name=args.name,
    )  # fmt: skip
    try:
        made = units(options, get_settings())
    except ValueError as exc:
        print(f"systemd: {exc}", file=sys.stderr)
        return 2
    paths = write(args.out, made)
    print(f"wrote {len(paths)} units to {args.out}:")
    for path in paths:
        print(f"  {path.name}")
    print(f"install: sudo cp {args.out}/* /etc/systemd/system/ && sudo systemctl daemon-reload"
          f" && sudo systemctl enable --now {options.target}  (docs/single-box.md)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
