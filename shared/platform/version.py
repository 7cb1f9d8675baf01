"""Version and git commit reported by /healthz."""

from __future__ import annotations

import functools

from shared.platform.settings import REPO_ROOT, Settings


@functools.lru_cache(maxsize=1)
def _commit_from_checkout() -> str | None:
    """Reads .git directly (no git binary in a Lambda image); None outside a checkout."""
    git = REPO_ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        ref_file = git / ref
        if ref_file.exists():
            return ref_file.read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


def build_info(settings: Settings) -> dict[str, str | None]:
    return {
        "version": settings.version,
        "git_commit": settings.git_commit or _commit_from_checkout(),
    }
