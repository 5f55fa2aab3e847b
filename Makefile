# The two commands a newcomer needs: `make run` (the whole mall) and `make test` (the suite).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := -e libs/contracts -e libs/chassis -e services/queue -e services/payment -e cli \
            -e services/rating -e services/gateway

.PHONY: run test lint format migrate bench bench-levers chaos fuzz dlq lock clean screenshots

$(BIN)/.installed: constraints.txt requirements-dev.txt $(wildcard */*/pyproject.toml */pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -r requirements-dev.txt $(PACKAGES)
	touch $@

run: $(BIN)/.installed  ## start RabbitMQ-backed services locally (gateway on :8000); Ctrl-C stops
	$(BIN)/python scripts/mall.py

test: $(BIN)/.installed  ## ruff, then the whole pytest suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed  ## ruff, and the import contracts of pyproject.toml (also run by make test)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(BIN)/.installed  ## apply every service's Alembic migrations (URLs from *_DB_URL)
	$(BIN)/python -m mpp_chassis.migrate

dlq: $(BIN)/.installed  ## dead letters: make dlq ARGS="list" | ARGS="show <id>" | ARGS="replay <id>|--all"
	$(BIN)/python -m mpp_chassis.dlq $(ARGS)

bench: $(BIN)/.installed  ## benchmarks vs the framework's ceiling (bench/README.md); JSON in bench/results
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null 2>&1; } || true
	rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null 2>&1 || true
	$(BIN)/python -m bench.run $(ARGS)

bench-levers: $(BIN)/.installed  ## issue 20's levers on and off in one run; ARGS="--baseline DIR" adds DIR's code
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null 2>&1; } || true
	rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null 2>&1 || true
	$(BIN)/python -m bench.levers $(ARGS)

chaos: $(BIN)/.installed  ## the long fault runs (kills, broker links, PostgreSQL/Redis/RabbitMQ/provider; tests/chaos)
	CHAOS_PROFILE=long $(BIN)/python -m pytest tests/chaos -v -s $(PYTEST_ARGS)

fuzz: $(BIN)/.installed  ## the long schemathesis run (MPP_FUZZ_EXAMPLES=40) and the negative-input suite
	MPP_FUZZ_EXAMPLES=$${MPP_FUZZ_EXAMPLES:-40} $(BIN)/python -m pytest -v -s $(PYTEST_ARGS) \
		tests/gateway/e2e/test_gateway_fuzz_e2e.py tests/gateway/e2e/test_gateway_negative_inputs_e2e.py

screenshots: $(BIN)/.installed  ## every screen at its device size, checked by axe, into docs/screenshots
	MPP_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q $(PYTEST_ARGS) \
		tests/web/test_screens_accessibility.py tests/web/test_screens_agency.py \
		tests/web/test_screens_agency_manage.py

# The locks, resolved by uv (pinned in constraints.txt) for the images' Python (the Dockerfile's
# base): constraints.txt pins the dev virtualenv; deploy/locks/<service>.txt pins, with sha256
# hashes, only what that service's image installs (its pyproject, the chassis, the contracts),
# at constraints.txt's versions. The project's own packages are never in a lock (pip cannot
# hash a directory): the images install them with --no-deps. Existing pins are kept unless
# ARGS says otherwise: `make lock ARGS=--upgrade` (all) or `ARGS="--upgrade-package kombu"`.
IMAGE_PYTHON := $(shell sed -n 's/^ARG PYTHON_IMAGE=python:\([0-9.]*\)-.*/\1/p' deploy/docker/Dockerfile)
LOCAL_PACKAGES := $(filter-out -e,$(PACKAGES))
UV_COMPILE = $(BIN)/uv pip compile --quiet --python-version $(IMAGE_PYTHON) --python-platform linux \
	--custom-compile-command "make lock" \
	$(foreach p,$(LOCAL_PACKAGES),--no-emit-package mpp-$(notdir $(p)))

lock: $(BIN)/.installed  ## re-resolve constraints.txt and the images' hashed deploy/locks/*.txt
	printf './%s\n' $(LOCAL_PACKAGES) | $(UV_COMPILE) $(ARGS) requirements-dev.txt - -o constraints.txt
	for s in queue payment rating gateway; do \
	  printf './%s\n' libs/contracts libs/chassis services/$$s \
	    | $(UV_COMPILE) --generate-hashes -c constraints.txt - -o deploy/locks/$$s.txt || exit 1; \
	done

clean:
	rm -rf var .pytest_cache .ruff_cache
