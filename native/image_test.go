package native_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lrmf-go/lrmf/internal/testseed"
	"github.com/lrmf-go/lrmf/native"
)

// The reference convolution's gradients against central finite differences
// of Σ u ⊙ Conv2D(x, wt) (the loss is linear, so the differences are exact
// up to rounding), with the edge channel and without, and squeeze as an
// orthogonal map: Unsqueeze∘Squeeze = I and ⟨Squeeze x, y⟩ = ⟨x, Unsqueeze y⟩.
func TestRefImageFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 13))
	r := native.NewRef().(native.ImageBackend)
	up := func(rows, cols int) *native.Tensor {
		v := make([]float64, rows*cols)
		for i := range v {
			v[i] = 2*rng.Float64() - 1
		}
		tt := r.New(rows, cols)
		r.Upload(tt, v)
		return tt
	}
	for _, g := range []native.ConvGeom{{N: 2, H: 3, W: 4, K: 3, Edge: true}, {N: 1, H: 4, W: 3, K: 5}} {
		const cin, cout = 2, 3
		np, kf := g.Pixels(), g.K*g.K*g.InChannels(cin)
		x, wt, u := up(np, cin), up(kf, cout), up(np, cout)
		y := r.New(np, cout)
		loss := func() float64 {
			r.Conv2D(y, x, wt, g)
			return r.Dot(y, u)
		}
		dx, dw := r.New(np, cin), r.New(kf, cout)
		r.Conv2DBackwardData(dx, u, wt, g)
		r.Conv2DBackwardFilter(dw, x, u, g)
		for _, c := range []struct {
			name string
			p, g *native.Tensor
		}{{"x", x, dx}, {"wt", wt, dw}} {
			got, v := get(r, c.g), get(r, c.p)
			for i := range v {
				old := v[i]
				v[i] = old + 1e-3
				r.Upload(c.p, v)
				fp := loss()
				v[i] = old - 1e-3
				r.Upload(c.p, v)
				fm := loss()
				v[i] = old
				r.Upload(c.p, v)
				if fd := (fp - fm) / 2e-3; math.Abs(fd-got[i]) > 1e-9*math.Max(1, math.Abs(fd)) {
					t.Errorf("%+v ∂/∂%s[%d]: analytic %.12g, finite difference %.12g", g, c.name, i, got[i], fd)
				}
			}
		}
	}
	const n, h, w, c = 2, 4, 6, 3
	x, y := up(n*h*w, c), up(n*h*w/4, 4*c)
	sx, uy, x2 := r.New(n*h*w/4, 4*c), r.New(n*h*w, c), r.New(n*h*w, c)
	r.Squeeze(sx, x, n, h, w)
	r.Unsqueeze(uy, y, n, h, w)
	r.Unsqueeze(x2, sx, n, h, w)
	if a, b := r.Dot(sx, y), r.Dot(x, uy); math.Abs(a-b) > 1e-12*math.Max(1, math.Abs(a)) {
		t.Errorf("⟨Squeeze x, y⟩ = %.17g, ⟨x, Unsqueeze y⟩ = %.17g", a, b)
	}
	xs, x2s := get(r, x), get(r, x2)
	for i := range xs {
		if xs[i] != x2s[i] {
			t.Fatalf("Unsqueeze(Squeeze x)[%d] = %g, x = %g", i, x2s[i], xs[i])
		}
	}
	// Squeeze moves pixel (b, i, j) channel ci to (b, i/2, j/2) channel
	// ci·4 + (i%2)·2 + j%2: one element checked by hand.
	if got, want := get(r, sx)[((1*(h/2)+1)*(w/2)+2)*4*c+2*4+1*2+0], xs[((1*h+3)*w+4)*c+2]; got != want {
		t.Errorf("Squeeze: x[1, 3, 4, 2] went to %g, want %g", got, want)
	}
}

// The cpu image operations allocate nothing per call once their
// workspaces exist, on batches that split into pixel blocks.
func TestCPUImageOpsAllocateNothing(t *testing.T) {
	for _, dt := range []native.DType{native.Float32, native.Float64} {
		be, err := native.NewCPU(dt, 3)
		if err != nil {
			t.Skip("cpu backend unavailable in this build:", err)
		}
		b := be.(native.ImageBackend)
		g := native.ConvGeom{N: 8, H: 16, W: 16, K: 3, Edge: true}
		const cin, cout = 4, 16
		np, kf := g.Pixels(), g.K*g.K*g.InChannels(cin)
		x, dx, y, dw, wt := b.New(np, cin), b.New(np, cin), b.New(np, cout), b.New(kf, cout), b.New(kf, cout)
		sq := b.New(np/4, 4*cin)
		b.Fill(x, 0.5)
		b.Fill(wt, 0.25)
		for name, f := range map[string]func(){
			"Conv2D":               func() { b.Conv2D(y, x, wt, g) },
			"Conv2DBackwardData":   func() { b.Conv2DBackwardData(dx, y, wt, g) },
			"Conv2DBackwardFilter": func() { b.Conv2DBackwardFilter(dw, x, y, g) },
			"Squeeze":              func() { b.Squeeze(sq, x, g.N, g.H, g.W) },
			"Unsqueeze":            func() { b.Unsqueeze(dx, sq, g.N, g.H, g.W) },
		} {
			for i := 0; i < 10; i++ {
				f()
			}
			if a := testing.AllocsPerRun(20, f); a != 0 {
				t.Errorf("%v %s: %.1f allocations per call, want 0", dt, name, a)
			}
		}
		be.Close()
	}
}
