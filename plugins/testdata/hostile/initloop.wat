;; initloop: init never returns; Load must fail, not hang.
(module
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "init") (result i32) (loop $l (br $l)) (i32.const 0))
  (func (export "key") (result i32) (i32.const 0)))
