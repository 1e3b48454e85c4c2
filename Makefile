# The two commands of README.md. Each installs what it needs first, from a bare Python.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
CATALOGS := i18n/locale

# uv uses the same interpreter as `python3` and never downloads one of its own.
export UV_PYTHON := $(shell command -v $(PYTHON))
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test install catalogs messages lint schema

run: install
	$(VENV)/bin/renshi dev

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

install: $(UV)
	$(UV) sync --frozen --quiet
	@$(MAKE) --no-print-directory catalogs

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

catalogs:
	@$(VENV)/bin/pybabel compile --domain renshi --directory $(CATALOGS) --statistics 2>&1 | grep -v '^compiling' || true

# Refresh the message catalogs after adding or changing translatable strings.
messages: install
	$(VENV)/bin/pybabel extract --mapping-file i18n/babel.cfg --keywords N_ --keywords translate \
		--project renshi --output-file $(CATALOGS)/renshi.pot .
	$(VENV)/bin/pybabel update --domain renshi --input-file $(CATALOGS)/renshi.pot \
		--output-dir $(CATALOGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

schema: install
	$(VENV)/bin/renshi schema export
