package gateway

import (
	"testing"

	"github.com/edgecache/edgecache/internal/testutil"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }
