// Package e2e holds lanchat's end-to-end tests: they build the lanchat
// binary once (with -race when the tests run with -race), start real
// processes and drive them through stdin with --json output, reading one
// JSON event per line from stdout.
//
// Tests that need several machines build a private LAN out of network
// namespaces (a bridge namespace plus one namespace per host, joined by
// veth pairs), so that nodes find each other with real mDNS without any
// packet reaching the machine's own network. Each host has its own hostname
// (h1, h2, ...) and its own HOME and XDG directories. Those tests need root
// and iproute2 and skip otherwise; the avahi interop test also needs
// avahi-daemon, avahi-utils and dbus-daemon, and skips when they are
// missing.
//
// Tests that need no root run nodes on loopback with --no-mdns. As root,
// they run in a namespace of their own that has only a loopback interface,
// so that nothing reaches the machine's network even if --no-mdns were
// ignored.
//
// Every node is killed at the end of its test, which fails if a node
// panicked, raced (race builds) or printed anything but JSON objects with
// "event" and an RFC 3339 "ts"; on failure its stderr and events are logged.
//
// Environment:
//
//	LANCHAT_E2E_BIN=path   test this binary instead of building one
//	LANCHAT_E2E_DUMP=1     log every node's events and stderr, pass or fail
//	LANCHAT_E2E_NO_NETNS=1 run the loopback tests on the machine's loopback
//
// Namespaces are named lc<pid>-<n>-sw, lc<pid>-<n>-h<i> and lc<pid>-<n>-lo;
// leftovers of killed runs (whose pid is gone) are removed by the next run.
package e2e
