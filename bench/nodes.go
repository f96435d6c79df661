package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"lanchat/bench/baseline"
	"lanchat/peer"
	"lanchat/transport"
)

// node is an in-process lanchat node on real sockets. Its events go to
// whatever handler the running measurement installed.
type node struct {
	*peer.Node
	host    string // address of the host it runs on
	tr      *transport.Transport
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	handler atomic.Pointer[func(peer.Event, time.Time)]
}

func startNode(name string, insecure bool) (*node, error) {
	return startNodeOn(baseline.Loopback, 0, name, insecure)
}

// startNodeOn starts a node whose sockets belong to host i of h.
func startNodeOn(h baseline.Hosts, i int, name string, insecure bool) (*node, error) {
	cfg := peer.Config{Name: name}
	if insecure {
		cfg.Secure = plainSecurer{}
	}
	return startNodeWith(h, i, cfg)
}

// startNodeWith starts a node configured by cfg whose sockets belong to
// host i of h. Its events go to the handler installed with on; then, with
// cfg.ConfirmShown, each chat message is marked shown, as the console
// does once it has written the line out.
func startNodeWith(h baseline.Hosts, i int, cfg peer.Config) (*node, error) {
	hn, err := listenOn(h, i)
	if err != nil {
		return nil, err
	}
	cfg.Network = hn
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	pn, err := peer.New(cfg)
	if err != nil {
		hn.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{Node: pn, host: h.Addrs[i], tr: hn.Transport, cancel: cancel}
	n.wg.Add(2)
	go func() { defer n.wg.Done(); pn.Run(ctx) }()
	go func() {
		defer n.wg.Done()
		for {
			select {
			case e := <-pn.Events():
				if h := n.handler.Load(); h != nil {
					(*h)(e, time.Now())
				}
				if c, ok := e.(peer.Chat); ok && c.Shown != nil {
					c.Shown(c.MsgID)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return n, nil
}

func (n *node) on(h func(peer.Event, time.Time)) { n.handler.Store(&h) }

func (n *node) addr() string { return net.JoinHostPort(n.host, fmt.Sprint(n.tr.TCPPort())) }

func (n *node) stop() {
	n.cancel()
	n.wg.Wait()
	n.tr.Close()
}

func stopAll(ns []*node) {
	var wg sync.WaitGroup
	for _, n := range ns {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop() }()
	}
	wg.Wait()
}

// mesh starts count nodes and connects every pair, each new node dialling
// all the earlier ones at once (as it would on finding them by mDNS). It
// returns the nodes and the time from the first start until every node
// had every other as a peer with a working datagram channel.
func mesh(count int, insecure bool, timeout time.Duration) ([]*node, time.Duration, error) {
	start := time.Now()
	var ns []*node
	for i := 0; i < count; i++ {
		n, err := startNode(fmt.Sprintf("n%d", i), insecure)
		if err != nil {
			stopAll(ns)
			return nil, 0, err
		}
		ns = append(ns, n)
	}
	for i, n := range ns {
		for _, m := range ns[:i] {
			go n.Connect(context.Background(), m.addr(), peer.ViaManual, m.ID())
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		complete := true
		for _, n := range ns {
			ps := n.Peers()
			up := 0
			for _, p := range ps {
				if p.State == peer.Up {
					up++
				}
			}
			if up < count-1 {
				complete = false
				break
			}
		}
		if complete {
			return ns, time.Since(start), nil
		}
		if time.Now().After(deadline) {
			stopAll(ns)
			return nil, 0, fmt.Errorf("mesh of %d nodes not complete after %v", count, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// pair starts a node on each host of h, connects them and waits for
// their datagram channel.
func pair(h baseline.Hosts, insecure bool) ([]*node, error) {
	var ns []*node
	for i := range 2 {
		n, err := startNodeOn(h, i, fmt.Sprintf("n%d", i), insecure)
		if err != nil {
			stopAll(ns)
			return nil, err
		}
		ns = append(ns, n)
	}
	if _, err := ns[1].Connect(context.Background(), ns[0].addr(), peer.ViaManual, ns[0].ID()); err != nil {
		stopAll(ns)
		return nil, err
	}
	if err := waitUDP(ns, 10*time.Second); err != nil {
		stopAll(ns)
		return nil, err
	}
	return ns, nil
}

// waitUDP waits until every peer of every node has answered a probe.
func waitUDP(ns []*node, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range ns {
		for {
			ps := n.Peers()
			ok := len(ps) > 0
			for _, p := range ps {
				if p.UDP != peer.UDPOK {
					ok = false
				}
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("datagram channels not open after %v", timeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}
