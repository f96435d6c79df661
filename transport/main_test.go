package transport

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a Conn starts (its writer) ends with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
