;; unreachable: every hook traps.
(module
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32) unreachable)
  (func (export "response") (result i32) unreachable)
  (func (export "miss") (result i32) unreachable))
