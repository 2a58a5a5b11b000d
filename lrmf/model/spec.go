package model

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lrmf-go/lrmf/native"
)

// ModelSpec names a built-in flow or density and its size, in a form that
// survives JSON (report.json, checkpoints) and rebuilds the same model.
type ModelSpec struct {
	// Kind is "affine" or "glow-b2b" (flows), "gaussian" or "glow-image"
	// (densities), "realnvp", "glow" or "ffjord" (both). "glow-b2b" is
	// the back-to-back image flow T = G2⁻¹∘G1 of two GLOWs
	// (GLOWBackToBack), the identity at a fresh start.
	Kind string `json:"kind"`
	// Real NVP, Glow and FFJORD (zero values take RealNVPOptions',
	// GlowOptions' or FFJORDOptions' defaults). The image kinds
	// (ImageKinds) take Blocks as the steps K per level and Hidden as the
	// filters F of the coupling networks (GLOWOptions' defaults).
	Blocks int `json:"blocks,omitempty"` // coupling layers or stacked transforms
	Hidden int `json:"hidden,omitempty"` // units per hidden layer
	Depth  int `json:"depth,omitempty"`  // hidden layers per network
	// Real NVP, Glow and the image kinds (their couplings; the image kinds
	// default to "sigmoid", the GLOW paper's).
	Scale string  `json:"scale,omitempty"` // "exp" (soft-bounded) or "sigmoid"
	Bound float64 `json:"bound,omitempty"` // exp scale's bound on ln s (0: DefaultBound(Blocks); image kinds: DefaultScale.Bound)
	// The image kinds only: the shape of one image, a data row being its
	// H·W·C values in NHWC order (required), and the levels L of the
	// multi-scale GLOW (0: GLOWOptions' default), each halving H and W, so
	// both must be divisible by 2^L.
	Image  ImageShape `json:"image,omitzero"`
	Levels int        `json:"levels,omitempty"`
	// FFJORD only: see FFJORDOptions.
	Solver   string  `json:"solver,omitempty"`    // "dopri5" or "rk4"
	ODESteps int     `json:"ode_steps,omitempty"` // RK4 steps
	Atol     float64 `json:"atol,omitempty"`      // Dormand–Prince absolute tolerance
	Rtol     float64 `json:"rtol,omitempty"`      // Dormand–Prince relative tolerance
	MaxSteps int     `json:"max_steps,omitempty"` // Dormand–Prince step budget
	Trace    string  `json:"trace,omitempty"`     // "exact" or "hutchinson"
	Probes   int     `json:"probes,omitempty"`    // Hutchinson probes
}

// FlowKinds and DensityKinds list the built-in model kinds; ImageKinds
// those among them that model H×W×C images and need ModelSpec.Image.
var (
	FlowKinds    = []string{"affine", "realnvp", "glow", "ffjord", "glow-b2b"}
	DensityKinds = []string{"gaussian", "realnvp", "glow", "ffjord", "glow-image"}
	ImageKinds   = []string{"glow-image", "glow-b2b"}
)

// IsImageKind reports whether kind is one of ImageKinds.
func IsImageKind(kind string) bool { return slices.Contains(ImageKinds, kind) }

// String returns the shape as "HxWxC", the form ParseImageShape reads.
func (s ImageShape) String() string { return fmt.Sprintf("%dx%dx%d", s.H, s.W, s.C) }

// MarshalText encodes the shape as "HxWxC" (so a ModelSpec's JSON reads
// "image": "32x32x1").
func (s ImageShape) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes "HxWxC" (ParseImageShape).
func (s *ImageShape) UnmarshalText(b []byte) error {
	v, err := ParseImageShape(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseImageShape reads an image shape "HxWxC" (three positive integers
// separated by x, X or ×), e.g. "32x32x1".
func ParseImageShape(text string) (ImageShape, error) {
	parts := strings.FieldsFunc(text, func(r rune) bool { return r == 'x' || r == 'X' || r == '×' })
	bad := fmt.Errorf("model: image shape %q: want HxWxC, three positive integers such as 32x32x1", text)
	if len(parts) != 3 || strings.Count(strings.NewReplacer("X", "x", "×", "x").Replace(text), "x") != 2 {
		return ImageShape{}, bad
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 1<<20 {
			return ImageShape{}, bad
		}
		v[i] = n
	}
	return ImageShape{H: v[0], W: v[1], C: v[2]}, nil
}

// FFJORD returns the FFJORD options s names, defaults filled in.
func (s ModelSpec) FFJORD() FFJORDOptions {
	return FFJORDOptions{Blocks: s.Blocks, Hidden: s.Hidden, Depth: s.Depth, Solver: s.Solver, Steps: s.ODESteps,
		Atol: s.Atol, Rtol: s.Rtol, MaxSteps: s.MaxSteps, Trace: s.Trace, Probes: s.Probes}.withDefaults()
}

func (s ModelSpec) realNVP() (RealNVPOptions, error) {
	o := RealNVPOptions{Blocks: s.Blocks, Hidden: s.Hidden, Depth: s.Depth}
	switch s.Scale {
	case "", "exp":
		if s.Bound != 0 { // else withDefaults' exp scale, bounded by depth
			o.Scale = native.Scale{Kind: native.ScaleExp, Bound: s.Bound}
		}
	case "sigmoid":
		o.Scale = native.Scale{Kind: native.ScaleSigmoid}
	default:
		return o, fmt.Errorf("model: unknown Real NVP scale %q (want exp or sigmoid)", s.Scale)
	}
	return o.withDefaults(), nil
}

// glow returns the Glow options s names (Blocks, Hidden, Depth and the
// couplings' Scale and Bound as for Real NVP), defaults filled in.
func (s ModelSpec) glow() (GlowOptions, error) {
	r, err := s.realNVP()
	if err != nil {
		return GlowOptions{}, fmt.Errorf("model: Glow: %w", err)
	}
	return GlowOptions{Blocks: r.Blocks, Hidden: r.Hidden, Depth: r.Depth, Scale: r.Scale}.withDefaults(), nil
}

// glowImage returns the GLOW options an image kind's spec names (Levels;
// Blocks as Steps; Hidden as filters; Scale "sigmoid" unless "exp", whose
// Bound defaults to DefaultScale.Bound), defaults filled in.
func (s ModelSpec) glowImage() (GLOWOptions, error) {
	o := GLOWOptions{Levels: s.Levels, Steps: s.Blocks, Hidden: s.Hidden}
	switch s.Scale {
	case "", "sigmoid":
		o.Scale = native.Scale{Kind: native.ScaleSigmoid}
	case "exp":
		o.Scale = native.Scale{Kind: native.ScaleExp, Bound: s.Bound}
		if s.Bound == 0 {
			o.Scale.Bound = DefaultScale.Bound
		}
	default:
		return o, fmt.Errorf("model: %s: unknown scale %q (want sigmoid or exp)", s.Kind, s.Scale)
	}
	return o.withDefaults(), nil
}

// CheckImage checks an image kind's spec against data of dim columns (dim
// ≤ 0: the shape and sizes only): Image must be given, H·W·C must equal
// dim, and H and W must be divisible by 2^Levels; the errors name the
// ModelSpec field. Other kinds pass.
func (s ModelSpec) CheckImage(dim int) error {
	if !IsImageKind(s.Kind) {
		return nil
	}
	im := s.Image
	switch {
	case im == ImageShape{}:
		return fmt.Errorf("model: %s needs the image shape (ModelSpec.Image, H×W×C with H·W·C the data's columns)", s.Kind)
	case im.H < 1 || im.W < 1 || im.C < 1:
		return fmt.Errorf("model: %s: ModelSpec.Image = %v: H, W and C must be positive", s.Kind, im)
	case dim > 0 && im.Dim() != dim:
		return fmt.Errorf("model: %s: ModelSpec.Image = %v has H·W·C = %d values per image, the data have %d columns", s.Kind, im, im.Dim(), dim)
	}
	o, err := s.glowImage()
	if err != nil {
		return err
	}
	if d := 1 << min(max(o.Levels, 0), 8); o.Levels >= 1 && o.Levels <= 8 && (im.H%d != 0 || im.W%d != 0) {
		return fmt.Errorf("model: %s: ModelSpec.Levels = %d halves the images %d times, so H and W of ModelSpec.Image = %v must be divisible by 2^%d = %d",
			s.Kind, o.Levels, o.Levels, im, o.Levels, d)
	}
	if err := o.validate(im); err != nil {
		return fmt.Errorf("model: %s: %s", s.Kind, strings.TrimPrefix(err.Error(), "model: "))
	}
	return nil
}

// imageModel returns the maker mk builds for an image kind's spec
// (GLOWDensity, or a flow maker of the same signature) after CheckImage.
func imageModel[M any](s ModelSpec, mk func(ImageShape, GLOWOptions) M) (M, error) {
	var zero M
	if err := s.CheckImage(0); err != nil {
		return zero, err
	}
	o, err := s.glowImage()
	if err != nil {
		return zero, err
	}
	return mk(s.Image, o), nil
}

// Normalized fills in the defaults, so two specs of the same model compare
// equal.
func (s ModelSpec) Normalized() ModelSpec {
	if IsImageKind(s.Kind) {
		o, err := s.glowImage()
		if err != nil {
			return s
		}
		n := ModelSpec{Kind: s.Kind, Blocks: o.Steps, Hidden: o.Hidden, Levels: o.Levels, Image: s.Image, Scale: "sigmoid"}
		if o.Scale.Kind == native.ScaleExp {
			n.Scale, n.Bound = "exp", o.Scale.Bound
		}
		return n
	}
	if s.Kind == "ffjord" {
		o := s.FFJORD()
		return ModelSpec{Kind: s.Kind, Blocks: o.Blocks, Hidden: o.Hidden, Depth: o.Depth, Solver: o.Solver, ODESteps: o.Steps,
			Atol: o.Atol, Rtol: o.Rtol, MaxSteps: o.MaxSteps, Trace: o.Trace, Probes: o.Probes}
	}
	if s.Kind != "realnvp" && s.Kind != "glow" {
		return ModelSpec{Kind: s.Kind}
	}
	o, err := s.realNVP()
	if err != nil {
		return s
	}
	n := ModelSpec{Kind: s.Kind, Blocks: o.Blocks, Hidden: o.Hidden, Depth: o.Depth, Scale: "exp", Bound: o.Scale.Bound}
	if o.Scale.Kind == native.ScaleSigmoid {
		n.Scale, n.Bound = "sigmoid", 0
	}
	return n
}

// FlowMaker returns the maker of the flow s names.
func (s ModelSpec) FlowMaker() (FlowMaker, error) {
	switch s.Kind {
	case "affine":
		return AffineFlow(), nil
	case "realnvp":
		o, err := s.realNVP()
		if err != nil {
			return nil, err
		}
		return RealNVPFlow(o), nil
	case "glow":
		o, err := s.glow()
		if err != nil {
			return nil, err
		}
		return GlowFlow(o), nil
	case "ffjord":
		return FFJORDFlow(s.FFJORD()), nil
	case "glow-b2b":
		return imageModel(s, GLOWBackToBackFlow)
	}
	return nil, fmt.Errorf("model: unknown flow %q (available: %s)", s.Kind, strings.Join(FlowKinds, ", "))
}

// DensityMaker returns the maker of the density s names.
func (s ModelSpec) DensityMaker() (DensityMaker, error) {
	switch s.Kind {
	case "gaussian":
		return GaussianDensity(), nil
	case "realnvp":
		o, err := s.realNVP()
		if err != nil {
			return nil, err
		}
		return RealNVPDensity(o), nil
	case "glow":
		o, err := s.glow()
		if err != nil {
			return nil, err
		}
		return GlowDensity(o), nil
	case "ffjord":
		return FFJORDDensity(s.FFJORD()), nil
	case "glow-image":
		return imageModel(s, GLOWDensity)
	}
	return nil, fmt.Errorf("model: unknown density %q (available: %s)", s.Kind, strings.Join(DensityKinds, ", "))
}
