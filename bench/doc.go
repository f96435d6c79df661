// Package bench implements "lanchat bench" (the program lanchat-bench,
// cmd/lanchat-bench, which lanchat runs): it measures lanchat against
// raw sockets on the same path, in the same run, and prints each figure
// beside its baseline and their ratio.
//
// Nodes are real lanchat nodes: in-process (peer.Node over real sockets
// on loopback) for round trips, throughput, fan-out and mesh formation,
// and separate processes of the lanchat binary (--lanchat, by default
// the one beside lanchat-bench) for resident memory, discovery and
// transfers. Baselines are plain Go sockets doing the same work without
// lanchat: a 64-byte TCP and UDP round trip, and 64-byte length-prefixed
// messages written one Write each, and through a buffer.
package bench
