package data

// Fuzz targets for the readers of files people hand lrmf (issue #16). Each
// target checks, for any input: no panic, no hang, errors are *ParseError,
// and an accepted input is valid (finite, consistent shape) and survives a
// write/read round trip. Seeds: the f.Add calls below and the committed
// corpus in testdata/fuzz/<Target>/, which plain `go test` replays (the
// crashing .npy input is one of them). To fuzz (CI does 30 s each):
//
//	go test -run '^$' -fuzz '^FuzzReadCSV$' -fuzztime 30s -fuzzminimizetime 10s ./lrmf/data/
//	go test -run '^$' -fuzz '^FuzzReadNPY$' -fuzztime 30s -fuzzminimizetime 10s ./lrmf/data/
//	go test -run '^$' -fuzz '^FuzzReadIDX$' -fuzztime 30s -fuzzminimizetime 10s ./lrmf/data/
//
// -fuzzminimizetime caps the minimisation of each new interesting input
// (60 s by default), which stalled FuzzReadIDX for 20-45 s at a time; keep
// seed inputs small for the same reason (minimisation is quadratic in
// their length).

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"
	"testing"

	"codeberg.org/sbinet/npyio/npy"
	"gonum.org/v1/gonum/mat"
)

// requireParseError fails unless err is a *ParseError naming name.
func requireParseError(t *testing.T, err error, name string) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("want *ParseError, got %T: %v", err, err)
	}
	if pe.File != name {
		t.Fatalf("ParseError names %q, want %q", pe.File, name)
	}
}

// requireFinite fails unless m is non-empty and holds only finite values.
func requireFinite(t *testing.T, m *mat.Dense) {
	t.Helper()
	r, c := m.Dims()
	if r < 1 || c < 1 {
		t.Fatalf("accepted an empty %d×%d matrix", r, c)
	}
	for _, v := range m.RawMatrix().Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("accepted a non-finite value %v", v)
		}
	}
}

// requireSameBits fails unless a and b have the same shape and bits.
func requireSameBits(t *testing.T, a, b *mat.Dense) {
	t.Helper()
	ar, ac := a.Dims()
	br, bc := b.Dims()
	if ar != br || ac != bc {
		t.Fatalf("shape %d×%d became %d×%d", ar, ac, br, bc)
	}
	for i := range ar {
		for j := range ac {
			if math.Float64bits(a.At(i, j)) != math.Float64bits(b.At(i, j)) {
				t.Fatalf("(%d, %d): %v became %v", i, j, a.At(i, j), b.At(i, j))
			}
		}
	}
}

func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"x,y\n1,2\n3,4\n",
		"\xef\xbb\xbf# comment\r\n1.5, -2e-3\r\n\r\n-0,7\r\n",
		"a,b,label\n0.1,0.2,3\n",
		"1\n2\n3",
		"1;2\n",
		"1,,2\n",
		"nan,1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadCSV(bytes.NewReader(b), "f.csv")
		if err != nil {
			requireParseError(t, err, "f.csv")
			return
		}
		requireFinite(t, m)
		// Written as WriteCSV writes, it reads back bit for bit.
		var out []byte
		r, c := m.Dims()
		for i := range r {
			for j := range c {
				if j > 0 {
					out = append(out, ',')
				}
				out = strconv.AppendFloat(out, m.At(i, j), 'g', -1, 64)
			}
			out = append(out, '\n')
		}
		back, err := ReadCSV(bytes.NewReader(out), "back.csv")
		if err != nil {
			t.Fatalf("rewritten data do not read back: %v", err)
		}
		requireSameBits(t, m, back)
	})
}

func FuzzReadNPY(f *testing.F) {
	var b bytes.Buffer
	_ = npy.Write(&b, mat.NewDense(2, 2, []float64{1, 2, 3, 4}))
	f.Add(b.Bytes())
	f.Add(rawNPY("<f4", false, "(3,)", []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64}))
	f.Add(rawNPY(">f8", false, "(1, 1)", f64bytes(binary.BigEndian, 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeNPY(bytes.NewReader(b), int64(len(b)), "f.npy")
		ms, errs := decodeNPY(bytes.NewReader(b), -1, "f.npy")
		if (err == nil) != (errs == nil) {
			t.Fatalf("sized read: %v; streamed read: %v", err, errs)
		}
		if err != nil {
			requireParseError(t, err, "f.npy")
			requireParseError(t, errs, "f.npy")
			return
		}
		requireFinite(t, m)
		requireSameBits(t, m, ms)
		// What WriteNPY writes (npyio's encoding) reads back bit for bit.
		var out bytes.Buffer
		if err := npy.Write(&out, m); err != nil {
			t.Fatal(err)
		}
		back, err := decodeNPY(bytes.NewReader(out.Bytes()), int64(out.Len()), "back.npy")
		if err != nil {
			t.Fatalf("rewritten array does not read back: %v", err)
		}
		requireSameBits(t, m, back)
	})
}

// gzw compresses FuzzReadIDX's inputs (each fuzzing worker is a process
// running one input at a time). Huffman-only deflate: real compressed
// blocks with a small state, where level 6 clears 640 KB of match tables
// per Reset and a new writer allocates 1 MB, which dominated the target.
var gzw, _ = gzip.NewWriterLevel(io.Discard, gzip.HuffmanOnly)

// FuzzReadIDX fuzzes the IDX reader on the input as it is and, when gz is
// true, on the input gzip-compressed (so that mutations of the IDX content
// also reach the gzip path).
func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes([]uint32{2, 2, 3}, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255}), false)
	f.Add(idxBytes([]uint32{3}, []byte{7, 2, 1}), true)
	f.Fuzz(func(t *testing.T, b []byte, gz bool) {
		in := b
		if gz {
			var z bytes.Buffer
			gzw.Reset(&z)
			_, _ = gzw.Write(b)
			_ = gzw.Close()
			in = z.Bytes()
		}
		isize := int64(-1)
		if gz {
			isize = int64(binary.LittleEndian.Uint32(in[len(in)-4:]))
		}
		x, err := decodeIDX(bytes.NewReader(in), int64(len(in)), isize, "f.idx")
		xs, errs := decodeIDX(bytes.NewReader(in), -1, -1, "f.idx")
		if (err == nil) != (errs == nil) {
			t.Fatalf("sized read: %v; streamed read: %v", err, errs)
		}
		if err != nil {
			requireParseError(t, err, "f.idx")
			requireParseError(t, errs, "f.idx")
			return
		}
		// Accepted input is exactly header + data: re-encoding gives it back.
		dims := make([]uint32, len(x.Dims))
		n := 1
		for i, d := range x.Dims {
			dims[i] = uint32(d)
			n *= d
		}
		if n != len(x.Data) {
			t.Fatalf("dims %v but %d data bytes", x.Dims, len(x.Data))
		}
		if !bytes.Equal(idxBytes(dims, x.Data), b) {
			t.Fatalf("accepted input is not header + data (%d bytes, dims %v)", len(b), x.Dims)
		}
		if !bytes.Equal(x.Data, xs.Data) {
			t.Fatal("sized and streamed reads differ")
		}
	})
}
