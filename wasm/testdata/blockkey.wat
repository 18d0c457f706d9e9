;; blockkey: a key hook that writes a line to WASI stdout and declines, so
;; that a test whose GuestOutput holds the write holds the call in the
;; host: N such calls at once keep N instances busy. Its init writes
;; nothing. Rebuild: wat2wasm blockkey.wat -o blockkey.wasm
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "key\n")
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32)
    ;; one iovec at 0: the 4 bytes at 16; bytes written go to 8
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 4))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.const 1)))
