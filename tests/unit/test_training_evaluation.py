"""The hold-out split and the promotion rule, edge cases included (no model needed)."""

from __future__ import annotations

import pytest

from shared.neural.training.evaluation import (
    LOSS_EPSILON,
    Evaluation,
    holdout_split,
    promotion_decision,
)


@pytest.mark.parametrize(
    ("count", "held"),
    [(0, 0), (1, 0), (2, 0), (3, 2), (10, 2), (20, 2), (21, 3), (25, 3), (100, 10), (101, 11)],
)
def test_the_most_recent_tenth_is_held_out_at_least_two(count, held) -> None:
    events = list(range(count))  # oldest first
    train, heldout = holdout_split(events)
    assert len(heldout) == held
    assert train + heldout == events  # the most recent ones, in order, nothing lost
    if heldout:
        assert train, "something is always left to train on"


def _eval(loss: float | None, aligned: int = 1, pairs: int = 2) -> Evaluation:
    return Evaluation(loss=loss, aligned=aligned, pairs=pairs, events=max(pairs, 2))


def test_promoted_when_the_loss_improves_and_alignment_holds() -> None:
    decision = promotion_decision(_eval(1.0, 2), _eval(1.5, 2), n_heldout=2)
    assert decision.promote and "improved" in decision.reason
    assert promotion_decision(_eval(1.0, 2), _eval(1.5, 1), n_heldout=2).promote


def test_not_promoted_when_alignment_falls_even_by_one_event() -> None:
    decision = promotion_decision(_eval(0.5, 1), _eval(1.5, 2), n_heldout=2)
    assert not decision.promote and "alignment fell" in decision.reason


def test_a_loss_tie_or_a_worse_loss_keeps_the_current_version() -> None:
    tie = promotion_decision(_eval(1.0 - LOSS_EPSILON / 2), _eval(1.0), n_heldout=4)
    assert not tie.promote and "did not improve" in tie.reason
    assert not promotion_decision(_eval(1.0), _eval(1.0), n_heldout=4).promote
    assert not promotion_decision(_eval(1.2, 2), _eval(1.0, 0), n_heldout=4).promote
    assert promotion_decision(_eval(1.0 - 2 * LOSS_EPSILON), _eval(1.0), n_heldout=4).promote


def test_too_few_held_out_events_never_promote() -> None:
    for n in (0, 1):
        decision = promotion_decision(_eval(0.1, 2), _eval(3.0, 0), n_heldout=n)
        assert not decision.promote and "too few" in decision.reason


def test_without_a_preferred_event_alignment_must_rise() -> None:
    rises = promotion_decision(_eval(None, 2), _eval(None, 1), n_heldout=2)
    assert rises.promote
    assert not promotion_decision(_eval(None, 1), _eval(None, 1), n_heldout=2).promote
    nothing = promotion_decision(_eval(None, 0, 0), _eval(None, 0, 0), n_heldout=2)
    assert not nothing.promote and "no held-out event" in nothing.reason


def test_without_pairs_the_loss_alone_decides() -> None:
    assert promotion_decision(_eval(1.0, 0, 0), _eval(2.0, 0, 0), n_heldout=3).promote
    assert not promotion_decision(_eval(2.0, 0, 0), _eval(1.0, 0, 0), n_heldout=3).promote


def test_alignment_share() -> None:
    assert _eval(1.0, 1, 4).alignment == 0.25
    assert _eval(1.0, 0, 0).alignment is None
