package paper

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// LRMF on the GLOW digits (supp. §8.3): align the USPS-style images B to
// MNIST A with a back-to-back flow T = G2⁻¹∘G1 of two image GLOWs
// (model.GLOWBackToBack), θS a GLOW density starting at θA*, trained
// jointly on the LRMF objective by lrmf.JointPhase (a = B is moved by T,
// θS sees [T(B); A]) with
//
//	c_AB = ℓ(B; θB*) + ℓ(A; θA*)  (mean log-likelihoods, training images),
//
// so LRMF = 0 when pS(T(b))·|det ∇T(b)| = pB*(b) and pS = pA*. Two runs:
//
//   - "back-to-back": G1 = θB*'s GLOW, G2 = θA*'s (copies), both trained,
//     so T(b) = G_A⁻¹(G_B(b)) (the paper's). At the start
//     ln pS(T(b)) + ln|det ∇T(b)| = ln pB*(b), so LRMF = 0 up to batch
//     noise by construction, whether or not T(B) looks like A.
//   - "from scratch": a fresh back-to-back pair initialised on B
//     (G2 = G1, so T = id): LRMF starts at c_AB − ℓ(B; θA*) − ℓ(A; θA*),
//     the gap between the domains under θA*, and has to be brought down.
//
// A domain classifier on pixels (A vs T(B), held out) judges the
// alignment either way. The joint phase draws B from the training images
// whose T(b) is finite at the start and, back to back, where the start's
// identity ln pS(T(b)) + ln|det ∇T(b)| = ln pB*(b) holds to 1 nat (see
// startRows); c_AB is taken on those.

// GLOW LRMF runs (GLOWDigitsConfig.LRMFRuns).
const (
	GLOWRunBackToBack = "back-to-back"
	GLOWRunScratch    = "scratch"
)

// GLOWLRMF is the outcome of one LRMF alignment of the GLOW digits.
type GLOWLRMF struct {
	Kind       string       // GLOWRunBackToBack or GLOWRunScratch
	Backend    string       // the backend and element type of the joint phase, e.g. "cpu/float64"
	Trajectory []lrmf.Point // every step's mini-batch LRMF (nats per image)
	Mean, SD   float64      // of the per-step LRMF (the paper: ≈ 0 ± 32–41)
	CAB        float64      // c_AB on the training images
	Seconds    float64      // the joint phase's time
	// Err is the joint phase's error when it stopped early (a non-finite
	// LRMF or gradient: lrmf.ErrDiverged), "" when it ran every step.
	Err     string
	AccAB   float64 // held-out accuracy of a domain classifier A vs B
	AccATB  float64 // ... A vs T(B) after the joint phase, retrained (0.5: indistinguishable; paper 0.59–0.66)
	AccATB0 float64 // ... A vs T(B) before it
	// NonFinite and NonFinite0 count the held-out T(B) images (after,
	// before) with a non-finite pixel: G_A⁻¹ of latents G_A was not fitted
	// to can overflow (each sigmoid coupling's inverse divides by s < 1).
	// The classifier leaves them out; the grids show their pixels white.
	NonFinite, NonFinite0 int
	// TrainB is the number of training images of B the joint phase draws
	// from. NonFiniteB were left out because T(b) had a non-finite pixel
	// at the start (one such image makes a batch's LRMF and gradients NaN);
	// InconsistentB (back to back) because ln pS(T(b)) + ln|det ∇T(b)|
	// differed from ln pB*(b) by more than 1 nat at the start, where the
	// identity that makes the start's LRMF 0 holds in exact arithmetic:
	// float32 loses it when G_A⁻¹ makes T(b) huge (see startRows).
	TrainB, NonFiniteB, InconsistentB int
	HeldOut                           int        // held-out images per domain
	A, B, TB                          *mat.Dense // the first held-out images of A, B and T(B), for grids
	Options                           lrmf.JointOptions
}

// BlockStats returns the mean and SD of the trajectory's LRMF over
// consecutive blocks of k steps (the last block may be shorter).
func (g *GLOWLRMF) BlockStats(k int) (first []int, mean, sd []float64) {
	pts := g.Trajectory
	for lo := 0; lo < len(pts); lo += max(k, 1) {
		hi := min(lo+max(k, 1), len(pts))
		m, v := 0.0, 0.0
		for _, p := range pts[lo:hi] {
			m += p.Loss / float64(hi-lo)
		}
		for _, p := range pts[lo:hi] {
			v += (p.Loss - m) * (p.Loss - m) / float64(max(hi-lo-1, 1))
		}
		first, mean, sd = append(first, pts[lo].Step), append(mean, m), append(sd, math.Sqrt(v))
	}
	return first, mean, sd
}

// glowData holds the images of the LRMF runs on the backend: training
// a, b and held-out ha, hb (one dequantisation draw each), and the
// held-out images on the host.
type glowData struct {
	a, b, ha, hb *native.Tensor
	ma, mb       *mat.Dense
}

// glowLRMF runs the alignments in c.LRMFRuns after the fits; a (training)
// and ha, b, hb (held-out) are the n×1024 images in [0, 1]. The fitted
// models are copied, so r.A and r.B are left as fitted.
func glowLRMF(ctx context.Context, fitBE native.Backend, c GLOWDigitsConfig, r *GLOWDigitsResult, a, ha, b, hb *mat.Dense, stage func(string)) ([]*GLOWLRMF, error) {
	rng := rand.New(rand.NewPCG(c.Seed, 0x1a5f))
	s := model.ImageShape{H: GLOWDigitsSide, W: GLOWDigitsSide, C: 1}
	d, bs := s.Dim(), c.Batch
	be := fitBE
	if c.LRMFBackend != nil {
		be = c.LRMFBackend
	}
	// θA* and θB* on the LRMF's backend.
	densA, densB := r.A.Density, r.B.Density
	if be != fitBE {
		var err error
		if densA, err = copyDensity(fitBE, be, s, c.Model, densA, rng); err != nil {
			return nil, err
		}
		if densB, err = copyDensity(fitBE, be, s, c.Model, densB, rng); err != nil {
			return nil, err
		}
	}
	upload := func(m *mat.Dense) *native.Tensor { // with one dequantisation draw
		n, _ := m.Dims()
		h := make([]float64, n*d)
		for i := 0; i < n; i++ {
			for j, v := range m.RawRowView(i) {
				h[i*d+j] = v + c.Noise*(2*rng.Float64()-1)
			}
		}
		t := be.New(n, d)
		be.Upload(t, h)
		return t
	}
	host := func(t *native.Tensor) *mat.Dense {
		m := mat.NewDense(t.Rows(), d, nil)
		be.Download(m.RawMatrix().Data, t)
		return m
	}
	g := &glowData{a: upload(a), b: upload(b), ha: upload(ha), hb: upload(hb)}
	g.ma, g.mb = host(g.ha), host(g.hb)
	la, err := meanLogProb(be, densA, g.a, bs)
	if err != nil {
		return nil, err
	}
	lb, err := meanLogProb(be, densB, g.b, bs)
	if err != nil {
		return nil, err
	}
	accAB := domainAccuracy(g.ma, g.mb)
	var out []*GLOWLRMF
	for _, kind := range c.LRMFRuns {
		stage(fmt.Sprintf("LRMF B → A, %s T = G2⁻¹∘G1 (%d steps)", kind, c.LRMFSteps))
		// θS from θA*, a copy.
		dens, err := model.GLOWDensity(s, c.Model)(be, d, rng)
		if err != nil {
			return nil, err
		}
		model.CopyParams(be, dens.Params(), densA.Params())
		var t *model.GLOWBackToBack
		switch kind {
		case GLOWRunBackToBack:
			var gs [2]*model.GLOW
			for i, src := range []model.Density{densB, densA} {
				if gs[i], err = model.NewGLOW(be, s, c.Model, rng); err != nil {
					return nil, err
				}
				model.CopyParams(be, gs[i].Params(), src.Params())
			}
			if t, err = model.NewGLOWBackToBack(gs[0], gs[1]); err != nil {
				return nil, err
			}
		case GLOWRunScratch:
			if t, err = model.NewFreshGLOWBackToBack(be, s, c.Model, rng); err != nil {
				return nil, err
			}
			if err := t.InitFromData(be.View(g.b, 0, min(g.b.Rows(), 4*bs))); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("paper: GLOW digits: unknown LRMF run %q (want %q or %q)", kind, GLOWRunBackToBack, GLOWRunScratch)
		}
		// The B images T maps to finite images at the start (and, back to
		// back, where the start's identity holds to 1 nat), c_AB on them.
		var pS, pB model.Density
		if kind == GLOWRunBackToBack {
			pS, pB = dens, densB
		}
		bt, nonFinite, inconsistent, err := startRows(be, t, pS, pB, g.b, bs, 1)
		if err != nil {
			return nil, err
		}
		cab := la + lb
		if bt != g.b && bt.Rows() >= bs {
			if lb, err = meanLogProb(be, densB, bt, bs); err != nil {
				return nil, err
			}
			cab = la + lb
		}
		l, err := glowLRMFRun(ctx, be, c, g, bt, t, dens, cab)
		if err != nil {
			return nil, err
		}
		l.Backend = fmt.Sprintf("%s/%v", be.Name(), be.DType())
		l.Kind, l.AccAB, l.TrainB, l.NonFiniteB, l.InconsistentB = kind, accAB, bt.Rows(), nonFinite, inconsistent
		out = append(out, l)
	}
	return out, nil
}

// copyDensity returns a GLOW density on be with the parameters of src,
// a GLOW density of the same shape and options on from.
func copyDensity(from, be native.Backend, s model.ImageShape, o model.GLOWOptions, src model.Density, rng *rand.Rand) (model.Density, error) {
	dst, err := model.GLOWDensity(s, o)(be, s.Dim(), rng)
	if err != nil {
		return nil, err
	}
	for i, p := range src.Params() {
		h := make([]float64, p.Value.Len())
		from.Download(h, p.Value)
		be.Upload(dst.Params()[i].Value, h)
	}
	return dst, nil
}

// meanLogProb returns the mean of ln p(x_i) over the rows of x, in chunks
// of bs rows (the last chunk ends at the last row; rows are counted once).
func meanLogProb(be native.Backend, p model.Density, x *native.Tensor, bs int) (float64, error) {
	n := x.Rows()
	lp := be.New(bs, 1)
	lph := make([]float64, bs)
	total := 0.0
	for lo := 0; lo < n; lo += bs {
		start := min(lo, n-bs)
		if err := p.LogProb(lp, be.View(x, start, start+bs)); err != nil {
			return 0, err
		}
		be.Download(lph, lp)
		for k := lo - start; k < bs; k++ {
			total += lph[k]
		}
	}
	return total / float64(n), nil
}

// startRows returns the rows b of x (n×D) whose T(b) is finite and, when
// pS and pB are not nil, for which ln pS(T(b)) + ln|det ∇T(b)| is within
// tol nats of ln pB(b) (the back-to-back start makes them equal; in
// float32 they part where G_A⁻¹ has made T(b) huge and G_A cannot undo
// it), as a new tensor (x itself when it keeps all), and how many rows
// each test left out; T runs in chunks of bs rows.
func startRows(be native.Backend, t model.Flow, pS, pB model.Density, x *native.Tensor, bs int, tol float64) (kept *native.Tensor, nonFinite, inconsistent int, err error) {
	n, d := x.Rows(), x.Cols()
	y, ld, ls, lb := be.New(bs, d), be.New(bs, 1), be.New(bs, 1), be.New(bs, 1)
	yh, ldh, lsh, lbh := make([]float64, bs*d), make([]float64, bs), make([]float64, bs), make([]float64, bs)
	state := make([]int, n) // 0 kept, 1 non-finite, 2 inconsistent
	for lo := 0; lo < n; lo += bs {
		start := min(lo, n-bs)
		xb := be.View(x, start, start+bs)
		be.Fill(ld, 0)
		if err := t.Forward(y, ld, xb); err != nil {
			return nil, 0, 0, err
		}
		be.Download(yh, y)
		if pS != nil {
			if err := pS.LogProb(ls, y); err != nil {
				return nil, 0, 0, err
			}
			if err := pB.LogProb(lb, xb); err != nil {
				return nil, 0, 0, err
			}
			be.Download(ldh, ld)
			be.Download(lsh, ls)
			be.Download(lbh, lb)
		}
		for k := 0; k < bs; k++ {
			state[start+k] = 0
			for _, v := range yh[k*d : (k+1)*d] {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					state[start+k] = 1
					break
				}
			}
			if state[start+k] == 0 && pS != nil && !(math.Abs(lsh[k]+ldh[k]-lbh[k]) <= tol) {
				state[start+k] = 2
			}
		}
	}
	var idx []int32
	for i, st := range state {
		switch st {
		case 0:
			idx = append(idx, int32(i))
		case 1:
			nonFinite++
		default:
			inconsistent++
		}
	}
	if len(idx) == n {
		return x, 0, 0, nil
	}
	kept = be.New(max(len(idx), 1), d)
	if len(idx) > 0 {
		be.GatherRows(kept, x, idx)
	}
	return kept, nonFinite, inconsistent, nil
}

// glowLRMFRun runs one joint phase of T and θS from their starts on A and
// the training images b of B, and measures T(B) on the held-out B before
// and after it.
func glowLRMFRun(ctx context.Context, be native.Backend, c GLOWDigitsConfig, g *glowData, b *native.Tensor, t model.Flow, dens model.Density, cab float64) (*GLOWLRMF, error) {
	d, bs := t.Dim(), c.Batch
	out := &GLOWLRMF{CAB: cab}
	o := lrmf.JointOptions{Steps: c.LRMFSteps, Batch: bs, LR: c.LRMFLR, Seed: c.Seed, FlowName: "GLOW G2⁻¹∘G1", DensityName: "GLOW θS"}
	out.Options = o
	nh := g.hb.Rows()
	ttb, ld := be.New(nh, d), be.New(bs, 1)
	tOfB := func() (*mat.Dense, error) {
		for lo := 0; lo < nh; lo += bs {
			start := min(lo, nh-bs)
			be.Fill(ld, 0)
			if err := t.Forward(be.View(ttb, start, start+bs), ld, be.View(g.hb, start, start+bs)); err != nil {
				return nil, err
			}
		}
		m := mat.NewDense(nh, d, nil)
		be.Download(m.RawMatrix().Data, ttb)
		return m, nil
	}
	out.HeldOut = nh
	m0, err := tOfB()
	if err != nil {
		return nil, err
	}
	var fin *mat.Dense
	fin, out.NonFinite0 = finiteRows(m0)
	out.AccATB0 = domainAccuracy(g.ma, fin)
	if b.Rows() < bs {
		out.Err = fmt.Sprintf("T(b) is finite on %d training images of B, fewer than a batch of %d: no joint phase", b.Rows(), bs)
	} else {
		t0 := time.Now()
		pts, err := lrmf.JointPhase(ctx, be, b, g.a, t, dens, cab, o)
		out.Seconds = time.Since(t0).Seconds()
		out.Trajectory = pts
		switch {
		case errors.Is(err, lrmf.ErrDiverged):
			out.Err = err.Error()
		case err != nil:
			return nil, err
		}
	}
	pts := out.Trajectory
	for _, p := range pts {
		out.Mean += p.Loss / float64(len(pts))
	}
	for _, p := range pts {
		out.SD += (p.Loss - out.Mean) * (p.Loss - out.Mean) / float64(max(len(pts)-1, 1))
	}
	out.SD = math.Sqrt(out.SD)
	mtb, err := tOfB()
	if err != nil {
		return nil, err
	}
	fin, out.NonFinite = finiteRows(mtb)
	out.AccATB = domainAccuracy(g.ma, fin)
	for i, v := range mtb.RawMatrix().Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			mtb.RawMatrix().Data[i] = 1
		}
	}
	k := min(nh, 40)
	out.A, out.B, out.TB = mat.DenseCopyOf(g.ma.Slice(0, k, 0, d)), mat.DenseCopyOf(g.mb.Slice(0, k, 0, d)), mat.DenseCopyOf(mtb.Slice(0, k, 0, d))
	return out, nil
}

// finiteRows returns the rows of m without a non-finite value (nil when
// none is left) and how many it left out.
func finiteRows(m *mat.Dense) (*mat.Dense, int) {
	r, c := m.Dims()
	var keep []float64
	for i := 0; i < r; i++ {
		row, ok := m.RawRowView(i), true
		for _, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				ok = false
				break
			}
		}
		if ok {
			keep = append(keep, row...)
		}
	}
	if len(keep) == 0 {
		return nil, r
	}
	return mat.NewDense(len(keep)/c, c, keep), r - len(keep)/c
}

// domainAccuracy trains a logistic regression on pixels to tell the rows
// of x (label 0) from those of y (label 1) on the first half of each and
// returns its accuracy on the second halves (0.5: indistinguishable to
// it; NaN when y is nil). Features are standardised on the training half (values clamped to
// ±10 standard deviations, so a few wild pixels of T(B) cannot decide
// alone); full-batch gradient descent on the mean cross-entropy plus
// 1e-3·‖w‖², 500 iterations at rate 0.5.
func domainAccuracy(x, y *mat.Dense) float64 {
	if y == nil {
		return math.NaN()
	}
	nx, d := x.Dims()
	ny, _ := y.Dims()
	hx, hy := nx/2, ny/2
	type row struct {
		v     []float64
		label float64
	}
	var train, test []row
	for i := 0; i < nx; i++ {
		r := row{x.RawRowView(i), 0}
		if i < hx {
			train = append(train, r)
		} else {
			test = append(test, r)
		}
	}
	for i := 0; i < ny; i++ {
		r := row{y.RawRowView(i), 1}
		if i < hy {
			train = append(train, r)
		} else {
			test = append(test, r)
		}
	}
	mu, sd := make([]float64, d), make([]float64, d)
	for _, r := range train {
		for j, v := range r.v {
			mu[j] += v / float64(len(train))
		}
	}
	for _, r := range train {
		for j, v := range r.v {
			sd[j] += (v - mu[j]) * (v - mu[j]) / float64(len(train))
		}
	}
	for j := range sd {
		sd[j] = math.Max(math.Sqrt(sd[j]), 1e-3)
	}
	feat := func(v []float64, f []float64) {
		for j := range f {
			f[j] = math.Max(-10, math.Min(10, (v[j]-mu[j])/sd[j]))
		}
	}
	ft := make([][]float64, len(train))
	for i, r := range train {
		ft[i] = make([]float64, d)
		feat(r.v, ft[i])
	}
	w, g := make([]float64, d+1), make([]float64, d+1)
	const lr, lambda = 0.5, 1e-3
	for it := 0; it < 500; it++ {
		clear(g)
		for i, r := range train {
			z := w[d]
			for j, v := range ft[i] {
				z += w[j] * v
			}
			e := 1/(1+math.Exp(-z)) - r.label
			for j, v := range ft[i] {
				g[j] += e * v
			}
			g[d] += e
		}
		for j := range w {
			reg := 0.0
			if j < d {
				reg = 2 * lambda * w[j]
			}
			w[j] -= lr * (g[j]/float64(len(train)) + reg)
		}
	}
	f, right := make([]float64, d), 0
	for _, r := range test {
		feat(r.v, f)
		z := w[d]
		for j, v := range f {
			z += w[j] * v
		}
		if (z > 0) == (r.label == 1) {
			right++
		}
	}
	return float64(right) / float64(max(len(test), 1))
}

// String is a one-line summary, for errors and logs.
func (g *GLOWLRMF) String() string {
	return fmt.Sprintf("%s LRMF: %d steps, mean %.1f ± %.1f nats per batch; classifier A vs T(B) %.3f (A vs B %.3f)",
		g.Kind, len(g.Trajectory), g.Mean, g.SD, g.AccATB, g.AccAB)
}
