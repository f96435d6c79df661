package discovery

import (
	"strconv"
	"testing"

	"lanchat/transport"
)

func TestVersionMatchesProtocol(t *testing.T) {
	if Version != strconv.Itoa(transport.ProtocolVersion) {
		t.Fatalf("TXT version %q, protocol %d", Version, transport.ProtocolVersion)
	}
}
