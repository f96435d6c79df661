package console

import (
	"context"
	"fmt"
	"strings"

	"lanchat/peer"
)

func (c *Console) cmdVerify(_ context.Context, args []string, _ string) error {
	if len(args) < 1 {
		return errUsage
	}
	typed := strings.Join(args[1:], " ")
	v, err := c.node.Verify(args[0], typed)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	plain := fmt.Sprintf("* verification code with %s (%s): %s\n  Read it to %s by voice or in person; if %s reads the same code, type /verify %s CODE",
		v.Peer.Name, peer.ShortID(v.Peer.ID), v.Code, v.Peer.Name, v.Peer.Name, args[0])
	if v.Verified {
		plain = fmt.Sprintf("* %s (%s) is verified: the codes match (%s)", v.Peer.Name, peer.ShortID(v.Peer.ID), v.Code)
	}
	c.out.emit(VerifyEvent{Peer: v.Peer.Name, ID: v.Peer.ID, Code: v.Code, Verified: v.Verified}, plain, false)
	return nil
}
