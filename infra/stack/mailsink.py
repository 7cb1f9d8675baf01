"""A loopback SMTP server (aiosmtpd) that delivers every message to a folder as an `.eml`
file: the local stand-in for a real mail relay, so dev users and tests can read the
verification and password-reset mail the auth function sends.

    python -m infra.stack.mailsink --port 8025 --dir .data/mail
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP


class FolderDelivery:
    """aiosmtpd handler: one file per message, written then renamed, so a reader never sees
    half a message."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.folder / f".{name}.part"
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        partial.write_bytes(data)
        os.chmod(partial, 0o600)  # reset links are secrets
        partial.rename(self.folder / name)
        return "250 Message accepted for delivery"


async def serve(port: int, folder: Path) -> None:
    handler = FolderDelivery(folder)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="localhost"), host="127.0.0.1", port=port
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.dir))


if __name__ == "__main__":
    main()
