package discovery

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIfaceWatch: in a network namespace of its own, the watch reports
// nothing while nothing changes, and a link coming up and an address
// added each once.
func TestIfaceWatch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace of its own")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8)")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the thread ends with this goroutine, and its
		// namespace with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		w := newIfaceWatch()
		if w == nil {
			t.Error("no watch")
			return
		}
		defer w.close()
		steps := []struct {
			name string
			ip   []string // nil: no change
			want bool
		}{
			{"nothing yet", nil, false},
			{"lo up", []string{"link", "set", "lo", "up"}, true},
			{"nothing since", nil, false},
			{"address added", []string{"addr", "add", "10.47.47.1/24", "dev", "lo"}, true},
			{"nothing since again", nil, false},
		}
		for _, s := range steps {
			if s.ip != nil {
				// ip runs in this thread's namespace: it is forked from it.
				if out, err := exec.Command("ip", s.ip...).CombinedOutput(); err != nil {
					t.Errorf("%s: ip %v: %v: %s", s.name, s.ip, err, out)
					return
				}
			}
			if got := w.changed(); got != s.want {
				t.Errorf("%s: changed = %v, want %v", s.name, got, s.want)
			}
		}
	}()
	<-done
}
