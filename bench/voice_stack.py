"""A spoken question through the whole stack, to the first audio of its spoken answer.

The `served` harness starts the inference service, the voice service and a gateway on a
throwaway database. Each question is first synthesised (Piper, through the voice service), then
timed from the end of the recording (its upload starts) to the first byte of answer audio:
1. POST /v1/voice/transcribe (the recording, as the web app sends it);
2. POST /v1/chat with the transcript, `mode: "voice"`, streamed;
3. POST /v1/voice/speak of the answer's first sentence, as soon as the stream has it
   (`pipelined`), and of the whole answer once it is done (`after`: what a client that waits
   for the end would hear), each to its first audio byte.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
import uuid
from typing import Any

import httpx

from bench.harness import pct, served, signed_up_clients

QUESTIONS = [
    "What is a good way to learn a new language?",
    "How do I keep basil growing on a windowsill?",
    "Can you explain what a budget is in one sentence?",
    "What should I pack for a day of hiking?",
    "Why is the sky blue?",
    "How long should I boil an egg?",
]
_SENTENCE_END = re.compile(r"[.!?](\s|$)")
TOKEN = "bench-voice-token"  # noqa: S105 - a throwaway local stack


async def _first_audio(http: httpx.AsyncClient, text: str, started: float) -> float:
    async with http.stream("POST", "/v1/voice/speak", json={"text": text}) as spoken:
        if spoken.status_code != 200:
            raise RuntimeError(f"speak answered {spoken.status_code}: {await spoken.aread()!r}")
        async for chunk in spoken.aiter_bytes():
            if len(chunk) > 44:  # past the WAV header: audio
                return time.perf_counter() - started
    raise RuntimeError("speak sent no audio")


async def _chat(http: httpx.AsyncClient, text: str, clip: str, started: float,
                pipelined: list[asyncio.Task[float]]) -> str:  # fmt: skip
    body = {"message": {"content": text, "mode": "voice", "clip_id": clip}, "stream": True}
    answer, event = "", ""
    async with http.stream("POST", "/v1/chat", json=body) as sse:
        if sse.status_code != 200:
            raise RuntimeError(f"chat answered {sse.status_code}: {await sse.aread()!r}")
        async for line in sse.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "token":
                answer += str(json.loads(line[5:]))
                if not pipelined and (end := _SENTENCE_END.search(answer)):
                    first = answer[: end.end()].strip()
                    pipelined.append(asyncio.create_task(_first_audio(http, first, started)))
    return answer


async def _question(http: httpx.AsyncClient, audio: bytes) -> dict[str, float]:
    started = time.perf_counter()
    files = {"file": ("question.wav", audio, "audio/wav")}
    heard = await http.post("/v1/voice/transcribe", files=files)
    if heard.status_code != 201:
        raise RuntimeError(f"transcribe answered {heard.status_code}: {heard.text[:300]}")
    data = heard.json()["data"]
    transcribed = time.perf_counter() - started
    pipelined: list[asyncio.Task[float]] = []
    answer = await _chat(http, data["text"], data["clip_id"], started, pipelined)
    answered = time.perf_counter() - started
    after = await _first_audio(http, answer, time.perf_counter()) + answered
    first = await pipelined[0] if pipelined else after
    return {"transcribed": transcribed, "answered": answered, "pipelined": first, "after": after}


async def _run(base: str, voice_url: str, count: int) -> list[dict[str, float]]:
    (http,) = await signed_up_clients(base, 1, timeout_s=300)
    async with httpx.AsyncClient(timeout=120) as voice:
        audios = []
        for text in (QUESTIONS * count)[:count]:
            made = await voice.post(voice_url + "/v1/speak", json={"text": text},
                                    headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
            made.raise_for_status()
            audios.append(made.content)
        try:
            await _question(http, audios[0])  # warm-up: first compiles, first connections
            return [await _question(http, audio) for audio in audios]
        finally:
            await http.aclose()


def stack_bench(count: int) -> dict[str, Any]:
    name = f"benchvoice{uuid.uuid4().hex[:6]}"
    with served(name, name, token=TOKEN, voice=True,
                gateway_env={"CHAT_MAX_TOKENS": "96"}) as stack:  # fmt: skip
        voice_url = stack.voice_url
        assert voice_url is not None
        runs = asyncio.run(_run(stack.base, voice_url, count))
    figures: dict[str, Any] = {}
    print(f"spoken question -> first answer audio, {count} questions (seconds)", flush=True)
    for key, label in [("transcribed", "transcript back"), ("answered", "answer streamed (done)"),
                       ("pipelined", "first audio, first sentence spoken as it streams"),
                       ("after", "first audio, answer spoken when done")]:  # fmt: skip
        values = [r[key] for r in runs]
        figures[f"stack_{key}_p50_s"] = statistics.median(values)
        figures[f"stack_{key}_p95_s"] = pct(values, 95)
        print(f"  {label:<50} p50 {statistics.median(values):6.2f}   p95 {pct(values, 95):6.2f}")
    return figures
