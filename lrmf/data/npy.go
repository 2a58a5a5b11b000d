package data

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"

	"codeberg.org/sbinet/npyio/npy"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/atomicfile"
)

// MaxNPYHeaderBytes is the longest .npy header (the Python dict literal after
// the length field) that ReadNPY accepts. NumPy writes about 120 bytes for a
// float array and its own reader refuses more than 10000 by default; the
// limit bounds what a corrupt length field can make ReadNPY allocate.
const MaxNPYHeaderBytes = 1 << 16

// npyMagic opens every .npy file.
const npyMagic = "\x93NUMPY"

// ReadNPY reads a NumPy .npy file (format version 1.0, 2.0 or 3.0) holding a
// float64 or float32 array, of either byte order, in C (row-major) order,
// and returns it as a float64 matrix: a 1-D array of length n becomes n×1
// and a 2-D array of shape (n, D) becomes n×D.
//
// It rejects, with a *ParseError naming path: files that are not valid
// .npy files, are truncated or have bytes after the array data; headers
// longer than MaxNPYHeaderBytes or that are not the dict NumPy writes
// ({'descr': ..., 'fortran_order': ..., 'shape': (...), }); Fortran-ordered
// arrays; other dtypes (integer, float16, complex, structured, object, ...);
// 0-D and 3-D or higher arrays; arrays with zero rows or zero columns; and
// arrays holding NaN or ±Inf, reported by 0-based position as "row i,
// column j". An error opening or reading the file wraps the os error, which
// names the path.
//
// Memory: nothing is allocated from a length or shape in the header before
// it is checked against the file's size (for a regular file) or against the
// bytes actually read (for a pipe, where the array grows as data arrives),
// so a header that claims more data than the file holds costs nothing.
func ReadNPY(path string) (*mat.Dense, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading .npy file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading .npy file: %w", err)
	}
	size := int64(-1)
	if st.Mode().IsRegular() {
		size = st.Size()
	}
	return decodeNPY(bufio.NewReaderSize(f, 64<<10), size, path)
}

// npyHeader is the content of a .npy header dict.
type npyHeader struct {
	descr    string // dtype string such as "<f8", or the raw text of a non-string descr
	descrStr bool   // whether descr was a string literal
	fortran  bool
	shape    []int64
}

// decodeNPY reads a .npy stream of size bytes (-1 when unknown) from r;
// name is the file name used in errors.
func decodeNPY(r io.Reader, size int64, name string) (*mat.Dense, error) {
	bad := func(format string, args ...any) error {
		return &ParseError{File: name, Msg: fmt.Sprintf(format, args...)}
	}
	// ioErr reports an early end of the input as a content error with
	// msg, and any other read error as such.
	ioErr := func(err error, msg string) error {
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe):
			return fmt.Errorf("reading .npy file: %w", err) // pe names the file
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return bad("%s", msg)
		}
		return fmt.Errorf("reading %s: %w", name, err)
	}

	var pre [8]byte // magic, major, minor
	n, err := io.ReadFull(r, pre[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, ioErr(err, "")
	}
	if m := min(n, len(npyMagic)); string(pre[:m]) != npyMagic[:m] {
		return nil, bad("not a .npy file (bad magic string)")
	}
	if n < len(pre) {
		return nil, bad("truncated .npy header (%d bytes)", n)
	}
	major, minor := pre[6], pre[7]
	if major < 1 || major > 3 || minor != 0 {
		return nil, bad("unsupported .npy format version %d.%d (want 1.0, 2.0 or 3.0)", major, minor)
	}
	lenBytes := 2
	if major >= 2 {
		lenBytes = 4
	}
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:lenBytes]); err != nil {
		return nil, ioErr(err, "truncated .npy header (no header length)")
	}
	hdrLen := int64(binary.LittleEndian.Uint16(lb[:]))
	if major >= 2 {
		hdrLen = int64(binary.LittleEndian.Uint32(lb[:]))
	}
	off := int64(len(pre) + lenBytes)
	switch {
	case hdrLen == 0:
		return nil, bad("invalid .npy header: header length 0")
	case size >= 0 && hdrLen > size-off:
		return nil, bad("truncated .npy header: header length %d at byte offset 8, but the file has %d bytes after offset %d", hdrLen, size-off, off)
	case hdrLen > MaxNPYHeaderBytes:
		return nil, bad("invalid .npy header: header length %d exceeds the limit of %d bytes", hdrLen, MaxNPYHeaderBytes)
	}
	raw := make([]byte, hdrLen)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, ioErr(err, fmt.Sprintf("truncated .npy header (header length %d)", hdrLen))
	}
	off += hdrLen
	h, err := parseNPYHeader(raw)
	if err != nil {
		return nil, bad("invalid .npy header: %v", err)
	}

	var (
		esize int64
		order binary.ByteOrder
	)
	if h.descrStr && len(h.descr) == 3 {
		switch h.descr[0] {
		case '<':
			order = binary.LittleEndian
		case '>':
			order = binary.BigEndian
		case '=':
			order = binary.NativeEndian
		}
		switch h.descr[1:] {
		case "f8":
			esize = 8
		case "f4":
			esize = 4
		}
	}
	if order == nil || esize == 0 {
		return nil, bad("unsupported dtype %q: want float64 or float32 ('<f8' or '<f4')", h.descr)
	}
	if h.fortran {
		return nil, bad("Fortran-ordered array is not supported: save a C-ordered array, e.g. numpy.save(path, numpy.ascontiguousarray(x))")
	}
	shape := shapeString(h.shape)
	var rows, cols int64
	switch len(h.shape) {
	case 1:
		rows, cols = h.shape[0], 1
	case 2:
		rows, cols = h.shape[0], h.shape[1]
	default:
		return nil, bad("%d-D array with shape %s: want a 1-D or 2-D array", len(h.shape), shape)
	}
	if rows == 0 {
		return nil, bad("no data rows (shape %s)", shape)
	}
	if cols == 0 {
		return nil, bad("no columns (shape %s)", shape)
	}
	if rows > math.MaxInt64/cols || rows*cols > math.MaxInt64/esize || rows*cols > math.MaxInt {
		return nil, bad("shape %s is too large", shape)
	}
	nelem := rows * cols
	need := nelem * esize
	if size >= 0 {
		switch have := size - off; {
		case have < need:
			return nil, bad("truncated data: shape %s of %s needs %d bytes after the header, file has %d", shape, h.descr, need, have)
		case have > need:
			return nil, bad("%d bytes of trailing data after the array (shape %s of %s ends at byte offset %d)", have-need, shape, h.descr, off+need)
		}
	}

	// With the size checked the array is allocated at once; from a stream
	// of unknown size it grows as data arrives.
	capHint := int(nelem)
	if size < 0 {
		capHint = int(min(nelem, 1<<16))
	}
	data := make([]float64, 0, capHint)
	buf := make([]byte, min(need, 64<<10))
	for int64(len(data)) < nelem {
		k := min(int64(len(buf)), (nelem-int64(len(data)))*esize)
		if _, err := io.ReadFull(r, buf[:k]); err != nil {
			return nil, ioErr(err, fmt.Sprintf("truncated data: shape %s of %s needs %d bytes after the header, file ends after fewer than %d", shape, h.descr, need, int64(len(data))*esize+k))
		}
		if esize == 8 {
			for i := int64(0); i < k; i += 8 {
				data = append(data, math.Float64frombits(order.Uint64(buf[i:])))
			}
		} else {
			for i := int64(0); i < k; i += 4 {
				data = append(data, float64(math.Float32frombits(order.Uint32(buf[i:]))))
			}
		}
	}
	if size < 0 {
		var one [1]byte
		if n, _ := io.ReadFull(r, one[:]); n > 0 {
			return nil, bad("trailing data after the array (shape %s of %s ends at byte offset %d)", shape, h.descr, off+need)
		}
	}
	for k, v := range data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, bad("row %d, column %d (0-based): not a finite value (%v)", int64(k)/cols, int64(k)%cols, v)
		}
	}
	return mat.NewDense(int(rows), int(cols), data), nil
}

// maxNPYDims is the most dimensions a .npy shape may have (NumPy's
// NPY_MAXDIMS is 32 before NumPy 2 and 64 after).
const maxNPYDims = 64

// parseNPYHeader parses the header of a .npy file: a Python dict literal
// with exactly the keys 'descr' (a string, or a list for structured
// dtypes, kept as raw text), 'fortran_order' (True or False) and 'shape' (a
// tuple of non-negative integers), padded with spaces and ending in a
// newline.
func parseNPYHeader(b []byte) (npyHeader, error) {
	var (
		h    npyHeader
		seen = map[string]bool{}
		p    = npyParser{b: b}
	)
	p.space()
	if !p.eat('{') {
		return h, p.errorf("want '{'")
	}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, err
		}
		if seen[key] {
			return h, p.errorf("duplicate key %q", key)
		}
		seen[key] = true
		p.space()
		if !p.eat(':') {
			return h, p.errorf("want ':' after key %q", key)
		}
		p.space()
		switch key {
		case "descr":
			if p.peek() == '[' {
				h.descr, err = p.bracketed()
			} else {
				h.descr, err = p.str()
				h.descrStr = true
			}
		case "fortran_order":
			h.fortran, err = p.boolean()
		case "shape":
			h.shape, err = p.tuple()
		default:
			return h, p.errorf("unexpected key %q", key)
		}
		if err != nil {
			return h, err
		}
		p.space()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			break
		}
		return h, p.errorf("want ',' or '}'")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("no %q key", k)
		}
	}
	for p.i < len(b)-1 && b[p.i] == ' ' {
		p.i++
	}
	if p.i != len(b)-1 || b[p.i] != '\n' {
		return h, p.errorf("want spaces and a final newline after the dict")
	}
	return h, nil
}

// npyParser scans a .npy header dict.
type npyParser struct {
	b []byte
	i int
}

func (p *npyParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%s at byte %d of the header", fmt.Sprintf(format, args...), p.i)
}

func (p *npyParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *npyParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *npyParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t') {
		p.i++
	}
}

// str scans a quoted string without escapes.
func (p *npyParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.errorf("want a quoted string")
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch p.b[j] {
		case q:
			p.i = j + 1
			return string(p.b[start:j]), nil
		case '\\', '\n':
			p.i = j
			return "", p.errorf("escape or line break in a string")
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *npyParser) boolean() (bool, error) {
	rest := p.b[p.i:]
	switch {
	case strings.HasPrefix(string(rest[:min(len(rest), 4)]), "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(string(rest[:min(len(rest), 5)]), "False"):
		p.i += 5
		return false, nil
	}
	return false, p.errorf("want True or False")
}

// tuple scans a tuple of non-negative integers: (), (n,), (n, m), (n, m,)
// ... (a Python 2 'L' suffix is accepted).
func (p *npyParser) tuple() ([]int64, error) {
	if !p.eat('(') {
		return nil, p.errorf("want '(' (the shape is a tuple)")
	}
	shape := []int64{}
	for {
		p.space()
		if p.eat(')') {
			if len(shape) == 1 && !p.commaBefore() {
				return nil, p.errorf("a 1-D shape is written (n,)")
			}
			return shape, nil
		}
		start := p.i
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
		}
		if p.i == start {
			return nil, p.errorf("want a non-negative integer in the shape")
		}
		v, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
		if err != nil {
			return nil, p.errorf("shape dimension %s is too large", p.b[start:p.i])
		}
		if len(shape) == maxNPYDims {
			return nil, p.errorf("more than %d dimensions", maxNPYDims)
		}
		shape = append(shape, v)
		p.eat('L')
		p.space()
		if p.eat(',') {
			continue
		}
		if p.peek() != ')' {
			return nil, p.errorf("want ',' or ')' in the shape")
		}
	}
}

// commaBefore reports whether the last non-space byte before the closing
// parenthesis just eaten is a comma.
func (p *npyParser) commaBefore() bool {
	j := p.i - 2
	for j >= 0 && (p.b[j] == ' ' || p.b[j] == '\t') {
		j--
	}
	return j >= 0 && p.b[j] == ','
}

// bracketed scans a bracketed value such as a structured dtype's list of
// fields and returns its raw text. Strings inside are skipped whole.
func (p *npyParser) bracketed() (string, error) {
	start, depth := p.i, 0
	for p.i < len(p.b) {
		switch c := p.b[p.i]; c {
		case '[', '(':
			depth++
		case ']', ')':
			depth--
			if depth == 0 {
				p.i++
				return string(p.b[start:p.i]), nil
			}
		case '\'', '"':
			if _, err := p.str(); err != nil {
				return "", err
			}
			continue
		}
		p.i++
	}
	return "", p.errorf("unterminated list")
}

// shapeString formats a shape like Python does: (3,) or (3, 2).
func shapeString(shape []int64) string {
	parts := make([]string, len(shape))
	for i, v := range shape {
		parts[i] = strconv.FormatInt(v, 10)
	}
	if len(shape) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// WriteNPY atomically writes the n×D matrix x to path as a NumPy .npy file
// holding a little-endian float64 ('<f8') array of shape (n, D) in C order,
// which ReadNPY (and numpy.load) read back exactly.
//
// It returns an error, and writes nothing, if x is nil or empty or holds a
// NaN or infinity (which ReadNPY would reject). The file is written through
// a temporary file and renamed into place, so on error any previous file at
// path is left intact.
func WriteNPY(path string, x *mat.Dense) error {
	if err := checkWritable(path, x); err != nil {
		return err
	}
	return atomicfile.Write(path, filePerm, func(w io.Writer) error {
		return npy.Write(w, x)
	})
}
