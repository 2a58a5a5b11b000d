package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteSuccess(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	err := Write(path, 0o640, func(w io.Writer) error {
		_, err := io.WriteString(w, "hello\n")
		return err
	})
	require.NoError(t, err)

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", string(got))

	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())
	assert.Equal(t, []string{"out.txt"}, dirEntries(t, dir), "no temporary leftovers")
}

func TestWriteReplacesExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	require.NoError(t, os.WriteFile(path, []byte("old content that is longer"), 0o600))
	require.NoError(t, Write(path, 0o644, func(w io.Writer) error {
		_, err := io.WriteString(w, "new")
		return err
	}))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	assert.Equal(t, []string{"out.txt"}, dirEntries(t, dir))
}

func TestWriteCallbackErrorLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	boom := errors.New("boom")
	err := Write(path, 0o644, func(w io.Writer) error {
		_, _ = io.WriteString(w, "partial")
		return boom
	})
	require.Error(t, err)
	assert.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), path)
	assert.NoFileExists(t, path)
	assert.Empty(t, dirEntries(t, dir), "temporary file must be removed")
}

func TestWriteCallbackErrorKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))
	err := Write(path, 0o644, func(w io.Writer) error {
		_, _ = io.WriteString(w, "partial")
		return errors.New("boom")
	})
	require.Error(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "old", string(got))
	assert.Equal(t, []string{"out.txt"}, dirEntries(t, dir))
}

func TestWritePanicLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	assert.Panics(t, func() {
		_ = Write(path, 0o644, func(w io.Writer) error { panic("bad") })
	})
	assert.Empty(t, dirEntries(t, dir))
}

func TestWriteMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "out.txt")
	called := false
	err := Write(path, 0o644, func(w io.Writer) error { called = true; return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.False(t, called)
}

func TestWriteUnwritableDirectory(t *testing.T) {
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	require.NoError(t, os.Mkdir(ro, 0o500))
	t.Cleanup(func() { _ = os.Chmod(ro, 0o700) })
	// Root (and some file systems) ignore directory permissions.
	probe, err := os.CreateTemp(ro, "probe")
	if err == nil {
		_ = probe.Close()
		_ = os.Remove(probe.Name())
		t.Skip("directory permissions are not enforced for this user")
	}
	path := filepath.Join(ro, "out.txt")
	err = Write(path, 0o644, func(w io.Writer) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.ErrorIs(t, err, os.ErrPermission)
}

func TestWriteOverDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(path, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(path, "keep"), nil, 0o600))
	err := Write(path, 0o644, func(w io.Writer) error {
		_, err := io.WriteString(w, "x")
		return err
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Equal(t, []string{"sub"}, dirEntries(t, dir), "temporary file must be removed")
}

// TestWriteParentIsFile covers an unwritable location that stays
// unwritable even for root: the "directory" is a regular file.
func TestWriteParentIsFile(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(parent, []byte("x"), 0o600))
	path := filepath.Join(parent, "out.txt")
	err := Write(path, 0o644, func(w io.Writer) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
}
