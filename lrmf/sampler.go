package lrmf

import "math/rand/v2"

// sampler draws mini-batches of row indices: each epoch is a fresh
// permutation, consumed batch by batch (a short tail is skipped).
type sampler struct {
	perm  []int32
	pos   int
	batch int
	rng   *rand.Rand
}

func newSampler(n, batch int, rng *rand.Rand) *sampler {
	s := &sampler{perm: make([]int32, n), batch: batch, rng: rng}
	for i := range s.perm {
		s.perm[i] = int32(i)
	}
	s.pos = n // shuffle on first use
	return s
}

// next returns the next batch of row indices, valid until the next call.
func (s *sampler) next() []int32 {
	if s.pos+s.batch > len(s.perm) {
		s.rng.Shuffle(len(s.perm), func(i, j int) { s.perm[i], s.perm[j] = s.perm[j], s.perm[i] })
		s.pos = 0
	}
	out := s.perm[s.pos : s.pos+s.batch]
	s.pos += s.batch
	return out
}
