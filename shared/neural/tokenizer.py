"""The SmolLM2 tokenizer, built from GGUF metadata with the `tokenizers` library, and ChatML.

GGUF carries the byte-level BPE vocabulary, merges and token types; SmolLM2 pre-tokenizes
digits one by one, then GPT-2's byte-level split (llama.cpp's `smollm` pre-tokenizer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

CONTROL_TOKEN_TYPE = 3
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def tokenizer_from_gguf_metadata(meta: dict[str, Any]) -> Tokenizer:
    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise ValueError(f"unsupported tokenizer model {meta.get('tokenizer.ggml.model')!r}")
    tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
    types: list[int] = list(meta["tokenizer.ggml.token_type"])
    merges = [tuple(merge.split(" ", 1)) for merge in meta["tokenizer.ggml.merges"]]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(
        [
            AddedToken(token, special=True, normalized=False)
            for token, kind in zip(tokens, types, strict=True)
            if kind == CONTROL_TOKEN_TYPE
        ]
    )
    return tokenizer


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


class ChatTokenizer:
    """Encoding, decoding and the ChatML prompt; knows nothing of tensors."""

    def __init__(self, tokenizer: Tokenizer):
        self._tok = tokenizer
        self.im_end_id = self._id(IM_END)
        self.im_start_id = self._id(IM_START)

    @classmethod
    def from_file(cls, path: Path) -> ChatTokenizer:
        return cls(Tokenizer.from_file(str(path)))

    def _id(self, token: str) -> int:
        found = self._tok.token_to_id(token)
        if found is None:
            raise ValueError(f"tokenizer has no {token}")
        return int(found)

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size())

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=True))

    def chat_prompt(self, messages: Sequence[ChatMessage]) -> str:
        """SmolLM2's chat template: a default system turn unless one is given, then the turns,
        then an open assistant turn."""
        turns = list(messages)
        if not turns or turns[0].role != "system":
            turns.insert(0, ChatMessage("system", DEFAULT_SYSTEM_PROMPT))
        text = "".join(f"{IM_START}{m.role}\n{m.content}{IM_END}\n" for m in turns)
        return text + f"{IM_START}assistant\n"

    def encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.encode(self.chat_prompt(messages))
