package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/atomicfile"
)

// MaxLineBytes is the longest line, in bytes, that ReadCSV accepts.
const MaxLineBytes = 16 << 20

// filePerm is the permission of files written by WriteCSV and WriteNPY.
const filePerm = 0o644

// ReadFile reads an n×D data matrix from the file at path. A path whose
// extension is ".npy" (in any letter case) is read with ReadNPY; a ".npz"
// archive is rejected with an explanatory error; anything else is read as
// comma-separated text with ReadCSV.
//
// An error opening or reading the file wraps the os error (which names the
// path); problems with the content are reported as *ParseError.
func ReadFile(path string) (*mat.Dense, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		return ReadNPY(path)
	case ".npz":
		return nil, fmt.Errorf("reading %s: .npz archives are not supported; save the array with numpy.save to a .npy file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading data file: %w", err)
	}
	defer f.Close()
	return ReadCSV(f, path)
}

// ReadCSV reads an n×D matrix of comma-separated numbers from r; name is
// used as the file name in errors.
//
// Format: one row per line; fields are separated by commas and surrounding
// spaces and tabs are trimmed; line endings may be LF or CRLF; a leading
// UTF-8 byte-order mark is ignored. Lines that are blank or whose first
// non-space character is '#' are skipped (but still counted, so reported
// line numbers are physical line numbers). The first remaining line is a
// header, and is skipped, if none of its fields parses as a number (a field
// like "1 2" or "1;2" counts as numeric, so that a file with the wrong
// separator is reported as such); otherwise it is the first data row. Every data field must be a finite
// number in Go's strconv.ParseFloat syntax, and every row must have the
// same number of fields as the first data row (or the header, if any).
// Lines may be up to MaxLineBytes long. No quoting is supported.
//
// Content problems (non-numeric, NaN or infinite cells, empty fields,
// ragged rows, no data rows, over-long lines) are returned as *ParseError
// with the 1-based line and, for cell problems, the 1-based column.
func ReadCSV(r io.Reader, name string) (*mat.Dense, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes+2) // + CR LF
	var (
		data       []float64
		rows       int
		cols       = -1 // expected field count, once known
		colsLine   int  // line that fixed cols
		colsHeader bool // whether that line was the header
		headerLine int
		sawLine    bool // a non-comment, non-blank line has been seen
		line       int
		fields     []string
	)
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))
		}
		if len(text) > MaxLineBytes {
			return nil, &ParseError{File: name, Line: line, Msg: fmt.Sprintf("line longer than %d bytes", MaxLineBytes)}
		}
		s := strings.TrimSpace(string(text))
		if s == "" || s[0] == '#' {
			continue
		}
		fields = splitFields(s, fields[:0])
		if !sawLine {
			sawLine = true
			if isHeader(fields) {
				headerLine = line
				cols, colsLine, colsHeader = len(fields), line, true
				continue
			}
		}
		if cols < 0 {
			cols, colsLine = len(fields), line
		}
		if len(fields) != cols {
			what := fmt.Sprintf("line %d", colsLine)
			if colsHeader {
				what = fmt.Sprintf("the header on line %d", colsLine)
			}
			return nil, &ParseError{File: name, Line: line,
				Msg: fmt.Sprintf("expected %d fields (like %s), got %d", cols, what, len(fields))}
		}
		for j, f := range fields {
			v, err := parseCell(f)
			if err != nil {
				return nil, &ParseError{File: name, Line: line, Col: j + 1, Msg: err.Error()}
			}
			data = append(data, v)
		}
		rows++
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{File: name, Line: line + 1, Msg: fmt.Sprintf("line longer than %d bytes", MaxLineBytes)}
		}
		if line == 0 {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return nil, fmt.Errorf("reading %s: after line %d: %w", name, line, err)
	}
	if rows == 0 {
		msg := "no data rows"
		if headerLine > 0 {
			msg = fmt.Sprintf("no data rows (only a header, on line %d)", headerLine)
		}
		return nil, &ParseError{File: name, Msg: msg}
	}
	return mat.NewDense(rows, cols, data), nil
}

// splitFields splits s at commas and trims spaces around each field,
// appending to dst.
func splitFields(s string, dst []string) []string {
	for {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			return append(dst, strings.TrimSpace(s))
		}
		dst = append(dst, strings.TrimSpace(s[:i]))
		s = s[i+1:]
	}
}

// isNumber reports whether f has number syntax (including NaN, Inf and
// out-of-range values).
func isNumber(f string) bool {
	_, err := strconv.ParseFloat(f, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}

// isHeader reports whether none of the fields is a number. A field holding
// several numbers separated by spaces, tabs or semicolons counts as a number
// here, so that a file using the wrong separator is reported as such rather
// than having its first line skipped as a header.
func isHeader(fields []string) bool {
	for _, f := range fields {
		if isNumber(f) || isNumberList(f) {
			return false
		}
	}
	return true
}

// isNumberList reports whether f is two or more numbers separated by
// spaces, tabs or semicolons.
func isNumberList(f string) bool {
	parts := strings.FieldsFunc(f, func(r rune) bool { return r == ' ' || r == '\t' || r == ';' })
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if !isNumber(p) {
			return false
		}
	}
	return true
}

// parseCell parses one data field as a finite float64.
func parseCell(f string) (float64, error) {
	if f == "" {
		return 0, errors.New("empty field")
	}
	v, err := strconv.ParseFloat(f, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("number out of float64 range %s", quote(f))
	case err != nil:
		if strings.ContainsAny(f, " \t;") {
			return 0, fmt.Errorf("not a number %s (fields must be separated by commas)", quote(f))
		}
		return 0, fmt.Errorf("not a number %s", quote(f))
	case math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("not a finite number %s", quote(f))
	}
	return v, nil
}

// quote quotes a field for an error message, shortening very long ones.
func quote(f string) string {
	const maxLen = 40
	if len(f) <= maxLen {
		return strconv.Quote(f)
	}
	cut := maxLen
	for cut > 0 && !utf8.RuneStart(f[cut]) {
		cut--
	}
	return strconv.Quote(f[:cut]) + "…"
}

// WriteCSV atomically writes the n×D matrix x to path as comma-separated
// text that ReadCSV reads back bit for bit.
//
// If header is non-nil it must hold D column names, written as a first
// line. If labels is non-nil it must have length n; the labels are then
// written as an extra last column (named "label" in the header line). Each
// value is formatted with strconv.FormatFloat(v, 'g', -1, 64), the shortest
// representation that parses back to the same float64.
//
// WriteCSV returns an error, and writes nothing, if x is nil or empty,
// holds a NaN or infinity (which ReadCSV would reject), if the lengths of
// header or labels are wrong, or if a header name is empty, parses as a
// number, contains a comma, a line break or surrounding spaces, or (first
// name) starts with '#' — any of which would make the header unreadable.
// The file is written through a temporary file and renamed into place, so
// on error any previous file at path is left intact.
func WriteCSV(path string, x *mat.Dense, labels []int, header []string) error {
	if err := checkWritable(path, x); err != nil {
		return err
	}
	n, d := x.Dims()
	if labels != nil && len(labels) != n {
		return fmt.Errorf("writing %s: %d labels for %d rows", path, len(labels), n)
	}
	if header != nil {
		if len(header) != d {
			return fmt.Errorf("writing %s: header has %d names for %d columns", path, len(header), d)
		}
		for j, h := range header {
			if msg := badHeaderName(h, j == 0); msg != "" {
				return fmt.Errorf("writing %s: header name %d %s: %s", path, j+1, quote(h), msg)
			}
		}
	}
	return atomicfile.Write(path, filePerm, func(w io.Writer) error {
		buf := make([]byte, 0, 64*(d+1))
		if header != nil {
			buf = append(buf, strings.Join(header, ",")...)
			if labels != nil {
				buf = append(buf, ",label"...)
			}
			buf = append(buf, '\n')
		}
		for i := range n {
			for j := range d {
				if j > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendFloat(buf, x.At(i, j), 'g', -1, 64)
			}
			if labels != nil {
				buf = append(buf, ',')
				buf = strconv.AppendInt(buf, int64(labels[i]), 10)
			}
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		return nil
	})
}

// badHeaderName says why h cannot be a header name, or returns "".
func badHeaderName(h string, first bool) string {
	switch {
	case h == "":
		return "is empty"
	case strings.TrimSpace(h) != h:
		return "has leading or trailing spaces"
	case strings.ContainsAny(h, ",\r\n"):
		return "contains a comma or line break"
	case isNumber(h):
		return "is a number, so the line would be read as data"
	case first && h[0] == '#':
		return "starts with '#', so the line would be read as a comment"
	}
	return ""
}

// checkWritable validates the matrix given to WriteCSV and WriteNPY.
func checkWritable(path string, x *mat.Dense) error {
	if x == nil || x.IsEmpty() {
		return fmt.Errorf("writing %s: empty matrix", path)
	}
	n, d := x.Dims()
	for i := range n {
		for j := range d {
			if v := x.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("writing %s: row %d, column %d (0-based): not a finite value (%v)", path, i, j, v)
			}
		}
	}
	return nil
}
