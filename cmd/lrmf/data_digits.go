package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/data"
)

// The digit datasets lrmf data writes besides the built-in pairs.
const (
	digitsMNIST = "mnist"
	digitsUSPS  = "usps-style"
)

// isDigitsDataset reports whether name is one of the digit datasets, which
// runDigitsData writes.
func isDigitsDataset(name string) bool { return name == digitsMNIST || name == digitsUSPS }

type digitsOpts struct {
	out, split, mnistDir string
	n, side              int
	labels               bool
}

func digitsFlags(name string, o *digitsOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("data "+name, flag.ContinueOnError)
	fs.StringVar(&o.out, "out", "", "output `FILE` (.csv, or .npy for a float64 array without labels); required")
	fs.IntVar(&o.n, "n", 0, "write the first `N` images only (0: all)")
	fs.BoolVar(&o.labels, "labels", false, "append the digit 0-9 as a last column named label (CSV only)")
	fs.StringVar(&o.mnistDir, "mnist-dir", "", "`DIR` holding the MNIST idx files (default: $"+data.MNISTDirEnv+", else the "+data.MNISTModule+" module's data directory)")
	if name == digitsMNIST {
		fs.StringVar(&o.split, "split", data.MNISTTrain, "MNIST split: train (60000 images) or test (10000)")
		fs.IntVar(&o.side, "side", 28, "image side in pixels: 28 as MNIST is, or e.g. 16 to resize whole images to USPS's frame (for an embedding shared with usps-style)")
	}
	return fs
}

func helpDigitsData(w io.Writer, name string) {
	fmt.Fprintf(w, `Usage: lrmf data %s --out FILE [--labels] [--n N] [flags]

`, name)
	switch name {
	case digitsMNIST:
		fmt.Fprint(w, `Writes MNIST digits, one image per row (row-major pixels, grey levels
v/255 in [0, 1]), read from the idx files that ship in the Go module
`+data.MNISTModule+` (no download step).
`)
	case digitsUSPS:
		fmt.Fprint(w, `Writes a USPS-style stand-in built from MNIST's test digits (the real USPS
set cannot be obtained here): each digit cropped to the bounding box of its
non-zero pixels, scaled to fill 16×16 with its aspect ratio kept (area
averaging, shorter side centred), grey levels divided by the image's
maximum so they span [0, 1]. 10000 images of 256 pixels, deterministic.
`)
	}
	fmt.Fprint(w, "\nFlags:\n")
	var o digitsOpts
	printDefaults(w, digitsFlags(name, &o))
}

// runDigitsData implements lrmf data mnist|usps-style; args follow the name.
func runDigitsData(name string, args []string, stdout io.Writer) (int, error) {
	var o digitsOpts
	fs := digitsFlags(name, &o)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			helpDigitsData(stdout, name)
		}
		return 0, err
	}
	isNPY := strings.EqualFold(filepath.Ext(o.out), ".npy")
	switch {
	case fs.NArg() > 0:
		return 0, usagef("unexpected argument %q", fs.Arg(0))
	case o.out == "":
		return 0, usagef("--out FILE is required")
	case o.n < 0:
		return 0, usagef("--n = %d: want 0 (all) or a positive integer", o.n)
	case name == digitsMNIST && o.split != data.MNISTTrain && o.split != data.MNISTTest:
		return 0, usagef("--split %q: want %s or %s", o.split, data.MNISTTrain, data.MNISTTest)
	case name == digitsMNIST && (o.side < 1 || o.side > 28):
		return 0, usagef("--side = %d: want 1 to 28", o.side)
	case isNPY && o.labels:
		return 0, usagef("--labels is only supported for CSV output")
	}
	dir := o.mnistDir
	if dir == "" {
		var err error
		if dir, err = data.MNISTDir(); err != nil {
			return 0, err
		}
	}
	split := data.MNISTTest
	if name == digitsMNIST {
		split = o.split
	}
	im, err := data.LoadMNIST(dir, split)
	if err != nil {
		return 0, err
	}
	if o.n > im.N {
		return 0, usagef("--n = %d: MNIST's %s split has %d images", o.n, split, im.N)
	}
	if o.n > 0 {
		im = im.Head(o.n)
	}

	var x *mat.Dense
	what := fmt.Sprintf("MNIST %s", split)
	switch {
	case name == digitsUSPS:
		x, _ = data.USPSStyle(im)
		what = "USPS-style (from MNIST test)"
	case o.side != im.Rows || o.side != im.Cols:
		x = im.Resized(o.side)
		what += fmt.Sprintf(" resized to %d×%d", o.side, o.side)
	}
	var labels []int
	if o.labels {
		labels = im.Labels
	}
	cols := im.Rows * im.Cols
	switch {
	case x == nil && !isNPY:
		// MNIST as it is: streamed, without an N×784 float64 matrix.
		err = im.WriteCSV(o.out, o.labels, columnNames(cols))
	case x == nil:
		err = data.WriteNPY(o.out, im.Matrix())
	case isNPY:
		err = data.WriteNPY(o.out, x)
	default:
		_, cols = x.Dims()
		err = data.WriteCSV(o.out, x, labels, columnNames(cols))
	}
	if err != nil {
		return 0, err
	}
	if x != nil {
		_, cols = x.Dims()
	}
	lab := ""
	if o.labels {
		lab = ", digit in the last column (label)"
	}
	fmt.Fprintf(stdout, "wrote %s: %s, %d×%d, grey levels in [0, 1]%s\n", o.out, what, im.N, cols, lab)
	return exitOK, nil
}
