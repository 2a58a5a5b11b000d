//go:build cgo

package native

import (
	"fmt"

	"github.com/lrmf-go/lrmf/bindings"
)

var _ GMMBackend = (*cpu[float64])(nil)

// The mixture kernels run over the cpu backend's pool with a closure per
// call (one small allocation per call; the backend's job struct is left to
// the core operations).

// gmmCost is the split cost of one row: K quadratic forms of d×d.
func gmmCost(d, k int) int { return k * (2*d*d + 3*d + 40) }

// runBlocks runs f over nb row blocks of n rows and panics with the first
// kernel error (only reachable through a bug: shapes are checked first).
func (c *cpu[T]) runBlocks(op string, n, nb int, f func(blk, lo, hi int) error) {
	c.pool.do(nb, func(blk int) {
		lo, hi := bounds(n, nb, blk)
		c.errs[blk] = f(blk, lo, hi)
	})
	for b := 0; b < nb; b++ {
		if err := c.errs[b]; err != nil {
			c.errs[b] = nil
			panic(fmt.Sprintf("native: cpu: %s: %v", op, err))
		}
	}
}

func (c *cpu[T]) GMMLogProb(logp, u, resp, x, mu, l, logits, logdetL *Tensor) {
	const op = "GMMLogProb"
	n, d, k := CheckGMMLogProb(logp, u, resp, x, mu, l, logits, logdetL)
	xs, ms, ls, lg, ld := c.s(x), c.s(mu), c.s(l), c.s(logits), c.s(logdetL)
	us, rs, lp := c.s(u), c.s(resp), c.s(logp)
	nb := c.pool.split(n, 2*gmmCost(d, k))
	c.runBlocks(op, n, nb, func(_, lo, hi int) error {
		return bindings.GMMLogProb(hi-lo, d, k, xs[lo*d:hi*d], ms, ls, lg, ld,
			us[lo*k*d:hi*k*d], rs[lo*k:hi*k], lp[lo:hi])
	})
}

func (c *cpu[T]) GMMBackward(dx, dmu, dl, dlogits, wsum, x, mu, l, logits, u, resp, dlogp *Tensor) {
	const op = "GMMBackward"
	n, d, k := CheckGMMBackward(dx, dmu, dl, dlogits, wsum, x, mu, l, logits, u, resp, dlogp)
	var dxs []T
	if dx != nil {
		dxs = c.s(dx)
	}
	xs, ms, ls, lg, us, rs, ws := c.s(x), c.s(mu), c.s(l), c.s(logits), c.s(u), c.s(resp), c.s(dlogp)
	dms, dls, dlg, wss := c.s(dmu), c.s(dl), c.s(dlogits), c.s(wsum)
	kd := k * d
	np := kd + kd*d + 2*k // one block's partial sums: dmu, dl, dlogits, wsum
	nb := c.pool.split(n, 3*gmmCost(d, k))
	c.ensurePartial(nb, np)
	c.runBlocks(op, n, nb, func(blk, lo, hi int) error {
		pm, pl, pg, pw := dms, dls, dlg, wss
		if blk > 0 {
			p := c.partial(blk, np)
			pm, pl, pg, pw = p[:kd], p[kd:kd+kd*d], p[kd+kd*d:kd+kd*d+k], p[kd+kd*d+k:]
		}
		var bx []T
		if dxs != nil {
			bx = dxs[lo*d : hi*d]
		}
		return bindings.GMMBackward(hi-lo, d, k, xs[lo*d:hi*d], ms, ls, lg,
			us[lo*kd:hi*kd], rs[lo*k:hi*k], ws[lo:hi], bx, pm, pl, pg, pw)
	})
	for b := 1; b < nb; b++ {
		p := c.partial(b, np)
		must("reduce", bindings.Axpy(1, p[:kd], dms))
		must("reduce", bindings.Axpy(1, p[kd:kd+kd*d], dls))
		must("reduce", bindings.Axpy(1, p[kd+kd*d:kd+kd*d+k], dlg))
		must("reduce", bindings.Axpy(1, p[kd+kd*d+k:], wss))
	}
}
