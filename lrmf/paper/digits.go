package paper

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/data"
	"github.com/lrmf-go/lrmf/lrmf/embed"
	"github.com/lrmf-go/lrmf/native"
)

// The digit experiment (supplementary §8.3, Figure 11): align embeddings of
// two digit domains and check that the alignment keeps the digit classes.
//
// A is the USPS-style stand-in (data.USPSStyle of MNIST's test split: each
// digit cropped to its ink and scaled to fill 16×16); B is MNIST's
// training split resized whole to 16×16 (data.Images.Resized). Both are
// embedded in one D-dimensional space (embed.Shared: PCA, or
// embed.SharedAutoencoder), A is aligned to B with lrmf.Align, and every
// map T is scored by class agreement: the accuracy, with A's labels as the
// truth, of a k-NN classifier fitted on B's labelled coordinates and
// applied to T(A). The identity, the Gaussian optimal-transport map and
// CORAL are the baselines; the within-domain (leave-one-out) k-NN accuracy
// on B is the ceiling.

// Embedding kinds of DigitsConfig.Embed.
const (
	EmbedPCA = "pca"
	EmbedAE  = "ae"
)

// Names of the maps in DigitsResult.Maps.
const (
	MapIdentity   = "identity"    // T(a) = a
	MapGaussianOT = "gaussian-ot" // GaussianOT, the closed form of affine + Gaussian LRMF
	MapCORAL      = "coral"       // CORAL
	MapLRMF       = "lrmf"        // lrmf.Align with DigitsConfig.Align's flow and density
)

// MapLRMFOf returns the name of the map of DigitsResult.Alignments[i]
// with flow kind: MapLRMF for i = 0 (DigitsConfig.Align), else
// MapLRMF + "-" + kind (DigitsConfig.More[i−1]), e.g. "lrmf-glow"; taken
// names (the same kind twice) get "-" + (i+1) instead of the kind.
func MapLRMFOf(i int, kind string, taken func(string) bool) string {
	if i == 0 {
		return MapLRMF
	}
	if n := MapLRMF + "-" + kind; !taken(n) {
		return n
	}
	return fmt.Sprintf("%s-%d", MapLRMF, i+1)
}

// Sizes of the digit sets: MNIST's splits.
const (
	DigitsMaxA = 10000 // MNIST test images, the source of the USPS-style domain
	DigitsMaxB = 60000 // MNIST training images
)

// DigitsConfig configures Digits. A zero field selects the default in its
// comment.
type DigitsConfig struct {
	// NA and NB are the sizes of A (the first NA USPS-style digits,
	// ≤ DigitsMaxA) and B (the first NB MNIST training digits,
	// ≤ DigitsMaxB) (default 2000 each).
	NA, NB int
	// Dim is D, the shared embedding's dimension (default 10).
	Dim int
	// Embed is EmbedPCA (default) or EmbedAE.
	Embed string
	// AE sizes and trains the autoencoder (EmbedAE); its Dim, Seed and
	// Backend are set by Digits (D, Align.Seed, the run's backend).
	AE embed.AutoencoderConfig
	// Align configures the alignment (zero: lrmf align's defaults, a Real
	// NVP flow and density). A nil Backend makes Digits open
	// native.DefaultBackend() in float32 (float64 on ref) for the
	// autoencoder and the alignment, released by DigitsResult.Close.
	Align lrmf.Config
	// More are further alignments of the same embedding, run after Align
	// and scored the same way (e.g. a glow flow and density beside Align's
	// Real NVP); a nil Backend or zero Seed takes Align's.
	More []lrmf.Config
	// K is the k of the k-NN classifiers (default 5).
	K int
	// HeldOut is the number of further images per domain (the next ones of
	// each split) on which the reconstruction error is also measured
	// (default 1000; negative: none).
	HeldOut int
	// MNISTDir holds the MNIST files (default data.MNISTDir()).
	MNISTDir string
	// Stage, if not nil, is called as each stage starts: "data", "embed",
	// "align", "maps".
	Stage func(stage string)
}

// Defaults of DigitsConfig.
const (
	DigitsDefaultN       = 2000
	DigitsDefaultDim     = 10
	DigitsDefaultK       = 5
	DigitsDefaultHeldOut = 1000
)

func (c DigitsConfig) withDefaults() DigitsConfig {
	if c.NA == 0 {
		c.NA = DigitsDefaultN
	}
	if c.NB == 0 {
		c.NB = DigitsDefaultN
	}
	if c.Dim == 0 {
		c.Dim = DigitsDefaultDim
	}
	if c.Embed == "" {
		c.Embed = EmbedPCA
	}
	if c.K == 0 {
		c.K = DigitsDefaultK
	}
	if c.HeldOut == 0 {
		c.HeldOut = DigitsDefaultHeldOut
	}
	if c.Align.Seed == 0 {
		c.Align.Seed = lrmf.DefaultConfig().Seed
	}
	return c
}

func (c DigitsConfig) validate() error {
	p := data.USPSSide * data.USPSSide
	switch {
	case c.NA < 1 || c.NA > DigitsMaxA:
		return fmt.Errorf("paper: Digits: NA = %d: want 1 to %d (MNIST's test split)", c.NA, DigitsMaxA)
	case c.NB < 1 || c.NB > DigitsMaxB:
		return fmt.Errorf("paper: Digits: NB = %d: want 1 to %d (MNIST's training split)", c.NB, DigitsMaxB)
	case c.Dim < 1 || c.Dim > p:
		return fmt.Errorf("paper: Digits: D = %d: want 1 to %d (16×16 pixels)", c.Dim, p)
	case c.Dim > c.NA+c.NB-1:
		return fmt.Errorf("paper: Digits: D = %d exceeds NA + NB − 1 = %d", c.Dim, c.NA+c.NB-1)
	case c.Embed != EmbedPCA && c.Embed != EmbedAE:
		return fmt.Errorf("paper: Digits: Embed = %q: want %q or %q", c.Embed, EmbedPCA, EmbedAE)
	case c.K < 1 || c.K > min(c.NA, c.NB)-1:
		return fmt.Errorf("paper: Digits: K = %d: want 1 to min(NA, NB) − 1 = %d", c.K, min(c.NA, c.NB)-1)
	}
	return nil
}

// EmbeddingStats describes a shared embedding of the digit domains.
type EmbeddingStats struct {
	Kind string // EmbedPCA or EmbedAE
	// MSE is the reconstruction error per pixel, mean (x̂ − x)² over the
	// union of A and B (grey levels in [0, 1]); x̂ = Inverse(Transform(x)).
	MSE float64
	// HeldOutMSE is the same on the held-out images of both domains (NaN
	// without any).
	HeldOutMSE float64
	// WithinA and WithinB are the leave-one-out k-NN accuracies of each
	// domain's coordinates (KNN.LeaveOneOut).
	WithinA, WithinB float64
	// Seconds is the wall time of fitting the embedding.
	Seconds float64
}

// DigitsMap is one map T of the experiment and its score.
type DigitsMap struct {
	Name string
	// TA is T(A) in the shared space (nA×D); nil if the map failed.
	TA *mat.Dense
	// Agreement is the class agreement: the accuracy of the k-NN
	// classifier fitted on B's coordinates and labels, applied to T(A),
	// with A's labels as the truth (NaN if the map failed).
	Agreement float64
	// Seconds is the wall time of computing T(A).
	Seconds float64
}

// DigitsResult is the outcome of Digits.
type DigitsResult struct {
	// Config is the configuration used, defaults filled in.
	Config DigitsConfig
	// ImagesA and ImagesB are the nA×256 and nB×256 input images (grey
	// levels in [0, 1], 16×16 row-major).
	ImagesA, ImagesB *mat.Dense
	// Pair holds the shared coordinates of A and B with their labels and
	// the fitted embedding (Pair.Map()).
	Pair *embed.Pair
	// Embedding describes Pair's embedding; PCA, with EmbedAE only, a PCA
	// of the same D fitted for comparison.
	Embedding EmbeddingStats
	PCA       *EmbeddingStats
	// Align is lrmf.Align's result (with Status diverged when training
	// diverged; AlignErr then holds the error): Alignments[0]'s.
	Align    *lrmf.Result
	AlignErr error
	// Alignments are the alignments of Config.Align and Config.More, in
	// that order, each with the name of its map.
	Alignments []DigitsAlignment
	// Maps are identity, Gaussian OT, CORAL and one LRMF map per
	// alignment (MapLRMF, then MapLRMFOf's names), in that order.
	Maps []DigitsMap
	// Seconds is the wall time of the whole experiment.
	Seconds float64

	be    native.Backend
	ownBE bool
}

// DigitsAlignment is one lrmf.Align run of the experiment.
type DigitsAlignment struct {
	// Map is the name of its map in DigitsResult.Maps.
	Map string
	// Result is lrmf.Align's result (Status diverged when training
	// diverged; Err then holds the error).
	Result *lrmf.Result
	Err    error
}

// Map returns the map called name, or nil.
func (r *DigitsResult) Map(name string) *DigitsMap {
	for i := range r.Maps {
		if r.Maps[i].Name == name {
			return &r.Maps[i]
		}
	}
	return nil
}

// GapClosed returns the share of the gap between the identity's class
// agreement and B's within-domain accuracy that the map called name
// closes: (acc_T − acc_id)/(acc_within,B − acc_id). The goal is
// ≥ ½. NaN if the map is missing or failed, or the gap is not positive.
func (r *DigitsResult) GapClosed(name string) float64 {
	m, id := r.Map(name), r.Map(MapIdentity)
	if m == nil || id == nil {
		return math.NaN()
	}
	gap := r.Embedding.WithinB - id.Agreement
	if !(gap > 0) {
		return math.NaN()
	}
	return (m.Agreement - id.Agreement) / gap
}

// Close releases the backend Digits opened (none if Align.Backend was
// given) and the autoencoder; the embedding cannot decode afterwards.
func (r *DigitsResult) Close() {
	if r.Pair != nil && r.Pair.AE != nil {
		r.Pair.AE.Close()
	}
	if r.ownBE && r.be != nil {
		r.be.Close()
	}
	r.be = nil
}

// digitImages returns the inputs and labels of the experiment: A, B and
// the held-out images of each domain (nil when there are none).
func digitImages(dir string, na, nb, held int) (a, b, heldA, heldB *mat.Dense, la, lb []int, err error) {
	test, err := data.LoadMNIST(dir, data.MNISTTest)
	if err != nil {
		return
	}
	train, err := data.LoadMNIST(dir, data.MNISTTrain)
	if err != nil {
		return
	}
	a, la = data.USPSStyle(test.Head(na))
	mb := train.Head(nb)
	b, lb = mb.Resized(data.USPSSide), append([]int(nil), mb.Labels...)
	if held > 0 {
		if h := rows(test, na, na+held); h != nil {
			heldA, _ = data.USPSStyle(h)
		}
		if h := rows(train, nb, nb+held); h != nil {
			heldB = h.Resized(data.USPSSide)
		}
	}
	return
}

// rows returns images [lo, min(hi, N)) of im, sharing memory, or nil if
// the range is empty.
func rows(im *data.Images, lo, hi int) *data.Images {
	hi = min(hi, im.N)
	if lo >= hi {
		return nil
	}
	p := im.Rows * im.Cols
	return &data.Images{N: hi - lo, Rows: im.Rows, Cols: im.Cols, Pix: im.Pix[lo*p : hi*p], Labels: im.Labels[lo:hi]}
}

// Digits runs the digit experiment (see the constants above): it loads the
// domains, embeds them (cfg.Embed at cfg.Dim), measures the embedding,
// aligns A to B with lrmf.Align (cfg.Align, then each of cfg.More),
// computes the baselines and scores every map by class agreement.
//
// It is an error if cfg is invalid (sizes outside the splits, D outside
// [1, 256] or above NA + NB − 1, K outside [1, min(NA, NB) − 1], an unknown
// embedding), the MNIST files cannot be read, the embedding or a baseline
// fails, or lrmf.Align returns an error other than divergence (a diverged
// alignment is reported in the result: Align.Status, AlignErr, and an LRMF
// map with NaN agreement). The caller must Close the result.
//
// Cost: the alignments dominate (lrmf.Align's defaults: 2 × 20000 fit
// steps and 20000 joint steps each); the PCA takes ~0.5 s, the autoencoder ~0.2 GFLOP
// per step, the k-NN scores O(nA·nB·D).
func Digits(ctx context.Context, cfg DigitsConfig) (*DigitsResult, error) {
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
	stage("data")
	dir := c.MNISTDir
	if dir == "" {
		var err error
		if dir, err = data.MNISTDir(); err != nil {
			return nil, err
		}
	}
	ia, ib, ha, hb, la, lb, err := digitImages(dir, c.NA, c.NB, c.HeldOut)
	if err != nil {
		return nil, err
	}
	r := &DigitsResult{Config: c, ImagesA: ia, ImagesB: ib, be: c.Align.Backend}
	if r.be == nil {
		dt := lrmf.DefaultDType
		if native.DefaultBackend() == "ref" {
			dt = native.Float64
		}
		if r.be, err = native.Open(native.DefaultBackend(), dt, 0); err != nil {
			return nil, err
		}
		r.ownBE = true
	}
	if err := r.run(ctx, la, lb, ha, hb, stage); err != nil {
		r.Close()
		return nil, err
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

func (r *DigitsResult) run(ctx context.Context, la, lb []int, ha, hb *mat.Dense, stage func(string)) error {
	c := &r.Config
	stage("embed")
	t0 := time.Now()
	sa, sb := embed.Set{X: r.ImagesA, Labels: la}, embed.Set{X: r.ImagesB, Labels: lb}
	var err error
	if c.Embed == EmbedAE {
		ac := c.AE
		ac.Dim, ac.Seed, ac.Backend = c.Dim, c.Align.Seed, r.be
		r.Pair, err = embed.SharedAutoencoder(ctx, sa, sb, ac)
		if err == nil {
			c.AE = r.Pair.AE.Config
			c.AE.Backend = nil
		}
	} else {
		r.Pair, err = embed.Shared(sa, sb, c.Dim)
	}
	if err != nil {
		return err
	}
	if r.Embedding, err = embeddingStats(r.Pair, c.Embed, r.ImagesA, r.ImagesB, ha, hb, c.K); err != nil {
		return err
	}
	r.Embedding.Seconds = time.Since(t0).Seconds()
	if c.Embed == EmbedAE {
		t0 = time.Now()
		pp, err := embed.Shared(sa, sb, c.Dim)
		if err != nil {
			return err
		}
		st, err := embeddingStats(pp, EmbedPCA, r.ImagesA, r.ImagesB, ha, hb, c.K)
		if err != nil {
			return err
		}
		st.Seconds = time.Since(t0).Seconds()
		r.PCA = &st
	}

	stage("align")
	za, zb := r.Pair.A.X, r.Pair.B.X
	var lrmfMaps []DigitsMap
	taken := func(name string) bool {
		return slices.ContainsFunc(lrmfMaps, func(m DigitsMap) bool { return m.Name == name })
	}
	for i, acfg := range append([]lrmf.Config{c.Align}, c.More...) {
		if acfg.Backend == nil {
			acfg.Backend = r.be
		}
		if acfg.Seed == 0 {
			acfg.Seed = c.Align.Seed
		}
		kind := acfg.Flow.Kind
		if kind == "" {
			kind = lrmf.DefaultConfig().Flow.Kind
		}
		res, err := lrmf.Align(ctx, za, zb, acfg)
		m := DigitsMap{Name: MapLRMFOf(i, kind, taken), Agreement: math.NaN()}
		al := DigitsAlignment{Map: m.Name, Result: res}
		switch {
		case err == nil:
			m.TA = res.Transformed
			m.Seconds = res.TotalSeconds
		case errors.Is(err, lrmf.ErrDiverged) && res != nil:
			al.Err = err
			m.Seconds = res.TotalSeconds
		default:
			return err
		}
		lrmfMaps = append(lrmfMaps, m)
		r.Alignments = append(r.Alignments, al)
	}
	r.Align, r.AlignErr = r.Alignments[0].Result, r.Alignments[0].Err

	stage("maps")
	knn, err := NewKNN(zb, lb, c.K)
	if err != nil {
		return err
	}
	for _, m := range []struct {
		name string
		f    func(a, b *mat.Dense) (*mat.Dense, error)
	}{
		{MapIdentity, func(a, _ *mat.Dense) (*mat.Dense, error) { return mat.DenseCopyOf(a), nil }},
		{MapGaussianOT, GaussianOT},
		{MapCORAL, CORAL},
	} {
		t0 := time.Now()
		ta, err := m.f(za, zb)
		if err != nil {
			return err
		}
		r.Maps = append(r.Maps, DigitsMap{Name: m.name, TA: ta, Seconds: time.Since(t0).Seconds()})
	}
	r.Maps = append(r.Maps, lrmfMaps...)
	for i := range r.Maps {
		m := &r.Maps[i]
		if m.TA == nil {
			continue
		}
		if m.Agreement, err = knn.Accuracy(m.TA, la); err != nil {
			return err
		}
	}
	return nil
}

// embeddingStats measures a fitted pair: reconstruction errors and the
// within-domain k-NN accuracies.
func embeddingStats(p *embed.Pair, kind string, ia, ib, ha, hb *mat.Dense, k int) (EmbeddingStats, error) {
	st := EmbeddingStats{Kind: kind, HeldOutMSE: math.NaN()}
	m := p.Map()
	recon := func(x ...*mat.Dense) (float64, error) {
		s, n := 0.0, 0
		for _, xi := range x {
			if xi == nil {
				continue
			}
			z, err := m.Transform(xi)
			if err != nil {
				return 0, err
			}
			xh, err := m.Inverse(z)
			if err != nil {
				return 0, err
			}
			r, c := xi.Dims()
			s += embed.MSE(xh, xi) * float64(r*c)
			n += r * c
		}
		if n == 0 {
			return math.NaN(), nil
		}
		return s / float64(n), nil
	}
	var err error
	if st.MSE, err = recon(ia, ib); err != nil {
		return st, err
	}
	if st.HeldOutMSE, err = recon(ha, hb); err != nil {
		return st, err
	}
	for _, d := range []struct {
		s   embed.Set
		dst *float64
	}{{p.A, &st.WithinA}, {p.B, &st.WithinB}} {
		knn, err := NewKNN(d.s.X, d.s.Labels, k)
		if err != nil {
			return st, err
		}
		if *d.dst, err = knn.LeaveOneOut(); err != nil {
			return st, err
		}
	}
	return st, nil
}

// Projection returns 2-D views of A, T(A) for the map called name, and B:
// each row's coordinates along the first two principal axes of the union
// of A's and B's shared coordinates, (z − μ)·V (unscaled, so distances are
// the shared space's, projected). It is an error if the map is missing or
// failed, or D < 2.
func (r *DigitsResult) Projection(name string) (a, ta, b *mat.Dense, err error) {
	m := r.Map(name)
	if m == nil || m.TA == nil {
		return nil, nil, nil, fmt.Errorf("paper: Digits: no T(A) for map %q", name)
	}
	za, zb := r.Pair.A.X, r.Pair.B.X
	na, d := za.Dims()
	nb, _ := zb.Dims()
	if d < 2 {
		return nil, nil, nil, fmt.Errorf("paper: Digits: a 2-D projection needs D ≥ 2 (D = %d)", d)
	}
	union := mat.NewDense(na+nb, d, nil)
	union.Slice(0, na, 0, d).(*mat.Dense).Copy(za)
	union.Slice(na, na+nb, 0, d).(*mat.Dense).Copy(zb)
	pc, err := embed.Fit(union, 2)
	if err != nil {
		return nil, nil, nil, err
	}
	proj := func(x *mat.Dense) (*mat.Dense, error) {
		s, err := pc.Transform(x)
		if err != nil {
			return nil, err
		}
		n, _ := s.Dims()
		for i := range n {
			row := s.RawRowView(i)
			for k := range row {
				row[k] *= pc.SD[k]
			}
		}
		return s, nil
	}
	if a, err = proj(za); err != nil {
		return
	}
	if ta, err = proj(m.TA); err != nil {
		return
	}
	b, err = proj(zb)
	return
}

// DecodedGrid returns decoded images for a visual check of the map called
// name: for each digit 0–9 the first per rows of A with that label, decoded
// from A's coordinates (a) and from T(A) (ta), and the first per rows of
// B with that label decoded from B's coordinates (b). Each is a
// (10·per)×256 matrix, digit-major, grey levels clamped to [0, 1]; a digit
// with fewer than per rows leaves zero (black) rows. With a PCA the
// decoding is the projection onto its axes (blurred at small D). It is an
// error if the map is missing or failed, per < 1, or the embedding cannot
// decode (closed).
func (r *DigitsResult) DecodedGrid(name string, per int) (a, ta, b *mat.Dense, err error) {
	m := r.Map(name)
	switch {
	case m == nil || m.TA == nil:
		return nil, nil, nil, fmt.Errorf("paper: Digits: no T(A) for map %q", name)
	case per < 1:
		return nil, nil, nil, fmt.Errorf("paper: Digits: %d images per digit: want at least 1", per)
	}
	pick := func(z *mat.Dense, labels []int) (*mat.Dense, error) {
		_, d := z.Dims()
		sel := mat.NewDense(10*per, d, nil)
		used := make([]bool, 10*per)
		count := make([]int, 10)
		for i, l := range labels {
			if l < 0 || l > 9 || count[l] == per {
				continue
			}
			k := l*per + count[l]
			sel.SetRow(k, z.RawRowView(i))
			used[k] = true
			count[l]++
		}
		img, err := r.Pair.Map().Inverse(sel)
		if err != nil {
			return nil, err
		}
		for k, ok := range used {
			row := img.RawRowView(k)
			for j, v := range row {
				switch {
				case !ok:
					row[j] = 0
				case v < 0:
					row[j] = 0
				case v > 1:
					row[j] = 1
				}
			}
		}
		return img, nil
	}
	if a, err = pick(r.Pair.A.X, r.Pair.A.Labels); err != nil {
		return
	}
	if ta, err = pick(m.TA, r.Pair.A.Labels); err != nil {
		return
	}
	b, err = pick(r.Pair.B.X, r.Pair.B.Labels)
	return
}
