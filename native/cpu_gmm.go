//go:build cgo

package native

import "github.com/lrmf-go/lrmf/bindings"

var _ GMMBackend = (*cpu[float64])(nil)

// gmmCost is the split cost of one row: K quadratic forms of d×d.
func gmmCost(d, k int) int { return k * (2*d*d + 3*d + 40) }

// gmmLogProbJob: the mixture log-density of each row, with u and resp
// kept for the backward, by rows.
type gmmLogProbJob[T bindings.Float] struct {
	d, k                                     int
	x, mu, l, logits, logdetL, u, resp, logp []T
}

func (j *gmmLogProbJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	d, k := j.d, j.k
	return bindings.GMMLogProb(hi-lo, d, k, rows(j.x, lo, hi, d), j.mu, j.l, j.logits, j.logdetL,
		rows(j.u, lo, hi, k*d), rows(j.resp, lo, hi, k), j.logp[lo:hi])
}

func (c *cpu[T]) GMMLogProb(logp, u, resp, x, mu, l, logits, logdetL *Tensor) {
	n, d, k := CheckGMMLogProb(logp, u, resp, x, mu, l, logits, logdetL)
	j := &c.jobs.gmmLogp
	*j = gmmLogProbJob[T]{d: d, k: k, x: c.s(x), mu: c.s(mu), l: c.s(l), logits: c.s(logits), logdetL: c.s(logdetL),
		u: c.s(u), resp: c.s(resp), logp: c.s(logp)}
	c.dispatch(j, n, c.pool.split(n, 2*gmmCost(d, k)))
}

// gmmBackwardJob: GMMLogProb's vector-Jacobian product by rows (dx may be
// nil); dmu, dl, dlogits and wsum are summed per block, blocks ≥ 1 into a
// partial [dmu | dl | dlogits | wsum].
type gmmBackwardJob[T bindings.Float] struct {
	d, k                                 int
	x, mu, l, logits, u, resp, dlogp, dx []T
	dmu, dl, dlogits, wsum               []T
}

// partials returns block blk's dmu, dl, dlogits and wsum.
func (j *gmmBackwardJob[T]) partials(c *cpu[T], blk int) (dmu, dl, dlogits, wsum []T) {
	if blk == 0 {
		return j.dmu, j.dl, j.dlogits, j.wsum
	}
	kd, k := j.k*j.d, j.k
	p := c.partial(blk, j.partialLen())
	return p[:kd], p[kd : kd+kd*j.d], p[kd+kd*j.d : kd+kd*j.d+k], p[kd+kd*j.d+k:]
}

func (j *gmmBackwardJob[T]) partialLen() int {
	kd := j.k * j.d
	return kd + kd*j.d + 2*j.k
}

func (j *gmmBackwardJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	d, k := j.d, j.k
	dmu, dl, dlogits, wsum := j.partials(c, blk)
	return bindings.GMMBackward(hi-lo, d, k, rows(j.x, lo, hi, d), j.mu, j.l, j.logits,
		rows(j.u, lo, hi, k*d), rows(j.resp, lo, hi, k), j.dlogp[lo:hi], optRows(j.dx, lo, hi, d), dmu, dl, dlogits, wsum)
}

func (c *cpu[T]) GMMBackward(dx, dmu, dl, dlogits, wsum, x, mu, l, logits, u, resp, dlogp *Tensor) {
	n, d, k := CheckGMMBackward(dx, dmu, dl, dlogits, wsum, x, mu, l, logits, u, resp, dlogp)
	j := &c.jobs.gmmBwd
	*j = gmmBackwardJob[T]{d: d, k: k, x: c.s(x), mu: c.s(mu), l: c.s(l), logits: c.s(logits), u: c.s(u), resp: c.s(resp),
		dlogp: c.s(dlogp), dx: c.opt(dx), dmu: c.s(dmu), dl: c.s(dl), dlogits: c.s(dlogits), wsum: c.s(wsum)}
	nb := c.pool.split(n, 3*gmmCost(d, k))
	c.ensurePartial(nb, j.partialLen())
	c.dispatch(j, n, nb)
	for b := 1; b < nb; b++ {
		pm, pl, pg, pw := j.partials(c, b)
		must("reduce", bindings.Axpy(1, pm, j.dmu))
		must("reduce", bindings.Axpy(1, pl, j.dl))
		must("reduce", bindings.Axpy(1, pg, j.dlogits))
		must("reduce", bindings.Axpy(1, pw, j.wsum))
	}
}
