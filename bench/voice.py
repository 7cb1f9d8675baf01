"""`make bench-voice`: the voice models on this machine, and a spoken question through the stack.

Models (each in a process of its own, so its peak memory is its own):
- Piper (`en_US-joe-medium`, the unmodified `python -m piper` the voice service runs): real-time
  factor (synthesis seconds / audio seconds) per sentence and per paragraph, and peak RSS;
- Whisper base and tiny.en (faster-whisper, int8, VOICE_STT_THREADS threads, beam 1 as the
  service runs): real-time factor and peak RSS, and the word error rate on the paragraphs of
  bench/data/voice_paragraphs.txt. The audio is Piper's (synthesised here, 22,050 Hz): a clean
  synthetic voice, so these WERs are a floor for real microphones, not an estimate of them.

With `--stack` it also measures, through a gateway, the voice service and the inference service
(the `served` harness: a throwaway database on the local stack): from the end of a spoken question
(its upload to /v1/voice/transcribe) to the first byte of audio of the spoken answer
(transcribe, then the chat turn streamed, then /v1/voice/speak of the answer's first sentence).

The last line is a JSON object with every figure.

    python -m bench.voice            # the models
    python -m bench.voice --stack    # and the whole-stack latency
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

from bench.wer import wer

PARAGRAPHS = Path(__file__).parent / "data" / "voice_paragraphs.txt"


def _line(label: str, value: str) -> None:
    print(f"{label:<52} {value}", flush=True)


def _peak_rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _synthesise(texts: list[str], folder: Path) -> dict[str, Any]:
    """Each text spoken by a fresh Piper worker (after a warm-up line), timed, written as WAV."""
    from functions.voice_engine import models
    from functions.voice_engine.text import sentences
    from functions.voice_engine.tts import PiperWorker

    voice = models.VOICES["en_US-joe-medium"]
    worker = PiperWorker(models.voice_model(voice))
    await worker.start()
    await worker.speak("Warm up.", 120)
    factors, per_sentence, files = [], [], []
    for i, text in enumerate(texts):
        pcm, rate, spent = b"", 0, 0.0
        for piece in sentences(text):
            began = time.perf_counter()
            chunk, rate = await worker.speak(piece, 120)
            took = time.perf_counter() - began
            per_sentence.append(took / (len(chunk) / 2 / rate))
            pcm, spent = pcm + chunk, spent + took
        factors.append(spent / (len(pcm) / 2 / rate))
        path = folder / f"paragraph-{i}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(pcm)
        files.append(str(path))
    peak = _peak_rss_mb(worker.pid) if worker.pid else float("nan")  # read before it stops
    await worker.close()
    return {"files": files, "rtf_paragraph": factors, "rtf_sentence": per_sentence,
            "peak_rss_mb": peak}  # fmt: skip


def _whisper_child(name: str, files: list[str], threads: int, out: Any) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    from functions.voice_engine import audio, models
    from functions.voice_engine.stt import Transcriber

    folder = models.whisper_dir(name, Path(tempfile.gettempdir()) / "bench-voice-models")
    began = time.perf_counter()
    transcriber = Transcriber(folder, name=name, threads=threads, beam_size=1)
    load_s = time.perf_counter() - began
    results = []
    for path in files:
        samples = audio.decode(Path(path).read_bytes(), max_seconds=600)
        heard = transcriber.transcribe(samples, "en")
        results.append({"text": heard.text, "rtf": heard.compute_s / heard.duration_s,
                        "duration_s": heard.duration_s})  # fmt: skip
    out.send({"load_s": load_s, "results": results, "peak_rss_mb": _peak_rss_mb()})


def _whisper(name: str, files: list[str], threads: int) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")
    receive, send = spawn.Pipe(duplex=False)
    child = spawn.Process(target=_whisper_child, args=(name, files, threads, send))
    child.start()
    result: dict[str, Any] = receive.recv()
    child.join()
    return result


def models_bench(threads: int) -> dict[str, Any]:
    texts = [t.strip() for t in PARAGRAPHS.read_text().split("\n") if t.strip()]
    folder = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    tts = asyncio.run(_synthesise(texts, folder))
    figures: dict[str, Any] = {
        "piper_rtf_paragraph_median": statistics.median(tts["rtf_paragraph"]),
        "piper_rtf_sentence_p50": statistics.median(tts["rtf_sentence"]),
        "piper_rtf_sentence_max": max(tts["rtf_sentence"]),
        "piper_peak_rss_mb": tts["peak_rss_mb"],
    }
    _line("piper en_US-joe-medium RTF, paragraph (median)",
          f"{figures['piper_rtf_paragraph_median']:.3f}")  # fmt: skip
    _line(
        "piper RTF, sentence p50 / max",
        f"{figures['piper_rtf_sentence_p50']:.3f} / {figures['piper_rtf_sentence_max']:.3f}",
    )
    _line("piper peak RSS", f"{tts['peak_rss_mb']:.0f} MB")
    for name in ("tiny.en", "base"):
        stt = _whisper(name, tts["files"], threads)
        rtfs = [r["rtf"] for r in stt["results"]]
        errors = [wer(ref, r["text"]) for ref, r in zip(texts, stt["results"], strict=True)]
        seconds = sum(r["duration_s"] for r in stt["results"])
        key = name.replace(".", "_")
        figures |= {f"whisper_{key}_rtf_median": statistics.median(rtfs),
                    f"whisper_{key}_wer_mean": statistics.fmean(errors),
                    f"whisper_{key}_wer_max": max(errors),
                    f"whisper_{key}_peak_rss_mb": stt["peak_rss_mb"],
                    f"whisper_{key}_load_s": stt["load_s"]}  # fmt: skip
        _line(f"whisper {name} RTF (median of {len(rtfs)} paragraphs, {seconds:.0f} s)",
              f"{statistics.median(rtfs):.3f}")  # fmt: skip
        _line(f"whisper {name} WER mean / max",
              f"{statistics.fmean(errors):.3f} / {max(errors):.3f}")  # fmt: skip
        _line(
            f"whisper {name} peak RSS, load", f"{stt['peak_rss_mb']:.0f} MB, {stt['load_s']:.2f} s"
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="Whisper's CPU threads")
    parser.add_argument("--stack", action="store_true", help="also the whole-stack latency")
    parser.add_argument("--stack-only", action="store_true", help="only the whole-stack latency")
    parser.add_argument("--questions", type=int, default=6)
    args = parser.parse_args(argv)
    _line("cpu cores", str(os.cpu_count()))
    figures = {} if args.stack_only else models_bench(args.threads)
    if args.stack or args.stack_only:
        from bench.voice_stack import stack_bench

        figures |= stack_bench(args.questions)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
