package model

// SolverStats counts the ODE solver work of a continuous model since it was
// built: forward solves (Forward, Inverse, LogProb) and backward passes.
// Evaluations are summed over rows, so NFE/Rows is the mean number of
// evaluations of f per row and transform.
type SolverStats struct {
	Solves       int `json:"solves"`        // batched forward solves (one per block and call)
	Rows         int `json:"rows"`          // rows over those solves
	NFE          int `json:"nfe"`           // evaluations of f (with its trace)
	Accepted     int `json:"accepted"`      // accepted steps
	Backwards    int `json:"backwards"`     // batched backward passes
	BackwardRows int `json:"backward_rows"` // rows over those
	BackwardNFE  int `json:"backward_nfe"`  // evaluations of f in backward passes
	VJP          int `json:"vjp"`           // vector-Jacobian products of [f, tr]
}

// NFEPerRow returns the mean forward evaluations per row and transform.
func (s SolverStats) NFEPerRow() float64 {
	if s.Rows == 0 {
		return 0
	}
	return float64(s.NFE) / float64(s.Rows)
}

// BackwardNFEPerRow returns the mean evaluations per row and transform in
// backward passes (0 before any).
func (s SolverStats) BackwardNFEPerRow() float64 {
	if s.BackwardRows == 0 {
		return 0
	}
	return float64(s.BackwardNFE) / float64(s.BackwardRows)
}

// Sub returns the element-wise difference s − t (the work between two
// snapshots).
func (s SolverStats) Sub(t SolverStats) SolverStats {
	return SolverStats{s.Solves - t.Solves, s.Rows - t.Rows, s.NFE - t.NFE, s.Accepted - t.Accepted,
		s.Backwards - t.Backwards, s.BackwardRows - t.BackwardRows, s.BackwardNFE - t.BackwardNFE, s.VJP - t.VJP}
}

// Add returns the element-wise sum s + t.
func (s SolverStats) Add(t SolverStats) SolverStats {
	return SolverStats{s.Solves + t.Solves, s.Rows + t.Rows, s.NFE + t.NFE, s.Accepted + t.Accepted,
		s.Backwards + t.Backwards, s.BackwardRows + t.BackwardRows, s.BackwardNFE + t.BackwardNFE, s.VJP + t.VJP}
}

// ODEModel is implemented by models that integrate an ODE (FFJORD, and a
// FlowDensity over one).
type ODEModel interface {
	// SolverStats returns the solver work since the model was built.
	SolverStats() SolverStats
}

// SolverStatsOf returns the solver work of m — an ODEModel, or a
// FlowDensity over one — and whether m integrates an ODE at all.
func SolverStatsOf(m any) (SolverStats, bool) {
	if fd, ok := m.(*FlowDensity); ok {
		m = fd.f
	}
	if o, ok := m.(ODEModel); ok {
		return o.SolverStats(), true
	}
	return SolverStats{}, false
}
