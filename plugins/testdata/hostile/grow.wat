;; grow: the key hook grows its memory 16 pages at a time until the host
;; refuses, then traps, as a language runtime out of memory does.
(module
  (memory (export "memory") 1)
  (func (export "edgecache_abi_v1"))
  (func (export "key") (result i32)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
