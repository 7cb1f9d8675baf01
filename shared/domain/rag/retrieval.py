"""Hybrid retrieval over knowledge chunks: pgvector HNSW cosine search and Postgres
full-text search, fused with reciprocal-rank fusion (Cormack et al., 2009).

Only chunks of the contexts the caller may read, at each context's active embedding version,
are candidates: the ACL is a WHERE clause, not a filter after the fact. Full-text matching is
OR over the question's stemmed words (a question rarely contains all of a passage's words),
ranked by ts_rank with length normalisation. Every hit carries its cosine similarity to the
question, so callers can tell evidence from the best of nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pgvector import Vector

from shared.domain.rag.contexts import readable_versions

Mode = Literal["hybrid", "dense", "text"]
RRF_K = 60  # the constant of the RRF paper; dampens the weight of the very top ranks
CANDIDATES = 50  # per side, before fusion
EF_SEARCH = 100  # HNSW candidate list (pgvector's default is 40)

_DENSE = (
    "SELECT c.id, c.context_id::text, c.embedding_version FROM knowledge_chunk c"
    " WHERE c.context_id = ANY(%(ids)s::uuid[]) AND c.embedding_version = ANY(%(versions)s)"
    " ORDER BY c.embedding <=> %(vector)s LIMIT %(n)s"
)
# The question's stemmed words OR-ed; lexemes are quoted so no input is tsquery syntax.
_TEXT = (
    "WITH q AS (SELECT to_tsquery('simple', string_agg(quote_literal(word), ' | ')) AS query"
    "  FROM unnest(tsvector_to_array(to_tsvector('english', %(text)s))) AS word)"
    " SELECT c.id, c.context_id::text, c.embedding_version FROM knowledge_chunk c, q"
    " WHERE c.context_id = ANY(%(ids)s::uuid[]) AND c.embedding_version = ANY(%(versions)s)"
    " AND c.tsv @@ q.query ORDER BY ts_rank(c.tsv, q.query, 1) DESC, c.id LIMIT %(n)s"
)
_FETCH = (
    "SELECT c.id, c.context_id::text, c.source_id::text, c.file_id::text, c.fs_path,"
    " c.chunk_index, c.content, c.heading, c.page, c.char_start, c.char_end,"
    " 1 - (c.embedding <=> %(vector)s::vector) FROM knowledge_chunk c WHERE c.id = ANY(%(ids)s)"
)


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    context_id: str
    source_id: str | None
    file_id: str | None
    path: str
    chunk_index: int
    content: str
    heading: str | None
    page: int | None
    start: int | None
    end: int | None
    similarity: float  # cosine similarity of the chunk to the question (0 without a vector)
    score: float  # the fused RRF score (or 1/rank in a single mode)
    dense_rank: int | None = None
    text_rank: int | None = None


async def _ranked(conn: Any, sql: str, args: dict[str, Any], active: dict[str, str]) -> list[int]:
    rows = await (await conn.execute(sql, args)).fetchall()
    # Mid re-embed a context holds chunks of two versions; only its active one counts.
    return [r[0] for r in rows if active.get(r[1]) == r[2]]


def fuse(rankings: Sequence[Sequence[int]], *, k: int = RRF_K) -> dict[int, float]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for position, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + position)
    return scores


async def search(
    conn: Any, user_id: str, context_ids: Sequence[str], *, query: str,
    vector: Sequence[float], k: int, mode: Mode = "hybrid",
) -> list[Hit]:  # fmt: skip
    """The top `k` chunks of the readable contexts among `context_ids`, best first."""
    active = await readable_versions(conn, user_id, list(context_ids))
    if not active or not query.strip():
        return []
    args = {"ids": list(active), "versions": sorted(set(active.values())), "text": query,
            "vector": Vector(list(vector)) if len(vector) else None, "n": CANDIDATES}  # fmt: skip
    dense: list[int] = []
    text: list[int] = []
    if mode in ("hybrid", "dense") and args["vector"] is not None:
        # Iterative scans (pgvector 0.8) keep looking when the ACL filter drops candidates.
        await conn.execute(
            f"SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {EF_SEARCH}"
        )
        dense = await _ranked(conn, _DENSE, args, active)
    if mode in ("hybrid", "text"):
        text = await _ranked(conn, _TEXT, args, active)
    scores = fuse([r for r in (dense, text) if r])
    top = sorted(scores, key=lambda c: (-scores[c], c))[:k]
    if not top:
        return []
    rows = await (await conn.execute(_FETCH, {**args, "ids": top})).fetchall()
    by_id = {r[0]: r for r in rows}
    dense_pos = {c: i for i, c in enumerate(dense, start=1)}
    text_pos = {c: i for i, c in enumerate(text, start=1)}
    return [_hit(by_id[c], scores[c], dense_pos.get(c), text_pos.get(c)) for c in top if c in by_id]


def _hit(row: Sequence[Any], score: float, dense_rank: int | None, text_rank: int | None) -> Hit:
    ident, context, source, file, path, index, content, heading, page, start, end, sim = row
    return Hit(
        str(ident),
        context,
        source,
        file,
        path,
        index,
        content,
        heading,
        page,
        start,
        end,
        similarity=float(sim) if sim is not None else 0.0,
        score=score,
        dense_rank=dense_rank,
        text_rank=text_rank,
    )


# The question's vector from the chunks' encoder (the chat's Redis-cached embedding, so a turn
# that routed on its message does not embed it again).
Embed = Callable[[str], Awaitable[Sequence[float]]]


class Retriever:
    """What tools use: embeds the question, searches in a transaction (the SET LOCALs above
    need one)."""

    def __init__(self, pool: Any, embed: Embed | None):
        self.pool, self.embed = pool, embed  # None: full-text search only

    async def search(
        self, user_id: str, context_ids: Sequence[str], query: str, *, k: int,
        mode: Mode = "hybrid",
    ) -> list[Hit]:  # fmt: skip
        # Full-text search alone needs no encoder (and keeps working when it is down).
        wanted = mode != "text" and query.strip()
        if wanted and self.embed is None:
            raise ValueError("dense and hybrid search need the encoder")
        vector = await self.embed(query) if wanted and self.embed else []
        async with self.pool.connection() as conn, conn.transaction():
            return await search(conn, user_id, context_ids, query=query, vector=vector, k=k,
                                mode=mode)  # fmt: skip
