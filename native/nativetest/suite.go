// Package nativetest is the conformance suite every native.Backend runs, in
// the manner of gonum's testblas: each operation is run on the backend under
// test and on the float64 reference backend, on fresh random inputs and
// several shapes (including ones that split into row blocks), with every
// output poisoned with NaN before the call so an element the kernel forgets
// to write fails the comparison.
package nativetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/native"
)

// Tol returns the relative tolerance the suite uses for dt: 1e-5 for
// float32 and 1e-12 for float64.
func Tol(dt native.DType) float64 {
	if dt == native.Float32 {
		return 1e-5
	}
	return 1e-12
}

// Seed returns the seed of a test's random inputs: testseed.Seed, fixed
// by default (1), printed with the replay command when t fails, and set
// with LRMF_TEST_SEED=N (or "random").
func Seed(t testing.TB) uint64 {
	t.Helper()
	return testseed.Seed(t)
}

// harness holds the two backends and the comparison state of one subtest.
type harness struct {
	t      *testing.T
	b, ref native.Backend
	tol    float64
	rng    *rand.Rand
}

// pair is one logical tensor on both backends.
type pair struct {
	b, r *native.Tensor
	host []float64
}

func (h *harness) rand(rows, cols int, scale float64) pair {
	x := make([]float64, rows*cols)
	for i := range x {
		x[i] = scale * (2*h.rng.Float64() - 1)
	}
	return h.upload(rows, cols, x)
}

// upload puts x on both backends. For a float32 backend x is first rounded
// to float32 (in place), so the reference computes on exactly the values the
// backend holds and a comparison measures the kernel's arithmetic, not the
// input rounding that cancellation (y + bias ≈ 0, say) would magnify.
func (h *harness) upload(rows, cols int, x []float64) pair {
	if h.b.DType() == native.Float32 {
		for i, v := range x {
			x[i] = float64(float32(v))
		}
	}
	p := pair{b: h.b.New(rows, cols), r: h.ref.New(rows, cols), host: x}
	h.b.Upload(p.b, x)
	h.ref.Upload(p.r, x)
	return p
}

// out makes an output pair, the backend's copy poisoned with NaN.
func (h *harness) out(rows, cols int) pair {
	p := pair{b: h.b.New(rows, cols), r: h.ref.New(rows, cols)}
	h.b.Fill(p.b, math.NaN())
	return p
}

// check compares the backend's p with the reference's, element by element,
// relative to max(|ref_i|, rms(ref)) so cancellation in one element does not
// demand more than the format can give.
func (h *harness) check(name string, p pair) {
	h.t.Helper()
	h.checkFloor(name, p, nil)
}

// checkFloor is check with a per-element floor on the scale (see
// compareFloor).
func (h *harness) checkFloor(name string, p pair, floor []float64) {
	h.t.Helper()
	got := make([]float64, p.b.Len())
	want := make([]float64, p.r.Len())
	h.b.Download(got, p.b)
	h.ref.Download(want, p.r)
	compareFloor(h.t, name, got, want, floor, h.tol)
}

func compare(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	compareFloor(t, name, got, want, nil, tol)
}

// compareFloor is compare with a per-element floor on the scale (nil: none):
// where an element is a short sum whose terms cancel, the rounding of the
// largest term, not the tiny result, bounds what any implementation can
// achieve.
func compareFloor(t *testing.T, name string, got, want, floor []float64, tol float64) {
	t.Helper()
	rms := 0.0
	for _, w := range want {
		rms += w * w
	}
	if len(want) > 0 {
		rms = math.Sqrt(rms / float64(len(want)))
	}
	bad := 0
	for i := range want {
		scale := math.Max(math.Abs(want[i]), rms)
		if floor != nil {
			scale = math.Max(scale, floor[i])
		}
		if scale == 0 {
			scale = 1
		}
		if d := math.Abs(got[i] - want[i]); !(d <= tol*scale) {
			if bad < 5 {
				t.Errorf("%s[%d] = %.17g, reference %.17g (|diff|/scale = %.3g > %.3g)", name, i, got[i], want[i], d/scale, tol)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d elements differ", name, bad, len(want))
	}
}

// Shapes of n×d batches used for the batched kernels: tiny, odd, and large
// enough that a multi-threaded backend splits them into blocks.
var batchShapes = [][2]int{{1, 1}, {3, 2}, {17, 5}, {1000, 2}, {2000, 7}}

// Run runs the whole suite on b. b must not be the reference backend itself
// (it would pass trivially).
func Run(t *testing.T, b native.Backend) {
	tol := Tol(b.DType())
	ref := native.NewRef()
	seed := Seed(t)
	sub := func(name string, f func(h *harness)) {
		t.Run(name, func(t *testing.T) {
			f(&harness{t: t, b: b, ref: ref, tol: tol, rng: rand.New(rand.NewPCG(seed, uint64(len(name))))})
		})
	}
	sub("Gemm", testGemm)
	sub("GemmEx", testGemmEx)
	sub("SumSquares", testSumSquares)
	sub("BiasAddGrad", testBias)
	sub("Activations", testActivations)
	sub("Gauss", testGauss)
	sub("LogDetAcc", testLogDetAcc)
	sub("Affine", testAffine)
	sub("Adam", testAdam)
	sub("Blas1", testBlas1)
	sub("Mul", testMul)
	sub("Gather", testGather)
	sub("BiasReLU", testBiasReLU)
	sub("Columns", testColumns)
	sub("Coupling", testCoupling)
	sub("ActNorm", testActNorm)
	sub("LUSolve", testLUSolve)
	sub("ODE", testODE)
	sub("GMM", testGMM)
	sub("Image", testImage)
	sub("View", testView)
	sub("Deterministic", testDeterministic)
}

func testGemm(h *harness) {
	shapes := [][3]int{{1, 1, 1}, {2, 3, 4}, {7, 5, 3}, {33, 17, 65}, {300, 64, 96}, {64, 2, 2000}}
	for _, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, beta := range []float64{0, 0.5} {
					ar, ac := m, k
					if ta {
						ar, ac = k, m
					}
					br, bc := k, n
					if tb {
						br, bc = n, k
					}
					a, b := h.rand(ar, ac, 1), h.rand(br, bc, 1)
					var c pair
					if beta == 0 {
						c = h.out(m, n)
					} else {
						c = h.rand(m, n, 1)
					}
					alpha := 1.5
					// The largest single term of each c_ij = α Σ_l a_il b_lj + β c_ij:
					// with k = 1 and β ≠ 0 two terms can cancel to far below
					// their own rounding error.
					floor := make([]float64, m*n)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							mx := 0.0
							if beta != 0 {
								mx = math.Abs(beta * c.host[i*n+j])
							}
							for l := 0; l < k; l++ {
								ai, bj := a.host[i*k+l], b.host[l*n+j]
								if ta {
									ai = a.host[l*m+i]
								}
								if tb {
									bj = b.host[j*k+l]
								}
								mx = math.Max(mx, math.Abs(alpha*ai*bj))
							}
							floor[i*n+j] = mx
						}
					}
					h.b.Gemm(ta, tb, alpha, a.b, b.b, beta, c.b)
					h.ref.Gemm(ta, tb, alpha, a.r, b.r, beta, c.r)
					h.checkFloor(fmt.Sprintf("Gemm(m=%d,n=%d,k=%d,tA=%v,tB=%v,beta=%g)", m, n, k, ta, tb, beta), c, floor)
				}
			}
		}
	}
}

// testGemmEx runs GemmEx on windows of wider A and C (offsets 0 and 2,
// 3 spare columns) with each epilogue, and checks all of C: the columns
// outside the window must keep their values.
func testGemmEx(h *harness) {
	shapes := [][3]int{{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {300, 64, 96}, {64, 2, 700}, {50, 33, 600}, {1000, 40, 1}, {20000, 3, 2}}
	eps := []struct {
		name                   string
		bias, relu, mask, csum bool
	}{
		{name: "plain"},
		{name: "bias", bias: true},
		{name: "bias+relu", bias: true, relu: true},
		{name: "mask+colsum", mask: true, csum: true},
		{name: "all", bias: true, relu: true, mask: true, csum: true},
	}
	for si, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for ei, e := range eps {
					// Vary the rest with the case, keeping the count down.
					beta := []float64{0, 0.5}[(si+ei)%2]
					a0, c0 := 2*((si+ei+1)%2), 2*((si+ei)%2)
					if m*n*k > 1<<20 && (ta || tb) {
						continue
					}
					aw := k
					ar := m
					if ta {
						ar, aw = k, m
					}
					acols, ccols := a0+aw+3, c0+n+3
					br, bc := k, n
					if tb {
						br, bc = n, k
					}
					a, b := h.rand(ar, acols, 1), h.rand(br, bc, 1)
					ch := make([]float64, m*ccols)
					for i := range ch {
						ch[i] = 2*h.rng.Float64() - 1
						if j := i % ccols; beta == 0 && j >= c0 && j < c0+n {
							ch[i] = math.NaN() // must not be read
						}
					}
					c := h.upload(m, ccols, ch)
					var ep, epr native.Epilogue
					var bias, mask, cs pair
					if e.bias {
						bias = h.rand(1, n, 1)
						ep.Bias, epr.Bias = bias.b, bias.r
					}
					ep.ReLU, epr.ReLU = e.relu, e.relu
					if e.mask {
						mask = h.rand(m, n, 1)
						ep.Mask, epr.Mask = mask.b, mask.r
					}
					if e.csum {
						cs = h.out(1, n)
						ep.ColSum, epr.ColSum = cs.b, cs.r
					}
					alpha := 1.5
					// Floor per element: the largest single term of the sum
					// (cancellation below it is the format's, not the kernel's).
					floor := make([]float64, m*ccols)
					colFloor := make([]float64, n)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							mx := 0.0
							if beta != 0 {
								mx = math.Abs(beta * ch[i*ccols+c0+j])
							}
							if e.bias {
								mx = math.Max(mx, math.Abs(bias.host[j]))
							}
							for l := 0; l < k; l++ {
								var ai, bj float64
								if ta {
									ai = a.host[l*acols+a0+i]
								} else {
									ai = a.host[i*acols+a0+l]
								}
								if tb {
									bj = b.host[j*k+l]
								} else {
									bj = b.host[l*n+j]
								}
								mx = math.Max(mx, math.Abs(alpha*ai*bj))
							}
							floor[i*ccols+c0+j] = mx
							colFloor[j] += mx
						}
					}
					h.b.GemmEx(ta, tb, alpha, a.b, a0, b.b, beta, c.b, c0, ep)
					h.ref.GemmEx(ta, tb, alpha, a.r, a0, b.r, beta, c.r, c0, epr)
					name := fmt.Sprintf("GemmEx(m=%d,n=%d,k=%d,tA=%v,tB=%v,beta=%g,a0=%d,c0=%d,%s)", m, n, k, ta, tb, beta, a0, c0, e.name)
					h.checkFloor(name+".C", c, floor)
					if e.csum {
						h.checkFloor(name+".ColSum", cs, colFloor)
					}
				}
			}
		}
	}
	// m = 0 still writes the column sums (zeros).
	cs := h.out(1, 4)
	h.b.GemmEx(false, false, 1, h.b.New(0, 3), 0, h.b.New(3, 4), 0, h.b.New(0, 4), 0, native.Epilogue{ColSum: cs.b})
	h.ref.GemmEx(false, false, 1, h.ref.New(0, 3), 0, h.ref.New(3, 4), 0, h.ref.New(0, 4), 0, native.Epilogue{ColSum: cs.r})
	h.check("GemmEx(m=0).ColSum", cs)
}

// testSumSquares: segments of an arena (an empty first one, an empty one in
// the middle, one crossing the split of a multi-threaded backend, and an
// unsegmented tail), each against the reference.
func testSumSquares(h *harness) {
	for _, ends := range [][]int64{{0, 3, 3, 1000, 70001, 140003}, {5}, {}, {262144, 262656, 263168}} {
		n := 1
		if len(ends) > 0 {
			n = int(ends[len(ends)-1]) + 17
		}
		x := h.rand(n, 1, 1)
		got, want := make([]float64, len(ends)), make([]float64, len(ends))
		for i := range got {
			got[i] = math.NaN()
		}
		h.b.SumSquares(got, x.b, ends)
		h.ref.SumSquares(want, x.r, ends)
		compare(h.t, fmt.Sprintf("SumSquares(%v)", ends), got, want, h.tol)
	}
}

func testBias(h *harness) {
	for _, s := range batchShapes {
		n, d := s[0], s[1]
		y, bias := h.rand(n, d, 1), h.rand(1, d, 1)
		h.b.BiasAdd(y.b, bias.b)
		h.ref.BiasAdd(y.r, bias.r)
		h.check("BiasAdd", y)
		dy, db := h.rand(n, d, 1), h.out(1, d)
		h.b.BiasGrad(db.b, dy.b)
		h.ref.BiasGrad(db.r, dy.r)
		h.check("BiasGrad", db)
	}
}

func testActivations(h *harness) {
	for _, s := range batchShapes {
		n, d := s[0], s[1]
		x, dy := h.rand(n, d, 3), h.rand(n, d, 1)
		y, dx := h.out(n, d), h.out(n, d)
		h.b.ReLU(y.b, x.b)
		h.ref.ReLU(y.r, x.r)
		h.check("ReLU", y)
		h.b.ReLUBackward(dx.b, x.b, dy.b)
		h.ref.ReLUBackward(dx.r, x.r, dy.r)
		h.check("ReLUBackward", dx)
		y, dx = h.out(n, d), h.out(n, d)
		h.b.Tanh(y.b, x.b)
		h.ref.Tanh(y.r, x.r)
		h.check("Tanh", y)
		h.b.TanhBackward(dx.b, y.b, dy.b)
		h.ref.TanhBackward(dx.r, y.r, dy.r)
		h.check("TanhBackward", dx)
	}
}

// wellConditioned returns a d×d matrix I + 0.3·U(−1, 1).
func (h *harness) wellConditioned(d int) pair {
	x := make([]float64, d*d)
	for i := range x {
		x[i] = 0.3 * (2*h.rng.Float64() - 1)
	}
	for i := 0; i < d; i++ {
		x[i*d+i] += 1
	}
	return h.upload(d, d, x)
}

func testGauss(h *harness) {
	for _, s := range batchShapes {
		n, d := s[0], s[1]
		x, mu, l := h.rand(n, d, 2), h.rand(1, d, 1), h.wellConditioned(d)
		logdet := 0.37
		logp, u := h.out(n, 1), h.out(n, d)
		h.b.GaussLogProb(logp.b, u.b, x.b, mu.b, l.b, logdet)
		h.ref.GaussLogProb(logp.r, u.r, x.r, mu.r, l.r, logdet)
		h.check("GaussLogProb.logp", logp)
		h.check("GaussLogProb.u", u)
		w := h.rand(n, 1, 1)
		dx, dmu, dl := h.out(n, d), h.out(1, d), h.out(d, d)
		h.b.GaussBackward(dx.b, dmu.b, dl.b, x.b, mu.b, l.b, u.b, w.b)
		h.ref.GaussBackward(dx.r, dmu.r, dl.r, x.r, mu.r, l.r, u.r, w.r)
		h.check("GaussBackward.dx", dx)
		h.check("GaussBackward.dmu", dmu)
		h.check("GaussBackward.dl", dl)
		dmu, dl = h.out(1, d), h.out(d, d)
		h.b.GaussBackward(nil, dmu.b, dl.b, x.b, mu.b, l.b, u.b, w.b)
		h.ref.GaussBackward(nil, dmu.r, dl.r, x.r, mu.r, l.r, u.r, w.r)
		h.check("GaussBackward(nil dx).dmu", dmu)
		h.check("GaussBackward(nil dx).dl", dl)
	}
}

func testLogDetAcc(h *harness) {
	for _, s := range batchShapes {
		n, d := s[0], s[1]
		sc, ld := h.rand(n, d, 1), h.rand(n, 1, 1)
		h.b.LogDetAcc(ld.b, sc.b)
		h.ref.LogDetAcc(ld.r, sc.r)
		h.check("LogDetAcc", ld)
	}
}

func testAffine(h *harness) {
	for _, s := range batchShapes {
		n, d := s[0], s[1]
		x, m, minv, b := h.rand(n, d, 2), h.wellConditioned(d), h.wellConditioned(d), h.rand(1, d, 1)
		y, ld := h.out(n, d), h.rand(n, 1, 1)
		h.b.AffineForward(y.b, ld.b, x.b, m.b, b.b, -0.25)
		h.ref.AffineForward(y.r, ld.r, x.r, m.r, b.r, -0.25)
		h.check("AffineForward.y", y)
		h.check("AffineForward.logdet", ld)
		y = h.out(n, d)
		h.b.AffineForward(y.b, nil, x.b, m.b, b.b, -0.25)
		h.ref.AffineForward(y.r, nil, x.r, m.r, b.r, -0.25)
		h.check("AffineForward(nil logdet).y", y)
		xi := h.out(n, d)
		h.b.AffineInverse(xi.b, x.b, minv.b, b.b)
		h.ref.AffineInverse(xi.r, x.r, minv.r, b.r)
		h.check("AffineInverse", xi)
	}
}

func testAdam(h *harness) {
	for _, n := range []int{1, 5, 100000} {
		p, g, m := h.rand(n, 1, 1), h.rand(n, 1, 1), h.rand(n, 1, 0.1)
		vh := make([]float64, n)
		for i := range vh {
			vh[i] = 0.01 * h.rng.Float64()
		}
		v := h.upload(n, 1, vh)
		hy := native.AdamHyper{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, BC1: 1 - math.Pow(0.9, 3), BC2: 1 - math.Pow(0.999, 3)}
		h.b.Adam(p.b, g.b, m.b, v.b, hy)
		h.ref.Adam(p.r, g.r, m.r, v.r, hy)
		h.check("Adam.p", p)
		h.check("Adam.m", m)
		h.check("Adam.v", v)
	}
}

// testMul checks out = a⊙b into a fresh output and in place (out = a,
// out = b, out = a = b), over shapes that split into several blocks.
func testMul(h *harness) {
	for _, sh := range [][2]int{{1, 1}, {7, 3}, {1000, 300}} {
		r, w := sh[0], sh[1]
		name := fmt.Sprintf(" %d×%d", r, w)
		a, b := h.rand(r, w, 1), h.rand(r, w, 1)
		o := h.out(r, w)
		h.b.Mul(o.b, a.b, b.b)
		h.ref.Mul(o.r, a.r, b.r)
		h.check("Mul"+name, o)
		h.b.Mul(a.b, a.b, b.b)
		h.ref.Mul(a.r, a.r, b.r)
		h.check("Mul(out = a)"+name, a)
		h.b.Mul(b.b, a.b, b.b)
		h.ref.Mul(b.r, a.r, b.r)
		h.check("Mul(out = b)"+name, b)
		h.b.Mul(a.b, a.b, a.b)
		h.ref.Mul(a.r, a.r, a.r)
		h.check("Mul(out = a = b)"+name, a)
	}
}

func testBlas1(h *harness) {
	for _, n := range []int{1, 7, 300000} {
		x, y := h.rand(n, 1, 1), h.rand(n, 1, 1)
		h.b.Axpy(-0.75, x.b, y.b)
		h.ref.Axpy(-0.75, x.r, y.r)
		h.check("Axpy", y)
		got, want := h.b.Dot(x.b, y.b), h.ref.Dot(x.r, y.r)
		compare(h.t, "Dot", []float64{got}, []float64{want}, h.tol*math.Sqrt(float64(n)))
		got, want = h.b.Sum(x.b), h.ref.Sum(x.r)
		compare(h.t, "Sum", []float64{got}, []float64{want}, h.tol*math.Sqrt(float64(n)))
		f := h.out(n, 1)
		h.b.Fill(f.b, 2.5)
		h.ref.Fill(f.r, 2.5)
		h.check("Fill", f)
		c := h.out(n, 1)
		h.b.Copy(c.b, x.b)
		h.ref.Copy(c.r, x.r)
		h.check("Copy", c)
	}
}

func testGather(h *harness) {
	for _, s := range batchShapes {
		n, d := s[0], s[1]
		src := h.rand(n, d, 1)
		idx := make([]int32, 2*n+1)
		for i := range idx {
			idx[i] = int32(h.rng.IntN(n))
		}
		dst := h.out(len(idx), d)
		h.b.GatherRows(dst.b, src.b, idx)
		h.ref.GatherRows(dst.r, src.r, idx)
		h.check("GatherRows", dst)
	}
}

func testBiasReLU(h *harness) {
	// 20000×7 splits into row blocks on a multi-threaded backend.
	shapes := append(append([][2]int(nil), batchShapes...), [2]int{20000, 7})
	for _, s := range shapes {
		n, d := s[0], s[1]
		y, bias := h.rand(n, d, 1), h.rand(1, d, 1)
		h.b.BiasReLU(y.b, bias.b)
		h.ref.BiasReLU(y.r, bias.r)
		h.check(fmt.Sprintf("BiasReLU(%d×%d)", n, d), y)

		// The backward takes a fresh y (a ReLU output, with exact zeros) so
		// both backends see the same mask.
		yh := make([]float64, n*d)
		for i := range yh {
			yh[i] = math.Max(2*h.rng.Float64()-1, 0)
		}
		yo, dy := h.upload(n, d, yh), h.rand(n, d, 1)
		dz, db := h.out(n, d), h.out(1, d)
		h.b.BiasReLUBackward(dz.b, db.b, yo.b, dy.b)
		h.ref.BiasReLUBackward(dz.r, db.r, yo.r, dy.r)
		h.check(fmt.Sprintf("BiasReLUBackward(%d×%d).dz", n, d), dz)
		h.check(fmt.Sprintf("BiasReLUBackward(%d×%d).db", n, d), db)

		// In place: dz = dy.
		db = h.out(1, d)
		h.b.BiasReLUBackward(dy.b, db.b, yo.b, dy.b)
		h.ref.BiasReLUBackward(dy.r, db.r, yo.r, dy.r)
		h.check(fmt.Sprintf("BiasReLUBackward(%d×%d, dz = dy).dz", n, d), dy)
		h.check(fmt.Sprintf("BiasReLUBackward(%d×%d, dz = dy).db", n, d), db)
	}
}

func testColumns(h *harness) {
	// {n, D, c0, k}; the last splits into row blocks.
	shapes := [][4]int{{1, 1, 0, 1}, {3, 2, 1, 1}, {3, 2, 0, 2}, {17, 5, 2, 3}, {4, 3, 3, 0}, {2000, 7, 3, 4}, {50000, 9, 2, 5}}
	for _, s := range shapes {
		n, d, c0, k := s[0], s[1], s[2], s[3]
		name := fmt.Sprintf("(n=%d,D=%d,c0=%d,k=%d)", n, d, c0, k)
		src, dst := h.rand(n, d, 1), h.out(n, k)
		h.b.CopyCols(dst.b, src.b, c0)
		h.ref.CopyCols(dst.r, src.r, c0)
		h.check("CopyCols"+name, dst)
		add, acc := h.rand(n, k, 1), h.rand(n, d, 1)
		h.b.AddCols(acc.b, add.b, c0)
		h.ref.AddCols(acc.r, add.r, c0)
		h.check("AddCols"+name, acc)
	}
}

// couplingShapes are {n, D, t0, dt}: both halves of D = 2, both sizes of
// transformed block for D = 5, an empty block, and batches that split.
var couplingShapes = [][4]int{
	{1, 2, 0, 1}, {3, 2, 1, 1}, {17, 5, 0, 2}, {17, 5, 3, 2}, {17, 5, 1, 3}, {17, 5, 2, 3},
	{4, 3, 1, 0}, {2000, 2, 0, 1}, {2000, 5, 1, 3}, {2000, 5, 3, 2}, {20000, 2, 1, 1},
}

// couplingScales are the scale functions the suite runs; r in h spans ±6,
// so the exp bound (3) is well inside its saturating range.
var couplingScales = []native.Scale{{Kind: native.ScaleExp, Bound: 3}, {Kind: native.ScaleSigmoid}}

// couplingH returns an n×2dt h = [μ | r] with μ in ±1 and r in ±6.
func (h *harness) couplingH(n, dt int) pair {
	x := make([]float64, n*2*dt)
	for i := 0; i < n; i++ {
		for j := 0; j < 2*dt; j++ {
			v := 2*h.rng.Float64() - 1
			if j >= dt {
				v *= 6
			}
			x[i*2*dt+j] = v
		}
	}
	return h.upload(n, 2*dt, x)
}

func testCoupling(h *harness) {
	for _, sc := range couplingScales {
		for _, s := range couplingShapes {
			n, d, t0, dt := s[0], s[1], s[2], s[3]
			name := fmt.Sprintf("(%v,n=%d,D=%d,t0=%d,dt=%d)", sc.Kind, n, d, t0, dt)
			x, hh := h.rand(n, d, 2), h.couplingH(n, dt)

			y, ld := h.out(n, d), h.rand(n, 1, 1)
			h.b.CouplingForward(y.b, ld.b, x.b, hh.b, t0, sc)
			h.ref.CouplingForward(y.r, ld.r, x.r, hh.r, t0, sc)
			h.check("CouplingForward.y"+name, y)
			h.check("CouplingForward.logdet"+name, ld)

			// nil logdet, and in place (y = x).
			y2 := h.out(n, d)
			h.b.Copy(y2.b, x.b)
			h.b.CouplingForward(y2.b, nil, y2.b, hh.b, t0, sc)
			y2.r = y.r
			h.check("CouplingForward(y = x, nil logdet)"+name, y2)

			// Inverse on fresh inputs, then Inverse(Forward(x)) = x on
			// both backends.
			yin, xi := h.rand(n, d, 2), h.out(n, d)
			h.b.CouplingInverse(xi.b, yin.b, hh.b, t0, sc)
			h.ref.CouplingInverse(xi.r, yin.r, hh.r, t0, sc)
			h.check("CouplingInverse"+name, xi)
			back := h.out(n, d)
			h.b.CouplingInverse(back.b, y.b, hh.b, t0, sc)
			h.ref.CouplingInverse(back.r, y.r, hh.r, t0, sc)
			got, gotRef := make([]float64, n*d), make([]float64, n*d)
			h.b.Download(got, back.b)
			h.ref.Download(gotRef, back.r)
			compare(h.t, "CouplingInverse(CouplingForward(x))"+name, got, x.host, 10*h.tol)
			compare(h.t, "ref CouplingInverse(CouplingForward(x))"+name, gotRef, x.host, 1e-12)
			h.b.CouplingInverse(y.b, y.b, hh.b, t0, sc) // in place (x = y)
			h.b.Download(got, y.b)
			compare(h.t, "CouplingInverse(x = y)(CouplingForward(x))"+name, got, x.host, 10*h.tol)

			dy, wl := h.rand(n, d, 1), h.rand(n, 1, 1)
			dx, dh := h.out(n, d), h.out(n, 2*dt)
			h.b.CouplingBackward(dx.b, dh.b, x.b, hh.b, dy.b, wl.b, t0, sc)
			h.ref.CouplingBackward(dx.r, dh.r, x.r, hh.r, dy.r, wl.r, t0, sc)
			h.check("CouplingBackward.dx"+name, dx)
			h.check("CouplingBackward.dh"+name, dh)

			dh2 := h.out(n, 2*dt)
			h.b.CouplingBackward(nil, dh2.b, x.b, hh.b, dy.b, wl.b, t0, sc)
			dh2.r = dh.r
			h.check("CouplingBackward(nil dx).dh"+name, dh2)

			// In place: dx = dy.
			dh3 := h.out(n, 2*dt)
			h.b.CouplingBackward(dy.b, dh3.b, x.b, hh.b, dy.b, wl.b, t0, sc)
			dh3.r, dy.r = dh.r, dx.r
			h.check("CouplingBackward(dx = dy).dx"+name, dy)
			h.check("CouplingBackward(dx = dy).dh"+name, dh3)
		}
	}
}

// testView checks that a row view aliases its parent: writing through the
// view changes exactly those rows.
func testView(h *harness) {
	n, d := 10, 3
	x := h.rand(n, d, 1)
	v := h.b.View(x.b, 4, 7)
	if v.Rows() != 3 || v.Cols() != d {
		h.t.Fatalf("View(4, 7) of a %d×%d tensor is %v", n, d, v)
	}
	h.b.Fill(v, 9)
	got := make([]float64, n*d)
	h.b.Download(got, x.b)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			want := float64(float32(x.host[i*d+j]))
			if h.b.DType() == native.Float64 {
				want = x.host[i*d+j]
			}
			if i >= 4 && i < 7 {
				want = 9
			}
			if got[i*d+j] != want {
				h.t.Fatalf("after filling rows [4,7) through a view, x[%d,%d] = %g, want %g", i, j, got[i*d+j], want)
			}
		}
	}
}

// testDeterministic runs the reductions twice on the same inputs and demands
// bit-identical results (fixed block split, fixed combination order).
func testDeterministic(h *harness) {
	n, d := 4001, 6
	x, mu, l, w := h.rand(n, d, 2), h.rand(1, d, 1), h.wellConditioned(d), h.rand(n, 1, 1)
	// BiasReLUBackward's db needs a batch large enough to split (20000×7).
	yr, dyr := h.rand(20000, 7, 1), h.rand(20000, 7, 1)
	run := func() []float64 {
		logp, u := h.b.New(n, 1), h.b.New(n, d)
		dmu, dl, db := h.b.New(1, d), h.b.New(d, d), h.b.New(1, d)
		dz, db2 := h.b.New(20000, 7), h.b.New(1, 7)
		h.b.GaussLogProb(logp, u, x.b, mu.b, l.b, 0.1)
		h.b.GaussBackward(nil, dmu, dl, x.b, mu.b, l.b, u, w.b)
		h.b.BiasGrad(db, x.b)
		h.b.BiasReLUBackward(dz, db2, yr.b, dyr.b)
		out := make([]float64, 0, n+d+d*d+d+7+2)
		for _, t := range []*native.Tensor{logp, dmu, dl, db, db2} {
			buf := make([]float64, t.Len())
			h.b.Download(buf, t)
			out = append(out, buf...)
		}
		return append(out, h.b.Sum(logp), h.b.Dot(x.b, x.b))
	}
	a, b := run(), run()
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			h.t.Fatalf("result %d differs between two identical runs: %v vs %v", i, a[i], b[i])
		}
	}
}
