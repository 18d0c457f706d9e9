;; growspin: a memory bomb whose runtime does not trap when memory.grow
;; fails (-1) but spins, as a GC retrying would: the call ends at the
;; deadline (its one grow asks for 1000 pages, past any test limit). The host counts it as a memory fault, not a timeout, because a
;; grow past the limit was refused during the call.
(module
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32)
    (block $failed
      (loop $grow
        (br_if $failed (i32.eq (memory.grow (i32.const 1000)) (i32.const -1)))
        (br $grow)))
    (loop $spin (br $spin))
    (i32.const 0)))
