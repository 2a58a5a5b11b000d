package model_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lrmf-go/lrmf/lrmf/model"
	"github.com/lrmf-go/lrmf/native"
)

// The glow-image kind: JSON round trip (the shape as "HxWxC"), defaults
// filled by Normalized (GLOWOptions' 3 × 4 × 32, sigmoid scale), and
// DensityMaker building a GLOW density of that shape and those sizes.
func TestGLOWImageSpec(t *testing.T) {
	s := model.ModelSpec{Kind: "glow-image", Image: model.ImageShape{H: 8, W: 8, C: 1}, Levels: 2, Blocks: 1, Hidden: 4}
	n := s.Normalized()
	assert.Equal(t, model.ModelSpec{Kind: "glow-image", Image: s.Image, Levels: 2, Blocks: 1, Hidden: 4, Scale: "sigmoid"}, n)
	assert.Equal(t, n, n.Normalized(), "Normalized is idempotent")
	d := model.ModelSpec{Kind: "glow-image", Image: model.ImageShape{H: 16, W: 16, C: 3}}.Normalized()
	assert.Equal(t, model.ModelSpec{Kind: "glow-image", Image: d.Image, Levels: 3, Blocks: 4, Hidden: 32, Scale: "sigmoid"}, d)
	e := model.ModelSpec{Kind: "glow-image", Image: s.Image, Levels: 2, Scale: "exp"}.Normalized()
	assert.Equal(t, "exp", e.Scale)
	assert.Equal(t, model.DefaultScale.Bound, e.Bound)

	raw, err := json.Marshal(n)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"image":"8x8x1"`)
	assert.Contains(t, string(raw), `"levels":2`)
	var back model.ModelSpec
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, n, back)
	// Other kinds carry no image fields.
	raw, err = json.Marshal(model.ModelSpec{Kind: "realnvp"}.Normalized())
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "image")
	assert.NotContains(t, string(raw), "levels")
	assert.Error(t, json.Unmarshal([]byte(`{"kind":"glow-image","image":"8x8"}`), &back))

	mk, err := n.DensityMaker()
	require.NoError(t, err)
	be := native.NewRef()
	dens, err := mk(be, 64, newRNG(t))
	require.NoError(t, err)
	fd, ok := dens.(*model.FlowDensity)
	require.True(t, ok, "a %T", dens)
	g, ok := fd.Flow().(*model.GLOW)
	require.True(t, ok, "a %T", fd.Flow())
	assert.Equal(t, s.Image, g.Shape())
	assert.Equal(t, model.GLOWOptions{Levels: 2, Steps: 1, Hidden: 4, Scale: native.Scale{Kind: native.ScaleSigmoid}}, g.Options())
	_, ok = model.DataInitializerOf(dens)
	assert.True(t, ok, "the GLOW density has a data-dependent initialisation")
	_, err = mk(be, 63, newRNG(t))
	assert.ErrorContains(t, err, "dimension 64, the data have 63")

	_, err = model.ModelSpec{Kind: "glow-image"}.FlowMaker()
	assert.ErrorContains(t, err, "unknown flow", "glow-image is a density only")

	// glow-b2b is the flow kind: two GLOWs back to back, same sizes.
	b2b := n
	b2b.Kind = "glow-b2b"
	fm, err := b2b.FlowMaker()
	require.NoError(t, err)
	f, err := fm(be, 64, newRNG(t))
	require.NoError(t, err)
	_, ok = f.(*model.GLOWBackToBack)
	require.True(t, ok, "a %T", f)
	_, ok = model.DataInitializerOf(f)
	assert.True(t, ok, "the back-to-back flow has a data-dependent initialisation")
	_, err = fm(be, 63, newRNG(t))
	assert.ErrorContains(t, err, "dimension 64, the data have 63")
	_, err = b2b.DensityMaker()
	assert.ErrorContains(t, err, "unknown density", "glow-b2b is a flow only")
}

// Bad image specs fail with the field named.
func TestGLOWImageSpecErrors(t *testing.T) {
	im := model.ImageShape{H: 8, W: 8, C: 1}
	for _, c := range []struct {
		s    model.ModelSpec
		dim  int
		want string
	}{
		{model.ModelSpec{Kind: "glow-image"}, 64, "ModelSpec.Image"},
		{model.ModelSpec{Kind: "glow-image", Image: model.ImageShape{H: 8, W: 0, C: 1}}, 0, "must be positive"},
		{model.ModelSpec{Kind: "glow-image", Image: im, Levels: 2}, 63, "H·W·C = 64 values per image, the data have 63"},
		{model.ModelSpec{Kind: "glow-image", Image: model.ImageShape{H: 12, W: 12, C: 1}, Levels: 3}, 144, "ModelSpec.Levels = 3 halves the images 3 times, so H and W of ModelSpec.Image = 12x12x1 must be divisible by 2^3 = 8"},
		{model.ModelSpec{Kind: "glow-image", Image: model.ImageShape{H: 8, W: 6, C: 1}, Levels: 2}, 48, "divisible by 2^2 = 4"},
		{model.ModelSpec{Kind: "glow-image", Image: im, Levels: 9}, 64, "too large"},
		{model.ModelSpec{Kind: "glow-image", Image: im, Levels: 2, Scale: "tanh"}, 64, `unknown scale "tanh"`},
	} {
		err := c.s.CheckImage(c.dim)
		assert.ErrorContains(t, err, c.want, "%+v on D = %d", c.s, c.dim)
		if c.dim == 0 || c.want == "ModelSpec.Image" || c.want == `unknown scale "tanh"` {
			_, err = c.s.DensityMaker()
			assert.Error(t, err, "DensityMaker(%+v)", c.s)
		}
	}
	assert.NoError(t, model.ModelSpec{Kind: "glow-image", Image: im, Levels: 3}.CheckImage(64))
	assert.NoError(t, model.ModelSpec{Kind: "realnvp"}.CheckImage(7), "non-image kinds pass")
}

func TestParseImageShape(t *testing.T) {
	for in, want := range map[string]model.ImageShape{"32x32x1": {32, 32, 1}, "8X4x3": {8, 4, 3}, "28×28×1": {28, 28, 1}} {
		got, err := model.ParseImageShape(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "32x32", "32x32x1x1", "32xx32x1", "x32x32x1", "32x32x0", "32x-1x1", "axbxc", "32x32x1 ", "32,32,1"} {
		_, err := model.ParseImageShape(in)
		assert.Error(t, err, "%q", in)
	}
	assert.Equal(t, "8x8x1", model.ImageShape{H: 8, W: 8, C: 1}.String())
}
