package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// TestReadOnlyMappings: only private, non-writable mappings of the path
// without anonymous (copied-on-write) pages are trimmed.
func TestReadOnlyMappings(t *testing.T) {
	const smaps = `00400000-01511000 r-xp 00000000 fe:00 10012286   /bin/edge
Rss:               11076 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
01511000-02851000 r--p 01111000 fe:00 10012286   /bin/edge
Anonymous:             0 kB
02851000-0295f000 rw-p 02451000 fe:00 10012286   /bin/edge
Anonymous:           632 kB
0295f000-02960000 r--p 02451000 fe:00 10012286   /bin/edge
Anonymous:             4 kB
02960000-02961000 r--s 00000000 fe:00 10012286   /bin/edge
Anonymous:             0 kB
7f50a151e000-7f50a1674000 r-xp 00026000 fe:00 326269   /usr/lib/libc.so.6
Anonymous:             0 kB
7f50a2000000-7f50a2001000 r--p 00000000 fe:00 77   /bin/edge (deleted)
Anonymous:             0 kB
`
	tests := []struct {
		name, path string
		want       []mapping
	}{
		{"text and rodata, not data, relocated or shared", "/bin/edge", []mapping{{0x400000, 0x1511000}, {0x1511000, 0x2851000}}},
		{"a replaced binary", "/bin/edge (deleted)", []mapping{{0x7f50a2000000, 0x7f50a2001000}}},
		{"another file", "/bin/other", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readOnlyMappings(strings.NewReader(smaps), tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %x, want %x", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %x, want %x", got, tt.want)
				}
			}
		})
	}
}

// TestTrimMappings: a read-only private mapping of a real file loses its
// resident pages and reads the same bytes afterwards; a mapping written
// before being made read-only keeps what was written.
func TestTrimMappings(t *testing.T) {
	const size = 16 << 12
	path := filepath.Join(t.TempDir(), "mapped")
	content := bytes.Repeat([]byte("edgecache"), size/9+1)[:size]
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ro, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Munmap(ro) }()
	written, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Munmap(written) }()
	written[0] = 'X' // a private copy of the first page
	if err := syscall.Mprotect(written, syscall.PROT_READ); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ro, content) { // every page resident
		t.Fatal("the mapping does not read the file")
	}
	if rss := residentKiB(t, ro); rss != size>>10 {
		t.Fatalf("before: %d KiB resident, want %d", rss, size>>10)
	}
	n, err := trimMappings(path)
	if err != nil {
		t.Fatal(err)
	}
	if n != size {
		t.Errorf("trimmed %d bytes, want %d (the read-only mapping only)", n, size)
	}
	if rss := residentKiB(t, ro); rss != 0 {
		t.Errorf("after: %d KiB resident, want 0", rss)
	}
	if !bytes.Equal(ro, content) {
		t.Error("the trimmed mapping reads other bytes")
	}
	if written[0] != 'X' {
		t.Errorf("the written mapping lost its copy: %q", written[0])
	}
}

// TestTrimExecutable: the test binary's own text and rodata are trimmed
// and the process goes on running code from them.
func TestTrimExecutable(t *testing.T) {
	n, err := trimExecutable()
	if err != nil {
		t.Fatal(err)
	}
	if n < 1<<20 {
		t.Fatalf("trimmed %d bytes of the executable, want at least its text", n)
	}
	if got := strconv.Itoa(12345) + strings.ToUpper("ok"); got != "12345OK" {
		t.Fatalf("after trimming: %q", got)
	}
}

// residentKiB is the Rss of the mapping that starts at b, from
// /proc/self/smaps.
func residentKiB(t *testing.T, b []byte) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	start := strconv.FormatUint(uint64(uintptr(unsafe.Pointer(&b[0]))), 16)
	in := false
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.Contains(f[0], "-") {
			lo, _, _ := strings.Cut(f[0], "-")
			in = strings.TrimLeft(lo, "0") == start
			continue
		}
		if in && len(f) >= 2 && f[0] == "Rss:" {
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	t.Fatalf("no mapping at %s", start)
	return 0
}
