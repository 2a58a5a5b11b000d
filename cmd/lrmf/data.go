package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/lrmf-go/lrmf/lrmf/data"
)

type dataOpts struct {
	out    string
	part   string
	n      int
	seed   uint64
	labels bool
}

func dataFlags(o *dataOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("data", flag.ContinueOnError)
	fs.StringVar(&o.out, "out", "", "output `FILE` (.csv, or .npy for a float64 array); required")
	fs.StringVar(&o.part, "part", "a", "which dataset of the pair to write: a or b")
	fs.IntVar(&o.n, "n", 2000, "number of points")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed (the same seed gives the pair lrmf align --seed uses)")
	fs.BoolVar(&o.labels, "labels", false, "append a label column (the moon arm; CSV only, datasets with labels only)")
	return fs
}

func helpData(w io.Writer) {
	fmt.Fprintf(w, `Usage: lrmf data NAME --out FILE [flags]

Writes one dataset of a built-in pair (A or B, see --part) as used by
lrmf align --data NAME. Names: %s.
  moons    sklearn make_moons, noise 0.05; B is an independent draw rotated 50°
  blobs    two 2-D Gaussians with different means and covariances
  gauss1d  N(0, 1) and N(2, 0.5²)
  gauss2d  two correlated 2-D Gaussians

Digits (not pairs; each writes one set of images, one row per image):
  mnist       MNIST from the GoMNIST module (lrmf data mnist --help)
  usps-style  a USPS-style stand-in built from MNIST test digits
              (lrmf data usps-style --help)

Flags:
`, strings.Join(data.Names(), ", "))
	var o dataOpts
	printDefaults(w, dataFlags(&o))
}

func runData(_ context.Context, args []string, stdout, _ io.Writer) (int, error) {
	if len(args) > 0 && isDigitsDataset(args[0]) {
		return runDigitsData(args[0], args[1:], stdout)
	}
	var o dataOpts
	fs := dataFlags(&o)
	// Accept the name before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			helpData(stdout)
		}
		return 0, err
	}
	rest := fs.Args()
	if name == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	switch {
	case name == "":
		return 0, usagef("missing dataset NAME (one of %s)", strings.Join(data.Names(), ", "))
	case len(rest) > 0:
		return 0, usagef("unexpected argument %q", rest[0])
	case o.out == "":
		return 0, usagef("--out FILE is required")
	case o.part != "a" && o.part != "b":
		return 0, usagef("--part %q: want a or b", o.part)
	case o.n < 1:
		return 0, usagef("--n = %d: want a positive integer", o.n)
	}
	p, err := data.Builtin(name, o.n, o.seed)
	if err != nil {
		return 0, usagef("%v", err)
	}
	x, labels := p.A, p.LabelsA
	if o.part == "b" {
		x, labels = p.B, p.LabelsB
	}
	if o.labels && labels == nil {
		return 0, usagef("--labels: dataset %s has no labels", name)
	}
	if !o.labels {
		labels = nil
	}
	isNPY := strings.EqualFold(filepath.Ext(o.out), ".npy")
	if isNPY {
		if o.labels {
			return 0, usagef("--labels is only supported for CSV output")
		}
		err = data.WriteNPY(o.out, x)
	} else {
		_, d := x.Dims()
		header := columnNames(d)
		err = data.WriteCSV(o.out, x, labels, header)
	}
	if err != nil {
		return 0, err
	}
	r, c := x.Dims()
	fmt.Fprintf(stdout, "wrote %s: %s part %s, %d×%d\n", o.out, name, strings.ToUpper(o.part), r, c)
	return exitOK, nil
}
