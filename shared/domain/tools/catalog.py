"""The built-in tool implementations bound by name to the seeded `tool.spec` artifacts."""

from __future__ import annotations

from collections.abc import Mapping

from shared.domain.tools.base import Tool
from shared.domain.tools.builtins import generic_chat, summarize
from shared.domain.tools.grounded import answer_with_context
from shared.domain.tools.intent import classify_intent
from shared.domain.tools.voice import speak, transcribe

BUILTINS: Mapping[str, Tool] = {
    "llm.generic_chat_v1": generic_chat,
    "llm.intent_classifier_v1": classify_intent,
    "memory.summarize_v1": summarize,
    "rag.answer_with_context_v1": answer_with_context,
    "voice.transcribe_v1": transcribe,
    "voice.speak_v1": speak,
}
