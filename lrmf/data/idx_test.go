package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// idxBytes encodes an unsigned-byte IDX array with the given dimensions.
func idxBytes(dims []uint32, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, idxUbyte, byte(len(dims))})
	for _, d := range dims {
		_ = binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(data)
	return b.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return z.Bytes()
}

func TestReadIDXRoundTrip(t *testing.T) {
	dir := t.TempDir()
	data := []byte{0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255}
	raw := idxBytes([]uint32{2, 3, 2}, data)
	for name, content := range map[string][]byte{"plain.idx": raw, "zipped.gz": gzipBytes(t, raw), "zipped-no-ext": gzipBytes(t, raw)} {
		t.Run(name, func(t *testing.T) {
			got, err := ReadIDX(writeRaw(t, dir, name, content))
			require.NoError(t, err)
			assert.Equal(t, []int{2, 3, 2}, got.Dims)
			assert.Equal(t, data, got.Data)
			// The stream path (size unknown) gives the same.
			got, err = decodeIDX(bytes.NewReader(content), -1, -1, name)
			require.NoError(t, err)
			assert.Equal(t, data, got.Data)
		})
	}
}

func TestReadIDXRejects(t *testing.T) {
	good := idxBytes([]uint32{2, 2}, []byte{1, 2, 3, 4})
	gz := gzipBytes(t, good)
	badCRC := append([]byte(nil), gz...)
	badCRC[len(badCRC)-8] ^= 0xff
	cases := []struct {
		name    string
		content []byte
		msg     string
	}{
		{"empty", nil, "truncated IDX header: 0 of 4"},
		{"bad magic", []byte{1, 0, 8, 1, 0, 0, 0, 1, 7}, "not an IDX file: magic bytes 0-1 are 0x01 0x00"},
		{"float type", []byte{0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0}, "byte offset 2: element type 0x0d (float32) is not supported"},
		{"no dims", []byte{0, 0, 8, 0}, "byte offset 3: number of dimensions is 0"},
		{"short dims", []byte{0, 0, 8, 3, 0, 0, 0, 1}, "3 dimensions need 12 bytes at byte offset 4, file has 4"},
		{"zero dim", idxBytes([]uint32{2, 0}, nil), "byte offset 8: dimension 1 is 0"},
		{"overflow", idxBytes([]uint32{1 << 31, 1 << 31, 1 << 31}, nil), "byte offset 12: dimension 2 = 2147483648 makes the data size overflow"},
		{"truncated data", good[:len(good)-1], "truncated data: dimensions [2 2] need 4 bytes after the 12-byte header, file has 3"},
		{"trailing data", append(append([]byte(nil), good...), 9), "1 bytes of trailing data"},
		{"claims a lot", idxBytes([]uint32{60000, 28, 28}, []byte{1, 2, 3}), "need 47040000 bytes after the 16-byte header, file has 3"},
		{"gzip truncated data", gzipBytes(t, good[:len(good)-1]), "decompressed stream has 3"},
		{"gzip trailing data", gzipBytes(t, append(append([]byte(nil), good...), 9)), "trailing data after the 4 data bytes"},
		{"gzip cut", gz[:len(gz)-4], "does not end cleanly"},
		{"gzip bad crc", badCRC, "corrupt gzip data"},
		{"gzip garbage after", append(append([]byte(nil), gz...), 'x', 'y'), "does not end cleanly"},
		{"gzip long garbage after", append(append([]byte(nil), gz...), bytes.Repeat([]byte{'x'}, 20)...), "does not end cleanly after the 4 data bytes (corrupt gzip data: gzip: invalid header)"},
		{"gzip claims a lot", gzipBytes(t, idxBytes([]uint32{60000, 28, 28}, []byte{1})), "more than a gzip file of"},
		{"gzip header only", gz[:5], "gzip header"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeRaw(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".idx", tc.content)
			got, err := ReadIDX(path)
			require.Error(t, err)
			assert.Nil(t, got)
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "want *ParseError, got %T: %v", err, err)
			assert.Equal(t, path, pe.File)
			assert.Contains(t, err.Error(), tc.msg)
			assert.True(t, strings.HasPrefix(err.Error(), path+": "), err.Error())
		})
	}
}

// Headers claiming far more data than the file holds cost nothing: a plain
// file is refused from its size; a gzip file's buffer grows only with the
// bytes that arrive.
func TestReadIDXClaimsRefusedBeforeAllocating(t *testing.T) {
	plain := idxBytes([]uint32{1 << 30, 1 << 2}, []byte{1, 2, 3})
	zipped := gzipBytes(t, idxBytes([]uint32{1 << 20, 1 << 10}, bytes.Repeat([]byte{7}, 1<<16))) // claims 1 GiB, holds 64 KiB
	for name, b := range map[string][]byte{"plain": plain, "gzip": zipped} {
		for _, size := range []int64{int64(len(b)), -1} {
			var err error
			alloc := allocatedBy(func() { _, err = decodeIDX(bytes.NewReader(b), size, -1, "x.idx") })
			require.Error(t, err)
			assert.Less(t, alloc, uint64(4<<20), "%s, size %d: bytes allocated", name, size)
		}
	}
	// A gzip trailer that agrees with a lying header is trusted only up to
	// maxTrustedAlloc (size is claimed large enough to pass the ratio bound).
	claim := int64(12 + 1<<30) // header + data
	var err error
	alloc := allocatedBy(func() { _, err = decodeIDX(bytes.NewReader(zipped), 2<<20, claim%(1<<32), "x.idx") })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "truncated data")
	assert.Less(t, alloc, uint64(4<<20), "forged trailer: bytes allocated")
}

func TestReadIDXMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.gz")
	_, err := ReadIDX(path)
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), path)
}
