package nativetest

import (
	"fmt"
	"math"

	"github.com/lrmf-go/lrmf/native"
)

// gmmComponents are the mixture sizes of the GMM subtest.
var gmmComponents = []int{1, 2, 5}

// testGMM compares the Gaussian-mixture kernels of backends implementing
// native.GMMBackend with the reference (skipped for the others), with every
// output poisoned, on the batch shapes and K = 1, 2, 5, including a
// far-away component whose density underflows in float64.
func testGMM(h *harness) {
	b, ok := h.b.(native.GMMBackend)
	if !ok {
		h.t.Skipf("%s backend has no Gaussian-mixture kernels (not a native.GMMBackend)", h.b.Name())
	}
	r := h.ref.(native.GMMBackend)
	for _, s := range batchShapes {
		n, d := s[0], s[1]
		for _, k := range gmmComponents {
			name := fmt.Sprintf("(n=%d,d=%d,k=%d)", n, d, k)
			x := h.rand(n, d, 2)
			muh := make([]float64, k*d)
			for i := range muh {
				muh[i] = 2 * (2*h.rng.Float64() - 1)
			}
			if k > 1 {
				muh[(k-1)*d] = 60 // far: its lp is ~ −1800, exp underflows
			}
			mu := h.upload(k, d, muh)
			lh := make([]float64, 0, k*d*d)
			for c := 0; c < k; c++ {
				lh = append(lh, h.wellConditioned(d).host...)
			}
			l := h.upload(k*d, d, lh)
			logits, logdet := h.rand(1, k, 1.5), h.rand(1, k, 0.5)

			logp, u, resp := h.out(n, 1), h.out(n, k*d), h.out(n, k)
			b.GMMLogProb(logp.b, u.b, resp.b, x.b, mu.b, l.b, logits.b, logdet.b)
			r.GMMLogProb(logp.r, u.r, resp.r, x.r, mu.r, l.r, logits.r, logdet.r)
			h.check("GMMLogProb.logp"+name, logp)
			h.check("GMMLogProb.u"+name, u)
			h.check("GMMLogProb.resp"+name, resp)

			// Upstream weights of one sign, as in training (dlogp = −1/n):
			// with mixed signs the n-term sums wsum and dlogits cancel,
			// and a float32 partial per row block then loses relative
			// accuracy in proportion to Σ|terms|/|Σ terms|, which a
			// relative tolerance on the result cannot absorb.
			wv := make([]float64, n)
			for i := range wv {
				wv[i] = -(0.5 + h.rng.Float64()) / float64(n)
			}
			w := h.upload(n, 1, wv)
			dx, dmu, dl := h.out(n, d), h.out(k, d), h.out(k*d, d)
			dlg, ws := h.out(1, k), h.out(1, k)
			b.GMMBackward(dx.b, dmu.b, dl.b, dlg.b, ws.b, x.b, mu.b, l.b, logits.b, u.b, resp.b, w.b)
			r.GMMBackward(dx.r, dmu.r, dl.r, dlg.r, ws.r, x.r, mu.r, l.r, logits.r, u.r, resp.r, w.r)
			h.check("GMMBackward.dx"+name, dx)
			h.check("GMMBackward.dmu"+name, dmu)
			h.check("GMMBackward.dl"+name, dl)
			h.check("GMMBackward.dlogits"+name, dlg)
			h.check("GMMBackward.wsum"+name, ws)

			dmu, dl = h.out(k, d), h.out(k*d, d)
			dlg, ws = h.out(1, k), h.out(1, k)
			b.GMMBackward(nil, dmu.b, dl.b, dlg.b, ws.b, x.b, mu.b, l.b, logits.b, u.b, resp.b, w.b)
			r.GMMBackward(nil, dmu.r, dl.r, dlg.r, ws.r, x.r, mu.r, l.r, logits.r, u.r, resp.r, w.r)
			h.check("GMMBackward(nil dx).dmu"+name, dmu)
			h.check("GMMBackward(nil dx).dl"+name, dl)

			// Responsibilities sum to 1 in every row.
			rs := make([]float64, n*k)
			h.b.Download(rs, resp.b)
			for i := 0; i < n; i++ {
				sum := 0.0
				for c := 0; c < k; c++ {
					sum += rs[i*k+c]
				}
				if math.Abs(sum-1) > 10*h.tol*float64(k) {
					h.t.Errorf("GMMLogProb%s: row %d responsibilities sum to %.17g", name, i, sum)
				}
			}
		}
	}
}
