"""`make bench-clusters`: clustering time and quality (issue 20 item 3).

- **1k events, real embeddings**: 1,000 questions generated from templates over 5 topics
  (cooking, astronomy, gardening, personal finance, football), embedded with the packaged
  MiniLM (the encoder feedback is embedded with), clustered with the per-user parameters.
- **100k events, synthetic embeddings**: 12 Gaussian blobs on the unit sphere in 384-d,
  spread so a point's cosine to its blob's centre is about 0.5 (MiniLM's questions on one
  topic sit about that close), then 0.3 (blobs that overlap more), clustered with the global
  parameters (k up to 24), streamed through MiniBatchKMeans `partial_fit`.

Each prints the time of `shared.domain.clusters.algorithm.cluster` (choosing k by silhouette
on a sample, the streamed fit, the assignment), the time of the c-TF-IDF keywords (1k only:
the synthetic vectors have no text), the k chosen, the silhouette of each k tried and of the
null reference, purity and normalised mutual information against the true topics, and the
silhouette of the result on a 2,000-event sample. In-process, on this CPU; no database, no
model labels (the model's time is per cluster, not per event).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from shared.domain.clusters import algorithm, labels
from shared.domain.clusters.run import GLOBAL_PARAMS, USER_PARAMS

TOPICS = {
    "cooking": (["boil pasta", "roast a chicken", "bake bread", "make tomato sauce",
                 "fry garlic", "knead dough", "season a curry", "grill vegetables"],
                ["in the oven", "for dinner", "without butter", "from scratch", "at home"]),
    "astronomy": (["see Saturn's rings", "find the Andromeda galaxy", "watch a meteor shower",
                   "photograph the moon", "spot Jupiter's moons", "observe a nebula",
                   "track a comet", "see a solar eclipse"],
                  ["with a telescope", "from the city", "tonight", "with binoculars",
                   "in the southern sky"]),
    "gardening": (["grow tomatoes", "prune roses", "plant tulip bulbs", "compost leaves",
                   "water succulents", "repot an orchid", "grow herbs", "mulch a flower bed"],
                  ["in a shady garden", "in spring", "on a balcony", "in clay soil",
                   "in pots"]),
    "finance": (["save for retirement", "pay off a credit card", "build an emergency fund",
                 "invest in index funds", "lower my taxes", "budget my salary",
                 "refinance a mortgage", "buy bonds"],
                ["on a low income", "this year", "with little risk", "as a student",
                 "before retiring"]),
    "football": (["improve my passing", "defend a corner kick", "train as a goalkeeper",
                  "take a penalty", "play as a striker", "warm up before a match",
                  "coach a youth team", "win a header"],
                 ["in a league match", "on a wet pitch", "in five-a-side", "for the team",
                  "in the second half"]),
}  # fmt: skip
FORMS = ["How do I {a} {b}?", "What is the best way to {a} {b}?", "Any tips to {a} {b}?",
         "Can you explain how to {a} {b}?", "I want to {a} {b}. Where do I start?"]  # fmt: skip


def topic_questions(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    texts, truth = [], []
    for i in range(n):
        topic = i % len(names)
        actions, contexts = TOPICS[names[topic]]
        texts.append(
            FORMS[rng.integers(len(FORMS))].format(
                a=actions[rng.integers(len(actions))], b=contexts[rng.integers(len(contexts))]
            )
        )
        truth.append(topic)
    return texts, np.array(truth)


def sphere_blobs(n: int, k: int, *, dim: int = 384, cosine: float = 0.5, seed: int = 0):
    """`n` points in `k` blobs on the unit sphere, each point about `cosine` to its centre."""
    rng = np.random.default_rng(seed)
    centres = algorithm.normalize(rng.normal(size=(k, dim)))
    sigma = np.sqrt((1 / cosine**2 - 1) / dim)  # |noise|^2 ~ dim * sigma^2
    truth = rng.integers(0, k, n)
    points = centres[truth] + rng.normal(scale=sigma, size=(n, dim)).astype(np.float32)
    return algorithm.normalize(points), truth


def measure(name: str, x: np.ndarray, truth: np.ndarray, params, texts=None) -> dict:
    started = time.perf_counter()
    done = algorithm.cluster(x, params)
    took = time.perf_counter() - started
    row = {
        "case": name, "events": len(x), "cluster_s": round(took, 2), "k": done.choice.k,
        "true_k": len(set(truth.tolist())), "silhouette_by_k": done.choice.scores,
        "null_silhouette": done.choice.null,
        "purity": round(algorithm.purity(truth, done.labels), 4),
        # Purity rewards splitting a topic; NMI does not.
        "nmi": round(normalized_mutual_info_score(truth, done.labels), 4),
        "silhouette_sample": round(algorithm.sample_silhouette(x, done.labels), 4),
    }  # fmt: skip
    if texts is not None:
        groups = [
            [texts[j] for j in np.flatnonzero(done.labels == c)] for c in range(done.choice.k)
        ]
        started = time.perf_counter()
        terms = labels.keywords(groups)
        row["keywords_s"] = round(time.perf_counter() - started, 3)
        row["keywords"] = [t[:3] for t in terms]
    return row


def main() -> None:
    from shared.neural.minilm import Embedder  # JAX: only the real-embedding case needs it

    texts, truth = topic_questions(1000)
    started = time.perf_counter()
    embedder = Embedder()
    vectors = np.concatenate([embedder.embed(texts[i : i + 64]) for i in range(0, 1000, 64)])
    embed_s = round(time.perf_counter() - started, 2)  # includes loading and compiling
    rows = [{**measure("1k MiniLM, 5 topics", vectors, truth, USER_PARAMS, texts),
             "embed_s": embed_s}]  # fmt: skip
    for cosine in (0.5, 0.3):  # 0.3: blobs that overlap more (a far lower silhouette)
        x, blob_truth = sphere_blobs(100_000, 12, cosine=cosine)
        name = f"100k synthetic, 12 blobs, cosine to centre {cosine}"
        rows.append(measure(name, x, blob_truth, GLOBAL_PARAMS))
    for row in rows:
        print(json.dumps(row))
    print(json.dumps({"cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
