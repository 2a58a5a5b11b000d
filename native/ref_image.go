package native

// The reference backend's image operations (see image.go): direct loops.

var _ ImageBackend = ref{}

// refTap returns the value of channel ci of the padded input (with the edge
// channel ci = cin) at pixel (b, yy, xx).
func refTap(xs []float64, g ConvGeom, cin, b, yy, xx, ci int) float64 {
	in := yy >= 0 && yy < g.H && xx >= 0 && xx < g.W
	if ci == cin { // the edge channel
		if in {
			return 0
		}
		return 1
	}
	if !in {
		return 0
	}
	return xs[((b*g.H+yy)*g.W+xx)*cin+ci]
}

func (ref) Conv2D(y, x, wt *Tensor, g ConvGeom) {
	cin, cout := CheckConv2D(y, x, wt, g)
	xs, ws, ys := f64(x), f64(wt), f64(y)
	ce, r := g.InChannels(cin), (g.K-1)/2
	for p := 0; p < g.Pixels(); p++ {
		b, i, j := p/(g.H*g.W), p%(g.H*g.W)/g.W, p%g.W
		for co := 0; co < cout; co++ {
			s := 0.0
			for ky := 0; ky < g.K; ky++ {
				for kx := 0; kx < g.K; kx++ {
					for ci := 0; ci < ce; ci++ {
						s += refTap(xs, g, cin, b, i+ky-r, j+kx-r, ci) * ws[((ky*g.K+kx)*ce+ci)*cout+co]
					}
				}
			}
			ys[p*cout+co] = s
		}
	}
}

func (ref) Conv2DBackwardData(dx, dy, wt *Tensor, g ConvGeom) {
	cin, cout := CheckConv2DBackwardData(dx, dy, wt, g)
	dys, ws, dxs := f64(dy), f64(wt), f64(dx)
	ce, r := g.InChannels(cin), (g.K-1)/2
	for q := 0; q < g.Pixels(); q++ {
		b, i, j := q/(g.H*g.W), q%(g.H*g.W)/g.W, q%g.W
		for ci := 0; ci < cin; ci++ {
			s := 0.0
			for ky := 0; ky < g.K; ky++ {
				for kx := 0; kx < g.K; kx++ {
					// The output pixel whose tap (ky, kx) reads q.
					pi, pj := i-(ky-r), j-(kx-r)
					if pi < 0 || pi >= g.H || pj < 0 || pj >= g.W {
						continue
					}
					p := (b*g.H+pi)*g.W + pj
					for co := 0; co < cout; co++ {
						s += dys[p*cout+co] * ws[((ky*g.K+kx)*ce+ci)*cout+co]
					}
				}
			}
			dxs[q*cin+ci] = s
		}
	}
}

func (ref) Conv2DBackwardFilter(dw, x, dy *Tensor, g ConvGeom) {
	cin, cout := CheckConv2DBackwardFilter(dw, x, dy, g)
	xs, dys, dws := f64(x), f64(dy), f64(dw)
	ce, r := g.InChannels(cin), (g.K-1)/2
	clear(dws)
	for p := 0; p < g.Pixels(); p++ {
		b, i, j := p/(g.H*g.W), p%(g.H*g.W)/g.W, p%g.W
		for ky := 0; ky < g.K; ky++ {
			for kx := 0; kx < g.K; kx++ {
				for ci := 0; ci < ce; ci++ {
					v := refTap(xs, g, cin, b, i+ky-r, j+kx-r, ci)
					row := dws[((ky*g.K+kx)*ce+ci)*cout:][:cout]
					for co := range row {
						row[co] += v * dys[p*cout+co]
					}
				}
			}
		}
	}
}

// refSqueeze moves x (n·h·w)×c to or from y (n·(h/2)·(w/2))×4c.
func refSqueeze(xs, ys []float64, n, h, w, c int, toY bool) {
	for b := 0; b < n; b++ {
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				for ci := 0; ci < c; ci++ {
					xi := ((b*h+i)*w+j)*c + ci
					yi := ((b*(h/2)+i/2)*(w/2)+j/2)*4*c + ci*4 + (i%2)*2 + j%2
					if toY {
						ys[yi] = xs[xi]
					} else {
						xs[xi] = ys[yi]
					}
				}
			}
		}
	}
}

func (ref) Squeeze(y, x *Tensor, n, h, w int) {
	c := CheckSqueeze(y, x, n, h, w)
	refSqueeze(f64(x), f64(y), n, h, w, c, true)
}

func (ref) Unsqueeze(x, y *Tensor, n, h, w int) {
	c := CheckUnsqueeze(x, y, n, h, w)
	refSqueeze(f64(x), f64(y), n, h, w, c, false)
}
