package paper

import (
	"context"
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
// MNIST A with the back-to-back flow T(b) = G_A⁻¹(G_B(b)) built from the
// fitted θA*, θB*, θS starting at θA*, trained on the LRMF objective.
//
// The paper trains G_A⁻¹ inside T too, which needs the vector-Jacobian
// product of GLOW's inverse; lrmf's flows have that of the forward map
// only. Here G_A is frozen and shared by T and θS, and θS is written as
// θA* followed by a latent GLOW density q: pS(x) = q(G_A(x))·|det ∇G_A(x)|,
// q a GLOW of the same size starting at N(0, I) (ActNorms at the
// identity, W rotations, zero-initialised couplings with the exp scale,
// s = 1: an orthogonal map), so θS starts at θA* exactly. Then, with zA = G_A(A),
//
//	ln pS(T(b)) + ln|det ∇T(b)| = ln q(G_B(b)) + ln|det ∇G_B(b)|,
//	ln pS(a) = ln q(zA) + ln|det ∇G_A(a)|,
//
// so the paper's LRMF equals the LRMF of the flow G_B (starting at θB*)
// and the density q between B and zA, with c'_AB = ℓ(B; θB*) + mean ln N(zA):
// lrmf.JointPhase runs it unchanged. At the start q = N(0, I) and
// G_B = θB*, so LRMF = c_AB − ℓ(B; θB*) − ℓ(A; θA*) = 0 up to batch noise
// by construction, whether or not T(B) looks like A.

// GLOWLRMF is the outcome of the LRMF alignment of the GLOW digits.
type GLOWLRMF struct {
	Kind       string       // "back-to-back"
	Trajectory []lrmf.Point // every step's mini-batch LRMF (nats per image)
	Mean, SD   float64      // of the per-step LRMF (the paper: ≈ 0 ± 32–41)
	CAB        float64      // c'_AB on the training images
	Seconds    float64      // the joint phase's time
	AccAB      float64      // held-out accuracy of a domain classifier A vs B
	AccATB     float64      // ... A vs T(B) after the joint phase, retrained (0.5: indistinguishable; paper 0.59–0.66)
	AccATB0    float64      // ... A vs T(B) before it (T = G_A⁻¹∘G_B of θA*, θB*)
	// NonFinite and NonFinite0 count the held-out T(B) images (after,
	// before) with a non-finite pixel: G_A⁻¹ of latents G_A was not fitted
	// to can overflow (each sigmoid coupling's inverse divides by s < 1).
	// The classifier leaves them out; the grids show their pixels white.
	NonFinite, NonFinite0 int
	HeldOut               int        // held-out images per domain
	A, B, TB              *mat.Dense // the first held-out images of A, B and T(B), for grids
	Options               lrmf.JointOptions
}

// glowLRMF runs the alignment after the fits; a (training) and ha, b, hb
// (held-out) are the n×1024 images in [0, 1].
func glowLRMF(ctx context.Context, be native.Backend, c GLOWDigitsConfig, r *GLOWDigitsResult, a, ha, b, hb *mat.Dense) (*GLOWLRMF, error) {
	rng := rand.New(rand.NewPCG(c.Seed, 0x1a5f))
	s := model.ImageShape{H: GLOWDigitsSide, W: GLOWDigitsSide, C: 1}
	d, bs := s.Dim(), c.Batch
	ga := r.A.Density.(*model.FlowDensity).Flow().(*model.GLOW)
	gb := r.B.Density.(*model.FlowDensity).Flow().(*model.GLOW)
	dens := r.B.Density
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
	ta, tb, tha, thb := upload(a), upload(b), upload(ha), upload(hb)
	// chunks runs f on the rows [lo, lo+bs) of n rows, the last chunk
	// ending at n (the models' buffers are sized for bs rows).
	chunks := func(n int, f func(lo int) error) error {
		for lo := 0; lo < n; lo += bs {
			if err := f(min(lo, n-bs)); err != nil {
				return err
			}
		}
		return nil
	}
	// zA = G_A(A) and c'_AB = ℓ(B; θB*) + mean ln N(zA).
	na, nb := ta.Rows(), tb.Rows()
	za := be.New(na, d)
	ld, lp := be.New(bs, 1), be.New(bs, 1)
	zh := make([]float64, na*d)
	if err := chunks(na, func(lo int) error {
		be.Fill(ld, 0)
		return ga.Forward(be.View(za, lo, lo+bs), ld, be.View(ta, lo, lo+bs))
	}); err != nil {
		return nil, err
	}
	be.Download(zh, za)
	lnN := 0.0
	for _, v := range zh {
		lnN -= 0.5 * v * v
	}
	lnN = lnN/float64(na) - 0.5*float64(d)*math.Log(2*math.Pi)
	lpb, seen := 0.0, make([]bool, nb)
	lph := make([]float64, bs)
	if err := chunks(nb, func(lo int) error {
		if err := dens.LogProb(lp, be.View(tb, lo, lo+bs)); err != nil {
			return err
		}
		be.Download(lph, lp)
		for k, v := range lph {
			if !seen[lo+k] {
				seen[lo+k], lpb = true, lpb+v
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := &GLOWLRMF{Kind: "back-to-back", CAB: lpb/float64(nb) + lnN}
	qo := c.Model
	qo.Scale = model.DefaultScale // s = 1 at the start (see GLOWOptions.Scale)
	q, err := model.GLOWDensity(s, qo)(be, d, rng)
	if err != nil {
		return nil, err
	}
	o := lrmf.JointOptions{Steps: c.LRMFSteps, Batch: bs, LR: c.LRMFLR, Seed: c.Seed, FlowName: "GLOW G_B", DensityName: "GLOW q∘G_A"}
	out.Options = o
	// T(B) on the held-out B: G_A⁻¹(G_B(b)).
	nh := thb.Rows()
	ttb, z := be.New(nh, d), be.New(bs, d)
	tOfB := func() error {
		return chunks(nh, func(lo int) error {
			be.Fill(ld, 0)
			if err := gb.Forward(z, ld, be.View(thb, lo, lo+bs)); err != nil {
				return err
			}
			return ga.Inverse(be.View(ttb, lo, lo+bs), z)
		})
	}
	host := func(t *native.Tensor) *mat.Dense {
		m := mat.NewDense(t.Rows(), d, nil)
		be.Download(m.RawMatrix().Data, t)
		return m
	}
	ma, mb := host(tha), host(thb)
	out.HeldOut = nh
	out.AccAB = domainAccuracy(ma, mb)
	if err := tOfB(); err != nil {
		return nil, err
	}
	var fin *mat.Dense
	fin, out.NonFinite0 = finiteRows(host(ttb))
	out.AccATB0 = domainAccuracy(ma, fin)
	t0 := time.Now()
	pts, err := lrmf.JointPhase(ctx, be, tb, za, gb, q, out.CAB, o)
	out.Seconds = time.Now().Sub(t0).Seconds()
	out.Trajectory = pts
	if err != nil {
		return out, err
	}
	for _, p := range pts {
		out.Mean += p.Loss / float64(len(pts))
	}
	for _, p := range pts {
		out.SD += (p.Loss - out.Mean) * (p.Loss - out.Mean) / float64(max(len(pts)-1, 1))
	}
	out.SD = math.Sqrt(out.SD)
	if err := tOfB(); err != nil {
		return nil, err
	}
	mtb := host(ttb)
	fin, out.NonFinite = finiteRows(mtb)
	out.AccATB = domainAccuracy(ma, fin)
	for i, v := range mtb.RawMatrix().Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			mtb.RawMatrix().Data[i] = 1
		}
	}
	k := min(nh, 40)
	out.A, out.B, out.TB = mat.DenseCopyOf(ma.Slice(0, k, 0, d)), mat.DenseCopyOf(mb.Slice(0, k, 0, d)), mat.DenseCopyOf(mtb.Slice(0, k, 0, d))
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
