"""The one settings object (DESIGN.md §6.3).

Every value comes from the environment (or a `.env` file); nothing else in the code base reads
`os.environ`. A service URL left unset means "the local stack provides it": `infra/stack`
starts that server and the derived URL below points at it. A URL that is set (a managed
Postgres, real AWS) is used as it is and that server is never started locally.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.platform.account_data_settings import AccountDataSettings
from shared.platform.auth_settings import DEV_ENCRYPTION_KEY, DEV_JWT_SECRET, AuthSettings
from shared.platform.observability_settings import ObservabilitySettings
from shared.platform.retention_settings import RetentionSettings
from shared.platform.secret_sources import SecretSourcesSettings
from shared.platform.voice_settings import DEV_VOICE_TOKEN, VoiceSettings

REPO_ROOT = Path(__file__).resolve().parents[2]

# Values that ship as development defaults; outside `dev`/`test` they are refused.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "postgres",
        "dev-secret-access-key",
        "dev-inference-token",
        DEV_VOICE_TOKEN,
        DEV_JWT_SECRET,
        DEV_ENCRYPTION_KEY,
    }
)


class Settings(
    AuthSettings,
    VoiceSettings,
    RetentionSettings,
    SecretSourcesSettings,
    AccountDataSettings,
    ObservabilitySettings,
):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    env: Literal["dev", "test", "prod"] = "dev"
    service_name: str = "adaptive-chat"
    log_level: str = "INFO"
    data_dir: Path = REPO_ROOT / ".data"
    template_path: Path = REPO_ROOT / "template.yaml"
    # Local stand-in for CloudFormation's ${AWS::StackName}: prefixes queue and bucket names.
    stack_name: str = "acs"

    # --- PostgreSQL ---------------------------------------------------------------------------
    database_url: str | None = Field(default=None, repr=False)  # holds the password
    pg_port: int = 5433
    pg_database: str = "adaptive_chat"
    pg_password: SecretStr = SecretStr("postgres")
    pg_system_user: str = "acs-postgres"
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_statement_timeout_ms: int = 15_000

    # --- Redis protocol (Valkey locally) ---------------------------------------------------------
    redis_url: str | None = Field(default=None, repr=False)  # may hold a password
    redis_port: int = 6380

    # --- S3 API (SeaweedFS locally) --------------------------------------------------------------
    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None
    s3_port: int = 8333
    s3_master_port: int = 9333
    s3_volume_port: int = 9340
    s3_filer_port: int = 8888
    s3_admin_port: int = 23646
    s3_debug_port: int = 6060
    aws_region: str = "us-east-1"
    aws_access_key_id: str = "dev-access-key"
    aws_secret_access_key: SecretStr = SecretStr("dev-secret-access-key")

    # --- SQS API (moto server locally) -----------------------------------------------------------
    sqs_endpoint_url: str | None = None
    sqs_port: int = 9324

    # --- models --------------------------------------------------------------------------------
    # Converted f32 weights (never committed); defaults to <data_dir>/models/smollm2-135m-instruct.
    weights_dir_override: Path | None = Field(default=None, alias="WEIGHTS_DIR")

    # --- processes -------------------------------------------------------------------------------
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    # Queue functions listen here; never exposed through the gateway.
    functions_internal_port: int = 8081
    # Functions that run in a local host of their own (`Metadata.LocalHost` in template.yaml:
    # the train function), so their long CPU-bound work never blocks the other queue
    # functions: host name -> loopback port. Such a host runs niced by FUNCTIONS_HOST_NICE,
    # its threads (XLA's CPU pool included) kept to FUNCTIONS_HOST_CPUS cores (0: all), so
    # chat stays responsive while it trains.
    functions_host_ports: dict[str, int] = Field(default_factory=lambda: {"train": 8082})
    functions_host_nice: int = Field(default=10, ge=0, le=19)
    functions_host_cpus: int = Field(default=1, ge=0, le=1024)
    inference_url: str | None = None
    inference_token: SecretStr = SecretStr("dev-inference-token")
    # Loopback locally; 0.0.0.0 in its container (the load balancer reaches the task's address).
    inference_host: str = "127.0.0.1"
    inference_port: int = 8090
    inference_slots: int = 8
    inference_max_seq_len: int = 2048
    inference_queue_size: int = 64
    inference_timeout_s: float = 120.0
    # The model's dtype: auto picks by platform and measurement (shared.neural.model.AUTO_DTYPE:
    # float32 on the CPU, and on the GPU until bf16 measures faster there).
    inference_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    # Decode steps per device call (the host streams each call's tokens; cancellation and
    # deadlines act between calls), prompts per prefill call (auto: 1 on the CPU, where a
    # prompt already fills the cores, 8 on an accelerator), prompt tokens prefilled between
    # two decode calls, and the multi-LoRA formulation (shared.neural.lora.LORA_IMPLS).
    inference_decode_horizon: int = Field(default=16, ge=1, le=128)
    inference_prefill_rows: int = Field(default=0, ge=0, le=64)  # 0: auto
    inference_prefill_budget: int = Field(default=2048, ge=32)
    inference_lora_impl: Literal["gather", "dense", "ragged"] = "gather"
    # The engine's programs kept as serialized executables beside the compilation cache, so a
    # warm start loads them without tracing (shared.neural.programs); off: JAX's cache only.
    inference_executables: bool = True
    # LoRA adapters: bank slots on the device (each holds one adapter at the bank's rank),
    # the host-RAM cache of parsed adapters, and how long a persona adapter stays pinned
    # after its user's last request.
    inference_adapter_slots: int = Field(default=32, ge=0, le=1024)
    inference_adapter_max_rank: int = Field(default=16, ge=1, le=64)
    inference_adapter_cache_mb: int = Field(default=512, ge=1)
    inference_adapter_pin_ttl_s: float = Field(default=900.0, ge=0)
    jax_cache_dir_override: Path | None = Field(default=None, alias="JAX_CACHE_DIR")
    # The inference service's compilation cache also in the data bucket (jax-cache/<key>/),
    # so a fresh container starts warm; auto: in production (a container's disk starts
    # empty), not locally (the data directory persists).
    jax_cache_s3: Literal["auto", "on", "off"] = "auto"
    cors_allow_origins: list[str] = Field(default_factory=list)
    dependency_timeout_s: float = 3.0
    # /healthz reports the data directory's disk down below this share free (where the data
    # directory is on this host: the local stack, a single box). SeaweedFS refuses uploads
    # below 1 % free and Postgres stops at 0, so this leaves room to act first.
    disk_min_free_percent: float = Field(default=2.0, ge=0, le=50)
    stack_ready_timeout_s: float = 90.0
    dispatcher_wait_s: int = 2
    outbox_relay_interval_s: float = 1.0
    # The dispatcher's lease on a received message: it is received invisible for this long
    # (never longer than the queue's visibility timeout) and the lease is renewed while the
    # function runs, so a message whose dispatcher died is delivered again within this bound
    # instead of after the queue's (hour-long) visibility timeout.
    dispatcher_lease_s: int = Field(default=30, ge=2, le=43_200)
    # A queue message that failed transiently is visible again after base * 2**(receive-1)
    # seconds (jittered, capped), not after the queue's visibility timeout.
    queue_retry_base_s: float = Field(default=2.0, ge=0)
    queue_retry_max_s: float = Field(default=300.0, ge=0, le=43_200)
    # How often the dispatcher checks whether a queue was re-created (the local SQS server
    # lost its messages) and re-drives the pending work of that queue from Postgres.
    redrive_check_s: float = Field(default=10.0, gt=0)
    # `make run`'s supervisor: restart delay of a dead process (doubling up to the cap), the
    # time a process must stay up for its delay to reset, and how often servers are checked.
    supervise_backoff_base_s: float = Field(default=1.0, ge=0)
    supervise_backoff_max_s: float = Field(default=30.0, ge=0)
    supervise_stable_s: float = Field(default=60.0, ge=0)
    supervise_check_s: float = Field(default=2.0, gt=0)

    # --- LLM backend (DESIGN.md §3 "Remote backends") --------------------------------------------
    # "local" is the inference service above; any other value is an OpenAI-compatible provider,
    # formatted per shared/domain/llm/providers.py. LLM_BASE_URL includes the API prefix, as the
    # openai client's base_url does (https://api.openai.com/v1). LLM_MODEL is the provider's base
    # model; an adapter with a remote_model_id replaces it per request. Without
    # LLM_EMBEDDING_MODEL a remote backend refuses to embed.
    llm_backend: Literal[
        "local",
        "openai",
        "azure",
        "vertex",
        "bedrock",
        "together",
        "lorax",
        "adapter_server",
        "sagemaker",
    ] = "local"
    llm_base_url: str | None = None
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str | None = None
    llm_embedding_model: str | None = None
    llm_timeout_s: float = 120.0
    # Chat turns: sampling for answers (greedy suits a 135M model best), the answer's token
    # budget (reserved in the context window), and how many turns working memory keeps.
    chat_temperature: float = Field(default=0.0, ge=0, le=2)
    chat_max_tokens: int = Field(default=384, ge=16, le=4096)
    chat_memory_turns: int = Field(default=40, ge=2, le=400)
    chat_system_prompt: str | None = None  # None: the prompt the base model was tuned with
    # The slowest decode rate an answer may stream at before its deadline treats it as stuck:
    # an answer still streaming may run `chat_max_tokens / chat_min_tokens_per_s` seconds
    # past its node's or workflow's timeout (384 tokens at 2 tok/s: 192 s).
    chat_min_tokens_per_s: float = Field(default=2.0, gt=0, le=1000)
    # The remote model's context window, for working memory's budget (no tokenizer remotely).
    llm_context_window: int = Field(default=8192, ge=512)

    # --- Files and grounding -----------------------------------------------------------
    # Upload size cap per plan tier (app_user.plan_tier); a tier not listed gets "free"'s.
    files_max_bytes_by_tier: dict[str, int] = Field(
        default_factory=lambda: {"free": 20 << 20, "pro": 200 << 20, "team": 1 << 30}
    )
    files_presign_ttl_s: int = Field(default=900, ge=60, le=43_200)
    files_download_ttl_s: int = Field(default=600, ge=60, le=3600)
    # The encoder whose vectors fill knowledge_chunk; changing it re-embeds every context
    # (new chunks beside the old, switched over when >= 95 % of a context's files are ready).
    rag_embedding_version: str = "all-MiniLM-L6-v2"
    rag_embed_batch: int = Field(default=32, ge=1, le=256)
    rag_top_k: int = Field(default=5, ge=1, le=50)
    # Below this cosine similarity (dense) a chunk that full-text search did not also find is
    # not evidence: an answer with none says so instead of citing noise.
    rag_min_similarity: float = Field(default=0.25, ge=-1, le=1)
    # A source still pending/processing this long after it was queued is queued again.
    rag_stuck_after_s: int = Field(default=900, ge=30)

    # --- Preferences and training scheduling (docs/api.md, "Preferences") -----------------------
    # A correction longer than this is refused (400); notes are capped at 500 characters.
    preferences_max_correction_chars: int = Field(default=8000, ge=1, le=32_000)
    # A training job is queued when a user's new trainable events reach the threshold; a
    # user's jobs start at least the cooldown apart (from the end of the last job that ran).
    training_threshold_events: int = Field(default=20, ge=1, le=10_000)
    training_cooldown_s: int = Field(default=3600, ge=0)
    # Steps a job may take (the train function's budget, written into the job row).
    training_step_budget: int = Field(default=64, ge=1, le=100_000)
    # Events one job trains on at most (the newest trainable ones).
    training_max_events: int = Field(default=500, ge=1, le=100_000)
    # Transient failures: a job runs at most this many times, retried after
    # base * 2**(attempt-1) seconds; then `failed` with its reason, every event kept.
    training_max_attempts: int = Field(default=3, ge=1, le=10)
    training_retry_base_s: float = Field(default=60.0, ge=0, le=86_400)
    # A running job whose heartbeat (updated_at) is older than this is taken as crashed.
    training_stale_after_s: int = Field(default=7200, ge=60)
    # Priority by plan tier (an admin counts as the first): while other users' jobs are
    # active, a job of a tier waits this long before its message is visible. A tier not
    # listed gets "free"'s.
    training_tier_delay_s: dict[str, int] = Field(
        default_factory=lambda: {"admin": 0, "team": 0, "pro": 0, "free": 300}
    )

    # --- The train function (docs/model.md, "Training: the job") --------------------------------
    # Unset: the training core's defaults for the backend the job runs on (a CPU: 256 tokens a
    # sample, batches of 8, 2 epochs, Adam at 2e-3; a GPU: 1024 tokens, 16, 4 epochs). The
    # step budget is the job's (TRAINING_STEP_BUDGET when it was queued).
    training_max_tokens: int | None = Field(default=None, ge=32, le=8192)
    training_batch_size: int | None = Field(default=None, ge=1, le=256)
    training_epochs: int | None = Field(default=None, ge=1, le=100)
    training_learning_rate: float | None = Field(default=None, gt=0, le=1)
    # The gate a persona is trained at when the user's routing policy gives it no fixed weight
    # (the seeded policy's `always_persona` rule does: 0.5, and that weight is used).
    training_gate: float = Field(default=0.5, gt=0, le=1)
    # A run stops stepping after this long, then evaluates and publishes what it has.
    training_time_budget_s: float = Field(default=600.0, gt=0)
    # Least time between two progress writes to the job row (the last step is always written).
    training_heartbeat_s: float = Field(default=10.0, gt=0)
    # The base model's greedy answer to a held-out like or dislike (what alignment compares
    # it with) is cut at this many tokens; an answer that does not end within it is no pair.
    training_alternative_max_tokens: int = Field(default=64, ge=1, le=1024)
    # A promoted job moves the persona's router centroid this far toward the mean embedding
    # of the events it trained on (the first job sets it to that mean).
    training_centroid_ema: float = Field(default=0.3, gt=0, le=1)

    # --- ConfigOps (docs/api.md, "ConfigOps") ------------------------------------------------
    # A user's valid patch on their own private artifact is approved by this rule (and its apply
    # queued) instead of waiting for an admin. Off: every patch waits for an admin's decision.
    configops_auto_approve_own: bool = False

    # --- Skill adapters, pruning and merging (docs/configuration.md, "Skill adapters") -------
    # A live cluster with at least SKILL_MIN_SIZE events, SKILL_MIN_POSITIVE of them positive
    # (likes, `always`, corrections) and a positive share of at least SKILL_MIN_POSITIVE_SHARE,
    # and no adapter bound to it, gets a skill-adapter proposal (proposer `system_llm`).
    skill_min_size: int = Field(default=20, ge=2, le=1_000_000)
    skill_min_positive: int = Field(default=10, ge=1, le=1_000_000)
    skill_min_positive_share: float = Field(default=0.6, ge=0, le=1)
    # Steps a skill's training job may take (its step budget, like TRAINING_STEP_BUDGET's).
    skill_step_budget: int = Field(default=64, ge=1, le=100_000)
    # A skill trains again once its clusters gained this many events since it last trained
    # (checked after each cluster run of its scope).
    skill_retrain_events: int = Field(default=20, ge=1, le=1_000_000)
    # Pruning: a skill adapter used fewer than PRUNE_MAX_USAGE times, rated at most
    # PRUNE_MAX_SUCCESS (mean score, -1..1), unused and without new feedback in its cluster for
    # PRUNE_IDLE_DAYS gets a proposal to disable it. Merging: two active skills of the same
    # scope whose centroids' cosine is at least MERGE_MIN_SIMILARITY get a proposal to merge
    # the less successful into the other.
    prune_max_usage: int = Field(default=5, ge=0)
    prune_max_success: float = Field(default=0.0, ge=-1, le=1)
    prune_idle_days: float = Field(default=30.0, ge=0)
    merge_min_similarity: float = Field(default=0.9, ge=0, le=1)

    # --- The architect step (docs/configuration.md, "The architect step") --------------------
    # The model reads recent metrics and the global routing policy and chat workflow, and may
    # propose patches (as `system_llm`, through ConfigOps: validated, dry-run, never approved
    # by a rule). Off: its schedule does nothing; an admin may still run it on demand.
    architect_enabled: bool = True
    architect_max_proposals: int = Field(default=3, ge=0, le=20)
    architect_max_tokens: int = Field(default=384, ge=16, le=1024)
    architect_timeout_s: float = Field(default=180.0, gt=0, le=840)
    architect_window_s: int = Field(default=7 * 86400, ge=60)

    # Set per Lambda function (template.yaml): the module whose `handler` this process serves.
    function_module: str | None = None
    version: str = "0.1.0"
    git_commit: str | None = None

    @model_validator(mode="after")
    def _refuse_placeholders_outside_dev(self) -> Settings:
        if self.env in ("dev", "test"):
            return self
        secrets = {
            "PG_PASSWORD": self.pg_password,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "INFERENCE_TOKEN": self.inference_token,
            "AUTH_JWT_SECRET": self.auth_jwt_secret,
            "AUTH_ENCRYPTION_KEY": self.auth_encryption_key,
        }
        bad = [
            name
            for name, value in secrets.items()
            if value.get_secret_value() in PLACEHOLDER_SECRETS
        ]
        if self.voice_url and self.voice_token.get_secret_value() in PLACEHOLDER_SECRETS:
            bad.append("VOICE_TOKEN")  # voice is optional: its token matters once it is used
        if len(self.auth_jwt_secret.get_secret_value()) < 32:
            bad.append("AUTH_JWT_SECRET (32 bytes at least)")
        if self.database_url is None:
            bad.append("DATABASE_URL (the embedded stack is for dev only)")
        if self.smtp_host is None:
            bad.append("SMTP_HOST (verification and password-reset mail)")
        if self.llm_backend != "local":
            if not self.llm_base_url:
                bad.append(f"LLM_BASE_URL (LLM_BACKEND={self.llm_backend})")
            if self.llm_api_key.get_secret_value() in PLACEHOLDER_SECRETS:
                bad.append(f"LLM_API_KEY (LLM_BACKEND={self.llm_backend})")
            if self.llm_model is None:
                bad.append(f"LLM_MODEL (LLM_BACKEND={self.llm_backend})")
        if bad:
            raise ValueError(f"placeholder or missing settings outside dev: {', '.join(bad)}")
        return self

    # --- derived ---------------------------------------------------------------------------------
    @property
    def postgres_dsn(self) -> str:
        if self.database_url:
            return self.database_url
        password = self.pg_password.get_secret_value()
        return f"postgresql://postgres:{password}@127.0.0.1:{self.pg_port}/{self.pg_database}"

    @property
    def redis_dsn(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def s3_endpoint(self) -> str | None:
        if self.s3_endpoint_url or self.env == "prod":
            return self.s3_endpoint_url
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def sqs_endpoint(self) -> str | None:
        if self.sqs_endpoint_url or self.env == "prod":
            return self.sqs_endpoint_url
        return f"http://127.0.0.1:{self.sqs_port}"

    @property
    def local_services(self) -> list[str]:
        """Servers `infra/stack` must run here: those whose URL is not given."""
        if self.env == "prod":
            return []
        wanted = {
            "postgres": self.database_url,
            "valkey": self.redis_url,
            "seaweedfs": self.s3_endpoint_url,
            "sqs": self.sqs_endpoint_url,
            "mailsink": self.smtp_host,
        }
        return [name for name, url in wanted.items() if not url]

    @property
    def weights_dir(self) -> Path:
        return self.weights_dir_override or self.data_dir / "models" / "smollm2-135m-instruct"

    @property
    def voice_models_dir(self) -> Path:
        return self.voice_models_dir_override or self.data_dir / "models" / "voice"

    @property
    def voice_service_url(self) -> str:
        # A Lambda function URL ends in "/"; the client appends paths that start with one.
        return (self.voice_url or f"http://127.0.0.1:{self.voice_port}").rstrip("/")

    @property
    def jax_cache_dir(self) -> Path:
        return self.jax_cache_dir_override or self.data_dir / "jax-cache"

    @property
    def jax_cache_in_store(self) -> bool:
        return self.jax_cache_s3 == "on" or (self.jax_cache_s3 == "auto" and self.env == "prod")

    @property
    def smtp_address(self) -> tuple[str, int]:
        if self.smtp_host:
            return self.smtp_host, self.smtp_port
        return "127.0.0.1", self.mail_sink_port

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def public_url(self) -> str:
        return (self.public_base_url or f"http://127.0.0.1:{self.gateway_port}").rstrip("/")

    @property
    def s3_public_origin(self) -> str:
        """The origin the browser uploads to (presigned POSTs): S3_PUBLIC_ENDPOINT_URL, else
        the S3 endpoint, else AWS's (path-style, as `shared.platform.aws` signs them)."""
        endpoint = self.s3_public_endpoint_url or self.s3_endpoint
        if endpoint is None:
            region = self.aws_region
            return (
                "https://s3.amazonaws.com"
                if region == "us-east-1"
                else f"https://s3.{region}.amazonaws.com"
            )
        return _origin(endpoint)

    @property
    def content_security_policy(self) -> str:
        """The web app's Content-Security-Policy (every static answer of the gateway): its own
        origin only, plus the WebSocket origin of PUBLIC_BASE_URL and the object store's
        public origin (uploads go straight there), for connections."""
        public = urlsplit(self.public_url)
        socket_scheme = "wss" if public.scheme == "https" else "ws"
        connect = " ".join(
            dict.fromkeys(["'self'", f"{socket_scheme}://{public.netloc}", self.s3_public_origin])
        )
        return (
            "default-src 'self'; script-src 'self'; style-src 'self'; "
            # blob: media: a voice message's recording, fetched with the session, then played
            f"img-src 'self' data: blob:; media-src 'self' blob:; connect-src {connect}; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
        )

    @property
    def internal_functions_url(self) -> str:
        return f"http://127.0.0.1:{self.functions_internal_port}"

    def function_host_url(self, host: str | None) -> str:
        """Where the local host of a function is: the shared internal host, or the named one
        (`Metadata.LocalHost`)."""
        if host is None:
            return self.internal_functions_url
        if host not in self.functions_host_ports:
            raise ValueError(f"no port for the local host {host!r} (FUNCTIONS_HOST_PORTS)")
        return f"http://127.0.0.1:{self.functions_host_ports[host]}"

    def resource_name(self, template_name: str) -> str:
        """Resolve `${AWS::StackName}` in a template's QueueName/BucketName."""
        return template_name.replace("${AWS::StackName}", self.stack_name)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
