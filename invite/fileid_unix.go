//go:build unix

package invite

import (
	"fmt"
	"io/fs"
	"syscall"
)

// fileID names the file behind fi (device and inode).
func fileID(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return ""
}
