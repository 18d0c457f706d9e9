package policies

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// readCaseFile reads a data-driven case file of testdata/ (testdata/ttl,
// testdata/serve): blocks of "field: value" lines separated by blank
// lines, '#' starting a comment line, each block opened by "case: name".
// start is called for each case line, field for the lines after it; n is
// the line number, for messages. Two cases of one name fail the test.
func readCaseFile(t *testing.T, path string, start func(n int, name string), field func(n int, field, val string)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inCase, seen := false, map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			inCase = false
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s:%d: no field name in %q", path, n, line)
		}
		val = strings.TrimSpace(val)
		switch {
		case name == "case":
			if seen[val] {
				t.Fatalf("%s:%d: duplicate case %q", path, n, val)
			}
			inCase, seen[val] = true, true
			start(n, val)
		case !inCase:
			t.Fatalf("%s:%d: %q outside a case", path, n, line)
		default:
			field(n, name, val)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
