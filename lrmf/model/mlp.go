package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lrmf-go/lrmf/native"
)

// mlp is a dense network in → hidden (ReLU) × depth → out (linear):
//
//	a_0 = relu(x W_0 + b_0),  a_l = relu(a_{l−1} W_l + b_l),  h = a_{depth−1} W_out + b_out,
//
// with W_l stored in×out so the forward pass is a plain GEMM per layer. The
// hidden layers are Glorot-uniform initialised with zero biases; the output
// layer starts at zero, so a coupling that uses it starts as the identity.
type mlp struct {
	be           native.Backend
	in, out, hid int
	w, b         []*Param // depth hidden layers, then the output layer
	ps           []*Param

	n   int            // batch size the buffers below are sized for
	x   *native.Tensor // last forward input (its columns [x0, x0+in))
	x0  int
	act []*native.Tensor // hidden activations, n×hid each
	h   *native.Tensor   // output, n×out
	da  [2]*native.Tensor
	dx  *native.Tensor
}

func newMLP(be native.Backend, name string, in, hidden, depth, out int, rng *rand.Rand) (*mlp, error) {
	if in < 1 || out < 1 || hidden < 1 || depth < 1 {
		return nil, fmt.Errorf("model: MLP %s: sizes in=%d hidden=%d depth=%d out=%d must be positive", name, in, hidden, depth, out)
	}
	m := &mlp{be: be, in: in, out: out, hid: hidden}
	fan := in
	for l := 0; l <= depth; l++ {
		fo := hidden
		if l == depth {
			fo = out
		}
		w := newParam(be, fmt.Sprintf("%s.W%d", name, l), fan, fo)
		b := newParam(be, fmt.Sprintf("%s.b%d", name, l), 1, fo)
		if l < depth {
			glorot(be, w.Value, rng)
		}
		m.w, m.b = append(m.w, w), append(m.b, b)
		m.ps = append(m.ps, w, b)
		fan = fo
	}
	return m, nil
}

// glorot fills w (fan_in×fan_out) with U(−a, a), a = √(6/(fan_in+fan_out)).
func glorot(be native.Backend, w *native.Tensor, rng *rand.Rand) {
	a := math.Sqrt(6 / float64(w.Rows()+w.Cols()))
	v := make([]float64, w.Len())
	for i := range v {
		v[i] = a * (2*rng.Float64() - 1)
	}
	be.Upload(w, v)
}

func (m *mlp) depth() int { return len(m.w) - 1 }

// resize allocates the batch buffers for n rows (only when n changes).
func (m *mlp) resize(n int) {
	if m.n == n && m.h != nil {
		return
	}
	m.n = n
	m.act = m.act[:0]
	for l := 0; l < m.depth(); l++ {
		m.act = append(m.act, m.be.New(n, m.hid))
	}
	m.h = m.be.New(n, m.out)
	m.da[0], m.da[1] = m.be.New(n, m.hid), m.be.New(n, m.hid)
	m.dx = m.be.New(n, m.in)
}

// forward returns h for the n×in batch x (a buffer owned by m, valid until
// the next forward with a different batch size).
func (m *mlp) forward(x *native.Tensor) *native.Tensor { return m.forwardAt(x, 0) }

// forwardAt is forward on the columns [x0, x0+in) of x, read in place (no
// copy). Each layer is one GemmEx whose epilogue adds the bias and, on
// the hidden layers, applies the ReLU while the tile is in cache. x is
// kept (not copied) for backward.
func (m *mlp) forwardAt(x *native.Tensor, x0 int) *native.Tensor {
	be := m.be
	m.resize(x.Rows())
	m.x, m.x0 = x, x0
	in, c0 := x, x0
	for l, a := range m.act {
		be.GemmEx(false, false, 1, in, c0, m.w[l].Value, 0, a, 0, native.Epilogue{Bias: m.b[l].Value, ReLU: true})
		in, c0 = a, 0
	}
	d := m.depth()
	be.GemmEx(false, false, 1, in, c0, m.w[d].Value, 0, m.h, 0, native.Epilogue{Bias: m.b[d].Value})
	return m.h
}

// backward takes dh = ∂L/∂h for the last forward, sets every parameter's
// gradient and returns ∂L/∂x when wantDx (else nil). dh is not modified.
func (m *mlp) backward(dh *native.Tensor, wantDx bool) *native.Tensor {
	if !wantDx {
		m.backwardInto(dh, nil, 0, 0)
		return nil
	}
	m.backwardInto(dh, m.dx, 0, 0)
	return m.dx
}

// backwardInto is backward for the last forwardAt, writing ∂L/∂x into the
// columns [dx0, dx0+in) of dx as dx ← ∂L/∂x + beta·dx (beta 0 or 1: 1 adds
// to what is there); dx nil computes no input gradient. Each
// dz_l = (dz_{l+1} W_{l+1}ᵀ) ⊙ [a_l > 0] is one GemmEx whose epilogue
// applies the ReLU mask and sums the columns into ∂L/∂b_l; the weight
// gradients read the input's columns in place.
func (m *mlp) backwardInto(dh, dx *native.Tensor, dx0 int, beta float64) {
	be := m.be
	d := m.depth()
	last, l0 := m.x, m.x0
	if d > 0 {
		last, l0 = m.act[d-1], 0
	}
	be.GemmEx(true, false, 1, last, l0, dh, 0, m.w[d].Grad, 0, native.Epilogue{})
	be.BiasGrad(m.b[d].Grad, dh)
	dz := dh
	for l := d - 1; l >= 0; l-- {
		// dz_l from dz_{l+1}, masked by a_l > 0; ∂L/∂b_l its column sums.
		next := m.da[(d-1-l)%2]
		be.GemmEx(false, true, 1, dz, 0, m.w[l+1].Value, 0, next, 0,
			native.Epilogue{Mask: m.act[l], ColSum: m.b[l].Grad})
		dz = next
		in, i0 := m.x, m.x0
		if l > 0 {
			in, i0 = m.act[l-1], 0
		}
		be.GemmEx(true, false, 1, in, i0, dz, 0, m.w[l].Grad, 0, native.Epilogue{})
	}
	if dx != nil {
		be.GemmEx(false, true, 1, dz, 0, m.w[0].Value, beta, dx, dx0, native.Epilogue{})
	}
}

// MLP is a dense network in → hidden (ReLU) × depth → out (linear), the
// network inside Real NVP's couplings, exported for other models built from
// the same kernels (the autoencoder of package embed). For an n×in batch x,
//
//	a_0 = relu(x W_0 + b_0),  a_l = relu(a_{l−1} W_l + b_l) (l < depth),
//	h = a_{depth−1} W_depth + b_depth  (n×out),
//
// with W_0 in×hidden, W_l hidden×hidden, W_depth hidden×out and the biases
// vectors of their layer's width. Hidden layers start Glorot-uniform
// (U(±√(6/(fan_in+fan_out)))) with zero biases; the output layer starts at
// zero (so a coupling built on it starts as the identity; a caller that
// wants otherwise re-initialises Params()[2·depth]). Forward and Backward
// run on the backend's kernels (GemmEx, whose epilogues add the biases,
// apply the ReLUs and their masks and sum the bias gradients, and
// BiasGrad) and allocate nothing once a batch size has been seen.
type MLP struct{ m *mlp }

// NewMLP returns an MLP on be named name (its parameters are name.W0,
// name.b0, …, name.W{depth}, name.b{depth}), with Glorot draws from rng.
// Every size must be positive; it is an error otherwise.
func NewMLP(be native.Backend, name string, in, hidden, depth, out int, rng *rand.Rand) (*MLP, error) {
	m, err := newMLP(be, name, in, hidden, depth, out, rng)
	if err != nil {
		return nil, err
	}
	return &MLP{m}, nil
}

// Dims returns the input width, hidden width, hidden layer count and output
// width.
func (n *MLP) Dims() (in, hidden, depth, out int) { return n.m.in, n.m.hid, n.m.depth(), n.m.out }

// Params lists W_0, b_0, …, W_depth, b_depth in that order; the slice and
// its elements are owned by the network.
func (n *MLP) Params() []*Param { return n.m.ps }

// Forward returns h (n×out) for the n×in batch x. The result is a buffer
// owned by the network, overwritten by the next Forward; x is kept (not
// copied) for Backward and must not change in between. Buffers are
// reallocated only when the batch size changes.
func (n *MLP) Forward(x *native.Tensor) *native.Tensor { return n.m.forward(x) }

// Backward takes dh = ∂L/∂h (n×out) for the last Forward, sets every
// parameter's Grad (overwriting):
//
//	∂L/∂W_depth = a_{depth−1}ᵀ dh,  ∂L/∂b_depth = Σ_i dh_i,  (dz_depth = dh)
//	dz_l = (dz_{l+1} W_{l+1}ᵀ) ⊙ [a_l > 0],
//	∂L/∂W_l = a_{l−1}ᵀ dz_l (a_{−1} = x),  ∂L/∂b_l = Σ_i dz_{l,i},
//
// and, when wantDx, returns ∂L/∂x = dz_0 W_0ᵀ (n×in, a buffer owned by the
// network); else nil. dh is not modified.
func (n *MLP) Backward(dh *native.Tensor, wantDx bool) *native.Tensor {
	return n.m.backward(dh, wantDx)
}
