"""Copy-aware decoding (`shared.neural.copying`) on synthetic logits: a misquoted multi-token
name comes out exact, free text and deliberate departures are untouched."""

from __future__ import annotations

import numpy as np

from shared.neural.copying import (
    SEPARATOR,
    WORD_START,
    CopyIndex,
    copy_processor,
    source_ids,
    starts_word,
    word_start_mask,
)
from shared.neural.sampling import SamplingParams, processor_for, sample

VOCAB = 32
# A toy vocabulary: the sources say " in the village of Marrowdale, on the river".
IN, THE, VILLAGE, OF, MAR, ROW, DALE, COMMA, ON, RIVER = range(1, 11)
AD, ALE, TOWN, CITE, END, HELLO, WORLD = range(11, 18)
PIECES = {IN: " in", THE: " the", VILLAGE: " village", OF: " of", MAR: " Mar", ROW: "row",
          DALE: "dale", COMMA: ",", ON: " on", RIVER: " river", AD: "ad", ALE: "ale",
          TOWN: " town", CITE: " [", END: "", HELLO: " hello", WORLD: " world"}  # fmt: skip
WORDS = word_start_mask(lambda ids: "".join(PIECES.get(i, "") for i in ids), VOCAB)


def marked(*tokens: int) -> tuple[int, ...]:
    """`copy_from` for toy sources: WORD_START before each piece that begins a word."""
    return tuple(m for t in tokens for m in ((WORD_START, t) if t >= 0 and WORDS[t] else (t,)))


SOURCE = marked(IN, THE, VILLAGE, OF, MAR, ROW, DALE, COMMA, ON, THE, RIVER)


def logits_from(preferences: dict[int, float]) -> np.ndarray:
    """A row whose probabilities are `preferences` (the rest share what is left)."""
    probs = np.full(VOCAB, 1e-4)
    for token, p in preferences.items():
        probs[token] = p
    return np.log(probs / probs.sum()).astype(np.float32)


def misquoting_model(generated: list[int]) -> np.ndarray:
    """Writes "the village of Mar" + "ad" + "ale" (Maradale): each piece likely, the name wrong;
    the right pieces are close behind, as they are for a model that has the passage in context."""
    last = generated[-1] if generated else None
    table = {
        None: {THE: 0.9},
        THE: {VILLAGE: 0.8},
        VILLAGE: {OF: 0.9},
        OF: {MAR: 0.7},
        MAR: {AD: 0.5, ROW: 0.3},
        AD: {ALE: 0.6, DALE: 0.2},
        ROW: {DALE: 0.4, ALE: 0.35},
        ALE: {CITE: 0.9},
        DALE: {CITE: 0.6, COMMA: 0.3},
        CITE: {END: 0.95},
    }
    return logits_from(table.get(last, {END: 0.9}))


def greedy(model, processor=None, steps: int = 10) -> list[int]:
    generated: list[int] = []
    for _ in range(steps):
        row = model(generated)
        if processor is not None:
            row = processor(row, generated)
        token = int(np.argmax(row))
        if token == END:
            break
        generated.append(token)
    return generated


def test_a_misquoted_multi_token_name_comes_out_exact() -> None:
    assert greedy(misquoting_model) == [THE, VILLAGE, OF, MAR, AD, ALE, CITE]
    fixed = greedy(misquoting_model, copy_processor(SOURCE))
    assert fixed == [THE, VILLAGE, OF, MAR, ROW, DALE, CITE]


def test_sampling_cannot_wander_off_a_name_being_copied() -> None:
    processor = copy_processor(SOURCE)
    params = SamplingParams(temperature=1.0)
    rng = np.random.default_rng(0)
    row = logits_from({ROW: 0.5, AD: 0.45})  # the source's piece is the model's choice, barely
    drawn = {sample(processor(row, [OF, MAR]), params, rng) for _ in range(200)}
    assert drawn == {ROW}
    unprocessed = {sample(row, params, rng) for _ in range(200)}
    assert {ROW, AD} <= unprocessed


def test_free_text_is_untouched() -> None:
    processor = copy_processor(SOURCE)
    rng = np.random.default_rng(1)
    for generated in ([HELLO], [HELLO, WORLD], [TOWN, HELLO], []):
        row = rng.standard_normal(VOCAB).astype(np.float32)
        assert np.array_equal(processor(row, generated), row)


def test_a_deliberate_departure_from_the_source_is_kept() -> None:
    processor = copy_processor(SOURCE)
    # After "Marrowdale" the source goes on with ","; the model would much rather cite.
    row = logits_from({CITE: 0.95, COMMA: 0.01})
    assert np.array_equal(processor(row, [OF, MAR, ROW, DALE]), row)
    # After "Mar" the source has "row"; a model far surer of "ad" writes another word.
    row = logits_from({AD: 0.9, ROW: 0.01})
    assert np.array_equal(processor(row, [MAR]), row)


def test_a_model_ending_the_word_is_left_to_end_it() -> None:
    processor = copy_processor(SOURCE)
    # After "Mar" the source goes on with "row"; the model ends the word with "," (a piece the
    # sources begin words with): a shorter word, not a misspelt one.
    row = logits_from({COMMA: 0.5, ROW: 0.3})
    assert np.array_equal(processor(row, [OF, MAR]), row)


def test_generic_contexts_are_untouched() -> None:
    # " the" is followed by many different tokens in these sources: it says nothing.
    sources = marked(THE, VILLAGE, SEPARATOR, THE, RIVER, SEPARATOR, THE, TOWN, SEPARATOR, THE, OF)
    processor = copy_processor(sources)
    row = logits_from({HELLO: 0.5, RIVER: 0.4})
    assert np.array_equal(processor(row, [WORLD, THE]), row)


def test_a_rare_token_with_one_continuation_is_a_copy_in_progress() -> None:
    processor = copy_processor(SOURCE)
    row = logits_from({AD: 0.5, ROW: 0.1})
    out = processor(row, [HELLO, MAR])  # "Mar" after free text: one source token matched
    assert int(np.argmax(out)) == ROW
    assert np.array_equal(np.delete(out, ROW), np.delete(row, ROW))  # nothing else moved


def test_between_words_only_the_models_own_choice_is_kept_from_wandering() -> None:
    processor = copy_processor(SOURCE)
    params, rng = SamplingParams(temperature=1.0), np.random.default_rng(2)
    copied = [OF, MAR, ROW, DALE]
    agrees = logits_from({COMMA: 0.5, CITE: 0.45})  # the source's next word is the model's choice
    assert {sample(processor(agrees, copied), params, rng) for _ in range(100)} == {COMMA}
    prefers_to_cite = logits_from({CITE: 0.5, COMMA: 0.45})  # a near tie, but the model's call
    assert np.array_equal(processor(prefers_to_cite, copied), prefers_to_cite)


def test_separators_keep_spans_from_running_across_sources() -> None:
    index = CopyIndex((MAR, ROW, SEPARATOR, DALE, COMMA))
    assert (MAR, ROW) not in index.follows or DALE not in index.follows[(MAR, ROW)]
    assert index.match([HELLO, ROW]) is None  # "row" ends its source: nothing follows it
    found = index.match([WORLD, DALE])
    assert found is not None and found[0] == 1 and set(found[1]) == {COMMA}


def test_the_longest_matching_suffix_decides() -> None:
    index = CopyIndex((THE, VILLAGE, OF, MAR, SEPARATOR, THE, VILLAGE, OF, TOWN))
    found = index.match([IN, THE, VILLAGE, OF])
    assert found is not None
    length, continuations = found
    assert length == 3 and continuations == {MAR: 1, TOWN: 1}


def test_processor_for_builds_one_only_for_requests_with_sources() -> None:
    assert processor_for(SamplingParams()) is None
    assert processor_for(SamplingParams(logit_bias=((1, 5.0),))) is None
    params = SamplingParams(temperature=0.0, copy_from=SOURCE)
    assert params.on_host
    processor = processor_for(params)
    assert processor is not None
    fixed = greedy(misquoting_model, processor)
    assert fixed[3:6] == [MAR, ROW, DALE]


def test_which_pieces_begin_a_word() -> None:
    assert starts_word(" Mar") and starts_word(",") and starts_word("(") and starts_word("\n")
    assert not starts_word("row") and not starts_word("7") and not starts_word("_")
    assert not starts_word("'s") and not starts_word("") and not starts_word("\ufffd")
    assert WORDS[MAR] and WORDS[COMMA] and not WORDS[ROW] and not WORDS[END]


def test_source_ids_collapse_whitespace_and_mark_words_and_sources() -> None:
    vocabulary = {" Mar": MAR, "row": ROW, "dale": DALE, ",": COMMA, " on": ON, " the": THE}
    seen: list[str] = []

    def encode(text: str) -> list[int]:  # a greedy longest-match toy tokenizer
        seen.append(text)
        ids, rest = [], text
        while rest:
            piece = max((p for p in vocabulary if rest.startswith(p)), key=len)
            ids.append(vocabulary[piece])
            rest = rest[len(piece) :]
        return ids

    ids = source_ids(["Marrowdale,\n  on", "   ", "the"], encode, WORDS)
    assert seen == [" Marrowdale, on", " the"]
    assert ids == (WORD_START, MAR, ROW, DALE, WORD_START, COMMA, WORD_START, ON,
                   SEPARATOR, WORD_START, THE)  # fmt: skip
    assert copy_processor(ids) is not None
