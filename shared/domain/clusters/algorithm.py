"""Clustering preference-event embeddings: pure numpy and scikit-learn, no I/O.

Design choices:
- **MiniBatchKMeans, streamed with `partial_fit`**, not HDBSCAN: the global scope grows to
  hundreds of thousands of 384-d vectors, which k-means streams in fixed-size batches with
  memory bounded by one batch, while HDBSCAN needs the whole set (and its neighbour graph) in
  memory on every run. k-means also yields a centroid per cluster, which is what the router
  compares a turn with (pgvector's HNSW index over `semantic_cluster.centroid`).
- **Spherical**: vectors are unit length (MiniLM's are), centroids are re-normalised and
  events are assigned by cosine, the router's measure.
- **k by silhouette on a sample**: for each k in [k_min, k_max] a full k-means fit (Lloyd,
  k-means++ with `n_init` restarts) on a sample of at most `sample_size` vectors is scored by
  its silhouette; a k that leaves a cluster under the (sample-scaled) minimum size is refused.
  The best k wins if its score is at least `null_ratio` times the silhouette the same k gets
  on a null reference (the sample with each dimension shuffled on its own: the same marginals,
  no clusters), and at least `silhouette_floor`; else the events are one cluster (one topic is
  a valid answer). An absolute floor alone cannot work in 384-d: 12 real but overlapping
  topics score 0.03 where their null scores 0.002, while one topic split in two scores about
  what its null does.
  The winning fit's centroids seed the streamed passes over every vector (when the sample was
  every vector, its fit is the answer: mini-batches could only blur a converged solution).
- **Clusters under `min_cluster_size`** after assignment are dissolved into their members'
  next-nearest clusters (a pair of stray events is no domain).
- **Stable identity**: new centroids are matched to a scope's previous ones by cosine with the
  Hungarian algorithm; a pair at least `match_min_similarity` alike keeps the old id (and
  label), so ids survive re-clustering and adapters bound to a cluster keep their meaning.
- Deterministic for a given input (`seed`), so a redelivered run writes the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score


@dataclass(frozen=True)
class ClusterParams:
    k_min: int = 2
    k_max: int = 8
    min_cluster_size: int = 3
    sample_size: int = 2000  # silhouette is quadratic in the sample
    silhouette_floor: float = 0.005
    null_ratio: float = 3.0  # how far the best k's silhouette must beat its null reference's
    match_min_similarity: float = 0.75
    batch_size: int = 1024
    passes: int = 2  # streamed passes over all vectors after the sample's seeding
    n_init: int = 4  # k-means++ restarts of each sample fit
    seed: int = 0


@dataclass(frozen=True)
class KChoice:
    k: int
    scores: dict[int, float] = field(default_factory=dict)  # silhouette per k tried
    sample: int = 0
    null: float | None = None  # the best k's silhouette on the null reference


@dataclass(frozen=True)
class Clustering:
    centroids: np.ndarray  # (k, d), unit rows
    labels: np.ndarray  # (n,), index into centroids
    similarities: np.ndarray  # (n,), cosine of each vector to its centroid
    choice: KChoice


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def _sample(x: np.ndarray, size: int, seed: int) -> np.ndarray:
    if len(x) <= size:
        return x
    rng = np.random.default_rng(seed)
    return x[np.sort(rng.choice(len(x), size, replace=False))]


def _kmeans(k: int, params: ClusterParams, **kw: object) -> MiniBatchKMeans:
    return MiniBatchKMeans(
        n_clusters=k, random_state=params.seed, batch_size=params.batch_size, **kw
    )


def choose_k(x: np.ndarray, params: ClusterParams) -> tuple[KChoice, np.ndarray | None]:
    """The number of clusters for unit vectors `x`, and the chosen fit's centroids (None for
    k <= 1). k = 0: too few vectors for even one cluster."""
    n = len(x)
    if n < params.min_cluster_size:
        return KChoice(0), None
    sample = _sample(x, params.sample_size, params.seed)
    m = len(sample)
    smallest = max(2, math.floor(params.min_cluster_size * m / n))
    scores: dict[int, float] = {}
    fits: dict[int, np.ndarray] = {}
    for k in range(params.k_min, min(params.k_max, m // smallest) + 1):
        model = KMeans(n_clusters=k, n_init=params.n_init, random_state=params.seed).fit(sample)
        labels = model.labels_
        if len(set(labels.tolist())) < k or np.bincount(labels, minlength=k).min() < smallest:
            continue
        scores[k] = round(float(silhouette_score(sample, labels, metric="euclidean")), 4)
        fits[k] = model.cluster_centers_
    if not scores:
        return KChoice(1, scores, m), None
    best = max(scores, key=lambda k: (scores[k], -k))  # ties: fewer clusters
    null = _null_silhouette(sample, best, params)
    if scores[best] < max(params.silhouette_floor, params.null_ratio * null):
        return KChoice(1, scores, m, null), None
    return KChoice(best, scores, m, null), normalize(fits[best])


def _null_silhouette(sample: np.ndarray, k: int, params: ClusterParams) -> float:
    """The silhouette k-means reaches with k on `sample` with its cluster structure destroyed
    (each dimension permuted independently, rows re-normalised)."""
    rng = np.random.default_rng(params.seed + 1)
    shuffled = normalize(np.column_stack([rng.permutation(col) for col in sample.T]))
    model = KMeans(n_clusters=k, n_init=params.n_init, random_state=params.seed).fit(shuffled)
    if len(set(model.labels_.tolist())) < 2:
        return 0.0
    return round(float(silhouette_score(shuffled, model.labels_, metric="euclidean")), 4)


def cluster(vectors: np.ndarray, params: ClusterParams = ClusterParams()) -> Clustering:
    """Clusters `vectors` (n, d): k chosen on a sample, then MiniBatchKMeans `partial_fit`
    streamed over all of them in batches, seeded with the sample fit's centroids."""
    x = normalize(vectors)
    choice, seeds = choose_k(x, params)
    if choice.k == 0:
        empty = np.zeros((0, x.shape[1] if x.ndim == 2 else 0), np.float32)
        return Clustering(empty, np.zeros(len(x), int), np.zeros(len(x), np.float32), choice)
    if choice.k == 1:
        centroids = normalize(x.mean(axis=0, keepdims=True))
    elif len(x) <= params.sample_size:  # the sample was all of them: its fit is the answer
        assert seeds is not None
        centroids = seeds
    else:
        assert seeds is not None
        model = _kmeans(choice.k, params, init=seeds, n_init=1)
        order = np.random.default_rng(params.seed).permutation(len(x))
        for _ in range(params.passes):
            for start in range(0, len(x), params.batch_size):
                model.partial_fit(x[order[start : start + params.batch_size]])
        centroids = normalize(model.cluster_centers_)
    centroids, labels, sims = _assign(x, centroids, params.min_cluster_size)
    return Clustering(centroids, labels, sims, choice)


def _assign(
    x: np.ndarray, centroids: np.ndarray, min_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cosine assignment; clusters under `min_size` are dropped (their members go to the next
    nearest) and the survivors' centroids become their members' normalised mean."""
    while True:
        sims = x @ centroids.T
        labels = sims.argmax(axis=1)
        counts = np.bincount(labels, minlength=len(centroids))
        small = counts < min_size
        if not small.any() or small.all():
            break
        centroids = centroids[~small]
    centroids = normalize(np.stack([x[labels == i].mean(axis=0) for i in range(len(centroids))]))
    sims = x @ centroids.T
    labels = sims.argmax(axis=1)
    return centroids, labels, sims[np.arange(len(x)), labels]


def match(old: np.ndarray, new: np.ndarray, min_similarity: float) -> dict[int, int]:
    """{new index: old index} for the one-to-one pairing of centroids that maximises the total
    cosine similarity, keeping pairs at least `min_similarity` alike."""
    if len(old) == 0 or len(new) == 0:
        return {}
    sims = normalize(new) @ normalize(old).T
    rows, cols = linear_sum_assignment(-sims)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if sims[r, c] >= min_similarity}


def purity(truth: np.ndarray, predicted: np.ndarray) -> float:
    """The share of items whose cluster's majority true class is their own."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if len(truth) == 0:
        return 0.0
    total = 0
    for c in np.unique(predicted):
        total += np.bincount(truth[predicted == c]).max()
    return total / len(truth)


def sample_silhouette(x: np.ndarray, labels: np.ndarray, size: int = 2000, seed: int = 0) -> float:
    """Silhouette on a sample (the full score is quadratic); NaN for fewer than two clusters."""
    idx = np.arange(len(x))
    if len(x) > size:
        idx = np.sort(np.random.default_rng(seed).choice(len(x), size, replace=False))
    if len(set(labels[idx].tolist())) < 2:
        return float("nan")
    return float(silhouette_score(normalize(x[idx]), labels[idx], metric="euclidean"))
