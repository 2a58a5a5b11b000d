package lrmf

import (
	"errors"
	"fmt"
	"strings"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/twosample"
)

// Status classifies the outcome of Align.
type Status string

// Outcomes of Align. With a held-out part (Config.Holdout > 0) the verdict
// compares the held-out LRMF's upper confidence bound UCB = LRMF + z·SE
// (z = Φ⁻¹(Config.Confidence)) with δ = Config.Threshold and consults the
// two-sample test of T(A) against B on the held-out points (rejecting at
// p ≤ Config.Alpha):
//
//	NotConverged     LRMF ≥ δ
//	Inconclusive     LRMF < δ ≤ UCB
//	Undershot        UCB < −δ, and the two-sample test rejects (or is off)
//	Distinguishable  −δ ≤ UCB < δ, and the two-sample test rejects
//	Converged        UCB < δ, and the two-sample test does not reject
//
// A held-out LRMF significantly below −δ is undershot only when the
// two-sample test does not vouch for the alignment, because the held-out
// LRMF leans negative on its own: θS is fitted to the rows of both sets,
// twice as many as θA* or θB* see, so it generalises better (moons rotated
// by 0°, where T stays near the identity: held-out LRMF −0.419 ± 0.065,
// the two-sample test p = 0.51, on fresh points p = 0.59). Where the test
// cannot tell T(A) from B and the bound is below δ, both indicators agree.
//
// Without a held-out part (Holdout < 0) the verdict is the training
// LRMF's: Undershot for LRMF ≤ −δ, NotConverged for LRMF ≥ δ, else
// Converged; the two-sample test is run on the training points and
// reported, not consulted.
const (
	// Converged: the alignment succeeded — LRMF is significantly below δ
	// and a density-free test cannot tell T(A) from B either.
	Converged Status = "converged"
	// NotConverged: LRMF ≥ δ: T(A) and B remain distinguishable to the
	// density family.
	NotConverged Status = "not-converged"
	// Undershot: LRMF significantly below −δ, and the two-sample test
	// does not vouch for the alignment. LRMF is bounded below by 0 when
	// θA* and θB* are optimal, so a value well below 0 means c_AB was
	// under-fitted and the indicator cannot be trusted.
	Undershot Status = "undershot"
	// Distinguishable: LRMF is significantly below δ — T(A) and B are
	// indistinguishable to the density family — but the two-sample test
	// tells them apart: the family cannot see the difference (e.g. an
	// affine flow with a Gaussian density on rotated moons).
	Distinguishable Status = "distinguishable"
	// Inconclusive: the held-out LRMF is below δ but its upper confidence
	// bound is not: more held-out data (or a larger δ) is needed for the
	// claim.
	Inconclusive Status = "inconclusive"
	// Diverged: a loss or gradient became NaN or infinite.
	Diverged Status = "diverged"
	// Canceled: the context ended the run.
	Canceled Status = "canceled"
)

// ErrDiverged is returned (wrapped) when training produces a non-finite
// loss or gradient.
var ErrDiverged = errors.New("training diverged")

// verdict classifies a finite training-data LRMF against the threshold δ
// (no held-out part): NotConverged for LRMF ≥ δ, Undershot for LRMF ≤ −δ,
// else Converged.
func verdict(lrmf, threshold float64) Status {
	switch {
	case lrmf >= threshold:
		return NotConverged
	case lrmf <= -threshold:
		return Undershot
	}
	return Converged
}

// heldOutVerdict classifies a finite held-out LRMF (see Status): ucb =
// lrmf + z·se; tested reports whether the two-sample test ran and
// rejected whether it rejected.
func heldOutVerdict(lrmf, ucb, threshold float64, tested, rejected bool) Status {
	switch {
	case lrmf >= threshold:
		return NotConverged
	case ucb >= threshold:
		return Inconclusive
	case ucb < -threshold && (rejected || !tested):
		return Undershot
	case rejected:
		return Distinguishable
	}
	return Converged
}

// zScore returns Φ⁻¹(confidence), the standard normal quantile.
func zScore(confidence float64) float64 {
	return distuv.UnitNormal.Quantile(confidence)
}

// Terms are LRMF and its four terms on one part of the data, in nats:
// LRMF = CAB − LogLikTA − LogLikB − LogDet with CAB = ℓ(A; θA*) +
// ℓ(B; θB*), LogLikTA = ℓ(T(A); θS), LogLikB = ℓ(B; θS) and LogDet the mean
// ln|det ∇T| over A's rows (ℓ a per-sample mean log-likelihood).
type Terms struct {
	LRMF     float64 `json:"lrmf"`
	CAB      float64 `json:"c_ab"`
	LogLikTA float64 `json:"loglik_ta"`
	LogLikB  float64 `json:"loglik_b"`
	LogDet   float64 `json:"logdet"`
}

// Estimate is LRMF and its terms evaluated on RowsA rows of A and RowsB
// rows of B, with standard errors when SE is set. With the per-row terms
// u_i = ln pA(a_i) − ln pS(T(a_i)) − ln|det ∇T(a_i)| and
// v_j = ln pB(b_j) − ln pS(b_j), LRMF = mean u + mean v and
//
//	SE.LRMF = √(var(u)/nA + var(v)/nB)
//
// (sample variances, n − 1): pairing a point's three terms in u cancels
// most of their variance. Each term's SE is that of its own mean (c_AB:
// √(var(ln pA)/nA + var(ln pB)/nB)).
//
// On held-out and validation parts the means are trimmed (FitOptions.Trim):
// TrimA rows of A with the lowest and TrimA with the highest u are
// dropped, and TrimB of B by v; every term is averaged over the same kept
// rows, so LRMF = CAB − LogLikTA − LogLikB − LogDet still holds, and each
// variance above is that of the winsorised sample (dropped rows valued as
// the nearest kept one) divided by (1 − 2k/n)² (Tukey–McLaughlin), which
// is the plain formula when nothing is trimmed.
type Estimate struct {
	Terms
	SE    *Terms `json:"se,omitempty"`
	RowsA int    `json:"rows_a"`
	RowsB int    `json:"rows_b"`
	TrimA int    `json:"trim_a,omitempty"` // rows of A dropped at each end
	TrimB int    `json:"trim_b,omitempty"` // rows of B dropped at each end
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
	// LRMF = CAB − LogLikTA − LogLikB − LogDet, the figures the verdict
	// uses: on the held-out parts (HeldOut), or on the training parts
	// (Train) when Config.Holdout < 0. LRMFSE is LRMF's standard error (0
	// without a held-out part) and UpperBound = LRMF + Φ⁻¹(Confidence)·LRMFSE.
	LRMF       float64 `json:"lrmf"`
	LRMFSE     float64 `json:"lrmf_se"`
	UpperBound float64 `json:"upper_bound"`
	CAB        float64 `json:"c_ab"`      // ℓ(A; θA*) + ℓ(B; θB*)
	LogLikTA   float64 `json:"loglik_ta"` // ℓ(T(A); θS)
	LogLikB    float64 `json:"loglik_b"`  // ℓ(B; θS)
	LogDet     float64 `json:"logdet"`    // mean ln|det ∇T| over A
	// HeldOut is the estimate on the held-out parts, with standard errors
	// (nil when Holdout < 0); Train the same on the training parts, the
	// data the models were fitted to (no SE: its figures are biased by the
	// overfitting, see Config.Threshold).
	HeldOut *Estimate `json:"held_out,omitempty"`
	Train   Estimate  `json:"train"`
	// Validation is the same on the validation parts, which chose the
	// kept parameters (nil when Validation < 0; no SE).
	Validation *Estimate `json:"validation,omitempty"`
	// TwoSample is the kernel two-sample test of T(A) against B on the
	// held-out and validation points, the points no model was fitted to
	// (the training points when Holdout < 0); nil when Config.Alpha < 0.
	TwoSample *twosample.MMDResult `json:"two_sample,omitempty"`

	Steps     int    `json:"steps"`       // joint steps of the chosen restart
	StoppedBy string `json:"stopped_by"`  // its Joint.StoppedBy, or "canceled" or "diverged"
	FitStepsA int    `json:"fit_steps_a"` // gradient steps of θA*'s fit (0: closed form)
	FitStepsB int    `json:"fit_steps_b"` // gradient steps of θB*'s fit (0: closed form)
	// FitA, FitB and Joint say how the fits of θA*, θB* and the chosen
	// restart's joint phase ended (steps, stop reason, best validation
	// value and its step).
	FitA  PhaseReport `json:"fit_a"`
	FitB  PhaseReport `json:"fit_b"`
	Joint PhaseReport `json:"joint"`
	// Restarts lists every restart, the chosen one marked.
	Restarts []RestartReport `json:"restarts"`
	History  []Point         `json:"history"` // one Point per joint step of the chosen restart
	// PrefitSteps is the identity pre-fit's step count and PrefitMSE its
	// final mean‖T(x) − x‖² on the last mini-batch (chosen restart).
	PrefitSteps int     `json:"prefit_steps,omitempty"`
	PrefitMSE   float64 `json:"prefit_mse,omitempty"`
	// Solver is the ODE solver work of continuous models (nil when no
	// model integrates an ODE).
	Solver *SolverReport `json:"solver,omitempty"`

	FitSeconds   float64 `json:"fit_seconds"`   // wall time to the end of phase 1 (fits)
	JointSeconds float64 `json:"joint_seconds"` // wall time of the restarts (pre-fits, joint phases)
	TotalSeconds float64 `json:"seconds"`       // wall time of the whole call
	MsPerStep    float64 `json:"ms_per_step"`   // JointSeconds per joint step over all restarts, in ms

	// Flow is the trained T; Density is θS*; DensityA and DensityB are
	// θA* and θB*. All live on Config.Backend.
	Flow     model.Flow    `json:"-"`
	Density  model.Density `json:"-"`
	DensityA model.Density `json:"-"`
	DensityB model.Density `json:"-"`
	// Transformed is T(A) in A's row order (nA×D): every row of A,
	// whatever part it fell in.
	Transformed *mat.Dense `json:"-"`

	restartSolver restartSolver // solver work of the restarts' own models
}

// Verdict returns the verdict as a sentence: the status, the LRMF the
// verdict rests on with its standard error and bound, and the two-sample
// test, e.g.
//
//	converged: LRMF = 0.031 ± 0.024 nats (held-out, 400 + 400 points; upper 95% bound 0.070 < δ = 0.1); two-sample test: T(A) and B indistinguishable (MMD p = 0.41, 544 + 544 held-out and validation points)
func (r *Result) Verdict() string {
	c := r.Config
	d := c.Threshold
	var b strings.Builder
	if r.HeldOut == nil {
		fmt.Fprintf(&b, "%s: LRMF = %.3g nats (training data, no held-out part, %d + %d points; ", r.Status, r.LRMF, r.Train.RowsA, r.Train.RowsB)
		switch r.Status {
		case Converged:
			fmt.Fprintf(&b, "|LRMF| < δ = %g)", d)
		case Undershot:
			fmt.Fprintf(&b, "≤ −δ = %g: c_AB is under-fitted, the indicator cannot be trusted)", -d)
		default:
			fmt.Fprintf(&b, "≥ δ = %g)", d)
		}
		if t := r.TwoSample; t != nil {
			fmt.Fprintf(&b, "; two-sample test (training points, not part of this verdict): T(A) and B %s (MMD p = %.3g, %d + %d points)",
				distinguishable(t.P, c.Alpha), t.P, t.RowsX, t.RowsY)
		}
		return b.String()
	}
	h := r.HeldOut
	level := fmt.Sprintf("%g%%", 100*c.Confidence)
	fmt.Fprintf(&b, "%s: LRMF = %.3g ± %.2g nats (held-out, %d + %d points; ", r.Status, r.LRMF, r.LRMFSE, h.RowsA, h.RowsB)
	switch r.Status {
	case Converged, Distinguishable:
		fmt.Fprintf(&b, "upper %s bound %.3g < δ = %g)", level, r.UpperBound, d)
	case Undershot:
		fmt.Fprintf(&b, "upper %s bound %.3g < −δ = %g: c_AB is under-fitted, the indicator cannot be trusted)", level, r.UpperBound, -d)
	case Inconclusive:
		fmt.Fprintf(&b, "below δ = %g, but not its upper %s bound %.3g: too uncertain to claim success)", d, level, r.UpperBound)
	default:
		fmt.Fprintf(&b, "≥ δ = %g: T(A) and B remain distinguishable to the density family)", d)
	}
	if t := r.TwoSample; t != nil {
		fmt.Fprintf(&b, "; two-sample test: T(A) and B %s (MMD p = %.3g, %d + %d held-out and validation points)", distinguishable(t.P, c.Alpha), t.P, t.RowsX, t.RowsY)
		if r.Status == Distinguishable {
			b.WriteString(": the density family cannot see the difference")
		}
	}
	return b.String()
}

func distinguishable(p, alpha float64) string {
	if p <= alpha {
		return "distinguishable"
	}
	return "indistinguishable"
}

// Summary returns Verdict's sentence followed by a line with the training
// data's figures and one on the restarts and the steps taken.
func (r *Result) Summary() string {
	t := r.Train
	var b strings.Builder
	b.WriteString(r.Verdict())
	fmt.Fprintf(&b, "\ntraining data (%d + %d points): LRMF = %.3g nats, c_AB = %.4g, ℓ(T(A); θS) = %.4g, ℓ(B; θS) = %.4g, mean log-det = %.4g",
		t.RowsA, t.RowsB, t.LRMF, t.CAB, t.LogLikTA, t.LogLikB, t.LogDet)
	if n := len(r.Restarts); n > 1 {
		for _, rr := range r.Restarts {
			if rr.Chosen {
				fmt.Fprintf(&b, "\nrestart %d of %d kept (validation LRMF %.3g; all: ", rr.Index+1, n, rr.ValidationLRMF)
			}
		}
		for i, rr := range r.Restarts {
			if i > 0 {
				b.WriteString(", ")
			}
			if rr.StoppedBy == "diverged" {
				b.WriteString("diverged")
			} else {
				fmt.Fprintf(&b, "%.3g", rr.ValidationLRMF)
			}
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, "\nfits: %s; joint phase: %d steps (%s), %.3f ms/step, %.2f s in all",
		fitSummary(r.FitA, r.FitB), r.Steps, r.StoppedBy, r.MsPerStep, r.TotalSeconds)
	return b.String()
}

func fitSummary(a, b PhaseReport) string {
	if a.StoppedBy == "closed-form" && b.StoppedBy == "closed-form" {
		return "closed form"
	}
	return fmt.Sprintf("%d + %d steps (%s, %s)", a.Steps, b.Steps, a.StoppedBy, b.StoppedBy)
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
	rs := res.restartSolver
	for _, m := range []struct {
		dst   **model.SolverStats
		m     any
		extra model.SolverStats
	}{{&rep.Flow, res.Flow, rs.flow}, {&rep.DensityA, res.DensityA, model.SolverStats{}}, {&rep.DensityB, res.DensityB, model.SolverStats{}}, {&rep.DensityS, res.Density, rs.dens}} {
		if st, ok := model.SolverStatsOf(m.m); ok {
			st = st.Add(m.extra)
			*m.dst, found = &st, true
		}
	}
	if !found {
		return nil
	}
	return &rep
}

// restartSolver is the solver work of the models a restart built on its
// own (Restarts > 1), added to the Result's flow and θS in SolverReport.
type restartSolver struct {
	flow, dens model.SolverStats
}

func restartSolverOf(flow, dens any) restartSolver {
	var s restartSolver
	s.flow, _ = model.SolverStatsOf(flow)
	s.dens, _ = model.SolverStatsOf(dens)
	return s
}

func (s *restartSolver) add(t restartSolver) {
	s.flow, s.dens = s.flow.Add(t.flow), s.dens.Add(t.dens)
}
