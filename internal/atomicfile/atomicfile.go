// Package atomicfile writes files so that readers observe either the old
// content or the complete new content, never a partially written file.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// bufSize is the size of the write buffer handed to the callback.
const bufSize = 256 << 10

// Write atomically replaces the file at path with the bytes fn writes.
//
// fn receives a buffered writer backed by a temporary file created with
// os.CreateTemp in the same directory as path (so that the final rename
// stays on one file system). After fn returns nil, Write flushes the
// buffer, fsyncs the temporary file, closes it, sets its permission bits
// to exactly perm (the process umask is not applied), and renames it over
// path. Finally it fsyncs the directory on a best-effort basis so the
// rename itself is durable.
//
// If any step fails, including fn returning an error or panicking, the
// temporary file is removed, path is left untouched, and (except for a
// panic, which is re-raised) an error naming path is returned; the error
// wraps the underlying cause, so errors.Is and errors.As work on it.
//
// If path is a symbolic link, the link itself is replaced, not its target.
func Write(path string, perm os.FileMode, fn func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	closed, done := false, false
	defer func() {
		if done {
			return
		}
		if !closed {
			_ = f.Close()
		}
		_ = os.Remove(tmp)
	}()

	bw := bufio.NewWriterSize(f, bufSize)
	if err := fn(bw); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: sync: %w", path, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: close: %w", path, err)
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done = true
	syncDir(dir)
	return nil
}

// syncDir fsyncs a directory so that a rename inside it is durable. It is
// best effort: some platforms and file systems do not support it, and the
// new file is already in place when it runs.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
