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
// fitter, the ShiftConfig's fit options).
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
	if _, err := f.fit(ctx, "fit-S", g.ds, g.pooled); err != nil {
		return nil, err
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
			ll    *float64
		}{{"fit-A", g.da, g.xa, &st.llA}, {"fit-B", g.db, g.xb, &st.llB}} {
			for i, p := range f.d.Params() {
				be.Copy(p.Value, g.init[i])
			}
			if _, err = g.fit.fit(ctx, f.phase, f.d, f.x); err != nil {
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
