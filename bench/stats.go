package bench

import (
	"slices"
	"time"
)

// dist summarises a sample of durations.
type dist struct {
	n             int
	p50, p99, max time.Duration
}

func summarize(s []time.Duration) dist {
	if len(s) == 0 {
		return dist{}
	}
	s = slices.Clone(s)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return dist{n: len(s), p50: at(0.50), p99: at(0.99), max: s[len(s)-1]}
}
