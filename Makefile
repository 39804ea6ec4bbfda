# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo-out

.PHONY: install demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/distillguard simulate --scenario small --seed 7 --out $(DEMO)/sim
	$(BIN)/distillguard analyze $(DEMO)/sim/exchanges.jsonl.gz --accounts $(DEMO)/sim/accounts.jsonl \
		--releases $(DEMO)/sim/releases.jsonl --truth $(DEMO)/sim/truth.csv --out $(DEMO)/analysis
	$(BIN)/distillguard evaluate --truth $(DEMO)/sim/truth.csv --pred $(DEMO)/analysis/accounts.csv \
		--exchanges $(DEMO)/sim/exchanges.jsonl.gz
	$(BIN)/distillguard replay $(DEMO)/sim/exchanges.jsonl.gz --accounts $(DEMO)/sim/accounts.jsonl \
		--releases $(DEMO)/sim/releases.jsonl --relink-hours 12 --out $(DEMO)/replay
	$(BIN)/distillguard evaluate --truth $(DEMO)/sim/truth.csv --actions $(DEMO)/replay/actions.csv \
		--exchanges $(DEMO)/sim/exchanges.jsonl.gz
	$(BIN)/distillguard baseline rate-limit $(DEMO)/sim/exchanges.jsonl.gz --out $(DEMO)/rate-limit
	$(BIN)/distillguard evaluate --truth $(DEMO)/sim/truth.csv --pred $(DEMO)/rate-limit/accounts.csv
	$(BIN)/distillguard baseline anomaly $(DEMO)/sim/exchanges.jsonl.gz --out $(DEMO)/anomaly
	$(BIN)/distillguard evaluate --truth $(DEMO)/sim/truth.csv --pred $(DEMO)/anomaly/accounts.csv
	@echo "analyst report: $(DEMO)/analysis/report.html"

lint: install
	$(BIN)/ruff check src tests benchmarks scripts worldgen

test: lint
	@command -v java >/dev/null 2>&1 || { echo "make test needs a Java runtime for the Spark engine's tests (Debian: apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v redis-server >/dev/null 2>&1 || { echo "make test needs redis-server for the shared gateway state's tests (Debian: apt-get install redis-server)"; exit 1; }
	@command -v chromium >/dev/null 2>&1 || { echo "make test needs Chromium to render the analyst report (Debian: apt-get install chromium)"; exit 1; }
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
