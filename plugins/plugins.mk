# plugins.mk — build the example plugins and the ABI test modules.
# Included from the top Makefile; paths are relative to the repository root.
#
#   make plugins        rebuild every .wasm under plugins/testdata from source
#                       (Go, C, Rust, AssemblyScript, WAT); needs
#                       `scripts/deps-plugins.sh --all`
#   make plugins-check  rebuild the Go and C examples and the WAT modules, run
#                       every example's plugin_test.yaml with `edgecache plugin
#                       test`, then the host tests that load them (what CI
#                       runs, after `scripts/deps-plugins.sh`)
#   make plugins-test   only the examples' plugin_test.yaml tables, against the
#                       committed modules
#
# Built modules land in plugins/testdata:
#   examples/<language>-<name>.wasm   one per example in plugins/examples/<language>/<name>
#   wat/*.wasm, hostile/*.wasm        from the .wat beside them
# They are committed, so the tests run without any of these toolchains.

GO        ?= go
CLANG     ?= clang
# Debian's rustc, by path: a rustup rustc earlier on PATH may lack the wasm32 std.
RUSTC     ?= /usr/bin/rustc
WAT2WASM  ?= wat2wasm
NPM       ?= npm

PLUGINS_DIR  := plugins
PLUGINS_OUT  := $(PLUGINS_DIR)/testdata
PLUGINS_EX   := $(PLUGINS_OUT)/examples
PLUGINS_TMP  := $(PLUGINS_DIR)/build
AS_SDK       := $(PLUGINS_DIR)/sdk/assemblyscript
ASC          := $(AS_SDK)/node_modules/.bin/asc

GO_PLUGINS   := $(notdir $(wildcard $(PLUGINS_DIR)/examples/go/*))
C_PLUGINS    := $(notdir $(wildcard $(PLUGINS_DIR)/examples/c/*))
RUST_PLUGINS := $(notdir $(wildcard $(PLUGINS_DIR)/examples/rust/*))
AS_PLUGINS   := $(notdir $(wildcard $(PLUGINS_DIR)/examples/assemblyscript/*))
WAT_SOURCES  := $(wildcard $(PLUGINS_OUT)/wat/*.wat $(PLUGINS_OUT)/hostile/*.wat)
GO_PLUGINS   := $(filter-out go.mod,$(GO_PLUGINS))

PLUGIN_TESTS := $(wildcard $(PLUGINS_DIR)/examples/*/*/plugin_test.yaml)

.PHONY: plugins plugins-check plugins-test plugins-go plugins-c plugins-rust plugins-as plugins-wat

plugins: plugins-wat plugins-go plugins-c plugins-rust plugins-as

plugins-check: plugins-wat plugins-go plugins-c plugins-test
	$(GO) test -count=1 -race ./plugins/ ./wasm/ ./policies/

# Each example's table, through the gateway's own policies (exit 1 and a
# diff on a mismatch).
plugins-test:
	$(GO) run ./cmd/edgecache plugin test $(PLUGIN_TESTS)

plugins-wat:
	@for f in $(WAT_SOURCES); do echo "wat2wasm $$f"; $(WAT2WASM) $$f -o $${f%.wat}.wasm || exit 1; done

# Go: a WASI reactor (c-shared) exporting hooks with //go:wasmexport.
plugins-go:
	@mkdir -p $(PLUGINS_EX)
	@for p in $(GO_PLUGINS); do echo "go build $$p"; \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -C $(PLUGINS_DIR)/examples/go -buildmode=c-shared -trimpath -ldflags=-s \
	    -o $(CURDIR)/$(PLUGINS_EX)/go-$$p.wasm ./$$p || exit 1; done

# C: clang for wasm32-wasi with wasi-libc, as a reactor.
plugins-c:
	@mkdir -p $(PLUGINS_EX)
	@for p in $(C_PLUGINS); do echo "clang $$p"; \
	  $(CLANG) --target=wasm32-wasi -O2 -Wall -Wextra -Werror -mexec-model=reactor -I$(PLUGINS_DIR)/sdk/c \
	    -o $(PLUGINS_EX)/c-$$p.wasm $(PLUGINS_DIR)/examples/c/$$p/*.c || exit 1; done

# Rust: rustc alone (no cargo, no crates.io): the SDK as an rlib, then each
# example as a cdylib for wasm32-unknown-unknown.
plugins-rust:
	@mkdir -p $(PLUGINS_EX) $(PLUGINS_TMP)/rust
	$(RUSTC) --edition 2021 --crate-type rlib --crate-name edgecache --target wasm32-unknown-unknown \
	  -C opt-level=s --out-dir $(PLUGINS_TMP)/rust $(PLUGINS_DIR)/sdk/rust/src/lib.rs
	@for p in $(RUST_PLUGINS); do echo "rustc $$p"; \
	  $(RUSTC) --edition 2021 --crate-type cdylib --crate-name $$p --target wasm32-unknown-unknown \
	    -C opt-level=s -C lto -C strip=symbols -L $(PLUGINS_TMP)/rust \
	    --extern edgecache=$(PLUGINS_TMP)/rust/libedgecache.rlib \
	    -o $(PLUGINS_EX)/rust-$$p.wasm $(PLUGINS_DIR)/examples/rust/$$p/src/lib.rs || exit 1; done

# AssemblyScript: asc from npm, pinned by the SDK's package-lock.json. The
# SDK's abort handler replaces the env.abort import.
$(ASC):
	cd $(AS_SDK) && $(NPM) ci --no-audit --no-fund

plugins-as: $(ASC)
	@mkdir -p $(PLUGINS_EX)
	@for p in $(AS_PLUGINS); do echo "asc $$p"; \
	  (cd $(PLUGINS_DIR)/examples/assemblyscript/$$p && \
	   $(CURDIR)/$(ASC) assembly/index.ts -O3 --noAssert \
	     --use abort=../../../sdk/assemblyscript/assembly/index/abort \
	     -o $(CURDIR)/$(PLUGINS_EX)/assemblyscript-$$p.wasm) || exit 1; done
