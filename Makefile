# The two commands of the README. Everything a fresh Debian/Ubuntu machine needs is installed from here.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# command:package (or file:package) pairs; the test suite also speaks with espeak-ng and drives Debian's
# chromium, which needs a Japanese font to draw the Japanese interface.
RUNTIME_PACKAGES := ffmpeg:ffmpeg
TEST_PACKAGES := espeak-ng:espeak-ng chromium:chromium /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf:fonts-ipafont-gothic

.PHONY: install up test test-slow

install: $(INSTALLED)
	@$(call ensure_system_packages,$(RUNTIME_PACKAGES))

# Installs what is missing through apt when root, otherwise prints the exact command to run.
define ensure_system_packages
missing=""; \
for pair in $(1); do command -v $${pair%%:*} >/dev/null || test -e $${pair%%:*} || missing="$$missing $${pair#*:}"; done; \
if [ -n "$$missing" ]; then \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "missing system packages; run: sudo apt-get install -y$$missing"; \
	fi; \
fi
endef

$(INSTALLED): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(INSTALLED)

up: install
	$(PY) manage.py up

# Tests marked slow (the 1.5B model killed mid-answer, a killed re-embedding, SmolLM2 writing summaries) take
# minutes each on a 2-core machine: `make test-slow` runs them.
test: install
	@$(call ensure_system_packages,$(TEST_PACKAGES))
	$(PY) -m pytest -m "not slow"

test-slow: install
	@$(call ensure_system_packages,$(TEST_PACKAGES))
	$(PY) -m pytest -m slow
