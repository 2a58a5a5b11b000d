package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

type applyOpts struct {
	model, in, out string
	inverse        bool
	backend, dtype string
	threads        int
}

func applyFlags(o *applyOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.StringVar(&o.model, "model", "", "checkpoint `FILE` written by lrmf align (DIR/checkpoint.lrmf); required")
	fs.StringVar(&o.in, "in", "", "input `FILE` (CSV or .npy, n×D); required")
	fs.StringVar(&o.out, "out", "", "output `FILE` (.csv, or .npy); required")
	fs.BoolVar(&o.inverse, "inverse", false, "map with T⁻¹ (B's space back to A's) instead of T")
	fs.StringVar(&o.backend, "backend", native.DefaultBackend(), "compute backend: "+strings.Join(native.Backends(), ", "))
	fs.StringVar(&o.dtype, "dtype", "float64", "element type: float32 or float64")
	fs.IntVar(&o.threads, "threads", 0, "host threads (0: all CPUs)")
	return fs
}

func helpApply(w io.Writer) {
	fmt.Fprint(w, `Usage: lrmf apply --model FILE --in X --out Y [--inverse]

Maps new data with the flow T of a trained model: Y = T(X), or X = T⁻¹(Y)
with --inverse. The model is the checkpoint lrmf align writes to
DIR/checkpoint.lrmf. The output is written atomically, rows in input order.

Flags:
`)
	var o applyOpts
	printDefaults(w, applyFlags(&o))
}

func runApply(_ context.Context, args []string, stdout, _ io.Writer) (int, error) {
	var o applyOpts
	fs := applyFlags(&o)
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			helpApply(stdout)
		}
		return 0, err
	}
	switch {
	case fs.NArg() > 0:
		return 0, usagef("unexpected argument %q", fs.Arg(0))
	case o.model == "":
		return 0, usagef("--model FILE is required")
	case o.in == "":
		return 0, usagef("--in FILE is required")
	case o.out == "":
		return 0, usagef("--out FILE is required")
	}
	dt, err := native.ParseDType(o.dtype)
	if err != nil {
		return 0, usagef("--dtype: %v", err)
	}
	ck, err := lrmf.ReadCheckpoint(o.model)
	if err != nil {
		return 0, err
	}
	x, err := data.ReadFile(o.in)
	if err != nil {
		return 0, err
	}
	n, d := x.Dims()
	if d != ck.Dim() {
		return 0, fmt.Errorf("%s has %d columns, the model %s maps %d-dimensional data", o.in, d, o.model, ck.Dim())
	}
	be, err := native.Open(o.backend, dt, o.threads)
	if err != nil {
		return 0, usagef("--backend %s: %v", o.backend, err)
	}
	defer be.Close()
	f, err := ck.Flow(be)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", o.model, err)
	}
	xt := be.New(n, d)
	be.Upload(xt, x.RawMatrix().Data)
	var yt *native.Tensor
	if o.inverse {
		yt = be.New(n, d)
		err = f.Inverse(yt, xt)
	} else {
		yt, _, err = model.Transform(be, f, xt)
	}
	if err != nil {
		return 0, err
	}
	y := mat.NewDense(n, d, nil)
	be.Download(y.RawMatrix().Data, yt)
	if strings.EqualFold(filepath.Ext(o.out), ".npy") {
		err = data.WriteNPY(o.out, y)
	} else {
		err = data.WriteCSV(o.out, y, nil, columnNames(d))
	}
	if err != nil {
		return 0, err
	}
	dir := "T"
	if o.inverse {
		dir = "T⁻¹"
	}
	fmt.Fprintf(stdout, "wrote %s: %s of %d×%d rows of %s\n", o.out, dir, n, d, o.in)
	return exitOK, nil
}

func columnNames(d int) []string {
	h := make([]string, d)
	for j := range h {
		h[j] = fmt.Sprintf("x%d", j)
	}
	return h
}
