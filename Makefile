# Two commands on a fresh machine: `make demo` and `make test`. See README.md.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements
DEV_STAMP := $(VENV)/.installed-dev-requirements
# Debian packages some tests need; `make system-deps` installs them (root or sudo).
# chromium: the browser tests drive Debian's build, never one that Playwright downloads.
SYSTEM_PACKAGES := cron chromium
# The system user whose crontab the cron tests use (never root's).
CRON_TEST_USER ?= mediacron
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# A throwaway key so that tests need no .env; they never read one (ENV_FILE is empty).
TEST_ENV := ENV_FILE= SECRET_KEY=test-only-not-secret CRON_TEST_USER=$(CRON_TEST_USER)

.PHONY: venv demo serve test lint screenshots system-deps cron-install clean

venv: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

.env: | $(STAMP)
	$(PY) -c 'import secrets; print(f"SECRET_KEY={secrets.token_urlsafe(50)}\nDEBUG=on")' > $@
	@echo "Wrote .env with a generated SECRET_KEY and DEBUG=on (local use only)."

demo: $(STAMP) .env
	$(PY) manage.py migrate --no-input --verbosity 0
	$(PY) manage.py load_demo_data
	$(PY) manage.py cleanup_media --verbosity 2

serve: $(STAMP) .env
	$(PY) manage.py migrate --no-input --verbosity 0
	$(PY) manage.py load_demo_data
	$(PY) manage.py runserver 127.0.0.1:8000

# The runtime alone for the demo; the tests, the linter and the benchmark need the dev tools too.
$(DEV_STAMP): requirements-dev.txt requirements.txt | $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: $(DEV_STAMP)
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

# Style (pyproject.toml): .ci/run runs it before the tests.
lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Retake the screenshots of docs/testing.md (docs/screenshots/) with the browser tests.
screenshots: $(DEV_STAMP)
	$(TEST_ENV) SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -m browser tests/test_browser.py

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	else echo "System packages present: $(SYSTEM_PACKAGES)"; fi
	@id -u $(CRON_TEST_USER) >/dev/null 2>&1 || $(SUDO) useradd --system --no-create-home --shell /usr/sbin/nologin $(CRON_TEST_USER)

# Schedule the sweep in the current user's crontab (settings from .env; the schedule is converted
# from TIME_ZONE to the host's zone), then fail loudly if it is not really there: django-crontab
# says "adding cronjob" even without a crontab binary.
cron-install: $(STAMP)
	$(PY) manage.py crontab add
	$(PY) manage.py crontab show
	$(PY) manage.py check --deploy --tag media_cleanup_cron --fail-level WARNING

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis

# The benchmark (docs/benchmarks.md): `make bench N=1000000`; SIZES=100000,300000,1000000 for the plot.
# PostgreSQL is the reference; the database is created when missing and its tables emptied per size.
N ?= 1000000
SIZES ?= $(N)
RUNS ?= 3
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench_media
BENCH_PLOT ?= docs/benchmarks-scaling.png

.PHONY: bench

bench: $(DEV_STAMP)
	$(TEST_ENV) $(PY) -m bench.run --sizes $(SIZES) --runs $(RUNS) \
		--database-url $(BENCH_DATABASE_URL) --plot $(BENCH_PLOT) $(BENCH_ARGS)
