;; bigresult: the key hook sets a key of 8 KiB, more than the host allows.
(module
  (import "edgecache" "set_key" (func $set_key (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32)
    (memory.fill (i32.const 0) (i32.const 65) (i32.const 8192))
    (call $set_key (i32.const 0) (i32.const 8192))
    (i32.const 0)))
