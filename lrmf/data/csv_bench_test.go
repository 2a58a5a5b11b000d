package data

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// writeBigCSV writes rows×2 numbers (a header, then varied values of
// typical length) to a file in dir and returns its path.
func writeBigCSV(tb testing.TB, dir string, rows int) string {
	tb.Helper()
	path := filepath.Join(dir, "big.csv")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("x0,x1\n")
	var buf []byte
	for i := range rows {
		buf = strconv.AppendFloat(buf[:0], float64(i)*1e-3-17.25, 'g', -1, 64)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, 1/float64(i+3), 'g', -1, 64)
		buf = append(buf, '\n')
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkReadCSVMillionRows reads a 10⁶-row CSV at D = 2 (32 MB of text,
// a 16 MB matrix). Peak memory (issue #16, item 4):
//
//	go test -c -o /tmp/data.test ./lrmf/data/
//	/usr/bin/time -v /tmp/data.test -test.run '^$' -test.bench ReadCSVMillionRows -test.benchtime 1x
func BenchmarkReadCSVMillionRows(b *testing.B) {
	const rows = 1_000_000
	path := writeBigCSV(b, b.TempDir(), rows)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		m, err := ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		if r, c := m.Dims(); r != rows || c != 2 {
			b.Fatalf("read %d×%d", r, c)
		}
	}
}

// TestReadCSVMillionRowsPeakRSS reads a 10⁶-row CSV at D = 2 and checks the
// process's peak resident memory grows by less than 5× the 16 MB result
// (measured: 3.1×, from the result's geometric growth and one short string
// per line awaiting collection; holding the 32 MB text would exceed it).
// Linux only: it resets the peak through /proc/self/clear_refs and reads
// VmHWM. About 2 s, so skipped with -short.
func TestReadCSVMillionRowsPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes and reads a 32 MB file")
	}
	const rows = 1_000_000
	path := writeBigCSV(t, t.TempDir(), rows)
	var m *mat.Dense
	grew := peakRSSGrowth(t, func() {
		var err error
		m, err = ReadFile(path)
		require.NoError(t, err)
	})
	r, c := m.Dims()
	require.Equal(t, [2]int{rows, 2}, [2]int{r, c})
	final := int64(rows * 2 * 8)
	t.Logf("peak RSS grew %d MB while reading; result %d MB", grew>>20, final>>20)
	assert.Less(t, grew, 5*final, "peak RSS growth")
}

// peakRSSGrowth returns by how many bytes the process's peak resident set
// grew while f ran. Linux only (it skips t elsewhere): it resets the peak
// through /proc/self/clear_refs and reads VmRSS before and VmHWM after.
func peakRSSGrowth(t *testing.T, f func()) int64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	before := procStatusKB(t, "VmRSS")
	f()
	return (procStatusKB(t, "VmHWM") - before) * 1024
}

// procStatusKB returns a "kB" field of /proc/self/status.
func procStatusKB(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err)
			return v
		}
	}
	t.Skipf("no %s in /proc/self/status", field)
	return 0
}
