# edgecache — see README.md. `make run` and `make test` are the two commands.
GO       ?= go
BIN      ?= bin
PKGS     ?= ./...
GOFLAGS  ?=
export GOFLAGS

.PHONY: demo test-faults soak all build run test test-short deps deps-plugins check lint vet fmt tidy bench bench-go footprint fuzz clean

all: build

# GO_LDFLAGS (scripts/ldflags) keep the Go runtime's sysmon thread out of its
# deep sleep, which a lightly loaded gateway otherwise enters and leaves on
# every request (RATIONALE.md, "Keeping sysmon awake").
GO_LDFLAGS ?= $(shell cat scripts/ldflags)
export GO_LDFLAGS

build:
	$(GO) build -ldflags="$(GO_LDFLAGS)" -o $(BIN)/edgecache ./cmd/edgecache
	$(GO) build -o $(BIN)/demo-origin ./examples/origin/cmd/demo-origin

## run: start the demo origin and the gateway (embedded store) and print what to try.
run: build
	BIN=$(BIN) ./scripts/run.sh

## deps: install what the tests need when missing: redis-server/redis-cli and
## curl, systemd-analyze (deploy test), Debian's chromium for the status-page test, and the plugin toolchains
## (Go, C, Rust, AssemblyScript, WAT) for the plugin authoring guide's test.
deps:
	./scripts/deps.sh
	./scripts/deps-chromium.sh
	./scripts/deps-plugins.sh --all

## deps-plugins: the toolchains that rebuild the Go and C example plugins
## (`make plugins-check`); `./scripts/deps-plugins.sh --all` adds Rust and
## AssemblyScript for `make plugins`.
deps-plugins:
	./scripts/deps-plugins.sh

## test: install what the tests need, then vet and run every test with the race detector.
test: deps
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 12m $(PKGS)
	# Allocation pins mean nothing under -race (sync.Pool drops at random).
	$(GO) test -count=1 -run 'Allocs|AllocatesNothing' ./gateway/ ./shardmap/ ./internal/h1/ ./internal/entry/ ./policies/ ./wasm/ ./internal/observe/

## test-faults: only the fault tests (shard killed, frozen, partitioned with
## toxiproxy, origin down and slow, gateway restarted; also part of make test).
test-faults: deps
	$(GO) test -race -count=1 -run '^TestFault' -timeout 10m ./gateway/

## footprint: RSS and PSS of the real binary, idle and warm (1,000 × 1 KiB),
## one shard, no plugin / C plugin / Go plugin, with the Go runtime's breakdown.
footprint:
	$(GO) build -ldflags="$$(cat scripts/ldflags)" -o $(BIN)/edgecache ./cmd/edgecache
	$(GO) build -ldflags="$$(cat scripts/ldflags)" -o $(BIN)/edgebench ./bench
	$(BIN)/edgebench run -only footprint -bin $(BIN)

## bench: edgecache, nginx proxy_cache and Varnish side by side on loopback,
## shared and pinned CPUs, cold start, goals; about ten minutes (bench/run.sh).
bench:
	BIN=$(BIN) GO=$(GO) ./bench/run.sh

## soak: steady load with reloads and shard restarts every minute (SOAK=10m).
SOAK ?= 10m
soak:
	SOAK=$(SOAK) BIN=$(BIN) GO=$(GO) ./scripts/soak.sh

## test-short: the tests without the race detector, for a quick loop.
test-short: deps
	$(GO) test -count=1 $(PKGS)

include plugins/plugins.mk

## check: formatting, vet, golangci-lint (.golangci.yml; built at its pinned
## version by scripts/lint.sh) and go mod tidy must pass and leave no diff.
check: vet lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy
	git diff --exit-code -- go.mod go.sum

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet $(PKGS)

tidy:
	$(GO) mod tidy

## lint: golangci-lint at the pinned version (scripts/lint.sh).
lint:
	./scripts/lint.sh

## bench-go: the package benchmarks (compare runs with benchstat).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./shardmap/ ./internal/entry/ ./policies/ ./gateway/ ./wasm/ ./plugins/ | tee bench.txt

## fuzz: every fuzz target for a bounded time each (FUZZTIME, default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/entry/
	$(GO) test -run '^$$' -fuzz '^FuzzParseCacheControl$$' -fuzztime $(FUZZTIME) ./policies/
	$(GO) test -run '^$$' -fuzz '^FuzzKey$$' -fuzztime $(FUZZTIME) ./policies/
	$(GO) test -run '^$$' -fuzz '^FuzzHostFunctions$$' -fuzztime $(FUZZTIME) ./wasm/
	$(GO) test -run '^$$' -fuzz '^FuzzMergeDataSegments$$' -fuzztime $(FUZZTIME) ./wasm/
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/h1/

## demo: the walkthrough (examples/walkthrough/README.md): three local Valkey/Redis
## nodes, the demo origin and the gateway; a miss, hits, a fourth shard added live, a purge.
demo: deps
	BIN=$(BIN) GO=$(GO) ./scripts/demo.sh

clean:
	rm -rf $(BIN) bench.txt
