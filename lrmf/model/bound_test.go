package model_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/lrmf-go/lrmf/lrmf/model"
)

// The exp scale's default bound keeps the total log-scale range of a
// coordinate (B per block, about half the blocks) at that of 4 blocks:
// 4 up to 4 blocks, 16/blocks beyond; an explicit bound is kept, and the
// normalised spec (what checkpoints record) carries the resolved value.
func TestDefaultBoundByDepth(t *testing.T) {
	for blocks, want := range map[int]float64{1: 4, 2: 4, 4: 4, 5: 3.2, 8: 2, 16: 1} {
		assert.Equal(t, want, model.DefaultBound(blocks), "blocks %d", blocks)
	}
	for _, c := range []struct {
		spec model.ModelSpec
		want float64
	}{
		{model.ModelSpec{Kind: "realnvp"}, 4},
		{model.ModelSpec{Kind: "realnvp", Blocks: 8}, 2},
		{model.ModelSpec{Kind: "realnvp", Blocks: 8, Bound: 3}, 3},
		{model.ModelSpec{Kind: "glow", Blocks: 8}, 2},
		{model.ModelSpec{Kind: "glow"}, 4},
	} {
		n := c.spec.Normalized()
		assert.Equal(t, c.want, n.Bound, "%+v", c.spec)
		assert.Equal(t, n, n.Normalized(), "idempotent: %+v", c.spec)
	}
}
