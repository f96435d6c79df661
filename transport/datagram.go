package transport

// DatagramMagic opens every datagram.
const DatagramMagic = "LC"

// MaxDatagram is the largest datagram read or sent.
const MaxDatagram = 65507
