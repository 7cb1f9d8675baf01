"""Training filters and scheduling rules that need no database: the default content check,
the training policy built from settings (the production and the single-user values), scores
and event ids."""

from __future__ import annotations

import pytest

from shared.domain.preferences import store
from shared.domain.preferences.checks import RuleContentCheck, check_event, refusal
from shared.domain.preferences.schedule import TrainingPolicy, dedup_key, message
from shared.platform.errors import NotFound, ValidationError
from shared.platform.limits.rate import rules
from shared.platform.settings import Settings


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Write to me at jane.doe@example.com", "personal data (email)"),
        ("My card is 4111 1111 1111 1111", "personal data (card)"),
        ("call +44 20 7946 0958 tomorrow", "personal data (phone)"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE", "credential (private key)"),
        ("key AKIAIOSFODNN7EXAMPLE here", "credential (cloud access key)"),
        ("use sk-proj-abcdefghijklmnopqrstuvwx", "credential (API key)"),
        ("password: hunter2!", "credential (password)"),
    ],
)
def test_the_default_check_refuses_personal_data_and_credentials(text: str, why: str) -> None:
    assert refusal(text) == why


@pytest.mark.parametrize(
    "text",
    [
        "Paris is the capital of France.",
        "Connect to 192.168.1.10 on port 8080.",  # addresses are not people
        "Version 1.2.3 was released on 05/01/2024 for 4111 users.",
        "",
    ],
)
def test_the_default_check_lets_ordinary_answers_through(text: str) -> None:
    assert refusal(text) is None


async def test_an_event_is_refused_for_its_first_refused_text_and_blocked_terms_count() -> None:
    check = RuleContentCheck(blocked_terms=["Acme Secret Project", " "])
    assert await check.refuse("about the acme secret project plans") == "blocked term"
    assert await check.refuse("acme secret projects") is None  # whole terms only
    texts = {"message": "fine", "correction": "mail me: a@b.io", "notes": "password=abcd1234"}
    assert await check_event(check, texts) == "correction: personal data (email)"
    assert await check_event(check, {"message": "fine", "correction": None}) is None


def test_production_defaults_and_the_single_user_values() -> None:
    production = TrainingPolicy.from_settings(Settings(_env_file=None))
    assert (production.threshold, production.cooldown_s, production.max_attempts) == (20, 3600, 3)
    assert production.step_budget == 64
    # docs/configuration.md's values for a single-user local install.
    local = TrainingPolicy.from_settings(Settings(
        _env_file=None, training_threshold_events=4, training_cooldown_s=300,
        training_step_budget=30, training_tier_delay_s={"free": 0},
    ))  # fmt: skip
    assert (local.threshold, local.cooldown_s, local.step_budget) == (4, 300, 30)
    assert local.delay_of("free") == 0 and local.priority_of("free") == 1


def test_tiers_rank_admins_then_paid_then_free() -> None:
    policy = TrainingPolicy()
    assert policy.tier_of("admin", "free") == "admin"
    assert [policy.priority_of(t) for t in ("admin", "team", "pro", "free")] == [0, 1, 1, 2]
    assert policy.delay_of("enterprise") == policy.delay_of("free") == 300  # unknown: free's
    assert [policy.retry_delay_s(a) for a in (1, 2, 3)] == [60, 120, 240]


def test_the_message_and_its_dedup_key() -> None:
    assert message("j") == {"job_id": "j"}
    assert dedup_key("j", 2) == "train:j:2"


def test_feedback_has_its_own_rate_budget() -> None:
    rule = rules(Settings(_env_file=None, rate_feedback_per_min=7))["feedback"]
    assert (rule.limit, rule.period_s) == (7, 60)


def test_scores_must_agree_with_their_signal() -> None:
    assert store.check_score("like", None) == 1.0 and store.check_score("never", None) == -1.0
    assert store.check_score("dislike", -0.25) == -0.25
    for signal, score in (("like", -0.5), ("always", -1.0), ("dislike", 0.5), ("never", 1.0)):
        with pytest.raises(ValidationError):
            store.check_score(signal, score)


def test_event_ids_are_positive_64_bit_integers() -> None:
    assert store.event_id("42") == 42
    for raw in ("0", "-1", "abc", "1e3", str(2**63), ""):
        with pytest.raises(NotFound):
            store.event_id(raw)
