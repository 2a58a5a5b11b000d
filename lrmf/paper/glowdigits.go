package paper

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/lrmf/optim"
	"github.com/lrmf-go/lrmf/native"
)

// The GLOW digit experiment (supplementary §8.3): GLOW densities on 32×32×1
// digit images. The paper fits θA* on MNIST and θB* on USPS, both resized
// to 32×32 in [0, 1] with dequantisation noise x + 0.05·(2u − 1), and
// reports their negative log-likelihoods: −2094.7 (MNIST) and −2185.3
// (USPS) nats per image, with L = 3 levels × K = 8 steps × 512 filters.
//
// Here MNIST is padded by 2 pixels of background to 32×32 (its 28×28
// frame centred, grey v/255), and the USPS-style stand-in of the digits
// experiment (data.USPSStyle, 16×16, from MNIST's test split) is upsampled
// 2× by pixel replication to 32×32. Fresh noise is drawn for every batch;
// the held-out NLL averages one noise draw.

// Paper values of the GLOW experiment (nats per image, negative
// log-likelihood of each domain under its own model).
const (
	GLOWPaperNLLMNIST = -2094.7
	GLOWPaperNLLUSPS  = -2185.3
)

// GLOWDigitsSide is the image side (32).
const GLOWDigitsSide = 32

// GLOWDigitsConfig configures GLOWDigits. A zero field selects the default
// in its comment: the defaults fit both models in a few minutes on two CPU
// cores, far smaller than the paper's (model.PaperGLOW, meant for a GPU).
type GLOWDigitsConfig struct {
	N       int               // training images per domain (default 1000)
	HeldOut int               // held-out images per domain for the NLL (default 500)
	Model   model.GLOWOptions // default: L = 3, K = 4, F = 32
	Steps   int               // Adam steps per fit (default 300)
	Batch   int               // images per step (default 32)
	LR      float64           // Adam's rate, cosine-decayed (default 1e-3)
	Noise   float64           // dequantisation amplitude (default 0.05)
	// LRMFSteps is the number of joint steps of the LRMF alignment of B to
	// A after the fits (default 100; negative: no alignment), at Adam's
	// rate LRMFLR (default 1e-5, the supplement's; the authors' code used
	// 1e-6), batch Batch (see glowLRMF).
	LRMFSteps int
	LRMFLR    float64
	// LRMFRuns names the alignments to run, in order: GLOWRunBackToBack
	// (T = G_A⁻¹∘G_B from the fitted models) and GLOWRunScratch (a fresh
	// back-to-back T = id); default both.
	LRMFRuns []string
	// LRMFBackend runs the LRMF alignments (default Backend): a float64
	// backend keeps G_A⁻¹ finite on more of B than float32 (the fitted
	// models are copied onto it).
	LRMFBackend native.Backend
	Seed        uint64 // default 1
	// Backend runs the fits (default: native.DefaultBackend() in float32;
	// it must be a native.ImageBackend).
	Backend  native.Backend
	MNISTDir string       // default data.MNISTDir()
	Stage    func(string) // progress messages (may be nil)
}

func (c GLOWDigitsConfig) withDefaults() GLOWDigitsConfig {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.N, 1000)
	def(&c.HeldOut, 500)
	def(&c.Model.Levels, 3)
	def(&c.Model.Steps, 4)
	def(&c.Model.Hidden, 32)
	def(&c.Steps, 300)
	def(&c.Batch, 32)
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Noise == 0 {
		c.Noise = 0.05
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	def(&c.LRMFSteps, 100)
	if c.LRMFLR == 0 {
		c.LRMFLR = 1e-5
	}
	if len(c.LRMFRuns) == 0 {
		c.LRMFRuns = []string{GLOWRunBackToBack, GLOWRunScratch}
	}
	return c
}

func (c GLOWDigitsConfig) validate() error {
	switch {
	case c.N < 1 || c.HeldOut < 1 || c.Steps < 1 || c.Batch < 1:
		return fmt.Errorf("paper: GLOW digits: n=%d held-out=%d steps=%d batch=%d must be positive", c.N, c.HeldOut, c.Steps, c.Batch)
	case c.N+c.HeldOut > DigitsMaxA:
		return fmt.Errorf("paper: GLOW digits: n + held-out = %d exceeds the %d MNIST test images the USPS-style domain comes from", c.N+c.HeldOut, DigitsMaxA)
	case c.Batch > c.N:
		return fmt.Errorf("paper: GLOW digits: batch %d exceeds n = %d", c.Batch, c.N)
	case !(c.LR > 0) || !(c.Noise >= 0) || !(c.LRMFLR > 0):
		return fmt.Errorf("paper: GLOW digits: lr %g and LRMF lr %g must be positive and noise %g non-negative", c.LR, c.LRMFLR, c.Noise)
	}
	for _, r := range c.LRMFRuns {
		if r != GLOWRunBackToBack && r != GLOWRunScratch {
			return fmt.Errorf("paper: GLOW digits: unknown LRMF run %q (want %q or %q)", r, GLOWRunBackToBack, GLOWRunScratch)
		}
	}
	return nil
}

// GLOWFit is one fitted GLOW density.
type GLOWFit struct {
	Domain    string
	NLL       float64   // held-out negative log-likelihood, nats per image
	TrainNLL  []float64 // per-step batch NLL, nats per image
	Density   model.Density
	StepsPerS float64
}

// BitsPerDim converts a per-image NLL in nats on [0, 1]-valued 32×32
// images to bits per dimension: NLL/(D·ln 2). (Bits/dim on the usual
// 256-level scale add log2(256) = 8 to it.)
func BitsPerDim(nll float64) float64 {
	return nll / (GLOWDigitsSide * GLOWDigitsSide * math.Ln2)
}

// GLOWDigitsResult is the outcome of GLOWDigits.
type GLOWDigitsResult struct {
	Config GLOWDigitsConfig
	A, B   GLOWFit // MNIST (θA*) and USPS-style (θB*)
	// LRMF holds the alignments of B to A after the fits, one per
	// Config.LRMFRuns (none when Config.LRMFSteps < 0). They train copies
	// of the fitted models, so A and B stay as fitted.
	LRMF    []*GLOWLRMF
	Backend string
	Seconds float64
}

// glowDigitImages returns the two domains' training and held-out images as
// n×1024 matrices in [0, 1]: MNIST training digits padded to 32×32 and
// USPS-style digits (MNIST test split) upsampled to 32×32.
func glowDigitImages(dir string, n, held int) (a, ha, b, hb *mat.Dense, err error) {
	train, err := data.LoadMNIST(dir, data.MNISTTrain)
	if err != nil {
		return
	}
	test, err := data.LoadMNIST(dir, data.MNISTTest)
	if err != nil {
		return
	}
	pad := func(im *data.Images) *mat.Dense {
		const s, off = GLOWDigitsSide, 2
		out := mat.NewDense(im.N, s*s, nil)
		for i := 0; i < im.N; i++ {
			src, row := im.Image(i), out.RawRowView(i)
			for r := 0; r < im.Rows && r+off < s; r++ {
				for c := 0; c < im.Cols && c+off < s; c++ {
					row[(r+off)*s+c+off] = float64(src[r*im.Cols+c]) / 255
				}
			}
		}
		return out
	}
	up := func(m *mat.Dense) *mat.Dense {
		const s, k = GLOWDigitsSide, data.USPSSide
		r, _ := m.Dims()
		out := mat.NewDense(r, s*s, nil)
		for i := 0; i < r; i++ {
			src, row := m.RawRowView(i), out.RawRowView(i)
			for y := 0; y < s; y++ {
				for x := 0; x < s; x++ {
					row[y*s+x] = src[(y*k/s)*k+x*k/s]
				}
			}
		}
		return out
	}
	a = pad(rows(train, 0, n))
	ha = pad(rows(train, n, n+held))
	ub, _ := data.USPSStyle(rows(test, 0, n))
	uh, _ := data.USPSStyle(rows(test, n, n+held))
	return a, ha, up(ub), up(uh), nil
}

// GLOWDigits fits GLOW densities to MNIST (θA*) and to the USPS-style
// domain (θB*) and measures each one's held-out NLL.
func GLOWDigits(ctx context.Context, cfg GLOWDigitsConfig) (*GLOWDigitsResult, error) {
	start := time.Now()
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	stage := func(s string) {
		if c.Stage != nil {
			c.Stage(s)
		}
	}
	dir := c.MNISTDir
	if dir == "" {
		var err error
		if dir, err = data.MNISTDir(); err != nil {
			return nil, err
		}
	}
	stage("data")
	a, ha, b, hb, err := glowDigitImages(dir, c.N, c.HeldOut)
	if err != nil {
		return nil, err
	}
	be := c.Backend
	if be == nil {
		dt := native.Float32
		if native.DefaultBackend() == "ref" {
			dt = native.Float64
		}
		if be, err = native.Open(native.DefaultBackend(), dt, 0); err != nil {
			return nil, err
		}
		defer be.Close()
	}
	r := &GLOWDigitsResult{Config: c, Backend: be.Name()}
	for i, d := range []struct {
		name        string
		train, held *mat.Dense
		out         *GLOWFit
	}{{"MNIST", a, ha, &r.A}, {"USPS-style", b, hb, &r.B}} {
		stage("fit θ" + string("AB"[i]) + "* (" + d.name + ")")
		fit, err := fitGLOW(ctx, be, c, d.train, d.held, c.Seed+uint64(i))
		if err != nil {
			return nil, err
		}
		fit.Domain = d.name
		*d.out = *fit
	}
	if c.LRMFSteps > 0 {
		if r.LRMF, err = glowLRMF(ctx, be, c, r, a, ha, b, hb, stage); err != nil {
			return nil, err
		}
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// fitGLOW trains a GLOW density on train by Adam on the mean NLL of random
// batches with fresh dequantisation noise, then evaluates held (one noise
// draw) in chunks of the batch size.
func fitGLOW(ctx context.Context, be native.Backend, c GLOWDigitsConfig, train, held *mat.Dense, seed uint64) (*GLOWFit, error) {
	rng := rand.New(rand.NewPCG(seed, 0x610))
	s := model.ImageShape{H: GLOWDigitsSide, W: GLOWDigitsSide, C: 1}
	dens, err := model.GLOWDensity(s, c.Model)(be, s.Dim(), rng)
	if err != nil {
		return nil, err
	}
	glow := dens.(*model.FlowDensity).Flow().(*model.GLOW)
	d, bs := s.Dim(), c.Batch
	host := make([]float64, bs*d)
	x, logp, w := be.New(bs, d), be.New(bs, 1), be.New(bs, 1)
	be.Fill(w, -1/float64(bs))
	n, _ := train.Dims()
	batch := func(src *mat.Dense, idx []int) {
		for k, i := range idx {
			row := src.RawRowView(i)
			for j := range row {
				host[k*d+j] = row[j] + c.Noise*(2*rng.Float64()-1)
			}
		}
		be.Upload(x, host)
	}
	idx := make([]int, bs)
	draw := func() {
		for k := range idx {
			idx[k] = rng.IntN(n)
		}
	}
	// Data-dependent initialisation on a larger batch when there is one.
	ni := min(n, 4*bs)
	xi := be.New(ni, d)
	hi := make([]float64, ni*d)
	for k := 0; k < ni; k++ {
		row := train.RawRowView(k)
		for j := range row {
			hi[k*d+j] = row[j] + c.Noise*(2*rng.Float64()-1)
		}
	}
	be.Upload(xi, hi)
	if err := glow.InitFromData(xi); err != nil {
		return nil, err
	}
	ps := dens.Params()
	opt := optim.NewAdam(be, ps, c.LR)
	fit := &GLOWFit{Density: dens}
	t0 := time.Now()
	for step := 0; step < c.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		draw()
		batch(train, idx)
		if err := dens.LogProb(logp, x); err != nil {
			return nil, err
		}
		nll := -be.Sum(logp) / float64(bs)
		if math.IsNaN(nll) || math.IsInf(nll, 0) {
			return nil, fmt.Errorf("paper: GLOW digits: the NLL became %v at step %d (lower --lr)", nll, step)
		}
		fit.TrainNLL = append(fit.TrainNLL, nll)
		if err := dens.Backward(nil, w); err != nil {
			return nil, err
		}
		optim.ClipGrad(be, ps, optim.GradNorm(be, ps), 100)
		opt.LR = optim.ScheduledLR(optim.Cosine, c.LR, step, c.Steps)
		opt.Step()
	}
	fit.StepsPerS = float64(c.Steps) / time.Since(t0).Seconds()
	nh, _ := held.Dims()
	total, count := 0.0, 0
	for lo := 0; lo+bs <= nh; lo += bs {
		for k := range idx {
			idx[k] = lo + k
		}
		batch(held, idx)
		if err := dens.LogProb(logp, x); err != nil {
			return nil, err
		}
		total -= be.Sum(logp)
		count += bs
	}
	if count == 0 {
		return nil, fmt.Errorf("paper: GLOW digits: %d held-out images is fewer than one batch of %d", nh, bs)
	}
	fit.NLL = total / float64(count)
	return fit, nil
}
