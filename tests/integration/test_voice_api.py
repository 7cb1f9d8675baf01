"""The public voice API through the in-process gateway, the real database, object store and
Redis, and the session's real voice service (Whisper base, Piper's joe voice) and inference
service (issue 22). Speech is made by the speak route itself: no audio files are committed."""

from __future__ import annotations

import struct
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from bench.wer import wer as word_error_rate
from tests.integration.chatkit import user
from tests.integration.conftest import gateway_client
from tests.integration.voicekit import (
    services_with,
    silence_wav,
    spoken,
    stored,
    transcribed,
    voice_api,
    voice_chat_api,
    voice_chat_services,
    voice_services,
)

pytestmark = pytest.mark.integration
__all__ = ["voice_api", "voice_chat_api", "voice_chat_services", "voice_services"]

SENTENCE = (
    "The quick brown fox jumps over the lazy dog near the old stone bridge, then it runs home"
    " through the quiet village."
)
# Long enough that one misheard word stays under the WER bound (Piper samples its noise).
QUESTION = "Please tell me, what is the capital city of France?"


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["error"]["code"] == code, body


async def test_speech_from_the_speak_route_is_transcribed_back_and_kept(
    voice_api, voice_services
) -> None:
    user_id, headers = await user(voice_api)
    response = await voice_api.post("/v1/voice/speak", headers=headers, json={"text": SENTENCE})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-voice"] == "en_US-joe-medium"
    audio = response.content
    assert audio[:4] == b"RIFF" and len(audio) > 22050  # more than half a second of speech

    answer = await transcribed(voice_api, headers, audio)
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    assert word_error_rate(SENTENCE, data["text"]) < 0.1, data["text"]
    assert data["language"] == "en" and data["mime"] == "audio/wav"
    assert 2.0 < data["duration_s"] < 10.0 and data["segments"]
    assert data["audio_uri"] == f"/v1/voice/clips/{data['clip_id']}/audio"
    keys, rows = await stored(voice_services, user_id)
    assert keys == [f"users/{user_id}/voice/{data['clip_id']}.wav"] and rows == 1

    played = await voice_api.get(data["audio_uri"], headers=headers)
    assert played.status_code == 200
    assert played.headers["content-type"] == "audio/wav" and played.content == audio


async def test_another_users_clip_is_not_found(voice_api) -> None:
    _, owner = await user(voice_api)
    _, other = await user(voice_api)
    audio = await spoken(voice_api, owner, "This recording is mine.")
    clip_id = (await transcribed(voice_api, owner, audio)).json()["data"]["clip_id"]
    assert (
        await voice_api.get(f"/v1/voice/clips/{clip_id}/audio", headers=owner)
    ).status_code == 200
    assert_error(await voice_api.get(f"/v1/voice/clips/{clip_id}/audio", headers=other),
                 404, "not_found")  # fmt: skip
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        assert_error(await voice_api.get(f"/v1/voice/clips/{missing}/audio", headers=owner),
                     404, "not_found")  # fmt: skip
    assert (await voice_api.get(f"/v1/voice/clips/{clip_id}/audio")).status_code == 401


async def test_bad_recordings_are_refused_and_nothing_is_stored(
    voice_api, voice_services, settings
) -> None:
    user_id, headers = await user(voice_api)
    cap = settings.voice_max_upload_bytes
    long_silence = silence_wav(settings.voice_max_seconds + 5)  # 8 kHz: about 2 MB, under the cap
    assert len(long_silence) < cap
    cases = [
        (b"", "empty.wav", "audio/wav", 400, "empty_audio"),
        (silence_wav(2.0), "quiet.wav", "audio/wav", 400, "empty_audio"),
        (b"Dear diary, this is plain text and no audio at all.\n" * 20, "notes.txt",
         "text/plain", 415, "unsupported_audio"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(200), "broken.wav", "audio/wav", 415,
         "unsupported_audio"),
        (long_silence, "long.wav", "audio/wav", 413, "audio_too_long"),
        (b"\x00" * (cap + 1), "big.wav", "audio/wav", 413, "payload_too_large"),
    ]  # fmt: skip
    for body, name, mime, status, code in cases:
        assert_error(await transcribed(voice_api, headers, body, name=name, mime=mime),
                     status, code)  # fmt: skip

    async def unannounced() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse
        boundary = b"--b0undary"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        yield b"Content-Type: audio/wav\r\n\r\n"
        for _ in range(cap // (1 << 20) + 2):
            yield b"\x01" * (1 << 20)
        yield b"\r\n" + boundary + b"--\r\n"

    streamed = await voice_api.post(
        "/v1/voice/transcribe", content=unannounced(),
        headers={**headers, "Content-Type": "multipart/form-data; boundary=b0undary"},
    )  # fmt: skip
    assert_error(streamed, 413, "payload_too_large")
    for form, code in (({"language": "klingon"}, "validation_error"), ({}, "validation_error")):
        files = {"file": ("a.wav", silence_wav(1.0), "audio/wav")} if form else None
        response = await voice_api.post("/v1/voice/transcribe", headers=headers, data=form,
                                        files=files or {"other": ("a", b"x")})  # fmt: skip
        assert_error(response, 400, code)
    assert await stored(voice_services, user_id) == ([], 0)


async def test_a_voice_turn_stores_the_transcript_the_recording_and_the_answer(
    voice_chat_api, voice_chat_services
) -> None:
    voice_api, voice_services = voice_chat_api, voice_chat_services
    user_id, headers = await user(voice_api)
    audio = await spoken(voice_api, headers, QUESTION)
    clip = (await transcribed(voice_api, headers, audio)).json()["data"]
    assert word_error_rate(QUESTION, clip["text"]) < 0.1, clip["text"]
    message = {"content": clip["text"], "mode": "voice", "clip_id": clip["clip_id"]}
    turn = await voice_api.post("/v1/chat", headers=headers, json={"message": message})
    assert turn.status_code == 200, turn.text
    answer = turn.json()["data"]
    # What the 135M model says depends on the exact transcript (Piper's audio varies): the
    # answer is checked as stored, not for its facts.
    assert answer["content"].strip() and not answer["cancelled"]
    listed = await voice_api.get(f"/v1/conversations/{answer['conversation_id']}/messages",
                                 headers=headers)  # fmt: skip
    question, reply = listed.json()["data"]["items"]
    assert question["id"] == answer["user_message_id"] and question["content"] == clip["text"]
    assert question["content_struct"]["segments"] == [
        {"type": "text", "text": clip["text"]},
        {"type": "attachment", "kind": "audio", "uri": clip["audio_uri"], "mime": "audio/wav",
         "description": f"voice message, {clip['duration_s']:.1f} s"},
    ]  # fmt: skip
    assert reply["id"] == answer["message_id"] and reply["content"] == answer["content"]
    assert reply["parent_id"] == question["id"] and reply["sender"] == "assistant"
    async with voice_services.db.connection() as conn:
        row = await (await conn.execute(
            "SELECT message_id::text FROM voice_clips WHERE id = %s", (clip["clip_id"],)
        )).fetchone()  # fmt: skip
    assert row == (question["id"],)
    # The answer can be spoken (Ogg/Opus here), and the recording is still the user's.
    speech = await voice_api.post("/v1/voice/speak", headers=headers,
                                  json={"text": answer["content"], "format": "ogg"})  # fmt: skip
    assert speech.status_code == 200 and speech.headers["content-type"] == "audio/ogg"
    assert speech.content[:4] == b"OggS"
    assert (await stored(voice_services, user_id))[1] == 1

    # Another user's message cannot take the recording: nothing is written for them.
    _, other = await user(voice_api)
    taken = await voice_api.post("/v1/chat", headers=other, json={"message": message})
    assert_error(taken, 404, "not_found")
    assert (await voice_api.get("/v1/conversations", headers=other)).json()["data"]["items"] == []


async def test_voices_the_default_voice_setting_and_speak_refusals(voice_api) -> None:
    _, headers = await user(voice_api)
    voices = (await voice_api.get("/v1/voice/voices", headers=headers)).json()["data"]
    assert voices["default"] == "en_US-joe-medium"
    assert {"id": "en_US-joe-medium", "language": "en_US", "sample_rate": 22050} in voices["voices"]

    assert (await voice_api.get("/v1/me/settings", headers=headers)).json()["data"] == {
        "locale": None, "timezone": None, "default_voice": None}  # fmt: skip
    changed = await voice_api.patch("/v1/me/settings", headers=headers, json={
        "default_voice": "en_US-joe-medium", "timezone": "Europe/Paris"})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["default_voice"] == "en_US-joe-medium"
    cleared = await voice_api.patch("/v1/me/settings", headers=headers, json={"timezone": None})
    assert cleared.json()["data"] == {"locale": None, "timezone": None,
                                      "default_voice": "en_US-joe-medium"}  # fmt: skip
    unknown = await voice_api.patch("/v1/me/settings", headers=headers,
                                    json={"default_voice": "en_GB-nobody-low"})  # fmt: skip
    assert_error(unknown, 400, "validation_error")
    assert unknown.json()["error"]["details"][0]["loc"] == ["default_voice"]

    speech = await voice_api.post("/v1/voice/speak", headers=headers, json={"text": "Hello."})
    assert speech.status_code == 200 and speech.headers["x-voice"] == "en_US-joe-medium"
    assert_error(await voice_api.post("/v1/voice/speak", headers=headers,
                                      json={"text": "Hello.", "voice": "en_GB-nobody-low"}),
                 404, "unknown_voice")  # fmt: skip
    for bad in ({"text": ""}, {"text": "x" * 4001}, {"text": "hi", "format": "flac"}):
        assert_error(await voice_api.post("/v1/voice/speak", headers=headers, json=bad),
                     400, "validation_error")  # fmt: skip


async def test_the_voice_tools_speak_into_a_clip_and_read_it_back(voice_chat_api) -> None:
    voice_api = voice_chat_api  # the tools function builds the model backend too
    _, headers = await user(voice_api)
    text = "Please water the plants on Friday morning, and remember to close the windows before you"
    text += " leave the house for the weekend."
    spoken_clip = await voice_api.post("/v1/tools/run", headers=headers, json={
        "tool_id": "voice.speak_v1", "input": {"text": text}})  # fmt: skip
    assert spoken_clip.status_code == 200, spoken_clip.text
    out = spoken_clip.json()["data"]["output"]
    assert out["uri"] == f"/v1/voice/clips/{out['clip_id']}/audio" and out["duration_s"] > 1.0
    audio = await voice_api.get(out["uri"], headers=headers)
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    # Kept with its real sizes (the stream's were unknown), so players know its length.
    assert struct.unpack("<I", audio.content[40:44])[0] == len(audio.content) - 44

    # Another user's clip is not found, and the caller's mistake is not the tool's failure:
    # more refusals than the breaker's threshold (5) leave the tool working for everyone.
    _, other = await user(voice_api)
    for _ in range(6):
        refused = await voice_api.post("/v1/tools/run", headers=other, json={
            "tool_id": "voice.transcribe_v1", "input": {"clip_id": out["clip_id"]}})  # fmt: skip
        assert_error(refused, 404, "not_found")
    heard = await voice_api.post("/v1/tools/run", headers=headers, json={
        "tool_id": "voice.transcribe_v1", "input": {"clip_id": out["clip_id"]}})  # fmt: skip
    assert heard.status_code == 200, heard.text
    assert word_error_rate(text, heard.json()["data"]["output"]["text"]) < 0.1


async def test_an_object_whose_row_cannot_be_written_is_removed(voice_services) -> None:
    """The object goes first and the row after: a row refused (here: no such user, a foreign
    key) takes its object with it."""
    ghost = str(uuid.uuid4())
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await voice_services.voice.keep(ghost, silence_wav(0.5), mime="audio/wav", ext="wav",
                                        duration_s=0.5, language="en", transcript="x")  # fmt: skip
    assert await stored(voice_services, ghost) == ([], 0)


async def test_voice_routes_spend_the_voice_budget(settings, voice_service) -> None:
    limited = services_with(settings.model_copy(update={"rate_voice_per_min": 2}), voice_service)
    try:
        async with gateway_client(settings, limited) as client:
            _, headers = await user(client)
            for _ in range(2):  # refused for being empty, after spending a token each
                assert_error(await transcribed(client, headers, b""), 400, "empty_audio")
            refused = await transcribed(client, headers, b"")
            assert_error(refused, 429, "rate_limited")
            assert int(refused.headers["retry-after"]) >= 1
            speech = await client.post("/v1/voice/speak", headers=headers, json={"text": "Hi."})
            assert_error(speech, 429, "rate_limited")  # one budget for both routes
            _, other = await user(client)  # per user
            assert_error(await transcribed(client, other, b""), 400, "empty_audio")
    finally:
        await limited.aclose()
