"""Speech-to-text: faster-whisper (CTranslate2, int8 on the CPU) over 16 kHz samples."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import _LANGUAGE_CODES

from functions.voice_engine.audio import WHISPER_RATE, AudioRefused


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    duration_s: float
    segments: list[dict[str, Any]]
    compute_s: float

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "language": self.language,
                "duration_s": round(self.duration_s, 3), "segments": self.segments}  # fmt: skip


class Transcriber:
    """One Whisper model; calls are serialised (a call already uses every thread it is given,
    so two at once would only split the cores and double both latencies)."""

    def __init__(self, folder: Path, *, name: str, threads: int, beam_size: int):
        self.name = name
        self.english_only = name.endswith(".en")
        self.beam_size = beam_size
        self._model = WhisperModel(str(folder), device="cpu", compute_type="int8",
                                   cpu_threads=threads, local_files_only=True)  # fmt: skip
        self._lock = threading.Lock()

    def check_language(self, language: str | None) -> str | None:
        if language is None:
            return "en" if self.english_only else None
        language = language.lower()
        if language not in _LANGUAGE_CODES or (self.english_only and language != "en"):
            raise AudioRefused(422, "unsupported_language", f"cannot transcribe {language!r}")
        return language

    def transcribe(self, samples: np.ndarray, language: str | None = None) -> Transcript:
        language = self.check_language(language)
        with self._lock:
            started = time.perf_counter()
            # VAD drops the silence around speech (Whisper invents words for silence);
            # not conditioning on the previous text stops one misheard phrase repeating.
            segments, info = self._model.transcribe(
                samples, language=language, beam_size=self.beam_size, vad_filter=True,
                condition_on_previous_text=False,
            )  # fmt: skip
            parts = [
                {"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text.strip()}
                for s in segments  # a generator: the decoding happens here
            ]
            compute_s = time.perf_counter() - started
        text = " ".join(p["text"] for p in parts if p["text"])
        return Transcript(text=text, language=info.language, segments=parts,
                          duration_s=samples.size / WHISPER_RATE, compute_s=compute_s)  # fmt: skip
