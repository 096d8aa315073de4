# Prism: `make run` serves the default config, `make test` runs every test.
# Everything below drives CMake; the targets only name the common paths.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?= config.yml
LISTEN     ?= 127.0.0.1:8080

.PHONY: all build deps run test unit e2e asan test-asan test-valgrind npm fuzz bench soak format format-check clean

all: build

deps:
	@bash scripts/install-deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: deps build
	$(BUILD)/prism serve --config $(CONFIG) --listen $(LISTEN)

npm: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

unit: build
	cd $(BUILD) && ctest --output-on-failure

E2E_SUITES = tests/e2e/ tests/faults/

e2e: build npm
	PRISM_BIN=$(abspath $(BUILD)/prism) node --test --test-concurrency=1 $(E2E_SUITES)

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPRISM_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

test-asan: asan npm
	cd $(ASAN_BUILD) && $(SAN_ENV) ctest --output-on-failure
	$(SAN_ENV) PRISM_SANITIZED=1 PRISM_BIN=$(abspath $(ASAN_BUILD)/prism) node --test --test-concurrency=1 $(E2E_SUITES)

# The end-to-end suites with the server under valgrind (memcheck): no invalid
# access, no definite leak. Slow: run on demand or with VALGRIND_SUITES narrowed.
VALGRIND_SUITES ?= $(E2E_SUITES)
test-valgrind: build npm
	@mkdir -p $(BUILD)/valgrind && rm -f $(BUILD)/valgrind/*.log
	PRISM_WRAPPER="valgrind --soname-synonyms=somalloc=libmimalloc.so.2 --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=$(abspath tests/faults/valgrind.supp) --log-file=$(abspath $(BUILD))/valgrind/%p.log" \
	PRISM_BIN=$(abspath $(BUILD)/prism) node --test --test-concurrency=1 $(VALGRIND_SUITES)

# Every libFuzzer target for FUZZ_SECONDS each (clang); `make test` runs a short pass.
FUZZ_SECONDS ?= 30
fuzz:
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

test: deps
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-valgrind
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

# Benchmarks against a fake provider and an nginx hop (docs/BENCHMARKS.md); BENCH_* knobs.
bench: deps build
	@bash scripts/install-bench-deps.sh
	@PRISM_BIN=$(abspath $(BUILD)/prism) bash bench/run.sh

# 1,000,000 requests through one Prism; VmRSS after 100k vs after 1M (SOAK_* knobs).
soak: deps build
	@bash scripts/install-bench-deps.sh
	@PRISM_BIN=$(abspath $(BUILD)/prism) bash bench/soak.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.cc' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
