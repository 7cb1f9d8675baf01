"""What the voice service holds: the checked models, the Whisper model and the Piper workers."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from functions.voice_engine import models
from functions.voice_engine.stt import Transcriber
from functions.voice_engine.tts import Speaker
from shared.platform.settings import Settings

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("voice_requests", "Requests by route and outcome",
                                ["route", "outcome"], registry=r)  # fmt: skip
        self.audio_in = Counter("voice_audio_in_seconds", "Seconds of audio transcribed",
                                registry=r)  # fmt: skip
        self.audio_out = Counter("voice_audio_out_seconds", "Seconds of audio synthesised",
                                 registry=r)  # fmt: skip
        factors = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2)
        self.stt_rtf = Histogram("voice_stt_real_time_factor", "Compute time / audio time",
                                 registry=r, buckets=factors)  # fmt: skip
        self.tts_rtf = Histogram("voice_tts_real_time_factor", "Per sentence", registry=r,
                                 buckets=factors)  # fmt: skip
        self.first_audio = Histogram("voice_tts_first_audio_seconds",
                                     "Request to the first audio bytes", registry=r,
                                     buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5))  # fmt: skip


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.metrics = Metrics()
        self.transcriber: Transcriber | None = None
        self.speakers: dict[str, Speaker] = {}
        self.phase = "starting"
        self.load_error: str | None = None
        self.ready = asyncio.Event()
        self.start_s: float | None = None

    async def load(self) -> None:
        started = time.perf_counter()
        s = self.settings
        try:
            self.phase = "checking models"
            folder = await asyncio.to_thread(models.whisper_dir, s.voice_stt_model,
                                             s.voice_models_dir)  # fmt: skip
            voices = {v.id: await asyncio.to_thread(models.voice_model, v)
                      for v in models.VOICES.values()}  # fmt: skip
            self.phase = "loading whisper"
            self.transcriber = await asyncio.to_thread(
                Transcriber, folder, name=s.voice_stt_model, threads=s.voice_stt_threads,
                beam_size=s.voice_stt_beam_size,
            )  # fmt: skip
            self.phase = "starting piper"
            for voice_id, model in voices.items():
                speaker = Speaker(voice_id, model, s.voice_tts_workers, s.voice_timeout_s)
                await speaker.start()
                self.speakers[voice_id] = speaker
        except Exception as exc:  # the port stays up and /healthz says why
            log.exception("voice service failed to start")
            self.load_error = f"{type(exc).__name__}: {exc}"
            self.phase = "failed"
            return
        self.start_s = round(time.perf_counter() - started, 2)
        self.phase = "ready"
        self.ready.set()
        log.info("voice service ready", extra={"start_s": self.start_s})

    async def close(self) -> None:
        for speaker in self.speakers.values():
            await speaker.close()
