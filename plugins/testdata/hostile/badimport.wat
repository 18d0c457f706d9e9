;; badimport: imports a function the host does not provide.
(module
  (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32) (i32.const 0)))
