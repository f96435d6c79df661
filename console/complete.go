package console

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// completer is the prompt's Tab: commands; peer names after the commands
// that take one and inside chat lines (a name that starts the line gets
// ": ", as IRC clients do); ids after /trust; options after /time,
// /echo and /msg. Names match without case. It runs on readline's
// goroutine and only reads the peer table.
type completer struct{ c *Console }

// optionsOf lists the options each command takes.
var optionsOf = map[string][]string{
	"msg":  {"-udp"},
	"time": {"-tcp", "-udp"},
	"echo": {"-tcp", "-udp", "-n", "-size", "-i"},
}

// valueOptions are the options followed by a value.
var valueOptions = map[string]bool{"-n": true, "-size": true, "-i": true}

// Do implements readline.AutoCompleter: the candidates' missing parts for
// the word before the cursor, and how long that word is.
func (cp completer) Do(line []rune, pos int) ([][]rune, int) {
	text := string(line[:pos])
	start := strings.LastIndexByte(text, ' ') + 1
	word := text[start:]
	before := strings.Fields(text[:start])
	var cands []string
	switch {
	case strings.HasPrefix(text, "/") && !strings.HasPrefix(text, "//") && len(before) == 0:
		for _, cmd := range commands {
			cands = append(cands, "/"+cmd.name+" ")
		}
	case strings.HasPrefix(text, "/") && !strings.HasPrefix(text, "//"):
		cands = cp.argument(strings.TrimPrefix(before[0], "/"), before[1:], word)
	default:
		suffix := " "
		if len(before) == 0 {
			suffix = ": "
		}
		for _, n := range cp.c.node.PeerNames() {
			cands = append(cands, n+suffix)
		}
	}
	return matches(cands, word), len([]rune(word))
}

// argument lists the candidates for an argument of command cmd, after
// the arguments given before it.
func (cp completer) argument(cmd string, given []string, word string) []string {
	names := func() []string {
		var out []string
		for _, n := range cp.c.node.PeerNames() {
			out = append(out, n+" ")
		}
		return out
	}
	positional := 0
	for i := 0; i < len(given); i++ {
		switch g := given[i]; {
		case valueOptions[g]:
			i++ // its value
		case !strings.HasPrefix(g, "-"):
			positional++
		}
	}
	switch cmd {
	case "trust":
		if len(given) > 0 {
			return nil
		}
		var ids []string
		for _, p := range cp.c.node.Peers() {
			ids = append(ids, p.ID+" ")
		}
		return ids
	case "forget", "drop", "verify", "history":
		if len(given) > 0 {
			return nil
		}
		return names()
	case "send":
		if positional == 0 {
			return names()
		}
		return localPaths(word)
	case "msg", "time", "echo":
		var out []string
		if strings.HasPrefix(word, "-") || (cmd == "echo" && positional >= 1) {
			for _, o := range optionsOf[cmd] {
				out = append(out, o+" ")
			}
			return out
		}
		if positional == 0 {
			return names()
		}
	}
	return nil
}

// maxPaths bounds the candidates listed from one folder.
const maxPaths = 200

// localPaths lists the files and folders that could complete word, a
// path (~ for the home folder): folders end with / (go on typing),
// files with a space.
func localPaths(word string) []string {
	dir, base := filepath.Split(word)
	list := dir
	if list == "" {
		list = "."
	}
	ents, err := os.ReadDir(expandHome(list))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, base) || (strings.HasPrefix(name, ".") && !strings.HasPrefix(base, ".")) {
			continue
		}
		if e.IsDir() {
			out = append(out, dir+name+"/")
		} else {
			out = append(out, dir+name+" ")
		}
		if len(out) == maxPaths {
			break
		}
	}
	return out
}

// matches keeps the candidates that start with word, compared without
// case, and returns what each adds to it.
func matches(cands []string, word string) [][]rune {
	var out [][]rune
	slices.Sort(cands)
	cands = slices.Compact(cands)
	wr := []rune(word)
	for _, c := range cands {
		cr := []rune(c)
		if len(cr) < len(wr) {
			continue
		}
		head := string(cr[:len(wr)])
		if strings.EqualFold(head, word) {
			out = append(out, cr[len(wr):])
		}
	}
	return out
}
