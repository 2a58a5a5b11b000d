package bindings

import "errors"

// Sentinel errors of ODESolveDopri5, matched with errors.Is.
var (
	// ErrODEStepUnderflow: the adaptive step size fell below 1e-12·|t1 − t0|
	// (LRMF_ODE_UNDERFLOW); the dynamics are too stiff for the tolerances.
	ErrODEStepUnderflow = errors.New("ODE step size underflow (step < 1e-12·|t1 − t0|)")
	// ErrODENonFinite: NaN or Inf in the state or in f at an accepted state
	// (LRMF_ODE_NONFINITE).
	ErrODENonFinite = errors.New("ODE state or dynamics not finite (NaN/Inf)")
	// ErrODEMaxSteps: a row used max_steps step attempts without reaching
	// t1 (LRMF_ODE_MAXSTEPS).
	ErrODEMaxSteps = errors.New("ODE solver reached the maximum number of steps")
)

// ODEError is the error of a solver that failed for a numerical reason: Op
// is the Go function, Err one of the ErrODE* sentinels (errors.Is works).
type ODEError struct {
	Op  string
	Err error
}

// Error returns "bindings: <op>: <sentinel's message>".
func (e *ODEError) Error() string { return "bindings: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the sentinel.
func (e *ODEError) Unwrap() error { return e.Err }
