// Package csrchash fingerprints the C sources that package bindings
// compiles through an #include of ../csrc.
//
// The go command hashes only the files in a package's own directory, so an
// edit under csrc/ would otherwise leave a stale cgo object in the build
// cache. bindings/csrc_hash.go records this fingerprint: regenerating it
// (go generate ./bindings) changes a file of the package and forces the C
// to be recompiled, and a test fails while it is out of date.
package csrchash

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dirs are the directories, relative to the module root, whose C sources
// bindings compiles.
var Dirs = []string{"csrc/include", "csrc/common", "csrc/cpu"}

// Sum returns the SHA-256 over the names and contents of every .c, .h and
// .inc file under Dirs of the module rooted at root, in sorted order.
func Sum(root string) (string, error) {
	var files []string
	for _, d := range Dirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch filepath.Ext(p) {
			case ".c", ".h", ".inc":
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(root, f)
		h.Write([]byte(filepath.ToSlash(rel) + "\x00"))
		h.Write([]byte(strings.ReplaceAll(string(b), "\r\n", "\n")))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
