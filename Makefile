# The two commands of the README: `make demo` and `make test`. Both set everything up first.
VENV := .venv/bin
STACKS := $(wildcard stacks/Pulumi.*.yaml)
# The released Kuma versions (1.23.16, 2.5.3) are built from upstream's source tarballs: where the
# environment names none, the shared vendor directory beside the clone (as .ci/run does), if it is there.
KUMA_SOURCES_BESIDE := $(wildcard $(abspath $(CURDIR)/..)/shared/vendor/uptime-kuma)
ifeq ($(CARESTACK_KUMA_SOURCES),)
ifneq ($(KUMA_SOURCES_BESIDE),)
export CARESTACK_KUMA_SOURCES := $(KUMA_SOURCES_BESIDE)
endif
endif

.PHONY: setup demo test test-fast lint down bench bench-quick

setup:
	scripts/setup.sh

demo: setup
	$(VENV)/carestack validate $(STACKS)
	$(VENV)/carestack lab up

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy agent infra lab
	cd ansible && ../$(VENV)/yamllint -s .
	cd ansible && PATH=$(CURDIR)/$(VENV):$$PATH ../$(VENV)/ansible-lint --profile production

# Five workers on two cores: the lab's tests, the agent's and each Kuma version's mostly wait
# (check intervals, timers, servers), so they run side by side (tests/conftest.py: worker_group).
test: setup lint
	$(VENV)/pytest -n 5 --dist loadgroup --durations=30

# The fast set (unit and Pulumi mock tests) for the edit-test loop; CI runs everything.
test-fast:
	$(VENV)/pytest -m "not lab and not agent and not kuma"

down:
	$(VENV)/carestack lab down

# Every benchmark and ONE table (bench/run.py; bench/results.json, logs in bench/logs/). Hours, and
# the lab rows need `make demo` first. bench-quick: small sizes, no lab, minutes, before a change.
bench: setup
	$(VENV)/python bench/run.py

bench-quick: setup
	$(VENV)/python bench/run.py --quick
