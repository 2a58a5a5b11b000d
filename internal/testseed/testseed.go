// Package testseed gives tests that draw random inputs a seed that is fixed
// by default, printed when the test fails, and replayable.
//
// The seed is the value of the environment variable LRMF_TEST_SEED when it
// is set (a decimal uint64, or "random" for one drawn from the clock), and
// otherwise the fixed default 1, so a CI failure replays with the same
// inputs. Every test that calls Seed reports the seed and the command that
// replays it when it fails:
//
//	LRMF_TEST_SEED=1234 go test -run 'TestName' ./pkg/
package testseed

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// Env is the environment variable that sets the seed.
const Env = "LRMF_TEST_SEED"

// Default is the seed used when Env is not set.
const Default uint64 = 1

// Seed returns the test seed (see the package comment) and arranges for t
// to print it, with the replay command, if t fails. A malformed Env is a
// test failure (t.Fatalf), not a silent fallback.
func Seed(t testing.TB) uint64 {
	t.Helper()
	s, err := parse(os.Getenv(Env))
	if err != nil {
		t.Fatalf("testseed: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("random inputs drawn from seed %d; replay with %s=%d go test -run '^%s$'", s, Env, s, t.Name())
		}
	})
	return s
}

// parse reads Env's value: "" gives Default, "random" a clock seed.
func parse(v string) (uint64, error) {
	switch v {
	case "":
		return Default, nil
	case "random":
		return uint64(time.Now().UnixNano()), nil
	}
	s, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a decimal uint64 or \"random\"", Env, v)
	}
	return s, nil
}
