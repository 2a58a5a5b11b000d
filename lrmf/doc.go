// Package lrmf aligns two datasets with Log-Likelihood Ratio Minimizing
// Flows (Usman, Sud, Dufour, Saenko, NeurIPS 2020) and reports whether the
// alignment succeeded.
//
// Given datasets A and B in R^D, a density family M = {P(x; θ)} and a
// normalizing flow T(x; φ), LRMF minimises jointly over φ and θS
//
//	LRMF(φ, θS) = c_AB − ℓ(T(A; φ); θS) − ℓ(B; θS) − mean_a ln|det ∇T(a; φ)|,
//
// where ℓ(X; θ) is the per-sample mean log-likelihood (nats) and
// c_AB = ℓ(A; θA*) + ℓ(B; θB*) uses models fitted to A and to B alone. The
// objective is bounded below by 0 and reaches 0 only when T(A) and B are
// indistinguishable to M, so its final value on the full data is a
// convergence indicator: Align reports success when |LRMF| < Threshold.
//
// This package holds the algorithm: Align (Algorithm 1: fits, identity
// pre-fit, joint phase, verdict), ShiftTest, their configuration and the one
// table of defaults (DefaultConfig, DefaultShiftConfig), results,
// checkpoints (resume and file format) and evaluation. The densities and
// flows M and T are in package model, Adam and the learning-rate schedules
// in package optim; imports run lrmf → optim → model → native.
//
// The zero Config is the run lrmf align makes with no flags: a Real NVP
// flow and a Real NVP density (4 blocks of 2 × 32 ReLU), 20000 fit and
// joint steps, batch 256, lr 3e-3 with a cosine schedule, float32 on the
// default backend, seed 1 (see DefaultConfig).
package lrmf
