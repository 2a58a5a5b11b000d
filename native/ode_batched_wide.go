package native

// wideODE runs a BatchedODE on a wider backend (the cpu backend's float32
// FFJORD operations on a float64 twin sharing its threads), copying the
// inputs in and the outputs back, so that a float32 backend's batched path
// computes in double like its row kernels: the results differ from the
// float64 ones only by the rounding of inputs and outputs. The copies go
// through host buffers kept per argument, so steady-state calls allocate
// nothing.
type wideODE struct {
	out   Backend
	in    *BatchedODE
	slots map[slotKey]*Tensor
	buf   []float64
}

// slotKey names an inner tensor: the argument it stands for and its shape
// (kept per shape, since calls may alternate batch sizes).
type slotKey struct {
	role       string
	rows, cols int
}

func newWideODE(out Backend, in *BatchedODE) *wideODE {
	return &wideODE{out: out, in: in, slots: map[slotKey]*Tensor{}}
}

// slot returns the inner tensor of role shaped like x (nil for nil).
func (w *wideODE) slot(role string, x *Tensor) *Tensor {
	if x == nil {
		return nil
	}
	key := slotKey{role, x.rows, x.cols}
	t := w.slots[key]
	if t == nil {
		t = w.in.New(x.rows, x.cols)
		w.slots[key] = t
	}
	return t
}

func (w *wideODE) host(n int) []float64 {
	if cap(w.buf) < n {
		w.buf = make([]float64, n)
	}
	return w.buf[:n]
}

// to copies x into its inner slot.
func (w *wideODE) to(role string, x *Tensor) *Tensor {
	t := w.slot(role, x)
	if t != nil {
		h := w.host(x.Len())
		w.out.Download(h, x)
		w.in.Upload(t, h)
	}
	return t
}

// back copies the inner slot t into x.
func (w *wideODE) back(x, t *Tensor) {
	h := w.host(x.Len())
	w.in.Download(h, t)
	w.out.Upload(x, h)
}

func (w *wideODE) ODEFuncForward(dz, trace, z, theta, eps *Tensor, dims []int, t float64) {
	CheckODEFuncForward(dz, trace, z, theta, eps, dims)
	idz, itr := w.slot("dz", dz), w.slot("trace", trace)
	w.in.ODEFuncForward(idz, itr, w.to("z", z), w.to("theta", theta), w.to("eps", eps), dims, t)
	w.back(dz, idz)
	w.back(trace, itr)
}

func (w *wideODE) ODEFuncVJP(gz, gtheta, z, theta, eps, az, atr *Tensor, dims []int, t float64) {
	CheckODEFuncVJP(gz, gtheta, z, theta, eps, az, atr, dims)
	igz, igth := w.slot("gz", gz), w.slot("gtheta", gtheta)
	w.in.ODEFuncVJP(igz, igth, w.to("z", z), w.to("theta", theta), w.to("eps", eps), w.to("az", az), w.to("atr", atr), dims, t)
	w.back(gz, igz)
	w.back(gtheta, igth)
}

func (w *wideODE) ODESolveRK4(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	return w.ODESolveRK4Record(nil, z1, logdet, z0, theta, eps, dims, t0, t1, steps)
}

func (w *wideODE) ODESolveRK4Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, steps int) ODEStats {
	CheckODESolveRK4(z1, logdet, z0, theta, eps, dims, t0, t1, steps)
	iz1, ild := w.slot("z1", z1), w.slot("logdet", logdet)
	var st ODEStats
	if tape == nil {
		st = w.in.ODESolveRK4(iz1, ild, w.to("z0", z0), w.to("theta", theta), w.to("eps", eps), dims, t0, t1, steps)
	} else {
		st = w.in.ODESolveRK4Record(tape, iz1, ild, w.to("z0", z0), w.to("theta", theta), w.to("eps", eps), dims, t0, t1, steps)
	}
	w.back(z1, iz1)
	w.back(logdet, ild)
	return st
}

func (w *wideODE) ODESolveDopri5(z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	return w.ODESolveDopri5Record(nil, z1, logdet, z0, theta, eps, dims, t0, t1, opt)
}

func (w *wideODE) ODESolveDopri5Record(tape *ODETape, z1, logdet, z0, theta, eps *Tensor, dims []int, t0, t1 float64, opt Dopri5Options) (ODEStats, error) {
	CheckODESolveDopri5(z1, logdet, z0, theta, eps, dims, t0, t1, opt)
	iz1, ild := w.slot("z1", z1), w.slot("logdet", logdet)
	var st ODEStats
	var err error
	if tape == nil {
		st, err = w.in.ODESolveDopri5(iz1, ild, w.to("z0", z0), w.to("theta", theta), w.to("eps", eps), dims, t0, t1, opt)
	} else {
		st, err = w.in.ODESolveDopri5Record(tape, iz1, ild, w.to("z0", z0), w.to("theta", theta), w.to("eps", eps), dims, t0, t1, opt)
	}
	w.back(z1, iz1)
	w.back(logdet, ild)
	return st, err
}

func (w *wideODE) ODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats {
	CheckODESolveRK4Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	igz, igth := w.slot("gz0", gz0), w.slot("gtheta", gtheta)
	st := w.in.ODESolveRK4Backward(igz, igth, w.to("a1", a1), w.to("ald", ald), w.to("theta", theta), w.to("eps", eps), dims, tape)
	w.back(gz0, igz)
	w.back(gtheta, igth)
	return st
}

func (w *wideODE) ODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps *Tensor, dims []int, tape *ODETape) ODEStats {
	CheckODESolveDopri5Backward(gz0, gtheta, a1, ald, theta, eps, dims, tape)
	igz, igth := w.slot("gz0", gz0), w.slot("gtheta", gtheta)
	st := w.in.ODESolveDopri5Backward(igz, igth, w.to("a1", a1), w.to("ald", ald), w.to("theta", theta), w.to("eps", eps), dims, tape)
	w.back(gz0, igz)
	w.back(gtheta, igth)
	return st
}
