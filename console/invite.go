package console

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"lanchat/invite"
	"lanchat/peer"
)

func init() {
	// Before /help, which lists the commands in this order.
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == "help" })
	if i < 0 {
		i = len(commands)
	}
	commands = slices.Insert(commands, i, command{"invite", "/invite",
		"print a line that another user gives to /connect or --peer to reach you (it proves your id)", (*Console).cmdInvite})
}

// cmdInvite prints this node's invite line.
func (c *Console) cmdInvite(_ context.Context, args []string, _ string) error {
	if len(args) > 0 {
		return errUsage
	}
	if c.cfg.Invite == nil {
		return errors.New("invite: not available here")
	}
	line, err := c.cfg.Invite()
	if err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	t, err := invite.Parse(line)
	if err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	c.out.emit(InviteEvent{Line: line, ID: t.ID, Addrs: t.Addrs}, line, true)
	return nil
}

// connectInvite connects to the node of an invite line, trying its
// addresses in order; the node must prove the invite's id.
func (c *Console) connectInvite(ctx context.Context, line string) error {
	t, err := invite.Parse(line)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	c.background(ctx, func(ctx context.Context) {
		var errs []error
		for _, addr := range t.Addrs {
			_, err := c.node.Connect(ctx, addr, peer.ViaManual, t.ID)
			switch {
			case err == nil:
				return
			case errors.Is(err, peer.ErrDuplicate):
				c.notice(err.Error())
				return
			case errors.Is(err, peer.ErrIdentity), ctx.Err() != nil:
				c.Error(connectError(addr, err))
				return
			}
			errs = append(errs, err)
		}
		c.Error(fmt.Errorf("connect: %w", errors.Join(errs...)))
	})
	return nil
}
