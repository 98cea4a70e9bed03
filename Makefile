# make test: a fresh Debian/Ubuntu machine -> .venv and the whole test suite (CI runs exactly this).
# make unit: .venv and the tests that need no system service and train no real model: no apt, no broker, database,
# browser, camera server or network namespace; about two minutes on two cores, for a check while editing.
# make demo: a fresh machine -> .venv, a trained model classifying held-out photos, then the loop live
# (broker, cloud service and dashboard, a device on a video) until Ctrl-C.
# make soak: the long faults (a 60 s broker outage…) and a fleet's soak; reports in test-artifacts/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# pytest-xdist workers: the suite waits on brokers, servers and child processes as much as it computes, so two
# workers on two cores finish sooner than one. Each test file stays in one worker (its module fixtures start once).
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: install system test unit soak lint format demo bench clean

# Debian packages the tests and the demo run for real: the MQTT broker, PostgreSQL, Chromium, an RTSP camera
# (GStreamer's RTSP server, run by the system Python), ffmpeg to encode its H.264 video, and docker-compose
# (no engine needed) to validate the compose files, iproute2 (ip, tc) and iptables for the network fault tests, and
# gettext-base (envsubst) for deploy/mosquitto/jetson-bridge.sh.
SYSTEM_PACKAGES := mosquitto mosquitto-clients postgresql chromium ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav docker-compose \
	iproute2 iptables gettext-base prometheus

install: $(STAMP)

system:
	scripts/apt-install.sh $(SYSTEM_PACKAGES)

$(STAMP): pyproject.toml
	scripts/bootstrap-venv.sh $(PYTHON) $(VENV)
	$(BIN)/pip install --quiet -e '.[edge,cloud,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# Style, the import rules of docs/architecture.md (import-linter) and the types (mypy, strict on common/).
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint system
	$(PYTEST) -m "not soak"

# Tests marked `services` (tests/conftest.py marks those whose fixtures start one) or `slow` (real trainings,
# sweeps, the flower photos) are left out; make test runs them all.
unit: lint
	$(PYTEST) -m "not services and not soak and not slow"

# The long part of the fault and load suite (minutes): long outages, many kills, a fleet's soak.
soak: $(STAMP) system
	$(BIN)/python -m pytest -s -m soak tests/faults tests/load

demo: $(STAMP) system
	scripts/demo.sh

bench: $(STAMP)
	for b in tests/bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache demo-output
