package model

import "github.com/lrmf-go/lrmf/native"

// Param is a named trainable tensor and its gradient, of the same shape
// (rows×cols). Grad holds ∂L/∂Value after the owning model's Backward.
type Param struct {
	Name  string         // unique within its model, e.g. "block0.W1"; checkpoints key on it
	Value *native.Tensor // θ, rows×cols
	Grad  *native.Tensor // ∂L/∂θ, rows×cols
}

func newParam(be native.Backend, name string, rows, cols int) *Param {
	return &Param{Name: name, Value: be.New(rows, cols), Grad: be.New(rows, cols)}
}

// CopyParams sets every dst[i].Value to src[i].Value. Both lists must come
// from the same maker with the same dimension (same length and shapes); it
// panics otherwise, a programmer error.
func CopyParams(be native.Backend, dst, src []*Param) {
	if len(dst) != len(src) {
		panic("model: CopyParams: parameter lists differ")
	}
	for i := range dst {
		be.Copy(dst[i].Value, src[i].Value)
	}
}
