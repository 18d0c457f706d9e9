package origins_test

import (
	"testing"

	"github.com/edgecache/edgecache/internal/testutil"
)

// TestMain fails the package's tests if any goroutine (a health checker,
// a connection of a closed pool) outlives them.
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }
