;; initwrite: an init hook that writes a line to WASI stdout and returns
;; fd_write's errno, so that it rejects its config (non-zero) when the
;; host's GuestOutput fails the write. Tests use the writer to hold or fail
;; the init of chosen instances. Rebuild: wat2wasm initwrite.wat -o initwrite.wasm
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "init\n")
  (func (export "edgecache_abi_v1"))
  (func (export "init") (result i32)
    ;; one iovec at 0: the 5 bytes at 16; bytes written go to 8
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 5))
    (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
  (func (export "key") (result i32) (i32.const 1)))
