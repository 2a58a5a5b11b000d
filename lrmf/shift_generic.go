package lrmf

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// genericShift evaluates the statistics with any Density on a backend: θS
// is fitted once to A ∪ B; each labelling gathers its two sets, evaluates
// ℓ and ‖∇θ ℓ‖ at θS on each, and (unless score-only) fits θA and θB,
// starting from θS's initial parameters, with Align's fitting code (one
// fitter, the ShiftConfig's fit options). With a validation fraction each
// gradient fit holds out the same positions of its set (drawn once) for
// early stopping.
type genericShift struct {
	be         native.Backend
	fit        *fitter
	pooled     *native.Tensor
	xa, xb     *native.Tensor
	ds, da, db model.Density
	gA, gB     *fullGrad
	scoreOnly  bool
	closedForm bool
	init       []*native.Tensor // θS before its fit: where θA, θB start
	// Fit and validation rows of the relabelled sets (nil parts: no
	// validation): positions of a labelling's rows, and the buffers they
	// are gathered into.
	partA, partB fitParts
}

// fitParts splits the positions 0..n−1 of a set into fit and validation
// positions (a seeded permutation) and holds the gathered rows.
type fitParts struct {
	fitPos, valPos []int
	fitIdx, valIdx []int32
	xf, xv         *native.Tensor
}

func newFitParts(be native.Backend, n, dim int, validation float64, seed uint64, set int) fitParts {
	_, nv, _ := SplitSizes(n, 0, validation)
	if nv == 0 {
		return fitParts{}
	}
	perm := rand.New(rand.NewPCG(seed, 0x73706c6974+uint64(set))).Perm(n)
	p := fitParts{valPos: perm[:nv], fitPos: perm[nv:], fitIdx: make([]int32, n-nv), valIdx: make([]int32, nv)}
	p.xf, p.xv = be.New(n-nv, dim), be.New(nv, dim)
	return p
}

// gather fills the parts with the rows rows[pos] of pooled and returns the
// fit and validation rows (x itself and nil without a validation part).
func (p *fitParts) gather(be native.Backend, pooled, x *native.Tensor, rows []int32) (fit, val *native.Tensor) {
	if p.xv == nil {
		return x, nil
	}
	for i, q := range p.fitPos {
		p.fitIdx[i] = rows[q]
	}
	for i, q := range p.valPos {
		p.valIdx[i] = rows[q]
	}
	be.GatherRows(p.xf, pooled, p.fitIdx)
	be.GatherRows(p.xv, pooled, p.valIdx)
	return p.xf, p.xv
}

// newGenericShift builds θS with mk and fits it to the pooled rows [A; B]
// (na + nb rows) under the filled-in configuration sc.
func newGenericShift(ctx context.Context, be native.Backend, pooled *mat.Dense, na, nb int, mk model.DensityMaker, sc ShiftConfig) (*genericShift, error) {
	_, dim := pooled.Dims()
	rng := rand.New(rand.NewPCG(sc.Seed, 0x6c726d66)) // "lrmf", as Align
	f := &fitter{opt: sc.FitOptions, be: be, rng: rng, dim: dim, every: DefaultConfig().ProgressEvery}
	g := &genericShift{be: be, fit: f, scoreOnly: sc.ScoreOnly}
	g.pooled = toTensor(be, pooled)
	g.xa, g.xb = be.New(na, dim), be.New(nb, dim)
	var err error
	newDensity := func(which string) (model.Density, error) {
		d, err := mk(be, dim, rng)
		if err != nil {
			return nil, fmt.Errorf("lrmf: building the density for %s: %w", which, err)
		}
		return d, nil
	}
	if g.ds, err = newDensity("S"); err != nil {
		return nil, err
	}
	_, mle := g.ds.(model.MLEFitter)
	g.closedForm = mle && !sc.GradientFit
	// θS is fitted before θA, θB are built, so it does not depend on
	// ScoreOnly (building a density may draw from rng).
	for _, p := range g.ds.Params() {
		t := be.New(p.Value.Rows(), p.Value.Cols())
		be.Copy(t, p.Value)
		g.init = append(g.init, t)
	}
	n := na + nb
	all := make([]int32, n)
	for i := range all {
		all[i] = int32(i)
	}
	var pool fitParts // closed-form fits use every row
	if !g.closedForm {
		pool = newFitParts(be, n, dim, sc.Validation, sc.Seed, 2)
	}
	xf, xv := pool.gather(be, g.pooled, g.pooled, all)
	if _, err := f.fit(ctx, "fit-S", g.ds, xf, xv); err != nil {
		return nil, err
	}
	if !g.closedForm && !sc.ScoreOnly {
		g.partA = newFitParts(be, na, dim, sc.Validation, sc.Seed, 0)
		g.partB = newFitParts(be, nb, dim, sc.Validation, sc.Seed, 1)
	}
	if !g.scoreOnly {
		if g.da, err = newDensity("A"); err != nil {
			return nil, err
		}
		if g.db, err = newDensity("B"); err != nil {
			return nil, err
		}
	}
	g.gA, g.gB = newFullGrad(be, g.ds, g.xa), newFullGrad(be, g.ds, g.xb)
	return g, nil
}

func (g *genericShift) pooledGrad() (float64, error) {
	return newFullGrad(g.be, g.ds, g.pooled).norm()
}

func (g *genericShift) eval(ctx context.Context, a, b []int32) (shiftStats, error) {
	st := shiftStats{scoreOnly: g.scoreOnly}
	be := g.be
	be.GatherRows(g.xa, g.pooled, a)
	be.GatherRows(g.xb, g.pooled, b)
	var err error
	if st.llSA, err = model.MeanLogProb(be, g.ds, g.xa); err != nil {
		return st, err
	}
	if st.llSB, err = model.MeanLogProb(be, g.ds, g.xb); err != nil {
		return st, err
	}
	if st.gradA, err = g.gA.norm(); err != nil {
		return st, err
	}
	if st.gradB, err = g.gB.norm(); err != nil {
		return st, err
	}
	st.llA, st.llB = math.NaN(), math.NaN()
	if !g.scoreOnly {
		for _, f := range []struct {
			phase string
			d     model.Density
			x     *native.Tensor
			rows  []int32
			part  *fitParts
			ll    *float64
		}{{"fit-A", g.da, g.xa, a, &g.partA, &st.llA}, {"fit-B", g.db, g.xb, b, &g.partB, &st.llB}} {
			for i, p := range f.d.Params() {
				be.Copy(p.Value, g.init[i])
			}
			xf, xv := f.part.gather(be, g.pooled, f.x, f.rows)
			if _, err = g.fit.fit(ctx, f.phase, f.d, xf, xv); err != nil {
				return st, err
			}
			if *f.ll, err = model.MeanLogProb(be, f.d, f.x); err != nil {
				return st, err
			}
		}
	}
	st.finish()
	return st, nil
}
