"""Training samples: the chat template as the inference service renders it, the target and
its end-of-turn token masked in, the cap that cuts the prompt from the left, few padded shapes.
A byte-level `ChatTokenizer` (every byte a token) stands in for SmolLM2's: no weights needed."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from shared.neural.tokenizer import IM_END, IM_START, ChatMessage, ChatTokenizer
from shared.neural.training.samples import (
    MIN_PROMPT_TOKENS,
    PREFERRED,
    UNDESIRABLE,
    TrainingSample,
    batches,
    encode_sample,
    encode_text,
    pack_rows,
    sequence_length,
)


@pytest.fixture(scope="module")
def tokenizer() -> ChatTokenizer:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in (IM_START, IM_END)]
    )
    return ChatTokenizer(tok)


def _correction(**changes) -> TrainingSample:
    fields = {
        "target": "Answer: Paris.",
        "kind": PREFERRED,
        "messages": (("user", "Capital of France?"),),
        "alternative": "The capital of France is Paris.",
    }
    fields.update(changes)
    return TrainingSample(**fields)


def test_the_prompt_is_the_inference_services_chat_template(tokenizer) -> None:
    sample = _correction(messages=(("system", "Be brief."), ("user", "Capital of France?")))
    expected = tokenizer.encode_chat(
        [ChatMessage("system", "Be brief."), ChatMessage("user", "Capital of France?")]
    )
    assert sample.prompt(tokenizer) == expected
    encoded = encode_sample(sample, tokenizer, max_tokens=512)
    assert list(encoded.ids[: encoded.target_start]) == expected
    target = list(encoded.ids[encoded.target_start :])
    assert target == [*tokenizer.encode("Answer: Paris."), tokenizer.im_end_id]
    assert tokenizer.decode(encoded.ids).endswith("assistant\nAnswer: Paris.")
    assert not encoded.truncated


def test_rendered_prompt_ids_are_used_as_they_are(tokenizer) -> None:
    sample = _correction(messages=(), prompt_ids=(5, 6, 7))
    encoded = encode_sample(sample, tokenizer, max_tokens=64)
    assert encoded.ids[:3] == (5, 6, 7) and encoded.target_start == 3


def test_only_target_tokens_are_masked_in(tokenizer) -> None:
    encoded = encode_sample(_correction(), tokenizer, max_tokens=512)
    length = sequence_length([encoded], max_tokens=512)
    rows = pack_rows([encoded], batch_size=2, length=length)
    assert rows.tokens.shape == (2, length) and rows.tokens.dtype == np.int32
    ids = np.asarray(encoded.ids)
    inputs = len(ids) - 1
    np.testing.assert_array_equal(rows.tokens[0, :inputs], ids[:-1])
    np.testing.assert_array_equal(rows.labels[0, :inputs], ids[1:])
    # The masked labels are exactly the target, end-of-turn included, in order.
    masked = rows.labels[0][rows.mask[0] == 1]
    np.testing.assert_array_equal(masked, ids[encoded.target_start :])
    assert masked[-1] == tokenizer.im_end_id
    assert rows.mask[0, inputs:].sum() == 0
    assert rows.mask[1].sum() == 0 and rows.tokens[1].sum() == 0  # a padding row


def test_the_cap_cuts_the_prompt_from_the_left_and_keeps_the_target(tokenizer) -> None:
    long_question = "Tell me about " + "very " * 40 + "long things."
    sample = _correction(messages=(("user", long_question),))
    full = encode_sample(sample, tokenizer, max_tokens=4096)
    capped = encode_sample(sample, tokenizer, max_tokens=64)
    assert len(capped.ids) == 64 and capped.truncated
    assert capped.ids[capped.target_start :] == full.ids[full.target_start :]
    # The prompt's last tokens (the open assistant turn, the end of the question) survive.
    kept = capped.target_start
    assert capped.ids[:kept] == full.ids[full.target_start - kept : full.target_start]


def test_a_target_longer_than_the_cap_keeps_a_little_prompt_and_loses_its_end(tokenizer) -> None:
    sample = _correction(target="x" * 200)
    capped = encode_sample(sample, tokenizer, max_tokens=64)
    assert len(capped.ids) == 64 and capped.target_start == MIN_PROMPT_TOKENS
    assert tokenizer.im_end_id not in capped.ids[capped.target_start :]
    assert capped.ids[: capped.target_start] == tuple(sample.prompt(tokenizer)[-MIN_PROMPT_TOKENS:])


def test_sequence_lengths_are_few_powers_of_two_within_the_cap(tokenizer) -> None:
    def text(n: int):
        return encode_text([1] * (n - 3), "ab", tokenizer, max_tokens=4096)  # n tokens

    assert sequence_length([text(10)], max_tokens=256) == 32
    assert sequence_length([text(33)], max_tokens=256) == 32  # 32 inputs: the last is a label
    assert sequence_length([text(34), text(10)], max_tokens=256) == 64
    assert sequence_length([text(200)], max_tokens=256) == 256
    assert sequence_length([text(150)], max_tokens=200) == 200


def test_batches_cover_every_index_once() -> None:
    order = np.array([4, 2, 0, 1, 3])
    chunks = batches(5, 2, order)
    assert [c.tolist() for c in chunks] == [[4, 2], [0, 1], [3]]


def test_ranked_texts_put_the_users_preference_first() -> None:
    assert _correction().ranked_texts() == ("Answer: Paris.", "The capital of France is Paris.")
    dislike = _correction(kind=UNDESIRABLE, target="Lyon.", alternative="Paris.")
    assert dislike.ranked_texts() == ("Paris.", "Lyon.")
    assert _correction(alternative=None).ranked_texts() is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "liked"}, "kind"),
        ({"messages": ()}, "exactly one"),
        ({"prompt_ids": (1, 2)}, "exactly one"),
        ({"messages": (), "prompt_ids": ()}, "empty"),
        ({"target": ""}, "non-empty target"),
        ({"weight": -1.0}, "weight"),
        ({"weight": float("inf")}, "weight"),
    ],
)
def test_malformed_samples_are_refused(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        _correction(**changes)
