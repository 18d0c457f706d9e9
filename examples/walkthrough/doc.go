// Package walkthrough holds the test that runs the walkthrough of README.md
// in this folder — scripts/demo.sh, what `make demo` runs — end to end
// against real Valkey (or Redis) servers, the demo origin and the gateway,
// and checks what it prints.
package walkthrough
