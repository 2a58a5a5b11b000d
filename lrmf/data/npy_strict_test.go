package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// npyWithHeader builds a .npy file of format version major.0 whose header
// dict is hdr verbatim (no padding added) followed by data.
func npyWithHeader(major byte, hdr string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(npyMagic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		_ = binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	} else {
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(hdr)))
	}
	b.WriteString(hdr)
	b.Write(data)
	return b.Bytes()
}

// decodeBoth decodes b as a regular file of known size and as a stream of
// unknown size, checks that both agree, and returns the first result.
func decodeBoth(t *testing.T, b []byte) ([]float64, [2]int, error) {
	t.Helper()
	m1, err1 := decodeNPY(bytes.NewReader(b), int64(len(b)), "x.npy")
	m2, err2 := decodeNPY(bytes.NewReader(b), -1, "x.npy")
	require.Equal(t, err1 == nil, err2 == nil, "sized: %v; stream: %v", err1, err2)
	if err1 != nil {
		var pe *ParseError
		require.True(t, errors.As(err1, &pe), "want *ParseError, got %T: %v", err1, err1)
		require.True(t, errors.As(err2, &pe), "want *ParseError, got %T: %v", err2, err2)
		return nil, [2]int{}, err1
	}
	require.Equal(t, m1.RawMatrix().Data, m2.RawMatrix().Data)
	r, c := m1.Dims()
	return m1.RawMatrix().Data, [2]int{r, c}, nil
}

// The fuzzer's finding (issue #16): a version-2 header whose 4-byte length
// field reads 0x7b000000 made npyio allocate 2 GiB (twice) for a 90-byte
// file; two workers exhausted memory. The length is now checked against
// the file size and MaxNPYHeaderBytes before anything is allocated.
func TestNPYHugeHeaderLengthRefusedBeforeAllocating(t *testing.T) {
	crash := []byte("\x93NUMPY\x02D\x00\x00\x00{'descr': '<f8', 'for\x00ran_order': False, 'shape': (2, 2), }        \n")
	v2 := append([]byte("\x93NUMPY\x02\x00\x00\x00\x00\x7b"), crash[12:]...) // version 2.0, length 0x7b000000
	for name, b := range map[string][]byte{"fuzzer input": crash, "version 2.0": v2} {
		t.Run(name, func(t *testing.T) {
			for _, size := range []int64{int64(len(b)), -1} {
				alloc := allocatedBy(func() {
					_, err := decodeNPY(bytes.NewReader(b), size, "x.npy")
					require.Error(t, err)
				})
				assert.Less(t, alloc, uint64(1<<20), "size %d: bytes allocated", size)
			}
		})
	}
	_, _, err := decodeBoth(t, v2)
	assert.ErrorContains(t, err, "header length 2063597568")
}

// A shape that claims more data than the file holds is refused before the
// array is allocated, whether the file size is known or not.
func TestNPYShapeClaimingMoreThanFileRefusedBeforeAllocating(t *testing.T) {
	b := rawNPY("<f8", false, "(100000000, 10)", f64bytes(binary.LittleEndian, 1, 2, 3, 4))
	for _, size := range []int64{int64(len(b)), -1} {
		var err error
		alloc := allocatedBy(func() { _, err = decodeNPY(bytes.NewReader(b), size, "big.npy") })
		require.Error(t, err)
		assert.Contains(t, err.Error(), "truncated data")
		assert.Less(t, alloc, uint64(4<<20), "size %d: bytes allocated", size)
	}
}

// allocatedBy returns the bytes the heap allocated while f ran.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestNPYHeaderVariantsAccepted(t *testing.T) {
	le := f64bytes(binary.LittleEndian, 1, 2, 3, 4)
	cases := map[string][]byte{
		"version 2.0":         npyWithHeader(2, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }\n", le),
		"version 3.0":         npyWithHeader(3, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }\n", le),
		"keys in other order": npyWithHeader(1, "{'shape': (2, 2), 'fortran_order': False, 'descr': '<f8'}  \n", le),
		"double quotes":       npyWithHeader(1, `{"descr": "<f8", "fortran_order": False, "shape": (2,2)}`+"\n", le),
		"python 2 longs":      npyWithHeader(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 2L), }\n", le),
		"native order":        npyWithHeader(1, "{'descr': '=f8', 'fortran_order': False, 'shape': (2, 2), }\n", f64bytes(binary.NativeEndian, 1, 2, 3, 4)),
		"trailing comma":      npyWithHeader(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2,), }\n", le),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			data, dims, err := decodeBoth(t, b)
			require.NoError(t, err)
			assert.Equal(t, [2]int{2, 2}, dims)
			assert.Equal(t, []float64{1, 2, 3, 4}, data)
		})
	}
	data, dims, err := decodeBoth(t, npyWithHeader(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", f64bytes(binary.LittleEndian, 1, 2, 3)))
	require.NoError(t, err)
	assert.Equal(t, [2]int{3, 1}, dims)
	assert.Equal(t, []float64{1, 2, 3}, data)
}

func TestNPYStrictRejects(t *testing.T) {
	le4 := f64bytes(binary.LittleEndian, 1, 2, 3, 4)
	hdr := func(s string) []byte { return npyWithHeader(1, s+"\n", le4) }
	good := "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }"
	cases := []struct {
		name string
		b    []byte
		msg  string
	}{
		{"trailing data", npyWithHeader(1, good+"\n", append(le4, 0)), "trailing data"},
		{"version 1.1", append([]byte("\x93NUMPY\x01\x01"), npyWithHeader(1, good+"\n", le4)[8:]...), "version 1.1"},
		{"version 4.0", append([]byte("\x93NUMPY\x04\x00"), npyWithHeader(1, good+"\n", le4)[8:]...), "version 4.0"},
		{"zero header length", npyWithHeader(1, "", le4), "header length 0"},
		{"header past end", npyWithHeader(1, good+"\n", nil)[:40], "truncated .npy header"},
		{"over limit", npyWithHeader(2, "{"+strings.Repeat(" ", MaxNPYHeaderBytes)+"}\n", nil), "exceeds the limit"},
		{"no newline", npyWithHeader(1, good, le4), "final newline"},
		{"missing shape", hdr("{'descr': '<f8', 'fortran_order': False}"), `no "shape" key`},
		{"extra key", hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), 'x': 1}"), `unexpected key "x"`},
		{"duplicate key", hdr("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}"), "duplicate key"},
		{"1-D without comma", hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (4)}"), "(n,)"},
		{"negative dim", hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (-2, 2)}"), "non-negative integer"},
		{"huge dim", hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999, 2)}"), "too large"},
		{"overflowing shape", hdr("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4)}"), "too large"},
		{"bad bool", hdr("{'descr': '<f8', 'fortran_order': 0, 'shape': (2, 2)}"), "True or False"},
		{"structured", hdr("{'descr': [('a', '<f8'), ('b', '<f8')], 'fortran_order': False, 'shape': (2,)}"), `unsupported dtype "[('a', '<f8'), ('b', '<f8')]"`},
		{"float16", hdr("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2)}"), `unsupported dtype "<f2"`},
		{"no order", hdr("{'descr': 'f8', 'fortran_order': False, 'shape': (2, 2)}"), `unsupported dtype "f8"`},
		{"unterminated string", hdr("{'descr: '<f8'}"), "want ':'"},
		{"escape", hdr(`{'de\scr': '<f8'}`), "escape"},
		{"not a dict", hdr("['descr']"), "want '{'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeBoth(t, tc.b)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "x.npy: "), err.Error())
		})
	}
}

// An error of the file itself (not of its content) is returned as such.
func TestNPYReadErrorPassedThrough(t *testing.T) {
	b := rawNPY("<f8", false, "(2, 2)", f64bytes(binary.LittleEndian, 1, 2, 3, 4))
	boom := errors.New("disk on fire")
	_, err := decodeNPY(io.MultiReader(bytes.NewReader(b[:60]), iotestErr{boom}), -1, "x.npy")
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "x.npy")
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }
