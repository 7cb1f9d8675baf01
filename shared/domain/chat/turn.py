"""One chat turn end to end (DESIGN.md §4 flow 1): store the user's message, load working
memory, embed, route adapters, run the workflow graph (whose tools call the model), store the
assistant's message with its `content_struct`, router and workflow traces.

Events go to `emit` as they happen (`trace`, `token`; the caller adds `message_done`,
`error`, `cancel_ack`). The turn is cancelled by cancelling its task: the partial answer is
still stored, marked `cancelled`. A turn that fails (a timeout, the model service gone) stores
what it generated with `meta.finish_reason`; with nothing generated its user message is marked
`turn_failed`. Deadlines follow progress: an answer still streaming is never cut by a timeout
short of its token budget (`generation_budget_s`).

Connections: `open` validates and writes on one connection; later steps take one at a time
and never hold one while asking the pool for another (nested checkouts starve a busy pool).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.domain.chat import conversations, memory, sources
from shared.domain.chat.adapter_fallback import AdapterFallback, skipped_adapters
from shared.domain.chat.content import normalize
from shared.domain.clusters import store as cluster_store
from shared.domain.llm.backend import GenerationParams, LLMBackend, Message
from shared.domain.rag import contexts
from shared.domain.routing import recorded
from shared.domain.routing.engine import MODES_BY_BACKEND, RoutingContext, route
from shared.domain.tools.base import Emit, LlmLedger, ToolContext, ToolRunner
from shared.domain.tools.builtins import (
    DEFAULT_SYSTEM_PROMPT,
    SUMMARY_MAX_TOKENS,
    summary_prompt,
    transcript,
)
from shared.domain.voice import clips as voice_clips
from shared.domain.workflow.engine import WorkflowFailed, run_workflow
from shared.domain.workflow.recorded import RecordingRunner
from shared.platform.db.pool import Pool
from shared.platform.errors import AppError, Unavailable, ValidationError
from shared.platform.runtime.outages import as_unavailable

TITLE_CHARS = 60
log = logging.getLogger("chat")


@dataclass(frozen=True)
class TurnRequest:
    user_id: str
    request_id: str
    content: str
    conversation_id: str | None = None
    parent_id: str | None = None
    regenerate: bool = False
    edit_of: str | None = None
    context_ids: tuple[str, ...] = ()
    workflow_id: str | None = None
    # A voice message: the recording (`voice_clips`) `content` was transcribed from.
    clip_id: str | None = None


@dataclass
class TurnResult:
    conversation_id: str
    user_message_id: str
    message_id: str | None = None
    content: str = ""
    content_struct: dict[str, Any] | None = None
    usage: dict[str, int] = field(default_factory=dict)
    adapters: list[dict[str, Any]] = field(default_factory=list)
    # Routed adapters the model service refused (unknown, files missing, bad checksum): the
    # answer came without them (shared.domain.chat.adapter_fallback).
    adapters_skipped: list[dict[str, Any]] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    message_seq: int = 0
    # What `open` read or wrote, so the run needs no second look: the question as stored and
    # the workflow the turn runs (always set by `open`).
    user_message: conversations.Message = field(kw_only=True, repr=False)
    workflow: sources.LoadedArtifact = field(kw_only=True, repr=False)

    def done_payload(self) -> dict[str, Any]:
        """`message_done`: the blocking answer without `content` (DESIGN.md §5)."""
        return {
            "request_id": self.trace.get("request_id"), "conversation_id": self.conversation_id,
            "message_id": self.message_id, "user_message_id": self.user_message_id,
            "content_struct": self.content_struct, "usage": self.usage,
            "adapters": self.adapters, "adapters_skipped": self.adapters_skipped,
            "trace": self.trace, "cancelled": self.cancelled,
        }  # fmt: skip

    def blocking_payload(self) -> dict[str, Any]:
        return {**self.done_payload(), "content": self.content}


@dataclass(frozen=True)
class PreparedTurn:
    """What the turn's workflow runs with, once memory, routing and adapters are settled."""

    ctx: ToolContext
    router_trace: dict[str, Any]
    memory_trace: dict[str, Any]
    mem: memory.WorkingMemory
    inputs: dict[str, Any]
    # What routing read, for the trace: a dry-run replays policies over it (routing.recorded).
    routing_inputs: dict[str, Any] = field(default_factory=dict)


class ChatKernel:
    def __init__(
        self,
        *,
        pool: Pool,
        redis: Any,
        backend: LLMBackend,
        tools: ToolRunner,
        memory_store: memory.MemoryStore,
        backend_name: str,
        generation: GenerationParams,
        system_prompt: str | None = None,
        tool_extras: Mapping[str, Any] | None = None,
        min_tokens_per_s: float = 2.0,
    ):
        self.pool, self.redis, self.backend, self.tools = pool, redis, backend, tools
        self.tool_extras = dict(tool_extras or {})
        self.memory, self.generation = memory_store, generation
        self.system_prompt = system_prompt or DEFAULT_SYSTEM_PROMPT
        self.modes = MODES_BY_BACKEND[backend_name]
        # The answer's model calls: one adapter the service refuses does not fail the turn.
        self.answering = AdapterFallback(backend, modes=self.modes)
        # How far past a timeout an answer that keeps streaming may run (its token budget).
        self.generation_budget_s = generation.max_tokens / min_tokens_per_s

    async def open(self, req: TurnRequest) -> TurnResult:
        """Checks everything the turn names (conversation, parent, contexts, workflow) and only
        then writes the user's message, on one connection: a refused turn writes nothing, and
        everything after this can fail or be cancelled without losing the message."""
        async with self.pool.connection() as conn:
            if req.conversation_id is not None:
                await conversations.get(conn, req.user_id, req.conversation_id)
            await self._check_contexts(conn, req)
            workflow = await sources.load_artifact(
                conn, req.user_id, kind="workflow.chat", artifact_id=req.workflow_id,
                default_name=sources.DEFAULT_WORKFLOW,
            )  # fmt: skip
            if req.regenerate:
                assert req.conversation_id is not None  # ChatIn: parent_id needs one
                asked = await conversations.get_message(
                    conn, req.user_id, req.conversation_id, req.parent_id or ""
                )
                if asked.sender != "user":
                    raise ValidationError("regenerate needs parent_id = a user message")
                return TurnResult(req.conversation_id, asked.id, user_message=asked,
                                  workflow=workflow)  # fmt: skip
            edited = await self._edited(conn, req)
            async with conn.transaction():
                # A voice message's clip must be the user's (404 else) before anything is
                # written; it is locked so it links to this message and no other at once.
                clip, struct = None, None
                if req.clip_id is not None:
                    clip = await voice_clips.get(conn, req.user_id, req.clip_id, lock=True)
                    struct = {"segments": voice_clips.message_segments(clip, req.content)}
                if req.conversation_id is None:
                    title = " ".join(req.content.split())[:TITLE_CHARS] or None
                    made = await conversations.create(conn, req.user_id, title=title)
                    conversation_id, parent = made.id, None
                else:
                    conversation_id = req.conversation_id
                    parent = (
                        edited.parent_id if edited
                        else req.parent_id or await conversations.latest_id(conn, conversation_id)
                    )  # fmt: skip
                written = await conversations.append_message(
                    conn, req.user_id, conversation_id, sender="user", content=req.content,
                    content_struct=struct, parent_id=parent, meta={"request_id": req.request_id},
                )  # fmt: skip
                if clip:
                    await voice_clips.link_message(conn, req.user_id, clip.id, written.id)
        return TurnResult(conversation_id, written.id, user_message=written, workflow=workflow)

    @staticmethod
    async def _edited(conn: Any, req: TurnRequest) -> conversations.Message | None:
        """The user message an edit replaces (owner-checked: 404 else); None without edit_of."""
        if req.edit_of is None:
            return None
        assert req.conversation_id is not None  # ChatIn: edit_of needs one
        edited = await conversations.get_message(
            conn, req.user_id, req.conversation_id, req.edit_of
        )
        if edited.sender != "user":
            raise ValidationError("edit_of must name a user message")
        return edited

    async def _check_contexts(self, conn: Any, req: TurnRequest) -> None:
        """Every named context must be one this user may read (own or global): 404 else."""
        for context_id in req.context_ids:
            await contexts.get_readable(conn, req.user_id, context_id)

    async def run(self, req: TurnRequest, turn: TurnResult, emit: Emit) -> TurnResult:
        """Runs the opened turn and stores its answer. A turn that ends early for any reason
        (cancelled, timed out, the model or a store gone) stores what was generated, marked
        with why it ended, and an error is raised to the caller after that; with nothing
        generated, the user's message is marked failed instead (so it is never an orphan and
        the user can regenerate)."""
        started, parts = time.perf_counter(), []

        async def collect(event: str, data: Any) -> None:
            if event == "token":
                parts.append(str(data))
            await emit(event, data)

        ledger = LlmLedger()
        trace: dict[str, Any] = {"request_id": req.request_id, "workflow": []}
        prepared: PreparedTurn | None = None
        failure: Exception | None = None
        finish_reason: str | None = None
        tools = RecordingRunner(self.tools)  # tool results, digested, for dry-run replays
        try:
            prepared = await self._prepare(req, turn, collect, ledger)
            trace.update(router=prepared.router_trace, memory=prepared.memory_trace)
            trace["inputs"] = _replay_inputs(prepared, turn.workflow, tools)
            await emit("trace", {"stage": "router", "router": prepared.router_trace})

            async def node_done(entry: dict[str, Any]) -> None:
                trace["workflow"].append(entry)
                await emit("trace", {"stage": "workflow", "node": entry})

            result = await run_workflow(
                turn.workflow.schema, inputs=prepared.inputs, runner=tools,
                ctx=prepared.ctx, on_trace=node_done,
                generation_budget_s=self.generation_budget_s,
            )  # fmt: skip
            trace["workflow_outcome"] = result.outcome
            answer = str(result.vars.get("answer", "")) or "".join(parts)
            citations = result.vars.get("citations") or []
            # The inference service ended the decode on a cancel whose task cancellation was
            # lost (Python 3.11's wait_for can swallow one): still a cancelled turn.
            turn.cancelled = ledger.finish_reason == "cancelled"
            finish_reason = "cancelled" if turn.cancelled else ledger.finish_reason
        except asyncio.CancelledError:
            turn.cancelled, answer, citations, finish_reason = True, "".join(parts), [], "cancelled"
        except Exception as exc:
            failure, answer, citations = exc, "".join(parts), []
            finish_reason = ended_by(exc)
            trace["error"] = {"reason": finish_reason, "code": getattr(exc, "code", None)}
        if turn.cancelled:
            trace["cancelled"] = True
        trace["finish_reason"] = finish_reason
        trace["kernel_ms"] = round((time.perf_counter() - started) * 1000, 1)
        await asyncio.shield(
            self._finish(req, turn, answer, citations, ledger, trace, failed=failure is not None)
        )
        if failure is not None:
            raise client_error(failure, turn) from failure
        if prepared is not None and turn.message_id is not None:
            await self._remember(prepared.mem, turn.user_message, turn)
        return turn

    async def _remember(
        self, mem: memory.WorkingMemory, user_message: Any, turn: TurnResult
    ) -> None:
        """The hot state now ends at the new answer, so the next turn needs no rebuild."""
        mem.turns = [
            *mem.turns,
            memory.Turn(user_message.id, "user", user_message.content, user_message.seq),
            memory.Turn(turn.message_id or "", "assistant", turn.content, turn.message_seq),
        ][-self.memory.max_turns :]
        mem.head = turn.message_id
        await self.memory.save(turn.conversation_id, mem)

    async def _prepare(
        self, req: TurnRequest, turn: TurnResult, emit: Emit, ledger: LlmLedger
    ) -> PreparedTurn:
        user_message = turn.user_message
        mem = await self.memory.load(req.user_id, turn.conversation_id, user_message.parent_id)
        ctx = ToolContext(
            user_id=req.user_id,
            request_id=req.request_id,
            backend=self.backend,
            system_prompt=self.system_prompt,
            emit=emit,
            ledger=ledger,
            extras={"generation": self.generation, **self.tool_extras},
        )  # fmt: skip  (summaries see no adapters and no history)
        prompt_tokens = await memory.fit(
            mem,
            prompt=lambda m: [Message("system", m.system_prompt(self.system_prompt)),
                              *m.messages(), Message("user", user_message.content)],
            backend=self.backend, reserve_tokens=self.generation.max_tokens,
            summarize=lambda summary, turns: self._summarize(ctx, summary, turns),
            persist=lambda text, last: self.memory.write_summary(
                req.user_id, turn.conversation_id, text=text, last=last),
        )  # fmt: skip
        memory_trace = {"turns": len(mem.turns), "summary": mem.summary is not None,
                        "folds": mem.folds, "prompt_tokens": prompt_tokens}  # fmt: skip
        vector = await sources.embedding(self.redis, self.backend, user_message.content)
        async with self.pool.connection() as conn:
            policy = await sources.load_artifact(
                conn, req.user_id, kind="policy.routing", artifact_id=None,
                default_name=sources.DEFAULT_POLICY,
            )  # fmt: skip
            candidates = await sources.adapter_candidates(conn, req.user_id)
            # The turn's nearest clusters (the user's and global): `clusters` in expressions.
            near = await cluster_store.nearest(conn, req.user_id, vector)
        variables = {"message": user_message.content, "clusters": near}
        routing = RoutingContext(ctx_embedding=vector, candidates=candidates,
                                 variables=variables)  # fmt: skip
        routed = route(policy.schema, routing, supported_modes=self.modes)
        routing_inputs = recorded.record(
            routing, supported_modes=self.modes, message=user_message.content
        )
        router_trace = {**routed.trace, "policy_id": policy.id, "policy_version": policy.version,
                        "clusters": near}  # fmt: skip
        inputs = {
            "message": user_message.content, "context_ids": list(req.context_ids),
            "conversation_id": turn.conversation_id,
        }  # fmt: skip
        ctx = dataclasses.replace(
            ctx, backend=self.answering, adapters=routed.adapters, history=mem.messages(),
            system_prompt=mem.system_prompt(self.system_prompt),
        )  # fmt: skip
        return PreparedTurn(ctx, router_trace, memory_trace, mem, inputs, routing_inputs)

    async def _summarize(self, ctx: ToolContext, summary: str | None, turns: Sequence[Any]) -> str:
        """The fold's turns through `memory.summarize_v1`, in as many calls as the window
        needs (a model with a small window cannot take a long fold in one prompt)."""

        def messages(summary: str | None, turns: Sequence[Any]) -> list[dict[str, str]]:
            earlier = [{"role": "system", "content": f"Earlier summary: {summary}"}]
            return (earlier if summary else []) + [
                {"role": t.role, "content": t.content} for t in turns
            ]

        async def once(summary: str | None, turns: Sequence[Any]) -> str:
            listed = messages(summary, turns)
            inputs = {"messages": listed, "max_tokens": SUMMARY_MAX_TOKENS}
            out = await self.tools.run("memory.summarize_v1", inputs, ctx)
            return str(out["summary"]) or transcript(listed)[:2000]

        return await memory.summarize_in_packs(
            summary, turns, backend=self.backend, answer_tokens=SUMMARY_MAX_TOKENS, once=once,
            prompt_of=lambda s, ts: summary_prompt(messages(s, ts)),
        )  # fmt: skip

    async def _finish(
        self, req: TurnRequest, turn: TurnResult, answer: str, citations: list[Any],
        ledger: LlmLedger, trace: dict[str, Any], *, failed: bool,
    ) -> None:  # fmt: skip
        turn.content = answer
        turn.usage = {"prompt_tokens": ledger.prompt_tokens,
                      "completion_tokens": ledger.completion_tokens}  # fmt: skip
        turn.adapters = [
            {"id": a.id, "weight": a.weight, "how": a.how, "version": a.version}
            for a in ledger.adapters
        ]
        turn.adapters_skipped = skipped_adapters(ledger.trace)
        turn.trace = trace
        turn.content_struct = normalize(
            {"segments": [{"type": "text", "text": answer}, *citations]}
        )
        finish_reason = trace.get("finish_reason")
        try:
            async with self.pool.connection() as conn:
                if failed and not answer:  # nothing to keep: say so on the question
                    await conversations.mark_failed(
                        conn, req.user_id, turn.user_message_id,
                        {"reason": finish_reason, "request_id": req.request_id},
                    )  # fmt: skip
                    return
                written = await conversations.append_message(
                    conn, req.user_id, turn.conversation_id, sender="assistant",
                    content=answer, content_struct=turn.content_struct,
                    parent_id=turn.user_message_id, token_count_in=ledger.prompt_tokens,
                    token_count_out=ledger.completion_tokens,
                    meta={"request_id": req.request_id, "adapters": turn.adapters,
                          "adapters_skipped": turn.adapters_skipped, "usage": turn.usage,
                          "trace": trace, "cancelled": turn.cancelled,
                          "finish_reason": finish_reason, "ended_early": failed},
                )  # fmt: skip
        except Exception as exc:
            # The store itself is down: the answer cannot be kept. The caller learns it (503)
            # and the question stays as written; nothing half-written remains.
            outage = as_unavailable(exc)
            if outage is None:
                raise
            log.warning("turn %s not stored: %s", req.request_id, exc)
            raise outage from exc
        turn.message_id, turn.message_seq = written.id, written.seq


def _replay_inputs(
    prepared: PreparedTurn, workflow: sources.LoadedArtifact, tools: RecordingRunner
) -> dict[str, Any]:
    """`trace.inputs`: what routing and the workflow's branches read, so a dry-run replays
    them without a model call. The question itself is the parent message; `tools` fills in
    (by reference) as the workflow's nodes return."""
    return {
        "routing": prepared.routing_inputs,
        "workflow": {
            "id": workflow.id, "version": workflow.version,
            "input": {"context_ids": prepared.inputs["context_ids"]}, "tools": tools.outcomes,
        },
    }  # fmt: skip


def _cause(exc: BaseException) -> str | None:
    """The error code behind a failed turn (a workflow's failing node's, when it has one)."""
    return exc.cause if isinstance(exc, WorkflowFailed) else getattr(exc, "code", None)


def ended_by(exc: BaseException) -> str:
    """Why a turn that raised ended: `timeout`, `unavailable` (the model or a store is gone or
    saturated) or `error` (anything else: a broken workflow, a bug)."""
    cause = _cause(exc)
    if cause == "timeout" or isinstance(exc, TimeoutError):
        return "timeout"
    if cause in ("unavailable", "rate_limited") or as_unavailable(exc) is not None:
        return "unavailable"
    return "error"


def client_error(exc: Exception, turn: TurnResult) -> Exception:
    """What the client is told about a turn that ended early: a 503 with `Retry-After` when the
    model or a store could not serve in time (try again, or regenerate), else the error
    itself. Details say what was kept."""
    cause, finish_reason = _cause(exc), ended_by(exc)
    kept = {"reason": finish_reason, "cause": cause or type(exc).__name__,
            "conversation_id": turn.conversation_id,
            "user_message_id": turn.user_message_id, "message_id": turn.message_id,
            "partial_chars": len(turn.content)}  # fmt: skip
    if finish_reason == "timeout":
        return Unavailable("the model did not finish in time; try again", details=kept)
    if finish_reason == "unavailable":
        retry = getattr(exc, "headers", {}).get("Retry-After", "5")
        busy = cause == "rate_limited"  # back-pressure: the model's queue is full
        return Unavailable(
            f"the model service is {'busy' if busy else 'unavailable'}; try again shortly",
            details=kept, retry_after_s=int(retry) if str(retry).isdigit() else 5,
        )  # fmt: skip
    if isinstance(exc, AppError) and isinstance(exc.details, dict | None):
        exc.details = {**(exc.details or {}), **kept}
    return exc
