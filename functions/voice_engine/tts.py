"""Text-to-speech through Piper, run as its own program.

piper-tts is GPL-3.0-or-later, so the project never imports it: each worker is the unmodified
`python -m piper` command reading one sentence per line on stdin and writing one WAV file per
line into a private folder; its log line "Wrote <path>" says the sentence is done. A worker that
dies is replaced, and the sentence it was on is reported as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
import tempfile
import wave
from pathlib import Path

log = logging.getLogger(__name__)
_WROTE = re.compile(r"Wrote (.+\.wav)\s*$")


class SynthesisFailed(RuntimeError):
    pass


class PiperWorker:
    def __init__(self, model: Path):
        self.model = model
        self._dir = Path(tempfile.mkdtemp(prefix="piper-"))
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The running worker's process id (None when stopped)."""
        return self._process.pid if self._process and self._process.returncode is None else None

    async def start(self) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "piper", "-m", str(self.model), "--output-dir", str(self._dir),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip

    async def speak(self, sentence: str, timeout_s: float) -> tuple[bytes, int]:
        """16-bit mono PCM of one line of text, and its sample rate."""
        if self._process is None or self._process.returncode is not None:
            await self.start()
        process = self._process
        assert process is not None and process.stdin is not None and process.stderr is not None
        try:
            process.stdin.write(sentence.encode() + b"\n")
            await process.stdin.drain()
            path = await asyncio.wait_for(self._written(process.stderr), timeout_s)
        except (TimeoutError, OSError, SynthesisFailed) as exc:
            await self.stop()  # its state is unknown: the next sentence gets a fresh worker
            raise SynthesisFailed(f"piper failed on a sentence: {exc}") from exc
        try:
            with wave.open(str(path), "rb") as wav:
                return wav.readframes(wav.getnframes()), wav.getframerate()
        finally:
            path.unlink(missing_ok=True)

    @staticmethod
    async def _written(stderr: asyncio.StreamReader) -> Path:
        while line := await stderr.readline():
            text = line.decode(errors="replace").strip()
            if match := _WROTE.search(text):
                return Path(match.group(1))
            if text:
                log.debug("piper: %s", text)
        raise SynthesisFailed("piper exited")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def close(self) -> None:
        await self.stop()
        for leftover in self._dir.glob("*"):
            leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._dir.rmdir()


class Speaker:
    """A pool of Piper workers for one voice; a sentence takes whichever worker is free, so
    answers being spoken at the same time take turns sentence by sentence."""

    def __init__(self, voice_id: str, model: Path, workers: int, timeout_s: float):
        self.voice_id = voice_id
        self.sample_rate = 0
        self.timeout_s = timeout_s
        self._workers = [PiperWorker(model) for _ in range(workers)]
        self._free: asyncio.Queue[PiperWorker] = asyncio.Queue()

    async def start(self) -> None:
        for worker in self._workers:
            await worker.start()
            self._free.put_nowait(worker)
        # The warm-up: the first sentence loads the ONNX model and tells the sample rate.
        _, self.sample_rate = await self.speak("Ready.")

    async def speak(self, sentence: str) -> tuple[bytes, int]:
        worker = await self._free.get()
        try:
            return await worker.speak(sentence, self.timeout_s)
        finally:
            self._free.put_nowait(worker)

    async def close(self) -> None:
        for worker in self._workers:
            await worker.close()
