package data

import (
	"strconv"
	"strings"
)

// ParseError reports a problem with the content of a data file.
//
// File is the file name as given by the caller. For CSV input, Line and Col
// are 1-based physical line and field numbers (comment and blank lines are
// counted); either is 0 when it does not apply. For .npy input Line and Col
// are 0 and Msg names the 0-based array position ("row i, column j"); for
// IDX input they are 0 and Msg names the field and its byte offset.
type ParseError struct {
	File string
	Line int
	Col  int
	Msg  string
}

// Error formats the error as "FILE:LINE: column COL: MSG", for example
//
//	a.csv:12: column 3: not a finite number "nan"
//
// omitting ": column COL" when Col is 0 and ":LINE" when Line is 0. Without
// a file name it starts with "line LINE" instead.
func (e *ParseError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	case e.File != "":
		b.WriteString(e.File)
	case e.Line > 0:
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Col > 0 {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString("column ")
		b.WriteString(strconv.Itoa(e.Col))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}
