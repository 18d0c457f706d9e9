;; wronghook: the key hook calls a miss-hook setter.
(module
  (import "edgecache" "set_bypass" (func $set_bypass))
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32) (call $set_bypass) (i32.const 0)))
