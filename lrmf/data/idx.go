package data

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
)

// IDX is an array read from an IDX file, the format of the MNIST files:
// Dims[0]×Dims[1]×… unsigned bytes in row-major order (the last index
// varies fastest), so len(Data) is the product of Dims.
type IDX struct {
	Dims []int
	Data []byte
}

// idxUbyte is the IDX type code of unsigned bytes, the only element type
// ReadIDX reads.
const idxUbyte = 0x08

// maxGzipRatio bounds how many bytes a gzip (deflate) stream of one byte
// can decompress to: deflate's best case is a 258-byte match in about two
// bits, a ratio just under 1032.
const maxGzipRatio = 1032

// maxTrustedAlloc is the largest data buffer ReadIDX allocates at once from
// a gzip file's header and trailer when they agree; larger ones grow as
// the data arrive.
const maxTrustedAlloc = 256 << 20

// ReadIDX reads the IDX file at path, compressed with gzip (recognised by
// its magic bytes, whatever the file name) or not.
//
// The IDX header is two zero bytes, a type code, the number of dimensions
// k, then k big-endian uint32 sizes; the data follow. ReadIDX accepts only
// the unsigned-byte type (0x08) with 1 ≤ k ≤ 255 non-zero sizes, and the
// data must end exactly where the sizes say: for a plain file the file size
// must equal 4 + 4k + Π sizes; for a gzip file the decompressed stream must,
// and its checksum must match.
//
// Content problems are reported as *ParseError naming path, the field and
// its byte offset in the (decompressed) IDX stream. Nothing is allocated
// from the sizes in the header before they are checked against the file:
// a plain file's size must match, a gzip file must be large enough to
// decompress to that much (at most 1032 bytes per byte), and the data buffer
// then grows as bytes arrive rather than being allocated from the header.
func ReadIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading IDX file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading IDX file: %w", err)
	}
	size, isize := int64(-1), int64(-1)
	if st.Mode().IsRegular() {
		size = st.Size()
		// A gzip file ends with the length of its data modulo 2³²
		// (ISIZE): with it the data buffer can be allocated at once.
		var magic [2]byte
		var trailer [4]byte
		if _, err := f.ReadAt(magic[:], 0); err == nil && magic == [2]byte{0x1f, 0x8b} && size >= 22 {
			if _, err := f.ReadAt(trailer[:], size-4); err == nil {
				isize = int64(binary.LittleEndian.Uint32(trailer[:]))
			}
		}
	}
	return decodeIDX(f, size, isize, path)
}

// decodeIDX reads an IDX stream, possibly gzip-compressed, of size bytes
// (-1 when unknown) from r; name is the file name used in errors. isize is
// the gzip trailer's length field, or -1: when it agrees with the header,
// the data buffer is allocated at once (up to maxTrustedAlloc).
func decodeIDX(r io.Reader, size, isize int64, name string) (*IDX, error) {
	bad := func(format string, args ...any) error {
		return &ParseError{File: name, Msg: fmt.Sprintf(format, args...)}
	}
	br := bufio.NewReaderSize(r, 32<<10)
	compressed := false
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		compressed = true
	}
	var src io.Reader = br
	if compressed {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, idxReadErr(name, err, "gzip header: %v", err)
		}
		src = zr
	}
	// what names the stream in messages about sizes.
	what := "file"
	if compressed {
		what = "decompressed stream"
	}

	var head [4]byte
	if n, err := io.ReadFull(src, head[:]); err != nil {
		return nil, idxReadErr(name, err, "truncated IDX header: %d of 4 magic bytes", n)
	}
	if head[0] != 0 || head[1] != 0 {
		return nil, bad("not an IDX file: magic bytes 0-1 are 0x%02x 0x%02x, want 0x00 0x00", head[0], head[1])
	}
	if head[2] != idxUbyte {
		return nil, bad("byte offset 2: element type 0x%02x (%s) is not supported: want 0x08 (unsigned byte)", head[2], idxTypeName(head[2]))
	}
	k := int(head[3])
	if k == 0 {
		return nil, bad("byte offset 3: number of dimensions is 0")
	}
	dimBytes := make([]byte, 4*k)
	if n, err := io.ReadFull(src, dimBytes); err != nil {
		return nil, idxReadErr(name, err, "truncated IDX header: %d dimensions need %d bytes at byte offset 4, %s has %d", k, 4*k, what, n)
	}
	dims := make([]int, k)
	total := int64(1)
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(dimBytes[4*i:]))
		if d == 0 {
			return nil, bad("byte offset %d: dimension %d is 0", 4+4*i, i)
		}
		if total > math.MaxInt64/d {
			return nil, bad("byte offset %d: dimension %d = %d makes the data size overflow 64 bits", 4+4*i, i, d)
		}
		dims[i] = int(d)
		total *= d
	}
	hdrLen := int64(4 + 4*k)
	switch {
	case !compressed && size >= 0 && size != hdrLen+total:
		if size < hdrLen+total {
			return nil, bad("truncated data: dimensions %v need %d bytes after the %d-byte header, file has %d", dims, total, hdrLen, size-hdrLen)
		}
		return nil, bad("%d bytes of trailing data after the %d data bytes that dimensions %v need (ending at byte offset %d)", size-hdrLen-total, total, dims, hdrLen+total)
	case compressed && size >= 0 && (hdrLen+total)/maxGzipRatio > size:
		return nil, bad("dimensions %v claim %d data bytes, more than a gzip file of %d bytes can hold", dims, total, size)
	case total > math.MaxInt:
		return nil, bad("dimensions %v are too large", dims)
	}

	// A plain file's size is checked, so the data can be allocated at once;
	// otherwise the buffer starts at 32 KiB and doubles as bytes arrive, so
	// that a header claiming more than the stream holds costs at most twice
	// what it does hold.
	initial := total
	if (compressed || size < 0) && !(isize == (hdrLen+total)%(1<<32) && total <= maxTrustedAlloc) {
		initial = min(total, 32<<10)
	}
	data := make([]byte, 0, initial)
	for int64(len(data)) < total {
		if len(data) == cap(data) {
			grown := make([]byte, len(data), min(2*int64(cap(data)), total))
			copy(grown, data)
			data = grown
		}
		n, err := io.ReadFull(src, data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err != nil {
			return nil, idxReadErr(name, err, "truncated data: dimensions %v need %d bytes after the %d-byte header, %s has %d", dims, total, hdrLen, what, len(data))
		}
	}
	// The stream must end here; reading to its end also makes gzip check
	// its CRC and length trailer.
	var one [1]byte
	n, err := io.ReadFull(src, one[:])
	if n > 0 {
		return nil, bad("trailing data after the %d data bytes that dimensions %v need (byte offset %d of the %s)", total, dims, hdrLen+total, what)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, idxReadErr(name, err, "the %s does not end cleanly after the %d data bytes", what, total)
	}
	return &IDX{Dims: dims, Data: data}, nil
}

// idxReadErr returns err wrapped when it is the file's own error, and a
// *ParseError with the formatted message when the content is at fault
// (an early end, a corrupt gzip stream).
func idxReadErr(name string, err error, format string, args ...any) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("reading IDX file: %w", err)
	}
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &ParseError{File: name, Msg: fmt.Sprintf(format, args...)}
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt):
		return &ParseError{File: name, Msg: fmt.Sprintf(format, args...) + " (corrupt gzip data: " + err.Error() + ")"}
	}
	return fmt.Errorf("reading %s: %w", name, err)
}

// idxTypeName names an IDX element type code.
func idxTypeName(t byte) string {
	switch t {
	case 0x08:
		return "unsigned byte"
	case 0x09:
		return "signed byte"
	case 0x0B:
		return "int16"
	case 0x0C:
		return "int32"
	case 0x0D:
		return "float32"
	case 0x0E:
		return "float64"
	}
	return "unknown"
}
