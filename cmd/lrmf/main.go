// Command lrmf aligns two datasets with Log-Likelihood Ratio Minimizing
// Flows and reports whether the alignment succeeded.
//
// Usage:
//
//	lrmf align [flags]            align A to B (built-in moons by default)
//	lrmf apply --model F --in X --out Y   map data with a trained flow
//	lrmf data NAME --out FILE     write a built-in dataset (also mnist, usps-style)
//	lrmf reproduce NAME           rerun an experiment of the paper (example-2.2, fig8, fig9, digits)
//	lrmf shift-test [flags]       test whether A and B differ (score test, dΛ)
//	lrmf help [COMMAND]           show help
//
// Exit status: 0 success (for align: converged; for shift-test: the test
// ran, whatever its verdict), 3 align ran but did not converge, 2 usage
// error, 1 any other error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	exitOK           = 0
	exitError        = 1
	exitUsage        = 2
	exitNotConverged = 3
)

// usageError marks an error in the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error)
	help          func(w io.Writer)
}

func commands() []command {
	return []command{
		{"align", "align dataset A to dataset B and report whether it succeeded", runAlign, helpAlign},
		{"apply", "map data with a trained model's flow (or its inverse)", runApply, helpApply},
		{"data", "write a built-in dataset to a CSV or .npy file", runData, helpData},
		{"reproduce", "recompute a result of the paper (example-2.2, fig8, fig9, digits)", runReproduce, helpReproduce},
		{"shift-test", "test whether A and B differ (score test and dΛ, permutation p-values)", runShiftTest, helpShiftTest},
	}
}

func mainUsage(w io.Writer) {
	fmt.Fprint(w, `lrmf aligns two datasets with Log-Likelihood Ratio Minimizing Flows and
tells you whether the alignment succeeded.

Usage:
  lrmf COMMAND [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `  help        show help for a command

Run "lrmf help COMMAND" or "lrmf COMMAND --help" for a command's flags.
Exit status: 0 success (align: converged), 3 align ran but did not converge,
2 usage error, 1 other error.
`)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		mainUsage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		mainUsage(stdout)
		return exitOK
	case "help":
		if len(args) == 1 {
			mainUsage(stdout)
			return exitOK
		}
		for _, c := range commands() {
			if c.name == args[1] {
				c.help(stdout)
				return exitOK
			}
		}
		fmt.Fprintf(stderr, "lrmf help: unknown command %q\n", args[1])
		return exitUsage
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		code, err := c.run(ctx, args[1:], stdout, stderr)
		var ue *usageError
		switch {
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "lrmf %s: %v\nRun \"lrmf help %s\" for usage.\n", name, err, name)
			return exitUsage
		case err != nil:
			fmt.Fprintf(stderr, "lrmf %s: %v\n", name, err)
			return exitError
		}
		return code
	}
	fmt.Fprintf(stderr, "lrmf: unknown command %q (commands: %s)\n", name, commandNames())
	return exitUsage
}

func commandNames() string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return strings.Join(append(names, "help"), ", ")
}

// parseFlags parses args with fs, turning flag errors into usage errors and
// rejecting positional arguments beyond nPos.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	return nil
}

// printDefaults writes fs's flags in the standard format to w.
func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
