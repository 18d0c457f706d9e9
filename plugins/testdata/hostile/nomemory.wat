;; nomemory: a plugin without a memory cannot receive any value.
(module
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32) (i32.const 1)))
