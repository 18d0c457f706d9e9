package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// trimExecutable unmaps the executable's read-only pages (text, rodata,
// pclntab) with madvise(MADV_DONTNEED) and returns how many bytes of
// mappings it advised. Startup touches ~20 MiB of them once — the runtime
// and some 260 package inits (otel, gRPC, protobuf, prometheus, quic-go,
// certmagic, wazero…), configuration loading, the kernel's fault-around
// — and most are never used again; while mapped they count in RSS and,
// being mapped executable, the kernel's reclaim keeps them active. After
// the advice they are unmapped page cache: nothing is lost (the file is
// the same), a page used again comes back with a minor fault from the
// page cache, no I/O, and the rest is the first memory the kernel
// reclaims under pressure.
//
// Only mappings of the executable's file that are not writable and hold
// no anonymous (copied-on-write) pages are advised: a read-only mapping
// with such pages was written before being protected (a PIE binary's
// relocated RELRO segment, a debugger's breakpoint) and dropping them
// would lose that.
func trimExecutable() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("cli: trim: %w", err)
	}
	return trimMappings(exe)
}

// trimMappings advises every read-only, private mapping of path without
// anonymous pages as MADV_DONTNEED (see trimExecutable).
func trimMappings(path string) (int64, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("cli: trim: %w", err)
	}
	maps, err := readOnlyMappings(f, path)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("cli: trim: %w", err)
	}
	var n int64
	for _, m := range maps {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); e != 0 {
			return n, fmt.Errorf("cli: trim: madvise %#x-%#x: %w", m.start, m.end, e)
		}
		n += int64(m.end - m.start)
	}
	return n, nil
}

// mapping is one address range of /proc/self/smaps.
type mapping struct{ start, end uintptr }

// readOnlyMappings returns the mappings of path in an smaps listing that
// are private, not writable and have no anonymous pages.
func readOnlyMappings(r io.Reader, path string) ([]mapping, error) {
	var out []mapping
	var cur mapping
	candidate := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			// A mapping's header: range, perms, offset, dev, inode[, path].
			lo, hi, _ := strings.Cut(f[0], "-")
			a, errA := strconv.ParseUint(lo, 16, 64)
			b, errB := strconv.ParseUint(hi, 16, 64)
			p := strings.Join(f[5:], " ")
			candidate = errA == nil && errB == nil && p == path && len(f[1]) == 4 && f[1][1] == '-' && f[1][3] == 'p'
			cur = mapping{uintptr(a), uintptr(b)}
		case candidate && len(f) >= 2 && f[0] == "Anonymous:":
			if f[1] == "0" {
				out = append(out, cur)
			}
			candidate = false
		}
	}
	return out, sc.Err()
}
