"""What the voice service refuses, as the public API says it: the engine's own code (for
example `empty_audio`, `unsupported_audio`, `audio_too_long`, `unknown_voice`) with its HTTP
status, so a client can tell a silent recording from a file that is not audio."""

from __future__ import annotations

from shared.platform.errors import AppError, Unavailable, ValidationError

# Statuses of the engine's refusals that are the caller's to fix; anything else (its 5xx, a
# 401 for our own token) is the service's problem, never the user's.
CLIENT_STATUSES = frozenset({400, 404, 413, 415, 422})


class VoiceRefused(ValidationError):
    """The voice service refused the audio or the text: the caller's to fix, never retried
    (a workflow node treats it as invalid input), with the service's code and status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        # The engine answers 422 for a request it cannot take; the public API says 400 for
        # every invalid request (DESIGN.md §5).
        self.status = 400 if status == 422 else status
        self.code = code


class EmptyAudio(VoiceRefused):
    def __init__(self, message: str = "the upload is empty"):
        super().__init__(400, "empty_audio", message)


def refusal(status: int, code: str | None, message: str) -> AppError:
    """The error an engine answer of `status` becomes."""
    if status in CLIENT_STATUSES:
        return VoiceRefused(status, code or "invalid_request", message)
    if status in (401, 403):
        # Our credentials, not the caller's request: the engine's text is not repeated.
        return Unavailable(f"the voice service refused our credentials (HTTP {status})")
    return Unavailable(f"the voice service answered {status}: {message}")
