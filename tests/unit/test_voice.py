"""Voice without the voice service: audio sniffing and WAV sizes, the request models of the
voice, chat and settings routes, the mapping of the service's refusals, the client against a
small fake of the service (its wire format), and the seeded tool specs."""

from __future__ import annotations

import io
import json
import re
import struct
import wave
from collections.abc import AsyncIterator, Callable

import httpx
import pydantic
import pytest
from pydantic import SecretStr

from functions.chat.schemas import ChatIn, MessageIn
from functions.preferences.schemas import UserSettingsUpdate
from functions.voice.schemas import SpeakIn, TranscribeFields
from shared.domain.artifacts.checks import tool_schema_problems
from shared.domain.artifacts.kinds import validate
from shared.domain.chat.content import normalize
from shared.domain.voice import audio
from shared.domain.voice.clips import Clip, clip_id_of, message_segments
from shared.domain.voice.engine_client import VoiceEngine
from shared.domain.voice.errors import VoiceRefused, refusal
from shared.domain.voice.service import read_capped, stored_type
from shared.platform.errors import NotFound, PayloadTooLarge, Unavailable, ValidationError
from shared.platform.settings import REPO_ROOT, Settings
from tests.voice import silence_wav

CLIP_ID = "0b7f4c1e-2d7a-4a8e-9c1d-3e5f6a7b8c9d"


def streamed_wav(pcm: bytes, rate: int) -> bytes:
    """A WAV as the voice service streams it: sizes unknown (0xFFFFFFFF)."""
    unknown = 0xFFFFFFFF
    header = b"".join([b"RIFF", struct.pack("<I", unknown), b"WAVE", b"fmt ",
                       struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16), b"data",
                       struct.pack("<I", unknown)])  # fmt: skip
    return header + pcm


# --- audio facts -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (silence_wav(0.01), ("audio/wav", "wav")),
        (b"OggS\x00\x02" + bytes(30), ("audio/ogg", "ogg")),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", ("audio/webm", "webm")),
        (b"ID3\x04\x00" + bytes(10), ("audio/mpeg", "mp3")),
        (b"\xff\xfb\x90\x64" + bytes(10), ("audio/mpeg", "mp3")),
        (b"\xff\xf1\x50\x80" + bytes(10), ("audio/aac", "aac")),
        (b"\x00\x00\x00\x20ftypM4A " + bytes(10), ("audio/mp4", "m4a")),
        (b"fLaC\x00\x00\x00\x22", ("audio/flac", "flac")),
        (b"hello, this is not audio", audio.UNKNOWN),
        (b"", audio.UNKNOWN),
    ],
)
def test_the_container_is_told_by_its_bytes(head: bytes, expected: tuple[str, str]) -> None:
    assert audio.sniff(head) == expected


def test_a_declared_type_counts_only_for_bytes_we_cannot_name() -> None:
    wav = silence_wav(0.01)
    assert stored_type(wav, "audio/webm") == ("audio/wav", "wav")  # the bytes win
    assert stored_type(b"\x00\x01unknown", "audio/x-custom; codecs=1") == ("audio/x-custom", "bin")
    assert stored_type(b"\x00\x01unknown", "text/html") == audio.UNKNOWN
    assert stored_type(b"\x00\x01unknown", "audio/<script>") == audio.UNKNOWN


def test_a_streamed_wav_gets_its_real_sizes_and_duration() -> None:
    rate, pcm = 22050, b"\x01\x00" * 22050 * 2  # two seconds
    finished = audio.finished_wav(streamed_wav(pcm, rate))
    with wave.open(io.BytesIO(finished)) as w:  # the stdlib reader trusts the sizes
        assert (w.getframerate(), w.getnframes()) == (rate, 2 * rate)
        assert w.readframes(w.getnframes()) == pcm
    assert audio.wav_duration_s(finished) == pytest.approx(2.0)
    assert audio.wav_duration_s(silence_wav(3.5)) == pytest.approx(3.5)
    with pytest.raises(ValueError, match="streamed WAV"):
        audio.finished_wav(b"OggS" + bytes(60))


def test_a_voice_message_is_its_text_and_its_recording() -> None:
    clip = Clip(CLIP_ID, "u", "users/u/voice/x.webm", "audio/webm", 1000, 4.24, "en", "hi",
                None, None)  # type: ignore[arg-type]  # fmt: skip
    segments = message_segments(clip, "hello there")
    assert normalize({"segments": segments}) == {"segments": [
        {"type": "text", "text": "hello there"},
        {"type": "attachment", "kind": "audio", "uri": f"/v1/voice/clips/{CLIP_ID}/audio",
         "mime": "audio/webm", "description": "voice message, 4.2 s"},
    ]}  # fmt: skip


def test_a_clip_id_that_is_no_uuid_names_no_clip() -> None:
    assert clip_id_of(CLIP_ID.upper()) == CLIP_ID
    with pytest.raises(NotFound):
        clip_id_of("../other-user")


async def test_a_recording_is_read_up_to_the_cap_and_no_further() -> None:
    taken: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for n in range(10):
            taken.append(n)
            yield b"x" * 400

    assert len(await read_capped(chunks(), 4000)) == 4000
    taken.clear()
    with pytest.raises(PayloadTooLarge):
        await read_capped(chunks(), 1000)
    assert taken == [0, 1, 2]  # stopped at the chunk that passed the cap


# --- request models ----------------------------------------------------------------------------
def test_a_voice_message_needs_its_clip_and_a_text_message_has_none() -> None:
    voice = MessageIn.model_validate({"content": "hi", "mode": "voice", "clip_id": CLIP_ID})
    assert (voice.mode, voice.clip_id) == ("voice", CLIP_ID)
    assert MessageIn.model_validate({"content": "hi"}).mode == "text"
    for bad in (
        {"content": "hi", "mode": "voice"},
        {"content": "hi", "clip_id": CLIP_ID},
        {"content": "hi", "mode": "voice", "clip_id": "not-a-uuid"},
        {"content": "hi", "mode": "video"},
        {"content": "  ", "mode": "voice", "clip_id": CLIP_ID},
    ):
        with pytest.raises(pydantic.ValidationError):
            MessageIn.model_validate(bad)
    with pytest.raises(pydantic.ValidationError, match="regenerate"):
        ChatIn.model_validate({
            "conversation_id": CLIP_ID, "parent_id": CLIP_ID, "regenerate": True,
            "message": {"content": "hi", "mode": "voice", "clip_id": CLIP_ID},
        })  # fmt: skip


def test_speak_requests_are_checked() -> None:
    assert SpeakIn.model_validate({"text": "Hello."}).format == "wav"
    ok = SpeakIn.model_validate({"text": "Hi", "voice": "en_US-joe-medium", "format": "ogg"})
    assert ok.voice == "en_US-joe-medium"
    for bad in ({"text": ""}, {"text": " \n"}, {"text": "hi", "voice": "../x"},
                {"text": "hi", "format": "mp3"}, {"text": "hi", "speed": 2}, {}):  # fmt: skip
        with pytest.raises(pydantic.ValidationError):
            SpeakIn.model_validate(bad)


def test_transcribe_form_fields_are_checked() -> None:
    assert TranscribeFields.of({}).language is None
    assert TranscribeFields.of({"language": ""}).language is None
    assert TranscribeFields.of({"language": "en"}).language == "en"
    for bad in ({"language": "english"}, {"language": "EN"}, {"context_id": "x"}):
        with pytest.raises(ValidationError) as refused:
            TranscribeFields.of(bad)
        assert refused.value.details


def test_settings_updates_are_checked_and_only_sent_fields_change() -> None:
    update = UserSettingsUpdate.model_validate({"timezone": "Europe/Paris", "locale": None})
    assert update.model_dump(include=update.model_fields_set) == {
        "timezone": "Europe/Paris", "locale": None,
    }  # fmt: skip
    for bad in (
        {"timezone": "Mars/Olympus"}, {"timezone": "../../etc/passwd"},
        {"locale": "english please"}, {"default_voice": "a b"}, {"theme": "dark"},
    ):  # fmt: skip
        with pytest.raises(pydantic.ValidationError):
            UserSettingsUpdate.model_validate(bad)


# --- the service's refusals and the client -----------------------------------------------------
def test_refusals_keep_the_services_code_and_a_public_status() -> None:
    too_long = refusal(413, "audio_too_long", "longer than 120 s")
    assert isinstance(too_long, VoiceRefused)
    assert (too_long.status, too_long.code) == (413, "audio_too_long")
    assert (refusal(422, "unsupported_language", "x").status) == 400
    assert (refusal(415, "unsupported_audio", "x").code) == "unsupported_audio"
    assert isinstance(refusal(401, "unauthorized", "bad token"), Unavailable)
    assert isinstance(refusal(500, None, "boom"), Unavailable)


def _engine(handler: Callable[[httpx.Request], httpx.Response]) -> VoiceEngine:
    settings = Settings(_env_file=None, voice_url="http://voice.test",  # type: ignore[call-arg]
                        voice_token=SecretStr("tok-123"))  # fmt: skip
    return VoiceEngine(settings, transport=httpx.MockTransport(handler))


async def test_the_client_sends_the_token_and_maps_refusals() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.content == b"":
            return httpx.Response(400, json={"error": {"code": "empty_audio", "message": "e"}})
        return httpx.Response(
            200,
            json={
                "text": " hi ",
                "language": "en",
                "duration_s": 1.5,
                "segments": [{"start": 0, "end": 1.5, "text": "hi"}],
            },
        )

    engine = _engine(handler)
    done = await engine.transcribe(b"RIFF", content_type="audio/wav", language="en")
    assert (done.text, done.language, done.duration_s) == ("hi", "en", 1.5)
    assert seen[0].headers["authorization"] == "Bearer tok-123"
    assert seen[0].url.params["language"] == "en"
    with pytest.raises(VoiceRefused) as refused:
        await engine.transcribe(b"", content_type=None, language=None)
    assert (refused.value.status, refused.value.code) == (400, "empty_audio")
    assert len(seen) == 2  # a refusal is not retried
    await engine.aclose()


async def test_the_client_retries_a_starting_service_and_then_gives_up() -> None:
    answers = [503, 503, 200]

    def handler(request: httpx.Request) -> httpx.Response:
        status = answers.pop(0) if answers else 503
        body = {"voices": [{"id": "v1", "language": "en_US", "sample_rate": 22050}],
                "default": "v1"} if status == 200 else {"error": {"code": "not_ready"}}  # fmt: skip
        return httpx.Response(status, json=body)

    engine = _engine(handler)
    listed = await engine.voices()
    assert (listed.ids(), listed.default) == ({"v1"}, "v1")
    with pytest.raises(Unavailable):
        await engine.voices()
    await engine.aclose()


async def test_speech_streams_with_its_headers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {"text": "Hi.", "voice": "v1", "format": "ogg"}

        async def body() -> AsyncIterator[bytes]:  # streamed, as the service sends it
            yield b"OggS"
            yield b"-audio"

        return httpx.Response(200, content=body(), headers={
            "content-type": "audio/ogg", "x-voice": "v1", "x-sample-rate": "22050"})  # fmt: skip

    engine = _engine(handler)
    async with await engine.speak("Hi.", voice="v1", fmt="ogg") as speech:
        assert (speech.media_type, speech.voice, speech.sample_rate) == ("audio/ogg", "v1", 22050)
        assert await speech.read(max_bytes=100) == b"OggS-audio"
    await engine.aclose()


# --- the tool specs ----------------------------------------------------------------------------
_ROW = re.compile(
    r"\(\s*'([a-z_.]+)',\s*'((?:[^']|'')*)',\s*'((?:[^']|'')*)',\s*'((?:[^']|'')*)'::jsonb\)"
)


def test_the_voice_tools_are_seeded_as_valid_tool_specs_with_implementations() -> None:
    from shared.domain.tools.catalog import BUILTINS

    seed = (REPO_ROOT / "sql" / "seed" / "002_voice_tools.sql").read_text()
    rows = _ROW.findall(seed)
    names = set()
    for kind, name, _, schema_text in rows:
        schema = json.loads(schema_text.replace("''", "'"))
        assert validate(schema) == kind == "tool.spec"
        assert schema["name"] == name.replace("''", "'")
        assert tool_schema_problems(schema) == []
        assert name in BUILTINS
        names.add(name)
    assert names == {"voice.transcribe_v1", "voice.speak_v1"}
