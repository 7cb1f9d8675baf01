"""Voice in the web app, end to end (issue 22): a question spoken into a fake microphone
(Chromium plays a WAV file as its capture device) is recorded by the page, transcribed by the
real voice service through the gateway, shown in the composer, sent as a voice message, kept
with its recording (the badge and the clip come back after a reload), and the answer is read
aloud, streamed into Web Audio.

The speech is made in the test by the voice service's own speak route (Piper's joe voice): no
binary files in the repository. Chromium wants a plain WAV with real sizes, so the streamed
answer (unknown sizes, 22,050 Hz) is resampled to 48 kHz and written with silence around it;
the fake device loops the file, so the recording is timed to hold the whole sentence once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Browser, async_playwright, expect
from scipy.signal import resample_poly

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, Tab, gateway_process, sign_up
from tests.voice import TOKEN as VOICE_TOKEN
from tests.voice import speak, wav_of

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SENTENCE = "How long should I boil an egg for breakfast?"
KEY_WORDS = {"long", "boil", "egg", "breakfast"}
CAPTURE_RATE = 48_000
LEAD_S, TAIL_S = 1.0, 2.0  # silence around the sentence: the recording starts a little late
MODEL_TIMEOUT_MS = 180_000  # the first answer of a session may wait for the model's shapes
TRANSCRIBE_TIMEOUT_MS = 120_000  # Whisper on a loaded two-core machine
# A short answer: it is read aloud to its end.
ANSWER_TOKENS = 40


@dataclass(frozen=True)
class Speech:
    path: Path
    seconds: float  # the whole file, silence included


def pcm_of_streamed_wav(data: bytes) -> tuple[np.ndarray, int]:
    """The samples and rate of the voice service's WAV (RIFF and data sizes unknown, so the
    `wave` module cannot read it): the fmt chunk's rate, the data chunk's samples to the end."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:16]
    at, rate = 12, None
    while at + 8 <= len(data):
        chunk, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        if chunk == b"fmt ":
            rate = int.from_bytes(data[at + 12 : at + 16], "little")
        if chunk == b"data":
            assert rate, "no fmt chunk before the data"
            body = data[at + 8 :]
            return np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2"), rate
        at += 8 + size + size % 2
    raise AssertionError("no data chunk in the voice service's WAV")


@pytest.fixture(scope="module")
def spoken_question(voice_service: str, tmp_path_factory) -> Speech:
    samples, rate = pcm_of_streamed_wav(speak(voice_service, SENTENCE))
    common = gcd(CAPTURE_RATE, rate)
    resampled = resample_poly(samples.astype(np.float64), CAPTURE_RATE // common, rate // common)
    speech = np.clip(np.round(resampled), -32768, 32767).astype("<i2")
    silence = np.zeros(int(CAPTURE_RATE * LEAD_S), dtype="<i2")
    tail = np.zeros(int(CAPTURE_RATE * TAIL_S), dtype="<i2")
    whole = np.concatenate([silence, speech, tail])
    path = tmp_path_factory.mktemp("voice-e2e") / "question.wav"
    path.write_bytes(wav_of(whole.tobytes(), CAPTURE_RATE))
    return Speech(path, len(whole) / CAPTURE_RATE)


# The module's own gateway (it overrides the shared one): it knows the voice service, and
# its answers are short enough to be read aloud to the end.
@pytest.fixture(scope="module")
def web_gateway(migrated, service, voice_service, web_build, tmp_path_factory) -> Iterator[str]:
    with gateway_process(
        service, tmp_path_factory.mktemp("voice-gateway"),
        VOICE_URL=voice_service, VOICE_TOKEN=VOICE_TOKEN, CHAT_MAX_TOKENS=str(ANSWER_TOKENS),
    ) as url:  # fmt: skip
        yield url


# The module's own browser: its microphone is the WAV (granted without a prompt).
@pytest.fixture(scope="module")
async def browser(spoken_question: Speech) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream",
                  "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={spoken_question.path}",
                  "--autoplay-policy=no-user-gesture-required"],
        )  # fmt: skip
        yield launched
        await launched.close()


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


async def test_a_spoken_question_is_transcribed_sent_kept_and_its_answer_read_aloud(
    tab: Tab, spoken_question: Speech
) -> None:
    page = tab.page
    await sign_up(tab)
    mic = page.get_by_role("button", name="Record a voice message", exact=True)
    await mic.click()
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await expect(page.locator(".rec-indicator")).to_contain_text("/ 2:00")
    # One pass of the looped file: the sentence once, whole (the silence takes the slack).
    await page.wait_for_timeout(int((spoken_question.seconds - TAIL_S / 2) * 1000))
    await mic.click()
    await expect(mic).to_have_attribute("aria-pressed", "false")

    box = page.get_by_label("Message", exact=True)
    await expect(box).not_to_have_value("", timeout=TRANSCRIBE_TIMEOUT_MS)
    heard = await box.input_value()
    assert words(heard) >= KEY_WORDS, f"transcript {heard!r} lacks {KEY_WORDS - words(heard)}"
    await expect(page.get_by_role("status").filter(has_text="Transcript ready")).to_have_count(1)
    await expect(page.locator(".voice-clip")).to_contain_text("Voice message")
    await tab.shoot("voice-transcript")

    # Sent as edited: the transcript with a word added.
    await box.fill(heard.rstrip() + " Thanks")
    await page.get_by_role("button", name="Send", exact=True).click()
    question = page.locator('[data-role="user"]').last
    await expect(question).to_contain_text("Thanks")
    await expect(question.locator(".voice-badge")).to_contain_text("Voice message")
    await expect(page.locator(".voice-clip")).to_have_count(0)
    answer = page.locator('[data-role="assistant"]').last
    read_aloud = answer.get_by_role("button", name="Read aloud")
    await expect(read_aloud).to_be_visible(timeout=MODEL_TIMEOUT_MS)

    # The answer, spoken: pressed while it streams and plays, released at its end.
    await read_aloud.click()
    await expect(read_aloud).to_have_attribute("aria-pressed", "true")
    await expect(
        page.get_by_role("status").filter(has_text="Reading the answer aloud")
    ).to_have_count(1, timeout=TRANSCRIBE_TIMEOUT_MS)
    await expect(read_aloud).to_have_attribute("aria-pressed", "false", timeout=MODEL_TIMEOUT_MS)
    await expect(page.locator('[data-role="assistant"] [role="alert"]')).to_have_count(0)

    # Stored: after a reload the message still carries its recording, which plays.
    await page.reload()
    question = page.locator('[data-role="user"]').last
    await expect(question).to_contain_text("Thanks")
    await expect(question.locator(".voice-badge")).to_contain_text(re.compile(r"\d+\.\d s"))
    await question.get_by_role("button", name="Play recording").click()
    player = question.locator("audio")
    await expect(player).to_have_attribute("src", re.compile(r"^blob:"))
    await tab.shoot("voice-message")
    await page.wait_for_function(
        "el => el.readyState >= 1 && !el.error", arg=await player.element_handle()
    )
    tab.assert_clean()
