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
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"

	"lanchat/console"
	"lanchat/discovery"
	"lanchat/identity"
	"lanchat/invite"
	"lanchat/names"
	"lanchat/peer"
	"lanchat/store"
	"lanchat/transfer"
	"lanchat/transport"
)

const version = "0.1.0"

// shutdownTimeout bounds the whole leave: goodbyes, mDNS, goroutines.
const shutdownTimeout = 3 * time.Second

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type options struct {
	identity string
	name     string
	port     int
	// portGiven is set when --port was given: otherwise the port of the
	// last run is taken again when free (remembered addresses need it).
	portGiven   bool
	ifaces      listFlag
	peers       listFlag
	noMDNS      bool
	noBroadcast bool
	peersFile   string
	noHist      bool
	download    string
	accept      string
	yield       bool
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
	fs.IntVar(&o.port, "port", 0, "TCP and UDP port to listen on (0: chosen by the system; by default the port of the last run when free)")
	fs.Var(&o.ifaces, "iface", "run mDNS on this interface only (repeatable)")
	fs.Var(&o.peers, "peer", "connect to this [ID@]HOST:PORT or invite line (lanchat://ID@HOST:PORT,...) at start, for networks without multicast; with ID, the node must prove that id (repeatable)")
	fs.BoolVar(&o.noMDNS, "no-mdns", false, "neither advertise nor browse over mDNS")
	fs.BoolVar(&o.noHist, "no-history", false, "keep no chat history (messages waiting for delivery are still kept on disk)")
	fs.StringVar(&o.download, "download-dir", "", "where received files land (default: $XDG_DOWNLOAD_DIR/lanchat, else ~/Downloads/lanchat)")
	fs.StringVar(&o.accept, "accept-from", "ask", "file offers: ask for each (ask), or accept those from peers trusted in known_peers (trusted)")
	fs.BoolVar(&o.yield, "yield-to-chat", true, "while chat lines pass with a peer (in the last 10 s), send it files at half the rate they reach alone, so that chat stays fast; false: always at full speed")
	fs.BoolVar(&o.noBroadcast, "no-broadcast", false, fmt.Sprintf("neither send nor hear the broadcast beacon (UDP port %d)", discovery.BeaconPort))
	fs.StringVar(&o.peersFile, "peers-file", "", "file of nodes to connect to, one [ID@]HOST:PORT or invite line per line, re-read when it changes (default: the user config dir's lanchat/peers)")
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
	fs.Visit(func(f *flag.Flag) { o.portGiven = o.portGiven || f.Name == "port" })
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

// stateDir is $XDG_STATE_HOME/lanchat, by default ~/.local/state/lanchat.
func stateDir() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "lanchat")
}

func historyFile() string {
	if d := stateDir(); d != "" {
		return filepath.Join(d, "history")
	}
	return ""
}

// storePath is where the store of the node id lives: one per identity.
func storePath(id string) (string, error) {
	d := stateDir()
	if d == "" {
		return "", errors.New("no state directory: set XDG_STATE_HOME or HOME")
	}
	return filepath.Join(d, "store-"+id[:16]+".db"), nil
}

// openStore opens the node's store, saying what was done with a damaged
// one.
func openStore(id string, noHistory bool) (*store.Store, []string, error) {
	path, err := storePath(id)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(path, store.Options{NoHistory: noHistory, PeerBytes: testPeerBytes()})
	if errors.Is(err, store.ErrLocked) {
		return nil, nil, fmt.Errorf("%s is in use by another lanchat with this identity: %w", path, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open the message store: %w", err)
	}
	var notices []string
	if aside, why := st.MovedAside(); aside != "" {
		notices = append(notices, fmt.Sprintf("the message store was damaged (%v): it was moved to %s and a new one was made; "+
			"messages that waited for delivery there were not sent", why, aside))
	}
	return st, notices, nil
}

func init() {
	// lanchat never writes heap profiles: stop sampling allocations for
	// them (each sample keeps its call stack in memory never freed).
	runtime.MemProfileRate = 0
}

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(peer.GCPercent)
	}
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(runBench(os.Args[2:]))
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
	name, err := names.Enforce(o.name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lanchat: --name: %v\n", err)
		return 2
	}
	o.name = name
	for _, p := range o.peers {
		if _, err := invite.Parse(p); err != nil {
			fmt.Fprintf(os.Stderr, "lanchat: --peer %s: %v\n", p, err)
			return 2
		}
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
	known, warns, err := identity.OpenKnown(filepath.Join(filepath.Dir(keyPath), identity.KnownPeersFile), identity.KnownOptions{})
	if err != nil {
		return err
	}
	st, notices, err := openStore(ident.ID, o.noHist)
	if err != nil {
		return err
	}
	for _, w := range warns {
		notices = append(notices, w.String())
	}
	// Closed last, once the node has stopped: what is being committed
	// is finished first.
	defer func() {
		if err := st.Close(); err != nil {
			logger.Warn("closing the message store", "err", err)
		}
	}()
	tr, err := listen(o, strings.TrimSuffix(keyPath, filepath.Ext(keyPath))+".port", logger)
	if err != nil {
		return err
	}
	defer tr.Close()
	book := addressBook(known)
	// discovery is set once mDNS runs; a lost peer makes it look again.
	var disc atomic.Pointer[discovery.Service]
	peerUp := make(chan struct{}, 1)
	// transfers is set once the transfer manager runs; it needs the node.
	var transfers atomic.Pointer[transfer.Manager]
	node, err := peer.New(peer.Config{
		Identity: ident, Known: known, Name: o.name, Network: tr, Logger: logger, Store: st,
		GiveUpAfter: testGiveUp(),
		OnPeerLost: func() {
			if d := disc.Load(); d != nil {
				d.Rescan()
			}
		},
		OnPeerUp: func(id string) {
			select {
			case peerUp <- struct{}{}:
			default:
			}
			if tm := transfers.Load(); tm != nil {
				tm.PeerUp(id)
			}
		},
		OnChat: func(id string) {
			if tm := transfers.Load(); tm != nil {
				tm.Chatting(id)
			}
		},
		OnStream: func(kind, id string, c net.Conn) {
			if tm := transfers.Load(); tm != nil && kind == peer.StreamTransfer {
				tm.Accept(id, c)
				return
			}
			c.Close()
		},
		Addresses: book,
		// The console confirms each line it has written: acknowledged
		// messages were shown, whatever kills the process.
		ConfirmShown: true,
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
	// beacons is set once the broadcast beacon runs.
	var beacons *discovery.Beacons
	if !o.noBroadcast {
		beacons, err = discovery.StartBeacons(nodeCtx, discovery.BeaconConfig{
			Identity: ident, Name: o.name, Port: tr.TCPPort(), UDPPort: tr.UDPPort(),
			Ifaces: o.ifaces, Logger: logger,
			Alone: func() bool { return node.Connected() == 0 }, Watch: node.Watches,
		}, func(e discovery.Entry) {
			node.Discovered(peer.Found{Via: peer.ViaBroadcast, Instance: e.Instance, ID: e.ID, Addrs: e.Addrs})
		})
		if err != nil {
			logger.Warn("broadcast discovery is off", "err", err)
		}
	}
	for _, arg := range o.peers {
		t, _ := invite.Parse(arg) // checked in run
		node.ConnectGiven(nodeCtx, "--peer "+arg, t.Addrs, t.ID)
	}
	peersDone := watchPeersFile(nodeCtx, o.peersFile, node, logger)
	defer func() { stopNode(); <-peersDone }()

	terminal := !o.json && term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	tm, err := startTransfers(o, node, ident.ID, logger)
	if err != nil {
		return err
	}
	transfers.Store(tm)

	// Colours and the bell go to a terminal only (https://no-color.org).
	styled := !o.json && term.IsTerminal(int(os.Stdout.Fd()))
	con := console.New(console.Config{
		Node: node, In: os.Stdin, Out: os.Stdout, Terminal: terminal, JSON: o.json,
		Color: styled && os.Getenv("NO_COLOR") == "", Bell: styled && !o.noBell,
		WaitPeers: o.waitPeers, WaitTimeout: o.waitTimeout,
		HistoryFile: historyFile(), Log: logOut, TCPPort: tr.TCPPort(), UDPPort: tr.UDPPort(), Version: version,
		Notices:    notices,
		Transfers:  tm,
		Durable:    true,
		FirstMsgID: st.FirstID(),
		History:    historyOf(st, o.noHist),
		OnRename: func(name string) error {
			if d := disc.Load(); d != nil {
				d.SetName(name)
			}
			if beacons != nil {
				beacons.SetName(name)
			}
			return nil
		},
		Invite: func() (string, error) {
			addrs := discovery.LocalAddrs(o.ifaces)
			if len(addrs) == 0 {
				return "", errors.New("no address to invite to: no interface is up")
			}
			return invite.Format(node.ID(), addrs, tr.TCPPort()), nil
		},
	})
	runErr := con.Run(ctx)

	// Leave in reverse order: peers are told, mDNS says goodbye, then
	// every goroutine is stopped.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// Transfers first: the manager may still tell a peer of a cancel.
	if err := tm.Close(sctx); err != nil {
		logger.Warn("stopping the transfers", "err", err)
	}
	node.Leave(sctx, "quit")
	if d := disc.Load(); d != nil {
		d.Close()
	}
	if beacons != nil {
		beacons.Close()
	}
	stopNode()
	select {
	case <-nodeDone:
	case <-sctx.Done():
		logger.Warn("shutdown took too long; exiting anyway")
	}
	return runErr
}

// startTransfers makes the transfer manager: its state beside the store,
// files into --download-dir.
func startTransfers(o options, node *peer.Node, id string, logger *slog.Logger) (*transfer.Manager, error) {
	download := o.download
	if download == "" {
		download = defaultDownloadDir()
	}
	if download == "" {
		return nil, errors.New("no download folder: give --download-dir")
	}
	var acceptFrom func(string) bool
	switch o.accept {
	case "ask":
	case "trusted":
		acceptFrom = func(peerID string) bool {
			p, err := node.ResolveID(peerID)
			return err == nil && p.ID == peerID && (p.Trust == identity.Trusted || p.Trust == identity.Verified)
		}
	default:
		return nil, fmt.Errorf("--accept-from %q: want ask or trusted", o.accept)
	}
	share := 0.0 // the default
	if !o.yield {
		share = 1
	}
	tm, err := transfer.New(transfer.Options{
		ChatShare:   share,
		Dialer:      node,
		StateDir:    filepath.Join(stateDir(), "transfers", id[:16]),
		DownloadDir: download,
		AcceptFrom:  acceptFrom,
		Log:         logger,
		OfferExpiry: testDuration("LANCHAT_TEST_OFFER_EXPIRY"),
		RedialMax:   testDuration("LANCHAT_TEST_REDIAL_MAX"),
	})
	if err != nil {
		return nil, fmt.Errorf("start file transfers: %w", err)
	}
	return tm, nil
}

// defaultDownloadDir is $XDG_DOWNLOAD_DIR/lanchat, else ~/Downloads/lanchat.
func defaultDownloadDir() string {
	if d := os.Getenv("XDG_DOWNLOAD_DIR"); d != "" {
		return filepath.Join(d, "lanchat")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "Downloads", "lanchat")
	}
	return ""
}

// testDuration reads a duration from an environment variable: hooks for
// the end-to-end tests, which cannot wait for the real timers; 0 (the
// default) when unset.
func testDuration(env string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(env))
	return d
}

// testGiveUp reads LANCHAT_TEST_GIVE_UP, a duration that replaces the
// 90 s after which a lost peer is no longer redialled: a hook for the
// end-to-end tests, which cannot wait that long.
func testGiveUp() time.Duration { return testDuration("LANCHAT_TEST_GIVE_UP") }

// testPeerBytes reads LANCHAT_TEST_PEER_BYTES, a number of bytes that
// replaces the bound of what waits for one peer (64 MiB): a hook for the
// end-to-end tests, which fill it with a few MiB. 0 (the default) when
// unset or not a number.
func testPeerBytes() int64 {
	n, _ := strconv.ParseInt(os.Getenv("LANCHAT_TEST_PEER_BYTES"), 10, 64)
	return max(n, 0)
}

// historyOf is what answers /history and /search: nil with --no-history.
func historyOf(st *store.Store, off bool) console.History {
	if off {
		return nil
	}
	return st
}

// addressBook is where the node remembers the addresses of its peers
// across restarts: the known peers file (identity.Known), for pinned ids.
func addressBook(known *identity.Known) peer.AddressBook { return knownBook{known} }

// knownBook is identity.Known as a peer.AddressBook.
type knownBook struct{ k *identity.Known }

func (b knownBook) Remember(id, addr string, _ time.Time) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("remember %s: %w", addr, err)
	}
	if err := b.k.RecordAddr(id, ap); err != nil && !errors.Is(err, identity.ErrUnknownID) {
		return err
	}
	return nil // an id without a pin (a name conflict) is not remembered
}

func (b knownBook) Addresses(id string) []string {
	var out []string
	for _, a := range b.k.Addrs(id) {
		out = append(out, a.AddrPort.String())
	}
	return out
}

func (b knownBook) AppendIDs(ids []string) []string { return b.k.AppendIDs(ids) }

// listen binds the node's ports: the one given, or else the one of the
// last run when it is free (kept in file, beside the identity key and
// named after it: identity.port), so that peers that remember
// this node's address find it again after a restart; else one the
// system chooses.
func listen(o options, file string, logger *slog.Logger) (*transport.Transport, error) {
	if o.portGiven {
		return transport.Listen(o.port)
	}
	if b, err := os.ReadFile(file); err == nil {
		if last, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && last > 0 && last <= 65535 {
			if tr, err := transport.Listen(last); err == nil {
				return tr, nil
			}
			logger.Debug("the port of the last run is taken; the system chooses one", "port", last)
		}
	}
	tr, err := transport.Listen(0)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, []byte(strconv.Itoa(tr.TCPPort())+"\n"), 0o600); err != nil {
		logger.Debug("the port is not kept for the next run", "file", file, "err", err)
	}
	return tr, nil
}

// watchPeersFile dials the nodes listed in the peers file (path, or the
// default) while they are listed, re-reading it when it changes; bad
// lines are logged with the file and line. The returned channel is closed
// when the watcher has stopped (with ctx).
func watchPeersFile(ctx context.Context, path string, node *peer.Node, logger *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	if path == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			close(done)
			return done
		}
		path = filepath.Join(dir, "lanchat", "peers")
	}
	givens := node.NewGivens(ctx)
	go func() {
		defer close(done)
		invite.Watch(ctx, path, 0, func(entries []invite.Entry, errs []error) {
			for _, err := range errs {
				logger.Warn("skipping a line of the peers file", "err", err)
			}
			var list []peer.Given
			for _, e := range entries {
				list = append(list, peer.Given{What: fmt.Sprintf("peers file %s line %d", path, e.Line), ID: e.ID, Addrs: e.Addrs})
			}
			givens.Set(list)
		})
	}()
	return done
}

// slogWriter turns standard-log lines into debug records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}

// runBench runs lanchat-bench (cmd/lanchat-bench) from beside this
// binary, or from PATH, on this binary's nodes, and returns its exit
// status. The bench is a program of its own so that lanchat does not
// carry its code (which every node would map and count as its memory).
func runBench(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lanchat bench:", err)
		return 1
	}
	exe := filepath.Join(filepath.Dir(self), "lanchat-bench")
	if _, err := os.Stat(exe); err != nil {
		if exe, err = exec.LookPath("lanchat-bench"); err != nil {
			fmt.Fprintln(os.Stderr, "lanchat bench: lanchat-bench is not beside lanchat or in PATH: build both with `go build -o . . ./cmd/lanchat-bench`")
			return 1
		}
	}
	cmd := exec.Command(exe, append([]string{"--lanchat", self}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Ctrl-C reaches the bench too (same process group), which cleans up
	// its namespaces and processes; lanchat waits for it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "lanchat bench:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM {
				cmd.Process.Signal(s) // not sent to the group by a terminal
			}
		case err := <-done:
			var exit *exec.ExitError
			switch {
			case err == nil:
				return 0
			case errors.As(err, &exit) && exit.ExitCode() > 0:
				return exit.ExitCode()
			default:
				fmt.Fprintln(os.Stderr, "lanchat bench:", err)
				return 1
			}
		}
	}
}
