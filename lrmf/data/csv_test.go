package data

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

func TestParseErrorFormat(t *testing.T) {
	cases := []struct {
		e    ParseError
		want string
	}{
		{ParseError{"a.csv", 12, 3, `not a finite number "nan"`}, `a.csv:12: column 3: not a finite number "nan"`},
		{ParseError{"a.csv", 12, 0, "expected 3 fields"}, "a.csv:12: expected 3 fields"},
		{ParseError{"a.csv", 0, 0, "no data rows"}, "a.csv: no data rows"},
		{ParseError{"", 4, 2, "bad"}, "line 4: column 2: bad"},
		{ParseError{"", 0, 0, "bad"}, "bad"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, tc.e.Error())
	}
}

// parseErr reads src with ReadCSV and returns the *ParseError it must fail with.
func parseErr(t *testing.T, src string) *ParseError {
	t.Helper()
	m, err := ReadCSV(strings.NewReader(src), "in.csv")
	require.Error(t, err)
	assert.Nil(t, m)
	var pe *ParseError
	require.True(t, errors.As(err, &pe), "want *ParseError, got %T: %v", err, err)
	assert.Equal(t, "in.csv", pe.File)
	assert.True(t, strings.HasPrefix(err.Error(), "in.csv"), err.Error())
	return pe
}

func TestReadCSVBasic(t *testing.T) {
	src := "\xef\xbb\xbf# a comment\n\n 1, 2.5 ,-3e2\r\n4,5,6\n  # indented comment\n7,0x1p-2,  8\n\n"
	m, err := ReadCSV(strings.NewReader(src), "in.csv")
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 2.5, -300, 4, 5, 6, 7, 0.25, 8}, m.RawMatrix().Data)
	r, c := m.Dims()
	assert.Equal(t, [2]int{3, 3}, [2]int{r, c})
}

func TestReadCSVNoTrailingNewline(t *testing.T) {
	m, err := ReadCSV(strings.NewReader("1,2\n3,4"), "in.csv")
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 2, 3, 4}, m.RawMatrix().Data)
}

func TestReadCSVHeaderDetection(t *testing.T) {
	m, err := ReadCSV(strings.NewReader("# data\nx, y\n1,2\n3,4\n"), "in.csv")
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 2, 3, 4}, m.RawMatrix().Data)

	// A first line with a number is data, not a header.
	m, err = ReadCSV(strings.NewReader("1,2\n3,4\n"), "in.csv")
	require.NoError(t, err)
	r, _ := m.Dims()
	assert.Equal(t, 2, r)

	// Mixed first line: it is data, and the text field is an error.
	pe := parseErr(t, "x,2\n3,4\n")
	assert.Equal(t, 1, pe.Line)
	assert.Equal(t, 1, pe.Col)
	assert.Contains(t, pe.Msg, `not a number "x"`)

	// A second text line is not a header.
	pe = parseErr(t, "x,y\nu,v\n1,2\n")
	assert.Equal(t, 2, pe.Line)
	assert.Equal(t, 1, pe.Col)

	// The header fixes the expected field count.
	pe = parseErr(t, "x,y,z\n1,2\n")
	assert.Equal(t, 2, pe.Line)
	assert.Contains(t, pe.Msg, "expected 3 fields")
	assert.Contains(t, pe.Msg, "header on line 1")
	assert.Contains(t, pe.Msg, "got 2")
}

func TestReadCSVErrors(t *testing.T) {
	cases := []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"nan", "1,2\n3,4\n5,nan\n", 3, 2, `not a finite number "nan"`},
		{"NaN upper", "1,2\n3,NaN\n", 2, 2, `not a finite number "NaN"`},
		{"inf", "1,2\n+Inf,4\n", 2, 1, `not a finite number "+Inf"`},
		{"infinity", "1,-infinity\n", 1, 2, "not a finite number"},
		{"overflow", "1,2\n3,1e999\n", 2, 2, `out of float64 range "1e999"`},
		{"abc", "1,2,3\n4,abc,6\n", 2, 2, `not a number "abc"`},
		{"empty field", "1,2,3\n4,,6\n", 2, 2, "empty field"},
		{"trailing comma", "1,2\n3,4,\n", 2, 0, "expected 2 fields (like line 1), got 3"},
		{"ragged short", "1,2,3\n4,5,6\n7,8\n", 3, 0, "expected 3 fields (like line 1), got 2"},
		{"ragged long", "1,2\n3,4,5\n", 2, 0, "expected 2 fields (like line 1), got 3"},
		{"spaces", "1 2 3\n", 1, 1, "separated by commas"},
		{"semicolons", "1;2\n", 1, 1, "separated by commas"},
		{"empty file", "", 0, 0, "no data rows"},
		{"only comments", "# nothing\n\n   \n# here\n", 0, 0, "no data rows"},
		{"header only", "# c\nx,y\n\n", 0, 0, "no data rows (only a header, on line 2)"},
		// Comment and blank lines count toward line numbers.
		{"comments before error", "# c1\n\n1,2\n# c2\n\n3,inf\n", 6, 2, "not a finite number"},
		{"crlf", "x,y\r\n1,2\r\n3,oops\r\n", 3, 2, `not a number "oops"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pe := parseErr(t, tc.src)
			assert.Equal(t, tc.line, pe.Line, "line")
			assert.Equal(t, tc.col, pe.Col, "column")
			assert.Contains(t, pe.Msg, tc.msg)
		})
	}
}

func TestReadCSVErrorString(t *testing.T) {
	_, err := ReadCSV(strings.NewReader("a,b\n1,2\n3,nan\n"), "a.csv")
	require.Error(t, err)
	assert.Equal(t, `a.csv:3: column 2: not a finite number "nan"`, err.Error())
}

func TestReadCSVLongField(t *testing.T) {
	long := strings.Repeat("z", 1000)
	pe := parseErr(t, "1,"+long+"\n")
	assert.Less(t, len(pe.Msg), 100, "long fields are shortened in messages")
}

func TestReadCSVLongLine(t *testing.T) {
	// Well over bufio.Scanner's default 64 KiB limit.
	const cols = 50000
	row := strings.TrimSuffix(strings.Repeat("1.2345678,", cols), ",")
	m, err := ReadCSV(strings.NewReader(row+"\n"+row+"\n"), "wide.csv")
	require.NoError(t, err)
	r, c := m.Dims()
	assert.Equal(t, [2]int{2, cols}, [2]int{r, c})
}

func TestReadCSVTooLongLine(t *testing.T) {
	src := "1\n" + strings.Repeat("1", MaxLineBytes+10) + "\n"
	pe := parseErr(t, src)
	assert.Equal(t, 2, pe.Line)
	assert.Contains(t, pe.Msg, "longer than")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestReadCSVReadError(t *testing.T) {
	_, err := ReadCSV(failingReader{}, "in.csv")
	require.Error(t, err)
	var pe *ParseError
	assert.False(t, errors.As(err, &pe), "I/O errors are not parse errors")
	assert.Contains(t, err.Error(), "in.csv")
	assert.Contains(t, err.Error(), "disk on fire")
}

func TestCSVRoundTripBitExact(t *testing.T) {
	vals := []float64{
		0, math.Copysign(0, -1), 1, -1, 0.1, 1.0 / 3, math.Pi, -math.E,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64,
		2.2250738585072014e-308, 1e21, 1e-7, 123456789012345678, math.Nextafter(1, 2),
	}
	x := mat.NewDense(len(vals)/2, 2, vals)
	dir := t.TempDir()

	for _, tc := range []struct {
		name   string
		labels []int
		header []string
	}{
		{"plain", nil, nil},
		{"header", nil, []string{"x", "y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".csv")
			require.NoError(t, WriteCSV(path, x, tc.labels, tc.header))
			got, err := ReadFile(path)
			require.NoError(t, err)
			r, c := got.Dims()
			require.Equal(t, [2]int{len(vals) / 2, 2}, [2]int{r, c})
			for i, v := range got.RawMatrix().Data {
				assert.Equal(t, math.Float64bits(vals[i]), math.Float64bits(v), "value %d: %v vs %v", i, vals[i], v)
			}
		})
	}
}

func TestWriteCSVLabelsAndHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.csv")
	x := mat.NewDense(2, 2, []float64{1.5, -2, 0.1, 3})
	require.NoError(t, WriteCSV(path, x, []int{0, 1}, []string{"x", "y"}))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "x,y,label\n1.5,-2,0\n0.1,3,1\n", string(b))

	// Labels come back as the last column.
	m, err := ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, []float64{1.5, -2, 0, 0.1, 3, 1}, m.RawMatrix().Data)

	require.NoError(t, WriteCSV(path, x, []int{7, 8}, nil))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "1.5,-2,7\n0.1,3,8\n", string(b))
}

func TestWriteCSVErrorsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	x := mat.NewDense(2, 2, []float64{1, 2, 3, 4})
	cases := []struct {
		name   string
		x      *mat.Dense
		labels []int
		header []string
		msg    string
	}{
		{"nil matrix", nil, nil, nil, "empty"},
		{"empty matrix", &mat.Dense{}, nil, nil, "empty"},
		{"labels length", x, []int{1}, nil, "1 labels for 2 rows"},
		{"header length", x, nil, []string{"a"}, "1 names for 2 columns"},
		{"numeric header", x, nil, []string{"a", "2"}, "number"},
		{"nan header", x, nil, []string{"a", "nan"}, "number"},
		{"comma header", x, nil, []string{"a,b", "c"}, "comma"},
		{"empty header", x, nil, []string{"", "c"}, "empty"},
		{"comment header", x, nil, []string{"#a", "c"}, "'#'"},
		{"nan value", mat.NewDense(1, 2, []float64{1, math.NaN()}), nil, nil, "row 0, column 1"},
		{"inf value", mat.NewDense(1, 2, []float64{math.Inf(-1), 1}), nil, nil, "row 0, column 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteCSV(path, tc.x, tc.labels, tc.header)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), tc.msg)
			assert.NoFileExists(t, path)
		})
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "no temporary leftovers")
}

func TestWriteCSVUnwritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "out.csv")
	err := WriteCSV(path, mat.NewDense(1, 1, []float64{1}), nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.csv")
	_, err := ReadFile(missing)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), missing)

	_, err = ReadFile(filepath.Join(dir, "x.npz"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "x.npz")

	bad := filepath.Join(dir, "bad.txt")
	require.NoError(t, os.WriteFile(bad, []byte("x,y\n1,2\n3,nan\n"), 0o600))
	_, err = ReadFile(bad)
	var pe *ParseError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, bad, pe.File)
	assert.Equal(t, 3, pe.Line)
	assert.Equal(t, 2, pe.Col)
}
