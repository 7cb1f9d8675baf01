"""The pure parts of clustering (shared/domain/clusters): how k is chosen, the stable matching
of centroids across runs, c-TF-IDF keywords and the parsing of the model's label."""

from __future__ import annotations

import numpy as np
import pytest

from shared.domain.clusters import algorithm, labels
from shared.domain.clusters.algorithm import ClusterParams
from shared.domain.expressions.expr import compile_expression
from shared.domain.llm.backend import Completion, Usage


def blobs(k: int, per: int, *, dim: int = 384, spread: float = 0.05, seed: int = 1):
    """`k` well separated Gaussian blobs on the unit sphere, and each point's blob."""
    rng = np.random.default_rng(seed)
    centres = algorithm.normalize(rng.normal(size=(k, dim)))
    truth = np.repeat(np.arange(k), per)
    points = centres[truth] + rng.normal(scale=spread, size=(k * per, dim))
    return algorithm.normalize(points), truth


@pytest.mark.parametrize("k", [2, 3, 5])
def test_silhouette_picks_the_number_of_blobs(k: int) -> None:
    x, truth = blobs(k, 40)
    done = algorithm.cluster(x)
    assert done.choice.k == k and len(done.centroids) == k
    assert max(done.choice.scores, key=done.choice.scores.__getitem__) == k
    assert algorithm.purity(truth, done.labels) == 1.0
    assert np.allclose(np.linalg.norm(done.centroids, axis=1), 1, atol=1e-5)
    assert (done.similarities > 0.5).all()


def test_one_topic_is_one_cluster_and_too_few_events_none() -> None:
    x, _ = blobs(1, 30)
    assert algorithm.cluster(x).choice.k == 1
    assert len(algorithm.cluster(x).centroids) == 1
    few = algorithm.cluster(x[:2], ClusterParams(min_cluster_size=3))
    assert few.choice.k == 0 and len(few.centroids) == 0


def test_no_k_leaves_a_cluster_under_the_minimum_size() -> None:
    x, _ = blobs(2, 20)
    lone = algorithm.normalize(np.random.default_rng(5).normal(size=(2, 384)))
    done = algorithm.cluster(np.vstack([x, lone]), ClusterParams(min_cluster_size=3))
    assert np.bincount(done.labels).min() >= 3 and len(done.centroids) == 2


def test_the_run_is_deterministic() -> None:
    x, _ = blobs(3, 30)
    a, b = algorithm.cluster(x), algorithm.cluster(x)
    assert np.array_equal(a.labels, b.labels) and np.allclose(a.centroids, b.centroids)


def test_matching_keeps_identity_across_runs_and_drops_the_unlike() -> None:
    x, _ = blobs(3, 30)
    old = algorithm.cluster(x).centroids
    shuffled = old[[2, 0, 1]] + 0.01
    assert algorithm.match(old, shuffled, 0.75) == {0: 2, 1: 0, 2: 1}
    other = algorithm.normalize(np.random.default_rng(9).normal(size=(1, 384)))
    assert algorithm.match(old, np.vstack([old[1:2], other]), 0.75) == {0: 1}
    assert algorithm.match(old[:0], old, 0.75) == {}


def test_purity() -> None:
    assert algorithm.purity(np.array([0, 0, 1, 1]), np.array([5, 5, 7, 7])) == 1.0
    assert algorithm.purity(np.array([0, 0, 1, 1]), np.array([1, 1, 1, 1])) == 0.5


def test_c_tf_idf_names_what_sets_each_cluster_apart() -> None:
    cooking = [
        "How long should I boil pasta?",
        "Best oven temperature to roast vegetables",
        "How do I make pasta sauce from tomatoes?",
        "Roast a chicken in the oven",
    ]
    stars = [
        "How far away is the Andromeda galaxy?",
        "Why do stars twinkle at night?",
        "What telescope shows Saturn's rings?",
        "How are galaxy clusters formed from stars?",
    ]
    common = ["Please answer", "Please explain"]
    kw = labels.keywords([cooking + common, stars + common])
    assert {"pasta", "oven", "roast"} <= set(kw[0]) and {"galaxy", "stars"} <= set(kw[1])
    assert "please" not in kw[0] + kw[1]  # in every cluster: nothing to tell them apart
    assert kw == labels.keywords([cooking + common, stars + common])
    assert labels.keyword_label(kw[0]).count(" · ") == 2
    assert labels.keywords([["the and of"], []]) == [[], []]


def test_the_models_answers_are_parsed_and_grounded() -> None:
    assert labels.parse_label('Label: "Italian cooking"\nmore') == "Italian cooking"
    assert labels.parse_label("Topic: Astronomy.") == "Astronomy"
    assert labels.parse_label("  Home baking  ") == "Home baking"
    assert labels.parse_label("The user asked about many things over several questions") is None
    assert labels.parse_label("42") is None and labels.parse_label("") is None
    # SmolLM2-135M's real answer to the description ask, for the cooking cluster:
    said = ("These tasks are about cooking and preparing food, with a focus on specific steps"
            " and techniques. And more.")  # fmt: skip
    sentence = labels.first_sentence(said)
    assert sentence == said.split(" And more")[0]
    assert labels.label_from_description(sentence) == "cooking and preparing food"
    assert labels.first_sentence("x" * 400) is None
    messages = labels.prompt(["a  question\nacross lines"] * 9, labels.LABEL_ASK)
    assert "6 examples" in messages[1].content and "a question across lines" in messages[1].content


class _Broken:
    async def complete(self, *args: object, **kw: object) -> Completion:
        raise TimeoutError


class _Chatty:
    """A model that ignores the label ask and answers the description ask; its embeddings put
    "bread" near the centroid (1, 0) and anything else far."""

    async def complete(self, messages, *args: object, **kw: object) -> Completion:
        asked = messages[1].content
        text = ("Well, these are all about baking bread, mostly." if "sentence" in asked
                else "The questions the user asked are about various things")  # fmt: skip
        return Completion(text, "stop", Usage())

    async def embed(self, texts):
        return [[1.0, 0.0] if "bread" in t else [0.0, 1.0] for t in texts]


async def test_a_failing_model_leaves_the_keywords_and_a_poor_one_the_label() -> None:
    assert await labels.from_model(_Broken(), ["x"], ["x"], request_id="r") is None  # type: ignore[arg-type]
    chatty = await labels.from_model(_Chatty(), ["x"], ["oven"], [1.0, 0.0], request_id="r")  # type: ignore[arg-type]
    assert chatty == ("baking bread", "Well, these are all about baking bread, mostly.")
    # Off topic (far from the centroid, no keyword): neither label nor sentence.
    assert await labels.from_model(_Chatty(), ["x"], ["oven"], [0.0, -1.0], request_id="r") is None  # type: ignore[arg-type]


def test_expressions_read_the_nearest_clusters() -> None:
    env = {
        "clusters": [
            {"label": "pasta · oven", "similarity": 0.7, "scope": "user"},
            {"label": "galaxy · stars", "similarity": 0.2, "scope": "global"},
        ]
    }
    assert compile_expression("cluster_label_contains(clusters, 'oven')").truthy(env)
    assert not compile_expression("cluster_label_contains(clusters, 'golf')").truthy(env)
    assert compile_expression("len(clusters) == 2").truthy(env)
    assert not compile_expression("cluster_label_contains([], 'oven')").truthy(env)


def test_a_clusters_keywords_count_as_its_label() -> None:
    env = {"clusters": [{"label": "Italian food", "keywords": ["pasta", "oven"]}]}
    assert compile_expression("cluster_label_contains(clusters, 'PASTA')").truthy(env)
    assert compile_expression("cluster_label_contains(clusters, 'italian')").truthy(env)
    assert not compile_expression("cluster_label_contains(clusters, 'stars')").truthy(env)


def test_overlapping_topics_beat_their_null_reference_and_noise_does_not() -> None:
    # 6 blobs each point only 0.3 cosine to its centre: silhouettes are tiny in 384-d, but
    # far above what the same k reaches on the shuffled (structureless) sample.
    rng = np.random.default_rng(3)
    centres = algorithm.normalize(rng.normal(size=(6, 384)))
    truth = np.repeat(np.arange(6), 150)
    sigma = np.sqrt((1 / 0.3**2 - 1) / 384)
    x = algorithm.normalize(centres[truth] + rng.normal(scale=sigma, size=(900, 384)))
    done = algorithm.cluster(x)
    assert done.choice.k == 6 and done.choice.null is not None
    assert done.choice.scores[6] > 3 * done.choice.null
    assert algorithm.purity(truth, done.labels) > 0.95
    noise = algorithm.normalize(rng.normal(size=(300, 384)))
    assert algorithm.cluster(noise).choice.k == 1
