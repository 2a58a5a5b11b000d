package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"

	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// sourceFlags choose the data of align and shift-test: two files, or a
// built-in pair of n points per set.
type sourceFlags struct {
	a, b, dataName string
	n              int
}

func (o *sourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.a, "a", "", "dataset A: a CSV or .npy `FILE` of n×D numbers (needs --b)")
	fs.StringVar(&o.b, "b", "", "dataset B: a CSV or .npy `FILE` with the same D (needs --a)")
	fs.StringVar(&o.dataName, "data", "moons", "built-in dataset pair when --a/--b are not given: "+strings.Join(data.Names(), ", "))
	fs.IntVar(&o.n, "n", 2000, "points per built-in dataset")
}

// flagCheck is one flag-value rule: when bad, the flag's value is rejected
// with "--flag = val: want …".
type flagCheck struct {
	bad  bool
	flag string
	val  any
	want string
}

// firstBad returns the usage error of the first failed check, or nil.
func firstBad(checks []flagCheck) error {
	for _, c := range checks {
		if c.bad {
			return usagef("--%s = %v: want %s", c.flag, c.val, c.want)
		}
	}
	return nil
}

// checkSourceAndDensity validates the flags align and shift-test share: the
// data source (--a/--b or --data), the density family (an image kind needs
// --image, which only align has), Real NVP's scale and the element type.
func checkSourceAndDensity(a, b string, set map[string]bool, density, scale, dtype string) error {
	if (a == "") != (b == "") {
		return usagef("--a and --b must be given together")
	}
	if a != "" && set["data"] {
		return usagef("--data cannot be combined with --a/--b")
	}
	if !slices.Contains(model.DensityKinds, density) {
		return usagef("unknown --density %q (available: %s)", density, strings.Join(model.DensityKinds, ", "))
	}
	if model.IsImageKind(density) && !set["image"] {
		return usagef("--density %s needs --image HxWxC, the shape of the images the data rows hold (lrmf align)", density)
	}
	if scale != "exp" && scale != "sigmoid" {
		return usagef("unknown --scale %q (available: exp, sigmoid)", scale)
	}
	if _, err := native.ParseDType(dtype); err != nil {
		return usagef("--dtype: %v", err)
	}
	return nil
}

// parseOnlyFlags parses the arguments of a command that takes flags only
// (help, when asked for, goes to stdout) and returns the set of flags given.
func parseOnlyFlags(fs *flag.FlagSet, args []string, stdout io.Writer, help func(io.Writer), cmd string) (map[string]bool, error) {
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help(stdout)
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (%s takes only flags)", fs.Arg(0), cmd)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set, nil
}
