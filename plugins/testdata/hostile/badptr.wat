;; badptr: the key hook passes a buffer past the end of its memory.
(module
  (import "edgecache" "get_path" (func $get_path (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32)
    (drop (call $get_path (i32.const 65000) (i32.const 4096)))
    (i32.const 0)))
