package nativetest

import (
	"fmt"
	"math"

	"github.com/lrmf-go/lrmf/native"
)

// actNormKinds are the ActNorm scale functions the suite runs.
var actNormKinds = []native.ActNormKind{native.ActNormExp, native.ActNormSoftplus}

// actNormShapes add to batchShapes a width above the C kernels' 64-column
// chunk and a batch that splits into many row blocks.
var actNormShapes = append(append([][2]int(nil), batchShapes...), [2]int{3, 70}, [2]int{20000, 7})

func testActNorm(h *harness) {
	for _, kind := range actNormKinds {
		for _, s := range actNormShapes {
			n, d := s[0], s[1]
			name := fmt.Sprintf("(%v,n=%d,D=%d)", kind, n, d)
			// r in ±1.5 (s from 0.22 to 4.5 for exp), plus one very negative
			// r where softplus(r + 2) is tiny.
			rh := make([]float64, d)
			for j := range rh {
				rh[j] = 1.5 * (2*h.rng.Float64() - 1)
			}
			if d > 2 {
				rh[2] = -30
			}
			r, b := h.upload(1, d, rh), h.rand(1, d, 1)
			x := h.rand(n, d, 2)

			y, ld := h.out(n, d), h.rand(n, 1, 1)
			h.b.ActNormForward(y.b, ld.b, x.b, r.b, b.b, kind)
			h.ref.ActNormForward(y.r, ld.r, x.r, r.r, b.r, kind)
			h.check("ActNormForward.y"+name, y)
			h.check("ActNormForward.logdet"+name, ld)

			// nil logdet, and in place (y = x).
			y2 := h.out(n, d)
			h.b.Copy(y2.b, x.b)
			h.b.ActNormForward(y2.b, nil, y2.b, r.b, b.b, kind)
			y2.r = y.r
			h.check("ActNormForward(y = x, nil logdet)"+name, y2)

			// Inverse on fresh inputs, in place, and Inverse(Forward(x)).
			yin, xi := h.rand(n, d, 2), h.out(n, d)
			h.b.ActNormInverse(xi.b, yin.b, r.b, b.b, kind)
			h.ref.ActNormInverse(xi.r, yin.r, r.r, b.r, kind)
			h.check("ActNormInverse"+name, xi)
			h.b.ActNormInverse(yin.b, yin.b, r.b, b.b, kind)
			yin.r = xi.r
			h.check("ActNormInverse(x = y)"+name, yin)
			back := h.out(n, d)
			h.ref.ActNormInverse(back.r, y.r, r.r, b.r, kind)
			got := make([]float64, n*d)
			h.ref.Download(got, back.r)
			compare(h.t, "ref ActNormInverse(ActNormForward(x))"+name, got, x.host, 1e-12)

			dy, wl := h.rand(n, d, 1), h.rand(n, 1, 1)
			dx, dr, db := h.out(n, d), h.out(1, d), h.out(1, d)
			h.b.ActNormBackward(dx.b, dr.b, db.b, x.b, r.b, b.b, dy.b, wl.b, kind)
			h.ref.ActNormBackward(dx.r, dr.r, db.r, x.r, r.r, b.r, dy.r, wl.r, kind)
			h.check("ActNormBackward.dx"+name, dx)
			h.check("ActNormBackward.dr"+name, dr)
			h.check("ActNormBackward.db"+name, db)

			// nil dx and nil dlogdet.
			dr2, db2 := h.out(1, d), h.out(1, d)
			h.b.ActNormBackward(nil, dr2.b, db2.b, x.b, r.b, b.b, dy.b, nil, kind)
			h.ref.ActNormBackward(nil, dr2.r, db2.r, x.r, r.r, b.r, dy.r, nil, kind)
			h.check("ActNormBackward(nil dx, nil dlogdet).dr"+name, dr2)
			h.check("ActNormBackward(nil dx, nil dlogdet).db"+name, db2)

			// In place: dx = dy.
			dr3, db3 := h.out(1, d), h.out(1, d)
			h.b.ActNormBackward(dy.b, dr3.b, db3.b, x.b, r.b, b.b, dy.b, wl.b, kind)
			dy.r, dr3.r, db3.r = dx.r, dr.r, db.r
			h.check("ActNormBackward(dx = dy).dx"+name, dy)
			h.check("ActNormBackward(dx = dy).dr"+name, dr3)
			h.check("ActNormBackward(dx = dy).db"+name, db3)
		}
	}
	// An empty batch zeroes the parameter gradients.
	for _, kind := range actNormKinds {
		d := 3
		r, b := h.rand(1, d, 1), h.rand(1, d, 1)
		x, dy := h.out(0, d), h.out(0, d)
		dr, db := h.out(1, d), h.out(1, d)
		h.b.ActNormBackward(nil, dr.b, db.b, x.b, r.b, b.b, dy.b, nil, kind)
		h.ref.ActNormBackward(nil, dr.r, db.r, x.r, r.r, b.r, dy.r, nil, kind)
		h.check(fmt.Sprintf("ActNormBackward(n=0,%v).dr", kind), dr)
		h.check(fmt.Sprintf("ActNormBackward(n=0,%v).db", kind), db)
	}
}

// luFactors returns a random pivoted LU factorisation of a d×d matrix as
// the packed lu (L strictly below the diagonal with |L_kj| ≤ 1, as partial
// pivoting gives; U on and above it with |U_kk| in [0.5, 1.5]) and a random
// permutation perm.
func (h *harness) luFactors(d int) (pair, []int32) {
	lu := make([]float64, d*d)
	for k := 0; k < d; k++ {
		for j := 0; j < d; j++ {
			v := 2*h.rng.Float64() - 1
			if j == k {
				v = (0.5 + h.rng.Float64()) * math.Copysign(1, v)
			}
			lu[k*d+j] = v
		}
	}
	perm := make([]int32, d)
	for k, p := range h.rng.Perm(d) {
		perm[k] = int32(p)
	}
	return h.upload(d, d, lu), perm
}

func testLUSolve(h *harness) {
	shapes := append(append([][2]int(nil), batchShapes...), [2]int{5, 33}, [2]int{20000, 7})
	for _, s := range shapes {
		n, d := s[0], s[1]
		name := fmt.Sprintf("(n=%d,D=%d)", n, d)
		lu, perm := h.luFactors(d)
		y, x := h.rand(n, d, 2), h.out(n, d)
		h.b.LUSolve(x.b, y.b, lu.b, perm)
		h.ref.LUSolve(x.r, y.r, lu.r, perm)
		h.check("LUSolve"+name, x)

		// W x = y on the reference, with W = P·L·U assembled here.
		w := make([]float64, d*d)
		for k := 0; k < d; k++ { // (L·U)[k, :] is row perm[k] of W
			for j := 0; j < d; j++ {
				v := 0.0
				for m := 0; m <= min(k, j); m++ {
					l := lu.host[k*d+m]
					if m == k {
						l = 1
					}
					v += l * lu.host[m*d+j]
				}
				w[int(perm[k])*d+j] = v
			}
		}
		xs := make([]float64, n*d)
		h.ref.Download(xs, x.r)
		// The residual of a backward-stable solve is relative to Σ_j |W_rj x_j|
		// (random triangular factors can be ill-conditioned, so x is not
		// small).
		wx, floor := make([]float64, n*d), make([]float64, n*d)
		for i := 0; i < n; i++ {
			for r := 0; r < d; r++ {
				for j := 0; j < d; j++ {
					wx[i*d+r] += w[r*d+j] * xs[i*d+j]
					floor[i*d+r] += math.Abs(w[r*d+j] * xs[i*d+j])
				}
			}
		}
		compareFloor(h.t, "W·ref LUSolve(y)"+name, wx, y.host, floor, 1e-12)
	}
}
