// Command lanchat is a peer-to-peer chat for the local network: nodes find
// each other over mDNS, hold a TCP stream and a UDP channel to every peer,
// and let their users chat and run small network commands against each
// other. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"

	"lanchat/bench"
	"lanchat/console"
	"lanchat/discovery"
	"lanchat/identity"
	"lanchat/peer"
	"lanchat/transport"
)

const version = "0.1.0"

// shutdownTimeout bounds the whole leave: goodbyes, mDNS, goroutines.
const shutdownTimeout = 3 * time.Second

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type options struct {
	identity    string
	name        string
	port        int
	ifaces      listFlag
	peers       listFlag
	noMDNS      bool
	json        bool
	noBell      bool
	waitPeers   int
	waitTimeout time.Duration
	verbose     bool
	version     bool
}

// errArgs is returned for arguments that are not flags.
var errArgs = errors.New("unexpected arguments")

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("lanchat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.name, "name", defaultName(), "your name as peers see it")
	fs.StringVar(&o.identity, "identity", "", "identity key file; known peers are kept beside it (default: the user config dir's lanchat/"+identity.KeyFile+")")
	fs.IntVar(&o.port, "port", 0, "TCP and UDP port to listen on (0: chosen by the system)")
	fs.Var(&o.ifaces, "iface", "run mDNS on this interface only (repeatable)")
	fs.Var(&o.peers, "peer", "connect to this [ID@]HOST:PORT at start, for networks without multicast; with ID, the node must prove that id (repeatable)")
	fs.BoolVar(&o.noMDNS, "no-mdns", false, "neither advertise nor browse over mDNS")
	fs.BoolVar(&o.json, "json", false, "print one JSON event per line")
	fs.BoolVar(&o.noBell, "no-bell", false, "do not ring the terminal bell for direct messages and lines naming you")
	fs.IntVar(&o.waitPeers, "wait-peers", 0, "before reading any input, wait until `N` peers are connected (for scripts); fail after --wait-timeout")
	fs.DurationVar(&o.waitTimeout, "wait-timeout", 30*time.Second, "how long --wait-peers waits before lanchat exits with an error")
	fs.BoolVar(&o.verbose, "v", false, "verbose logging (debug level) on stderr")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: lanchat [flags]
       lanchat bench [flags]   measure lanchat against raw sockets (lanchat bench --help)

Chat with everyone running lanchat on the local network. Type /help once running.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		hint := ""
		if fs.NArg() == 1 && transport.CheckName(fs.Arg(0)) == nil && !strings.HasPrefix(fs.Arg(0), "-") {
			hint = fmt.Sprintf(" (to be called %s: --name %s)", fs.Arg(0), fs.Arg(0))
		}
		fmt.Fprintf(fs.Output(), "lanchat: unexpected argument %q%s\n", strings.Join(fs.Args(), " "), hint)
		fs.Usage()
		return o, errArgs
	}
	if o.waitPeers < 0 {
		fmt.Fprintf(fs.Output(), "lanchat: --wait-peers %d: want 0 or more\n", o.waitPeers)
		return o, errArgs
	}
	return o, nil
}

// defaultName is user@host, with the short host name.
func defaultName() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "user"
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	if host != "" {
		name += "@" + host
	}
	if transport.CheckName(name) != nil {
		return "lanchat"
	}
	return name
}

// settleAfter is the quiet after the last new peer that ends a burst.
const settleAfter = 2 * time.Second

// releaseAfterBursts hands memory back to the system once a burst of new
// peers is over. Each handshake leaves garbage (certificates, key shares,
// buffers) that the runtime would otherwise keep, and return only slowly:
// in a 32-node mesh this leaves a node 0.6 to 1.4 MiB smaller (measured),
// for one forced collection of a heap of a few megabytes per burst.
func releaseAfterBursts(ctx context.Context, peerUp <-chan struct{}) {
	t := time.NewTimer(settleAfter)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-peerUp:
			t.Reset(settleAfter)
		case <-t.C:
			debug.FreeOSMemory()
		}
	}
}

func historyFile() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "lanchat", "history")
}

func init() {
	// lanchat never writes heap profiles: stop sampling allocations for
	// them (each sample keeps its call stack in memory never freed).
	runtime.MemProfileRate = 0
}

// gcPercent replaces Go's default GOGC of 100 (a user's GOGC still wins).
// A node's live heap is small, about 1.2 MB even with 63 peers, so its
// heap is held at the runtime's floor of 4 MB × GOGC/100 rather than at
// twice the live data. Measured with lanchat bench --netns --nodes 64, an
// idle node's resident memory was 18.3 MiB at 100 and 14.1 MiB at 50; 25
// gave no more. The price, also measured, is 5 to 8% on chat throughput.
// The bench's in-process nodes run with it too.
const gcPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(bench.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	o, err := parseFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if o.version {
		fmt.Printf("lanchat %s (protocol %d)\n", version, transport.ProtocolVersion)
		return 0
	}
	if err := transport.CheckName(o.name); err != nil {
		fmt.Fprintf(os.Stderr, "lanchat: --name: %v\n", err)
		return 2
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	// On a terminal the console sends log lines through the prompt.
	logOut := console.NewLogWriter(os.Stderr)
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	// zeroconf logs through the standard logger; keep it at debug level.
	log.SetFlags(0)
	log.SetOutput(slogWriter{logger})

	if err := start(o, logger, logOut); err != nil {
		fmt.Fprintf(os.Stderr, "lanchat: %v\n", err)
		return 1
	}
	return 0
}

func start(o options, logger *slog.Logger, logOut *console.LogWriter) error {
	for _, name := range o.ifaces {
		if _, err := net.InterfaceByName(name); err != nil {
			logger.Warn("--iface: no such interface yet; mDNS will use it when it appears", "iface", name)
		}
	}
	keyPath := o.identity
	if keyPath == "" {
		var err error
		if keyPath, err = identity.DefaultPath(); err != nil {
			return err
		}
	}
	ident, created, err := identity.LoadOrCreate(keyPath)
	if err != nil {
		return err
	}
	if created {
		logger.Info("created a new identity", "file", keyPath, "id", ident.ID)
	}
	lock, err := identity.Lock(keyPath)
	if err != nil {
		return err
	}
	defer lock.Close()
	known, err := identity.LoadKnown(filepath.Join(filepath.Dir(keyPath), identity.KnownPeersFile))
	if err != nil {
		return err
	}
	tr, err := transport.Listen(o.port)
	if err != nil {
		return err
	}
	defer tr.Close()
	// discovery is set once mDNS runs; a lost peer makes it look again.
	var disc atomic.Pointer[discovery.Service]
	peerUp := make(chan struct{}, 1)
	node, err := peer.New(peer.Config{
		Identity: ident, Known: known, Name: o.name, Network: tr, Logger: logger,
		OnPeerLost: func() {
			if d := disc.Load(); d != nil {
				d.Rescan()
			}
		},
		OnPeerUp: func(string) {
			select {
			case peerUp <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		return err
	}

	// SIGHUP (a closed terminal, a dropped ssh session) leaves as gracefully
	// as SIGTERM and Ctrl-C: peers and mDNS get their goodbyes.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	nodeCtx, stopNode := context.WithCancel(context.Background())
	defer stopNode()
	nodeDone := make(chan struct{})
	go func() {
		defer close(nodeDone)
		node.Run(nodeCtx)
	}()
	releaseDone := make(chan struct{})
	go func() {
		defer close(releaseDone)
		releaseAfterBursts(nodeCtx, peerUp)
	}()
	defer func() { stopNode(); <-releaseDone }()

	if !o.noMDNS {
		disc.Store(discovery.Start(nodeCtx, discovery.Config{
			Name: o.name, ID: node.ID(), Port: tr.TCPPort(), UDPPort: tr.UDPPort(),
			Ifaces: o.ifaces, Logger: logger, Watch: node.Watches,
		}, func(e discovery.Entry) {
			node.Discovered(peer.Found{Instance: e.Instance, ID: e.ID, Addrs: e.Addrs, Answer: e.Answer})
		}))
	}
	for _, arg := range o.peers {
		id, addr := peer.SplitPeerAddr(arg)
		node.ConnectManual(nodeCtx, addr, id)
	}

	terminal := !o.json && term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	// Colours and the bell go to a terminal only (https://no-color.org).
	styled := !o.json && term.IsTerminal(int(os.Stdout.Fd()))
	con := console.New(console.Config{
		Node: node, In: os.Stdin, Out: os.Stdout, Terminal: terminal, JSON: o.json,
		Color: styled && os.Getenv("NO_COLOR") == "", Bell: styled && !o.noBell,
		WaitPeers: o.waitPeers, WaitTimeout: o.waitTimeout,
		HistoryFile: historyFile(), Log: logOut, TCPPort: tr.TCPPort(), UDPPort: tr.UDPPort(), Version: version,
		OnRename: func(name string) error {
			if d := disc.Load(); d != nil {
				d.SetName(name)
			}
			return nil
		},
	})
	runErr := con.Run(ctx)

	// Leave in reverse order: peers are told, mDNS says goodbye, then
	// every goroutine is stopped.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	node.Leave(sctx, "quit")
	if d := disc.Load(); d != nil {
		d.Close()
	}
	stopNode()
	select {
	case <-nodeDone:
	case <-sctx.Done():
		logger.Warn("shutdown took too long; exiting anyway")
	}
	return runErr
}

// slogWriter turns standard-log lines into debug records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}
