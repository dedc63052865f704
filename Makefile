# Vigil — every task a newcomer or CI needs. `make run` and `make test` set everything up on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379/0
BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672//
# `make run PORT=8001` when 8000 is taken (the walkthrough then reads its address from VIGIL).
# Not HOST: shells and CI runners often export it as the machine's name, which would serve beyond loopback.
BIND ?= 127.0.0.1
PORT ?= 8000
# The cluster run (two API processes, two Celery workers, RabbitMQ, Redis, S3): every suite but performance, in CI
# too (~1.5 min after a 1–2 min start, then ~4 min of disaster recovery, on 2 shared cores);
# `make validate-cluster CLUSTER_RUN=smoke` runs only the smoke tests of every suite.
CLUSTER_RUN ?= all

.PHONY: install run test test-unit validate validate-smoke validate-cluster validate-performance lint format openapi bench clean

install: $(STAMP)

# The lock (requirements.lock, exported from uv.lock) pins every package; uv installs it fast, pip works too.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

run: install ## Start the service on the embedded default (SQLite + local blobs in ./vigil-data)
	$(BIN)/vigil serve --host $(BIND) --port $(PORT)

test: install ## The tests and the validation suite, each on SQLite and on PostgreSQL (with Redis)
	VIGIL_TEST_POSTGRES_URL=$(PG_URL) VIGIL_TEST_REDIS_URL=$(REDIS_URL) VIGIL_TEST_BROKER_URL=$(BROKER_URL) $(BIN)/python -m pytest -n 2 --dist loadfile
	@# Every suite on SQLite; the disaster-recovery suite (~3.5 min: SIGKILLs and restarts) and the performance suite
	@# (short profile) each run alone after the others, here only. On PostgreSQL the disaster-recovery suite runs
	@# whole (~3 min: a private PostgreSQL crashed and restarted, SIGKILLs, the seeded fault schedule).
	$(BIN)/vigil validate all --profile short --report-dir validation-reports/sqlite
	@# Without PostgreSQL the second runs are skipped with a reason, unless services are required (CI). The second
	@# pytest pass reruns only the tests built on the `settings` fixture (tests/conftest.py): the rest ran above.
	@if [ "$$VIGIL_REQUIRE_SERVICES" = 1 ] || $(BIN)/python -c "import psycopg; psycopg.connect('$(subst +psycopg,,$(PG_URL))', connect_timeout=3).close()" 2>/dev/null; then \
		VIGIL_TEST_DATABASE=postgresql VIGIL_TEST_POSTGRES_URL=$(PG_URL) VIGIL_TEST_REDIS_URL=$(REDIS_URL) $(BIN)/python -m pytest -n 2 --dist loadfile -m "not scaleout" && \
		$(BIN)/vigil validate all --exclude-suite performance --exclude-suite disaster_recovery --database-url $(PG_URL) --redis-url $(REDIS_URL) --report-dir validation-reports/postgresql && \
		$(BIN)/vigil validate suite --suite disaster_recovery --database-url $(PG_URL) --redis-url $(REDIS_URL) --report-dir validation-reports/postgresql-dr && \
		$(MAKE) --no-print-directory validate-cluster CLUSTER_RUN="$(CLUSTER_RUN)"; \
	else \
		echo "PostgreSQL unreachable at $(PG_URL): validation on PostgreSQL skipped (VIGIL_REQUIRE_SERVICES=1 makes this fail)"; \
	fi

validate-cluster: install ## The suites on the scaled-out topology (needs PostgreSQL, RabbitMQ, Redis; S3 is started)
	@if [ "$$VIGIL_REQUIRE_SERVICES" = 1 ] || $(BIN)/python -c "import kombu; kombu.Connection('$(BROKER_URL)', connect_timeout=3).ensure_connection(max_retries=1)" 2>/dev/null; then \
		$(BIN)/vigil validate $(CLUSTER_RUN) --cluster --exclude-suite performance --database-url $(PG_URL) --redis-url $(REDIS_URL) --report-dir validation-reports/cluster; \
	else \
		echo "RabbitMQ unreachable at $(BROKER_URL): the cluster run is skipped (VIGIL_REQUIRE_SERVICES=1 makes this fail)"; \
	fi

test-unit: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

validate: install ## The validation suite against a managed server (TARGET=url for a live one)
	$(BIN)/vigil validate all $(if $(TARGET),--target $(TARGET),)

validate-smoke: install
	$(BIN)/vigil validate smoke $(if $(TARGET),--target $(TARGET),)

lint: install ## ruff, mypy --strict, import-linter contracts
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

openapi: install ## Rewrite docs/openapi.json from the code (after an intended API change)
	$(BIN)/python -m vigil.openapi > docs/openapi.json

validate-performance: install ## The performance suite alone (PROFILE=full for the long run; TARGET=url for a live server)
	$(BIN)/vigil validate suite --suite performance --profile $(or $(PROFILE),short) $(if $(TARGET),--target $(TARGET),)

bench: install ## Benchmarks, each printing its ratio against a baseline measured in the same run
	$(BIN)/python benchmarks/bench_detect_throughput.py
	$(BIN)/python benchmarks/bench_detect_latency.py
	$(BIN)/python benchmarks/bench_request_overhead.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_profile_throughput.py
	@# The side-by-side with MLflow `models serve` runs only where mlflow is installed (an extra, not a dependency).
	$(BIN)/python benchmarks/bench_mlflow.py
	$(BIN)/python benchmarks/bench_adbench.py
	$(BIN)/python benchmarks/bench_workers.py
	$(BIN)/python benchmarks/bench_stream.py

lock: ## Re-resolve dependencies after editing pyproject.toml
	$(BIN)/uv lock
	$(BIN)/uv export --format requirements-txt --all-groups --no-hashes --no-emit-project -o requirements.lock

clean:
	rm -rf $(VENV) vigil-data validation-reports .mypy_cache .ruff_cache .pytest_cache
