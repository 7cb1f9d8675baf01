"""`make upgrade` (after `make install frontend`, i.e. the new lock and web app are in place):
`python -m infra.singlebox.upgrade` brings the single box's units onto the new code
(docs/single-box.md, "Upgrading" and "Rolling back").

Every step goes through systemd, so each runs as the service user with the units' own
environment and secrets (the operator's shell has neither):

1. every unit to restart must be installed (a release that adds a process needs `make systemd`
   and its units first): checked before anything stops;
2. a backup (`acs-backup.service`, the nightly oneshot) now, the rollback point;
3. the processes stop, last-started first, so nothing writes while the schema changes;
4. migrations run (`acs-migrate.service`, restarted: a oneshot runs again);
5. the processes start in order (the inference and voice services first, the gateway last)
   and each must be active.

The data services keep running throughout.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence

from infra.singlebox.systemd import Options, restart_order
from shared.platform.settings import get_settings

Runner = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


class UpgradeError(RuntimeError):
    pass


def plan(options: Options, order: list[str], *, backup: bool = True) -> list[list[str]]:
    """The systemctl calls, in order (each a systemctl argument list)."""
    steps = []
    if backup:
        steps.append(["start", options.unit("backup")])
    steps.append(["stop", *reversed(order)])
    steps.append(["restart", options.unit("migrate")])
    steps += [["start", unit] for unit in order]
    steps.append(["is-active", *order])
    return steps


def missing_units(systemctl: list[str], units: list[str], run: Runner = _run) -> list[str]:
    missing = []
    for unit in units:
        answer = run([*systemctl, "show", "--property=LoadState", "--value", unit])
        if answer.returncode != 0 or answer.stdout.strip() != "loaded":
            missing.append(unit)
    return missing


def upgrade(options: Options, order: list[str], *, systemctl: list[str], backup: bool = True,
            run: Runner = _run) -> list[list[str]]:  # fmt: skip
    needed = [*order, options.unit("migrate"), *([options.unit("backup")] if backup else [])]
    missing = missing_units(systemctl, needed, run)
    if missing:
        raise UpgradeError(
            f"not installed: {', '.join(missing)}; run `make systemd`, install the units and"
            " `systemctl daemon-reload` first (docs/single-box.md)"
        )
    done = []
    for step in plan(options, order, backup=backup):
        answer = run([*systemctl, *step])
        if answer.returncode != 0:
            raise UpgradeError(
                f"`{shlex.join([*systemctl, *step])}` failed ({answer.returncode}):"
                f" {(answer.stderr or answer.stdout).strip()[-1000:]}; see `journalctl -u"
                f" {step[-1]}`; to roll back see docs/single-box.md"
            )
        done.append(step)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.singlebox.upgrade")
    parser.add_argument("--name", default=Options().name, help="the units' name prefix")
    parser.add_argument("--systemctl", default="systemctl", help='e.g. "sudo systemctl"')
    parser.add_argument("--no-backup", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    args = parser.parse_args(argv)
    options = Options(name=args.name)
    order = restart_order(options, get_settings())
    systemctl = shlex.split(args.systemctl)
    if args.dry_run:
        steps = plan(options, order, backup=not args.no_backup)
        print("\n".join(shlex.join([*systemctl, *step]) for step in steps))
        return 0
    try:
        done = upgrade(options, order, systemctl=systemctl, backup=not args.no_backup)
    except UpgradeError as exc:
        print(f"upgrade: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"upgraded": order, "steps": len(done)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
