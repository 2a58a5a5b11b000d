package data

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"

	"codeberg.org/sbinet/npyio/npy"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/atomicfile"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var (
	float64Type = reflect.TypeFor[float64]()
	float32Type = reflect.TypeFor[float32]()
)

// ReadNPY reads a NumPy .npy file (any format version) holding a float64 or
// float32 array, of either byte order, in C (row-major) order, and returns
// it as a float64 matrix: a 1-D array of length n becomes n×1 and a 2-D
// array of shape (n, D) becomes n×D.
//
// It rejects, with a *ParseError naming path: files that are not valid
// .npy files or are truncated; Fortran-ordered arrays; other dtypes (integer,
// float16, complex, structured, object, ...); 0-D and 3-D or higher arrays;
// arrays with zero rows or zero columns; and arrays holding NaN or ±Inf,
// reported by 0-based position as "row i, column j". An error opening or
// reading the file wraps the os error, which names the path.
func ReadNPY(path string) (m *mat.Dense, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading .npy file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading .npy file: %w", err)
	}
	bad := func(format string, args ...any) error {
		return &ParseError{File: path, Msg: fmt.Sprintf(format, args...)}
	}
	// npyio may panic on some malformed headers; report those as content
	// errors rather than crashing.
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, bad("malformed .npy header (%v)", r)
		}
	}()

	cr := &countingReader{r: bufio.NewReader(f)}
	rd, err := npy.NewReader(cr)
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe):
			return nil, fmt.Errorf("reading .npy file: %w", err)
		case errors.Is(err, npy.ErrInvalidNumPyFormat):
			return nil, bad("not a .npy file (bad magic string)")
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, bad("truncated .npy header")
		}
		return nil, bad("invalid .npy header: %v", err)
	}
	hdr := rd.Header.Descr
	dtype := strings.Trim(hdr.Type, `'"`)

	rt := dtypeOf(hdr.Type)
	var esize int64
	switch rt {
	case float64Type:
		esize = 8
	case float32Type:
		esize = 4
	default:
		return nil, bad("unsupported dtype %q: want float64 or float32 ('<f8' or '<f4')", dtype)
	}
	if hdr.Fortran {
		return nil, bad("Fortran-ordered array is not supported: save a C-ordered array, e.g. numpy.save(path, numpy.ascontiguousarray(x))")
	}
	shape := shapeString(hdr.Shape)
	var rows, cols int
	switch len(hdr.Shape) {
	case 1:
		rows, cols = hdr.Shape[0], 1
	case 2:
		rows, cols = hdr.Shape[0], hdr.Shape[1]
	default:
		return nil, bad("%d-D array with shape %s: want a 1-D or 2-D array", len(hdr.Shape), shape)
	}
	if rows < 0 || cols < 0 {
		return nil, bad("invalid shape %s", shape)
	}
	if rows == 0 {
		return nil, bad("no data rows (shape %s)", shape)
	}
	if cols == 0 {
		return nil, bad("no columns (shape %s)", shape)
	}
	nelem := int64(rows) * int64(cols)
	if nelem/int64(cols) != int64(rows) || nelem > math.MaxInt64/esize {
		return nil, bad("shape %s is too large", shape)
	}
	if st.Mode().IsRegular() {
		if have, need := st.Size()-cr.n, nelem*esize; have < need {
			return nil, bad("truncated data: shape %s of %s needs %d bytes after the header, file has %d", shape, dtype, need, have)
		}
	}

	data := make([]float64, nelem)
	if rt == float64Type {
		err = rd.Read(&data)
	} else {
		buf := make([]float32, nelem)
		err = rd.Read(&buf)
		for i, v := range buf {
			data[i] = float64(v)
		}
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("reading .npy file: %w", err)
		}
		return nil, bad("reading array data: %v", err)
	}
	for k, v := range data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, bad("row %d, column %d (0-based): not a finite value (%v)", k/cols, k%cols, v)
		}
	}
	return mat.NewDense(rows, cols, data), nil
}

// dtypeOf returns the Go type npyio maps the header dtype to, or nil if
// npyio cannot interpret it.
func dtypeOf(descr string) (rt reflect.Type) {
	defer func() {
		if recover() != nil {
			rt = nil
		}
	}()
	return npy.TypeFrom(descr)
}

// shapeString formats a shape like Python does: (3,) or (3, 2).
func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, v := range shape {
		parts[i] = strconv.Itoa(v)
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
