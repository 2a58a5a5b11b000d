package lrmf

import (
	"errors"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/model"
)

// Status classifies the outcome of Align.
type Status string

// Outcomes of Align.
const (
	// Converged: |LRMF| < Threshold on the full data.
	Converged Status = "converged"
	// NotConverged: LRMF ≥ Threshold: T(A) and B remain distinguishable.
	NotConverged Status = "not-converged"
	// Undershot: LRMF ≤ −Threshold. LRMF is bounded below by 0 when θA*
	// and θB* are optimal, so a value well below 0 means c_AB was
	// under-fitted and the indicator cannot be trusted.
	Undershot Status = "undershot"
	// Diverged: a loss or gradient became NaN or infinite.
	Diverged Status = "diverged"
	// Canceled: the context ended the run.
	Canceled Status = "canceled"
)

// ErrDiverged is returned (wrapped) when training produces a non-finite
// loss or gradient.
var ErrDiverged = errors.New("training diverged")

// verdict classifies a finite full-data LRMF against the threshold δ:
// NotConverged for LRMF ≥ δ, Undershot for LRMF ≤ −δ, else Converged.
func verdict(lrmf, threshold float64) Status {
	switch {
	case lrmf >= threshold:
		return NotConverged
	case lrmf <= -threshold:
		return Undershot
	}
	return Converged
}

// Point is one joint-phase step of the training history: the mini-batch
// LRMF before the update and the two gradient norms.
type Point struct {
	Step  int     `json:"step"`   // 1-based joint step
	Loss  float64 `json:"loss"`   // mini-batch LRMF before the update, nats
	GradT float64 `json:"grad_t"` // ‖g_T‖ = ‖∂LRMF/∂φ‖ before clipping
	GradS float64 `json:"grad_s"` // ‖g_S‖ = ‖∂LRMF/∂θS‖ before clipping
}

// Result is the outcome of Align.
type Result struct {
	// Config is the configuration used, defaults filled in.
	Config    Config `json:"config"`
	Status    Status `json:"status"`    // the verdict
	Converged bool   `json:"converged"` // Status == Converged
	// LRMF = CAB − LogLikTA − LogLikB − LogDet on the full data, nats.
	LRMF     float64 `json:"lrmf"`
	CAB      float64 `json:"c_ab"`      // ℓ(A; θA*) + ℓ(B; θB*)
	LogLikTA float64 `json:"loglik_ta"` // ℓ(T(A); θS)
	LogLikB  float64 `json:"loglik_b"`  // ℓ(B; θS)
	LogDet   float64 `json:"logdet"`    // mean ln|det ∇T| over A

	Steps     int     `json:"steps"`       // joint steps taken
	StoppedBy string  `json:"stopped_by"`  // "tolerance", "budget", "canceled" or "diverged"
	FitStepsA int     `json:"fit_steps_a"` // gradient steps of θA*'s fit (0: closed form)
	FitStepsB int     `json:"fit_steps_b"` // gradient steps of θB*'s fit (0: closed form)
	History   []Point `json:"history"`     // one Point per joint step
	// PrefitSteps is the identity pre-fit's step count and PrefitMSE its
	// final mean‖T(x) − x‖² on the last mini-batch.
	PrefitSteps int     `json:"prefit_steps,omitempty"`
	PrefitMSE   float64 `json:"prefit_mse,omitempty"`
	// Solver is the ODE solver work of continuous models (nil when no
	// model integrates an ODE).
	Solver *SolverReport `json:"solver,omitempty"`

	FitSeconds   float64 `json:"fit_seconds"`   // wall time to the end of phase 1 (fits, pre-fit)
	JointSeconds float64 `json:"joint_seconds"` // wall time of the joint phase
	TotalSeconds float64 `json:"seconds"`       // wall time of the whole call
	MsPerStep    float64 `json:"ms_per_step"`   // JointSeconds per joint step, in ms

	// Flow is the trained T; Density is θS*; DensityA and DensityB are
	// θA* and θB*. All live on Config.Backend.
	Flow     model.Flow    `json:"-"`
	Density  model.Density `json:"-"`
	DensityA model.Density `json:"-"`
	DensityB model.Density `json:"-"`
	// Transformed is T(A) in A's row order (nA×D).
	Transformed *mat.Dense `json:"-"`
}

// SolverReport is the ODE solver work of each continuous model of an Align
// run (nil entries: that model integrates no ODE). Counts cover the whole
// run: fits, pre-fit, joint steps and the final evaluation.
type SolverReport struct {
	Flow     *model.SolverStats `json:"flow,omitempty"`      // T
	DensityA *model.SolverStats `json:"density_a,omitempty"` // θA*
	DensityB *model.SolverStats `json:"density_b,omitempty"` // θB*
	DensityS *model.SolverStats `json:"density_s,omitempty"` // θS
}

func solverReport(res *Result) *SolverReport {
	var rep SolverReport
	found := false
	for _, m := range []struct {
		dst **model.SolverStats
		m   any
	}{{&rep.Flow, res.Flow}, {&rep.DensityA, res.DensityA}, {&rep.DensityB, res.DensityB}, {&rep.DensityS, res.Density}} {
		if st, ok := model.SolverStatsOf(m.m); ok {
			*m.dst, found = &st, true
		}
	}
	if !found {
		return nil
	}
	return &rep
}
