package optim

import "math"

// Learning-rate schedules, by the names configurations use.
const (
	// Cosine decays the rate from lr to lr/100 along a half cosine over the
	// step budget, which lets parameters settle where mini-batch noise would
	// keep a constant rate jittering.
	Cosine = "cosine"
	// Constant keeps lr.
	Constant = "constant"
)

// IsSchedule reports whether name is Cosine or Constant.
func IsSchedule(name string) bool { return name == Cosine || name == Constant }

// ScheduledLR returns the learning rate of step (1-based) of a phase with
// the given budget: lr for Constant (or a budget of at most one step),
// else lr·(f + (1 − f)·½(1 + cos(π (step−1)/(steps−1)))) with f = 1/100.
func ScheduledLR(schedule string, lr float64, step, steps int) float64 {
	if schedule == Constant || steps <= 1 {
		return lr
	}
	const floor = 0.01
	frac := float64(step-1) / float64(steps-1)
	return lr * (floor + (1-floor)*0.5*(1+math.Cos(math.Pi*frac)))
}
