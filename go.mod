module lanchat

go 1.26

require (
	github.com/chzyer/readline v1.5.1
	github.com/grandcat/zeroconf v1.0.1-0.20230119201135-e4f60f8407b1
	github.com/miekg/dns v1.1.41
	github.com/zeebo/blake3 v0.2.4
	go.etcd.io/bbolt v1.4.3
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.31.0
	golang.org/x/term v0.30.0
	golang.org/x/text v0.41.0
)

require (
	github.com/cenkalti/backoff v2.2.1+incompatible // indirect
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	golang.org/x/net v0.0.0-20210423184538-5f58ad60dda6 // indirect
)
