package embed

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/testseed"
)

func TestSharedFitsOnTheUnion(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 9))
	a := randomData(r, 80, 6)
	b := randomData(r, 50, 6)
	la := make([]int, 80)
	for i := range la {
		la[i] = i % 10
	}
	pair, err := Shared(Set{a, la}, Set{b, nil}, 3)
	require.NoError(t, err)

	union := mat.NewDense(130, 6, nil)
	union.Slice(0, 80, 0, 6).(*mat.Dense).Copy(a)
	union.Slice(80, 130, 0, 6).(*mat.Dense).Copy(b)
	pc, err := Fit(union, 3)
	require.NoError(t, err)
	za, _ := pc.Transform(a)
	zb, _ := pc.Transform(b)
	assert.True(t, mat.Equal(za, pair.A.X))
	assert.True(t, mat.Equal(zb, pair.B.X))
	assert.Equal(t, la, pair.A.Labels)
	assert.Nil(t, pair.B.Labels)
	pair.A.Labels[0] = 99
	assert.Equal(t, 0, la[0], "labels are copied")
}

func TestSharedErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 10))
	a := randomData(r, 8, 4)
	b := randomData(r, 6, 4)
	cases := []struct {
		a, b Set
		d    int
		msg  string
	}{
		{Set{a, make([]int, 7)}, Set{b, nil}, 2, "A has 7 labels for 8 rows"},
		{Set{a, nil}, Set{b, make([]int, 9)}, 2, "B has 9 labels for 6 rows"},
		{Set{a, nil}, Set{randomData(r, 6, 5), nil}, 2, "A has 4 columns and B 5"},
		{Set{nil, nil}, Set{b, nil}, 2, "A is empty"},
		{Set{a, nil}, Set{&mat.Dense{}, nil}, 2, "B is empty"},
		{Set{a, nil}, Set{b, nil}, 5, "D = 5 exceeds the 4 input columns (fitted on the union of A and B)"},
	}
	for _, tc := range cases {
		_, err := Shared(tc.a, tc.b, tc.d)
		assert.ErrorContains(t, err, tc.msg)
	}
}
