# gogo: `make run` starts everything, `make test` runs the whole suite, `make bench` prints figures.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/gogo
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/0

.PHONY: install run test bench browser lint clean

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m ml.market.native
	touch $@

install: $(VENV)/.installed

run: install
	scripts/run.sh

# Debian's chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "install Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

test: install browser
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" REDIS_URL="$${REDIS_URL:-$(TEST_REDIS_URL)}" \
	GOGO_CNN_EPOCHS="$${GOGO_CNN_EPOCHS:-2}" GOGO_DQN_EPISODES="$${GOGO_DQN_EPISODES:-1}" \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's wrk: the load generator of bench/api.py (without it an aiohttp client stands in, at more CPU).
bench: install
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "install Debian's wrk for the REST benchmark: sudo apt-get install wrk" >&2; fi; }
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf var/staticfiles .pytest_cache
