"""`make bench-rag`: retrieval quality, ingestion throughput and query latency (issue 7).

Quality: the Python Language Reference topics that ship with CPython (`bench/rag_eval_set.py`)
are chunked with the encoder's tokenizer, embedded with the packaged MiniLM and written to
`knowledge_chunk` in a throwaway database; the 182 committed questions are asked through
`shared.domain.rag.retrieval.search` in each mode. A hit is a chunk holding at least half of the
labelled answer passage (or the passage verbatim, where another topic repeats it).
Figures: recall@5 and MRR@10 per mode, for the default window (400/50 tokens) and for a window
that fits the encoder's 256-token input (200/30).

Throughput: chunking, embedding (sequences/s) and inserting, on this CPU, in-process.

Latency: the table is filled to 10k and then 100k chunks with SYNTHETIC rows (random unit
vectors, text drawn from the corpus vocabulary) in one context, the HNSW index built, and the
real questions' hybrid and dense searches timed end to end (SQL + fusion + fetch).

Answers (issue 21, `bench/rag_answers.py`): grounded answers through the real model, copy-aware
decoding off and on: the share holding the question's key phrase exactly and the no-evidence
answer rate. BENCH_RAG_ANSWERS=0 skips them; `python -m bench.rag_answers` runs only them.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import numpy as np
from psycopg_pool import AsyncConnectionPool

from bench.rag_answers import faithfulness, report
from bench.rag_eval_set import EvalQuestion, load_corpus, load_questions, relevant
from infra import stack
from infra.stack.postgres import LocalPostgres
from shared.domain.rag.chunking import Chunk, chunk_text, minilm_offsets
from shared.domain.rag.retrieval import Hit, Mode, search
from shared.neural.minilm import Embedder
from shared.platform.db.migrate import migrate
from shared.platform.db.pool import create_pool
from shared.platform.settings import Settings

WINDOWS = ((400, 50), (200, 30))
MODES: tuple[Mode, ...] = ("dense", "text", "hybrid")
LATENCY_SIZES = tuple(int(n) for n in os.environ.get("BENCH_RAG_SIZES", "10000,100000").split(","))
LATENCY_QUERIES = int(os.environ.get("BENCH_RAG_QUERIES", "200"))
BATCH = 32
ANSWERS = os.environ.get("BENCH_RAG_ANSWERS", "1") != "0"
VERSION = "all-MiniLM-L6-v2"


def _pct(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def is_hit(question: EvalQuestion, hit: Hit) -> bool:
    if (
        hit.start is not None
        and hit.end is not None
        and relevant(question, hit.path, hit.start, hit.end)
    ):
        return True
    return _squash(question.answer) in _squash(hit.content)


async def _context(pool: AsyncConnectionPool, user_id: str, name: str) -> str:
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "INSERT INTO knowledge_context (owner_user_id, name, embedding_version)"
                " VALUES (%s, %s, %s) RETURNING id::text",
                (user_id, name, VERSION),
            )
        ).fetchone()
    assert row is not None
    return str(row[0])


async def ingest_corpus(
    pool: AsyncConnectionPool, embedder: Embedder, context_id: str, size: int, overlap: int
) -> dict[str, float]:
    corpus, offsets = load_corpus(), minilm_offsets()
    started = time.perf_counter()
    chunks: list[tuple[str, Chunk]] = [
        (topic, c)
        for topic, text in corpus.items()
        for c in chunk_text(text, offsets, size=size, overlap=overlap)
    ]
    chunked = time.perf_counter()
    texts = [c.text for _, c in chunks]
    embedder.embed(texts[:BATCH])  # compile outside the timing
    embed_started = time.perf_counter()
    vectors = np.concatenate(
        [embedder.embed(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
    )
    embedded = time.perf_counter()
    async with pool.connection() as conn, conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO knowledge_chunk (context_id, fs_path, chunk_index, content, embedding,"
            " embedding_version, char_start, char_end, token_count) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(context_id, topic, c.index, c.text, v, VERSION, c.start, c.end, c.token_count)
             for (topic, c), v in zip(chunks, vectors, strict=True)],
        )  # fmt: skip
    inserted = time.perf_counter()
    total = (chunked - started) + (inserted - embed_started)
    return {
        "chunks": len(chunks),
        "chunk_s": chunked - started,
        "embed_seq_per_s": len(texts) / (embedded - embed_started),
        "insert_s": inserted - embedded,
        "chunks_per_s": len(chunks) / total,
        "truncated": sum(c.token_count > 254 for _, c in chunks) / len(chunks),
    }


async def evaluate(
    pool: AsyncConnectionPool, user_id: str, context_id: str, questions: list[EvalQuestion],
    vectors: np.ndarray,
) -> dict[str, dict[str, float]]:  # fmt: skip
    scores: dict[str, dict[str, float]] = {}
    for mode in MODES:
        recall, reciprocal = 0, 0.0
        for question, vector in zip(questions, vectors, strict=True):
            async with pool.connection() as conn, conn.transaction():
                hits = await search(conn, user_id, [context_id], query=question.question,
                                    vector=vector.tolist(), k=10, mode=mode)  # fmt: skip
            ranks = [i for i, h in enumerate(hits, 1) if is_hit(question, h)]
            recall += bool(ranks and ranks[0] <= 5)
            reciprocal += 1 / ranks[0] if ranks else 0.0
        scores[mode] = {"recall@5": recall / len(questions), "mrr@10": reciprocal / len(questions)}
    return scores


async def fill_synthetic(pool: AsyncConnectionPool, context_id: str, count: int, start: int,
                         vocabulary: list[str]) -> None:  # fmt: skip
    rng, words = np.random.default_rng(start), random.Random(start)  # noqa: S311 - fill data
    async with pool.connection() as conn:
        await conn.execute("DROP INDEX IF EXISTS knowledge_chunk_embedding_idx")
        async with conn.cursor().copy(
            "COPY knowledge_chunk (context_id, fs_path, chunk_index, content, embedding,"
            " embedding_version) FROM STDIN"
        ) as copy:
            for i in range(start, start + count):
                vector = rng.standard_normal(384).astype(np.float32)
                text = " ".join(words.choices(vocabulary, k=80))
                await copy.write_row((context_id, f"synthetic-{i // 50}", i, text,
                                      vector / np.linalg.norm(vector), VERSION))  # fmt: skip
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(
            "CREATE INDEX knowledge_chunk_embedding_idx ON knowledge_chunk"
            " USING hnsw (embedding vector_cosine_ops)"
        )
        await conn.execute("ANALYZE knowledge_chunk")


async def latency(
    pool: AsyncConnectionPool, user_id: str, context_id: str, questions: list[EvalQuestion],
    vectors: np.ndarray,
) -> dict[str, tuple[float, float]]:  # fmt: skip
    timings: dict[Mode, list[float]] = {"hybrid": [], "dense": []}
    picks = [(q, v) for q, v in zip(questions, vectors, strict=True)][:LATENCY_QUERIES]
    for mode, samples in timings.items():
        for question, vector in picks:
            started = time.perf_counter()
            async with pool.connection() as conn, conn.transaction():
                await search(
                    conn,
                    user_id,
                    [context_id],
                    query=question.question,
                    vector=vector.tolist(),
                    k=5,
                    mode=mode,
                )
            samples.append((time.perf_counter() - started) * 1000)
    return {m: (_pct(s, 50), _pct(s, 99)) for m, s in timings.items()}


async def _user(pool: AsyncConnectionPool) -> str:
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "INSERT INTO app_user (email) VALUES (%s) RETURNING id::text",
            (f"{uuid.uuid4().hex}@bench.test",))).fetchone()  # fmt: skip
    assert row is not None
    return str(row[0])


async def run(settings: Settings) -> None:
    pool = create_pool(settings)
    await pool.open()
    try:
        user_id, embedder = await _user(pool), Embedder()
        windows: dict[tuple[int, int], str] = {}
        questions = load_questions()
        q_vectors = embedder.embed([q.question for q in questions])
        print(f"eval set: {len(questions)} questions, {len(load_corpus())} topics")
        for size, overlap in WINDOWS:
            context_id = windows[(size, overlap)] = await _context(
                pool, user_id, f"reference-{size}"
            )
            rate = await ingest_corpus(pool, embedder, context_id, size, overlap)
            print(
                f"\nwindow {size}/{overlap} tokens: {rate['chunks']} chunks"
                f" ({rate['truncated']:.0%} longer than the encoder's 256-token input)"
            )
            print(f"  ingestion: {rate['chunks_per_s']:.1f} chunks/s end to end; embedding"
                  f" {rate['embed_seq_per_s']:.1f} sequences/s; chunking {rate['chunk_s']:.2f} s;"
                  f" insert {rate['insert_s']:.2f} s")  # fmt: skip
            for mode, figures in (await evaluate(pool, user_id, context_id, questions,
                                                 q_vectors)).items():  # fmt: skip
                print(f"  {mode:>6}: recall@5 {figures['recall@5']:.3f}"
                      f"  MRR@10 {figures['mrr@10']:.3f}")  # fmt: skip
        if ANSWERS:
            report(await faithfulness(pool, settings, user_id, windows[WINDOWS[0]]), settings)
        vocabulary = sorted(
            {w for t in load_corpus().values() for w in re.findall(r"[a-z]{3,}", t)}
        )
        synthetic, filled = await _context(pool, user_id, "synthetic"), 0
        print("\nquery latency (SYNTHETIC random vectors and vocabulary text fill the table):")
        for size in LATENCY_SIZES:
            started = time.perf_counter()
            await fill_synthetic(pool, synthetic, size - filled, filled, vocabulary)
            built, filled = time.perf_counter() - started, size
            timed = await latency(pool, user_id, synthetic, questions, q_vectors)
            print(f"  {size:>7} chunks (load + HNSW build {built:.0f} s): "
                  + "; ".join(f"{m} p50 {p50:.1f} ms / p99 {p99:.1f} ms"
                              for m, (p50, p99) in timed.items()))  # fmt: skip
    finally:
        await pool.close()


async def _answers_only(settings: Settings) -> None:
    pool = create_pool(settings)
    await pool.open()
    try:
        user_id = await _user(pool)
        context_id = await _context(pool, user_id, "reference")
        size, overlap = WINDOWS[0]
        await ingest_corpus(pool, Embedder(), context_id, size, overlap)
        report(await faithfulness(pool, settings, user_id, context_id), settings)
    finally:
        await pool.close()


def answers_alone() -> None:
    """`python -m bench.rag_answers`: only the answers, over the default window's chunks."""
    _with_stack(_answers_only)


def main() -> None:
    _with_stack(run)


def _with_stack(work: Callable[[Settings], Coroutine[Any, Any, None]]) -> None:
    settings = Settings(
        stack_name="acs-bench", pg_database="acs_bench_rag", log_level="WARNING",
        db_statement_timeout_ms=1_800_000,  # loading 100k rows and building HNSW take minutes
    )  # fmt: skip
    state = stack.up(settings)
    try:
        migrate(settings.postgres_dsn)
        asyncio.run(work(settings))
    finally:
        LocalPostgres(settings).drop_database(settings.pg_database)
        if state.started:
            stack.down(settings, only=state.started)


if __name__ == "__main__":
    main()
