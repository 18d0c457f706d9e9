;; badsig: imports set_key with the wrong signature.
(module
  (import "edgecache" "set_key" (func $set_key (param i64)))
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32) (i32.const 0)))
