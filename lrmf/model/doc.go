// Package model holds the densities and flows that LRMF trains, each with
// an explicit backward pass (a vector-Jacobian product; there is no tape):
//
//   - densities P(x; θ) on R^D: Gaussian (full covariance), GMM (a
//     K-component mixture), FlowDensity (a flow pulled back from N(0, I));
//   - flows T: R^D → R^D with a tractable log-determinant: Affine
//     (T(x) = AᵀA·x + b), RealNVP (affine coupling layers; for D > 2 each
//     block in its own fixed column order), Glow (ActNorm, W = P·L·U and a
//     coupling per step), FFJORD (a continuous normalizing flow);
//   - ModelSpec, which names a built-in model and its size in a form that
//     survives JSON and rebuilds the same model;
//   - Transform and MeanLogProb, chunked evaluation on a whole dataset.
//
// Every model is built from native.Backend operations on n×D batches
// (native.Tensor, row-major), so the same model runs on the CPU, the
// reference backend or a GPU. Package lrmf trains them (Align, ShiftTest);
// this package does not import it.
package model
