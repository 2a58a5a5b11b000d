package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio/npy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// writeWithNpyio writes v to dir/name with npyio and returns the path.
func writeWithNpyio(t *testing.T, dir, name string, v any) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, npy.Write(&buf, v))
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
	return path
}

// rawNPY builds a version 1.0 .npy file by hand, for headers npyio does not
// write (Fortran order, big-endian, odd shapes, truncated data).
func rawNPY(descr string, fortran bool, shape string, data []byte) []byte {
	order := "False"
	if fortran {
		order = "True"
	}
	hdr := "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }"
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	hdr += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	b.Write(data)
	return b.Bytes()
}

func f64bytes(order binary.ByteOrder, vals ...float64) []byte {
	var b bytes.Buffer
	for _, v := range vals {
		_ = binary.Write(&b, order, v)
	}
	return b.Bytes()
}

func writeRaw(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, content, 0o600))
	return path
}

func TestNPYRoundTripFloat64(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), math.Pi, -1e-300, math.MaxFloat64, math.SmallestNonzeroFloat64}
	x := mat.NewDense(3, 2, vals)
	path := filepath.Join(t.TempDir(), "x.npy")
	require.NoError(t, WriteNPY(path, x))
	got, err := ReadNPY(path)
	require.NoError(t, err)
	r, c := got.Dims()
	require.Equal(t, [2]int{3, 2}, [2]int{r, c})
	for i, v := range got.RawMatrix().Data {
		assert.Equal(t, math.Float64bits(vals[i]), math.Float64bits(v))
	}

	// ReadFile dispatches on the extension, case-insensitively.
	upper := filepath.Join(t.TempDir(), "X.NPY")
	require.NoError(t, WriteNPY(upper, x))
	got, err = ReadFile(upper)
	require.NoError(t, err)
	assert.True(t, mat.Equal(x, got))
}

func TestNPYWriteIsLittleEndianCOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.npy")
	require.NoError(t, WriteNPY(path, mat.NewDense(2, 3, []float64{1, 2, 3, 4, 5, 6})))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	rd, err := npy.NewReader(f)
	require.NoError(t, err)
	assert.Equal(t, "'<f8'", rd.Header.Descr.Type)
	assert.False(t, rd.Header.Descr.Fortran)
	assert.Equal(t, []int{2, 3}, rd.Header.Descr.Shape)
}

func TestNPYReadFloat32(t *testing.T) {
	dir := t.TempDir()
	vals := []float32{1.5, -2.25, 3.1, 0}
	path := writeWithNpyio(t, dir, "f32.npy", vals)
	got, err := ReadNPY(path)
	require.NoError(t, err)
	r, c := got.Dims()
	assert.Equal(t, [2]int{4, 1}, [2]int{r, c}, "1-D arrays become n×1")
	for i, v := range vals {
		assert.Equal(t, float64(v), got.At(i, 0))
	}

	// 2-D float32, written by hand.
	var b bytes.Buffer
	for _, v := range []float32{1, 2, 3, 4, 5, 6} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	path = writeRaw(t, dir, "f32_2d.npy", rawNPY("<f4", false, "(3, 2)", b.Bytes()))
	got, err = ReadNPY(path)
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 2, 3, 4, 5, 6}, got.RawMatrix().Data)
	r, c = got.Dims()
	assert.Equal(t, [2]int{3, 2}, [2]int{r, c})
}

func TestNPYReadBigEndian(t *testing.T) {
	path := writeRaw(t, t.TempDir(), "be.npy",
		rawNPY(">f8", false, "(2, 2)", f64bytes(binary.BigEndian, 1, 2, 3, 4)))
	got, err := ReadNPY(path)
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 2, 3, 4}, got.RawMatrix().Data)
}

// npyErr reads path with ReadNPY and returns the *ParseError it fails with,
// checking that the message names the file.
func npyErr(t *testing.T, path string) *ParseError {
	t.Helper()
	m, err := ReadNPY(path)
	require.Error(t, err)
	assert.Nil(t, m)
	assert.Contains(t, err.Error(), path)
	var pe *ParseError
	require.True(t, errors.As(err, &pe), "want *ParseError, got %T: %v", err, err)
	assert.Equal(t, path, pe.File)
	return pe
}

func TestNPYRejects(t *testing.T) {
	dir := t.TempDir()
	le := binary.LittleEndian
	cases := []struct {
		name string
		path string
		msg  string
	}{
		{"int64", writeWithNpyio(t, dir, "i64.npy", []int64{1, 2, 3}), `unsupported dtype "<i8"`},
		{"bool", writeWithNpyio(t, dir, "bool.npy", []bool{true}), "unsupported dtype"},
		{"complex", writeWithNpyio(t, dir, "c128.npy", []complex128{1}), "unsupported dtype"},
		{"3-D", writeRaw(t, dir, "3d.npy", rawNPY("<f8", false, "(2, 1, 1)", f64bytes(le, 1, 2))), "3-D array with shape (2, 1, 1)"},
		{"0-D", writeRaw(t, dir, "0d.npy", rawNPY("<f8", false, "()", f64bytes(le, 1))), "0-D array"},
		{"fortran", writeRaw(t, dir, "fortran.npy", rawNPY("<f8", true, "(2, 2)", f64bytes(le, 1, 2, 3, 4))), "Fortran"},
		{"zero rows", writeRaw(t, dir, "empty.npy", rawNPY("<f8", false, "(0, 3)", nil)), "no data rows"},
		{"zero rows 1-D", writeRaw(t, dir, "empty1.npy", rawNPY("<f8", false, "(0,)", nil)), "no data rows"},
		{"zero cols", writeRaw(t, dir, "nocols.npy", rawNPY("<f8", false, "(3, 0)", nil)), "no columns"},
		{"truncated data", writeRaw(t, dir, "trunc.npy", rawNPY("<f8", false, "(2, 2)", f64bytes(le, 1, 2))), "truncated data"},
		{"truncated header", writeRaw(t, dir, "trunch.npy", []byte("\x93NUMPY\x01\x00\x40")), "truncated"},
		{"not npy", writeRaw(t, dir, "text.npy", []byte("1,2\n3,4\n")), "not a .npy file"},
		{"empty file", writeRaw(t, dir, "zero.npy", nil), "truncated"},
		{"no newline in header", writeRaw(t, dir, "nonl.npy", []byte("\x93NUMPY\x01\x00\x04\x00abcd")), "header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pe := npyErr(t, tc.path)
			assert.Contains(t, pe.Msg, tc.msg)
		})
	}
}

func TestNPYRejectsNonFinite(t *testing.T) {
	dir := t.TempDir()
	x := mat.NewDense(3, 2, []float64{1, 2, 3, 4, 5, 6})
	x.Set(2, 1, math.NaN())
	pe := npyErr(t, writeWithNpyio(t, dir, "nan.npy", x))
	assert.Contains(t, pe.Msg, "row 2, column 1")
	assert.Contains(t, pe.Msg, "NaN")

	pe = npyErr(t, writeWithNpyio(t, dir, "inf.npy", []float32{1, float32(math.Inf(1))}))
	assert.Contains(t, pe.Msg, "row 1, column 0")
	assert.Contains(t, pe.Msg, "+Inf")
}

func TestNPYMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.npy")
	_, err := ReadNPY(path)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), path)
	var pe *ParseError
	assert.False(t, errors.As(err, &pe))

	_, err = ReadFile(path)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestWriteNPYErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.npy")
	err := WriteNPY(path, mat.NewDense(1, 2, []float64{math.Inf(1), 0}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "row 0, column 0")
	require.Error(t, WriteNPY(path, nil))
	assert.NoFileExists(t, path)

	missing := filepath.Join(dir, "no", "x.npy")
	err = WriteNPY(missing, mat.NewDense(1, 1, []float64{1}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), missing)

	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents)
}

func TestNPYErrorMentionsFileInString(t *testing.T) {
	path := writeWithNpyio(t, t.TempDir(), "ints.npy", []int64{1})
	_, err := ReadFile(path)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), path+": "), err.Error())
}
