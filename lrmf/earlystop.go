package lrmf

import (
	"math"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/optim"
	"github.com/lrmf-go/lrmf/native"
)

// PhaseReport describes how one training phase (a fit of θA* or θB*, or
// one restart's joint phase) ended.
type PhaseReport struct {
	// Steps is the number of gradient steps taken (0: a closed-form fit).
	Steps int `json:"steps"`
	// StoppedBy is "patience" (no validation improvement for
	// FitOptions.Patience steps), "budget" (the step cap), "tolerance" (the
	// gradient norm fell below Tol), "closed-form" (an MLE fit), or, for a
	// restart, "diverged".
	StoppedBy string `json:"stopped_by"`
	// Evaluations is the number of validation evaluations; BestStep the
	// step whose parameters were kept (the best validation value) and
	// BestValue that value — the trimmed validation mean log-likelihood
	// for fits (higher is better), the validation LRMF for the joint phase
	// (lower is better), in nats — as the moving average early stopping
	// decides on (earlyStop). All three are 0 when nothing was evaluated (no
	// validation part, or a phase shorter than EvalEvery): the last
	// parameters are then kept.
	Evaluations int     `json:"evaluations"`
	BestStep    int     `json:"best_step"`
	BestValue   float64 `json:"best_value"`
}

// earlyStop tracks a phase's validation objective (lower is better) every
// EvalEvery steps, smoothed by a moving average (evalSmoothing): it keeps a
// copy of the best parameters in tensors allocated once, says when
// Patience steps have passed since the last improvement by more than
// MinImprovement, and restores the best parameters at the end.
type earlyStop struct {
	be       native.Backend
	params   []*model.Param
	best     []*native.Tensor
	patience int // ≤ 0: never stop

	evals     int
	bestValue float64 // lower is better
	bestStep  int
	improved  int // step of the last improvement by more than MinImprovement
	lastStep  int // step of the last evaluation
	lastValue float64
	scale     float64 // the plateau schedule's learning-rate factor
	lastDecay int     // step of its last decay
}

// evalSmoothing is the weight of a new evaluation in the moving average
// early stopping decides on.
const evalSmoothing = 0.3

// plateauDecay and plateauFloor shape the Plateau schedule: each decay
// divides the rate by √10, down to a hundredth of it (the cosine
// schedule's floor).
const (
	plateauDecay = 0.31622776601683794 // 1/√10
	plateauFloor = 0.01
)

func newEarlyStop(be native.Backend, params []*model.Param, patience int) *earlyStop {
	e := &earlyStop{be: be, params: params, patience: patience, scale: 1}
	for _, p := range params {
		e.best = append(e.best, be.New(p.Value.Rows(), p.Value.Cols()))
	}
	return e
}

// observe records the objective v at step (after that step's update) and
// reports whether the phase should stop. A value that beats the best (by
// any amount) replaces the kept parameters; only one that beats it by more
// than MinImprovement resets the patience window. NaN never improves.
func (e *earlyStop) observe(step int, v float64) (stop bool) {
	first := e.evals == 0
	if !first && !math.IsNaN(e.lastValue) && !math.IsNaN(v) {
		// Decisions follow an exponential moving average of the
		// evaluations: a validation part of a few hundred rows makes single
		// evaluations jump by more than a phase improves in thousands of
		// steps, and one lucky value would otherwise set a bar that stops
		// the phase early.
		v = e.lastValue + evalSmoothing*(v-e.lastValue)
	}
	e.evals++
	e.lastStep, e.lastValue = step, v
	if first || v < e.bestValue || (math.IsNaN(e.bestValue) && !math.IsNaN(v)) {
		if first || v < e.bestValue-MinImprovement || math.IsNaN(e.bestValue) {
			e.improved = step
		}
		e.bestValue, e.bestStep = v, step
		for i, p := range e.params {
			e.be.Copy(e.best[i], p.Value)
		}
	}
	if e.patience > 0 && step-max(e.improved, e.lastDecay) >= e.patience/2 && e.scale > plateauFloor*1.0001 {
		e.scale, e.lastDecay = max(e.scale*plateauDecay, plateauFloor), step
	}
	return e.patience > 0 && step-e.improved >= e.patience
}

// lr returns the learning rate of step under the phase's schedule: with
// the Plateau schedule and early stopping, rate times the plateau factor
// (see Plateau); otherwise the named schedule (Plateau without early
// stopping: cosine) over the budget steps.
func lrAt(schedule string, e *earlyStop, rate float64, step, steps int) float64 {
	if schedule == Plateau {
		if e != nil && e.patience > 0 {
			return rate * e.scale
		}
		schedule = optim.Cosine
	}
	return optim.ScheduledLR(schedule, rate, step, steps)
}

// restore sets the parameters to the best ones seen when a later
// evaluation was worse (nothing when no evaluation happened).
func (e *earlyStop) restore() {
	if e.evals == 0 || e.lastStep == e.bestStep {
		return
	}
	for i, p := range e.params {
		e.be.Copy(p.Value, e.best[i])
	}
}

// report fills r's evaluation fields; sign converts the tracked objective
// to the reported one (−1 for fits, whose objective is −ℓ).
func (e *earlyStop) report(r *PhaseReport, sign float64) {
	r.Evaluations = e.evals
	if e.evals > 0 && !math.IsNaN(e.bestValue) {
		r.BestStep, r.BestValue = e.bestStep, sign*e.bestValue
	}
}

// esState is an earlyStop's scalar state, as a checkpoint saves it (the
// best parameters are saved as tensors).
type esState struct {
	Evals     int     `json:"evals"`
	BestValue float64 `json:"best_value"`
	BestStep  int     `json:"best_step"`
	Improved  int     `json:"improved"`
	LastStep  int     `json:"last_step"`
	LastValue float64 `json:"last_value"`
	Scale     float64 `json:"lr_scale"`
	LastDecay int     `json:"last_decay"`
}

func (e *earlyStop) state() esState {
	return esState{Evals: e.evals, BestValue: e.bestValue, BestStep: e.bestStep, Improved: e.improved, LastStep: e.lastStep, LastValue: e.lastValue,
		Scale: e.scale, LastDecay: e.lastDecay}
}

func (e *earlyStop) setState(s esState) {
	e.evals, e.bestValue, e.bestStep, e.improved, e.lastStep, e.lastValue = s.Evals, s.BestValue, s.BestStep, s.Improved, s.LastStep, s.LastValue
	e.scale, e.lastDecay = s.Scale, s.LastDecay
}

// rowCycler evaluates a set of n rows in chunks of exactly `chunk` rows —
// the batch size the model was trained with, so that its buffers are
// reused and an evaluation allocates nothing — cycling through the rows
// when the last chunk would run short; only the first pass over each row
// counts.
type rowCycler struct {
	n, chunk int
	idx      []int32
}

func newRowCycler(n, chunk int) *rowCycler {
	return &rowCycler{n: n, chunk: chunk, idx: make([]int32, chunk)}
}

// chunks is the number of chunks that cover the n rows.
func (c *rowCycler) chunks() int { return (c.n + c.chunk - 1) / c.chunk }

// at fills the row indices of chunk k and returns them with the number of
// leading entries that count (the rest repeat earlier rows).
func (c *rowCycler) at(k int) (idx []int32, valid int) {
	lo := k * c.chunk
	for i := range c.idx {
		c.idx[i] = int32((lo + i) % c.n)
	}
	return c.idx, max(0, min(c.chunk, c.n-lo))
}
