//go:build cgo

package native

import "github.com/lrmf-go/lrmf/bindings"

// The cpu backend's ActNorm and LU solve (Glow's vector layers), by row
// blocks; ActNormBackward's dr and db are per-block partial sums reduced
// in block order.

func actNormKind(k ActNormKind) bindings.ActNormKind {
	if k == ActNormSoftplus {
		return bindings.ActNormSoftplus
	}
	return bindings.ActNormExp
}

// actNormJob: ActNormForward (y = (x + b)·s, logdet += Σ ln s; logdet may
// be nil) or, when inv, ActNormInverse (x = y/s − b, from in = y to
// out = x), by rows.
type actNormJob[T bindings.Float] struct {
	inv           bool
	d             int
	kind          bindings.ActNormKind
	in, r, b, out []T
	logdet        []T
}

func (j *actNormJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	d := j.d
	in, out := rows(j.in, lo, hi, d), rows(j.out, lo, hi, d)
	if j.inv {
		return bindings.ActNormInverse(hi-lo, d, j.kind, in, j.r, j.b, out)
	}
	return bindings.ActNormForward(hi-lo, d, j.kind, in, j.r, j.b, out, optRows(j.logdet, lo, hi, 1))
}

func (c *cpu[T]) ActNormForward(y, logdet, x, r, b *Tensor, kind ActNormKind) {
	n, d := CheckActNormForward(y, logdet, x, r, b, kind)
	j := &c.jobs.actNorm
	*j = actNormJob[T]{d: d, kind: actNormKind(kind), in: c.s(x), r: c.s(r), b: c.s(b), out: c.s(y), logdet: c.opt(logdet)}
	c.dispatch(j, n, c.pool.split(n, 2*d))
}

func (c *cpu[T]) ActNormInverse(x, y, r, b *Tensor, kind ActNormKind) {
	n, d := CheckActNormInverse(x, y, r, b, kind)
	j := &c.jobs.actNorm
	*j = actNormJob[T]{inv: true, d: d, kind: actNormKind(kind), in: c.s(y), r: c.s(r), b: c.s(b), out: c.s(x)}
	c.dispatch(j, n, c.pool.split(n, 2*d))
}

// actNormBackwardJob: ActNormForward's vector-Jacobian product by rows (dx
// and dlogdet may be nil); blocks ≥ 1 sum into a partial [dr | db].
type actNormBackwardJob[T bindings.Float] struct {
	d                        int
	kind                     bindings.ActNormKind
	x, r, b, dy, dlogdet, dx []T
	dr, db                   []T
}

func (j *actNormBackwardJob[T]) block(c *cpu[T], blk, lo, hi int) error {
	d := j.d
	dr, db := j.dr, j.db
	if blk > 0 {
		p := c.partial(blk, 2*d)
		dr, db = p[:d], p[d:]
	}
	return bindings.ActNormBackward(hi-lo, d, j.kind, rows(j.x, lo, hi, d), j.r, j.b, rows(j.dy, lo, hi, d),
		optRows(j.dlogdet, lo, hi, 1), optRows(j.dx, lo, hi, d), dr, db)
}

func (c *cpu[T]) ActNormBackward(dx, dr, db, x, r, b, dy, dlogdet *Tensor, kind ActNormKind) {
	n, d := CheckActNormBackward(dx, dr, db, x, r, b, dy, dlogdet, kind)
	nb := c.pool.split(n, 4*d)
	c.ensurePartial(nb, 2*d)
	j := &c.jobs.actNormBwd
	*j = actNormBackwardJob[T]{d: d, kind: actNormKind(kind), x: c.s(x), r: c.s(r), b: c.s(b), dy: c.s(dy),
		dlogdet: c.opt(dlogdet), dx: c.opt(dx), dr: c.s(dr), db: c.s(db)}
	c.dispatch(j, n, nb)
	for blk := 1; blk < nb; blk++ {
		p := c.partial(blk, 2*d)
		must("reduce", bindings.Axpy(1, p[:d], j.dr))
		must("reduce", bindings.Axpy(1, p[d:], j.db))
	}
}

// luSolveJob: x_i = U⁻¹L⁻¹Pᵀy_i, by rows.
type luSolveJob[T bindings.Float] struct {
	d        int
	lu, y, x []T
	perm     []int32
}

func (j *luSolveJob[T]) block(_ *cpu[T], _, lo, hi int) error {
	d := j.d
	return bindings.LUSolve(hi-lo, d, j.lu, j.perm, rows(j.y, lo, hi, d), rows(j.x, lo, hi, d))
}

func (c *cpu[T]) LUSolve(x, y, lu *Tensor, perm []int32) {
	n, d := CheckLUSolve(x, y, lu, perm)
	j := &c.jobs.luSolve
	*j = luSolveJob[T]{d: d, lu: c.s(lu), y: c.s(y), x: c.s(x), perm: perm}
	c.dispatch(j, n, c.pool.split(n, 2*d*d))
}
