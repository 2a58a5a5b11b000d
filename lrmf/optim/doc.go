// Package optim holds what trains a model's parameters once their
// gradients are known: the Adam optimiser, the learning-rate schedules and
// gradient-norm clipping. It works on model.Param lists on any
// native.Backend and allocates nothing per step.
package optim
