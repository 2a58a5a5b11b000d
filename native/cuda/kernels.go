//go:build cuda

package cuda

import _ "embed" // the kernel image

// fatbin is csrc/cuda/lrmf_kernels.cu compiled by
// `bash csrc/cuda/build_fatbin.sh native/cuda/lrmf_kernels.fatbin`
// (generated, not committed): SASS for sm_80 and sm_90 and compute_90 PTX,
// which the driver JIT-compiles for newer GPUs.
//
//go:embed lrmf_kernels.fatbin
var fatbin string

// kernel indexes the functions of the fatbin. Every kernel is
// `extern "C" __global__ lrmf_k_<op>` over float32 data and takes only
// 8-byte parameters (int64 sizes, double scalars, device pointers), which is
// what gorgonia.org/cu's Function.Launch copies for each argument.
type kernel int

const (
	kFill kernel = iota
	kAxpy
	kDot
	kSum
	kBiasAdd
	kBiasGrad
	kReLUFwd
	kReLUBwd
	kTanhFwd
	kTanhBwd
	kBiasReLUFwd
	kBiasReLUBwdDz
	kGaussLogp
	kGaussBwdDx
	kGaussBwdParams
	kLogdetAcc
	kAffineFwd
	kAffineInv
	kAdam
	kGatherRows
	kCopyCols
	kAddCols
	kCouplingFwd
	kCouplingInv
	kCouplingBwd
	kGemm
	kODEFwd
	kODEVJP
	kODEGsum
	kODERK4
	kODERK4Bwd
	kODEDopri5
	kODEDopri5Bwd
	numKernels
)

var kernelNames = [numKernels]string{
	kFill:           "lrmf_k_fill",
	kAxpy:           "lrmf_k_axpy",
	kDot:            "lrmf_k_dot",
	kSum:            "lrmf_k_sum",
	kBiasAdd:        "lrmf_k_bias_add",
	kBiasGrad:       "lrmf_k_bias_grad",
	kReLUFwd:        "lrmf_k_relu_fwd",
	kReLUBwd:        "lrmf_k_relu_bwd",
	kTanhFwd:        "lrmf_k_tanh_fwd",
	kTanhBwd:        "lrmf_k_tanh_bwd",
	kBiasReLUFwd:    "lrmf_k_bias_relu_fwd",
	kBiasReLUBwdDz:  "lrmf_k_bias_relu_bwd_dz",
	kGaussLogp:      "lrmf_k_gauss_logp",
	kGaussBwdDx:     "lrmf_k_gauss_bwd_dx",
	kGaussBwdParams: "lrmf_k_gauss_bwd_params",
	kLogdetAcc:      "lrmf_k_logdet_acc",
	kAffineFwd:      "lrmf_k_affine_fwd",
	kAffineInv:      "lrmf_k_affine_inv",
	kAdam:           "lrmf_k_adam",
	kGatherRows:     "lrmf_k_gather_rows",
	kCopyCols:       "lrmf_k_copy_cols",
	kAddCols:        "lrmf_k_add_cols",
	kCouplingFwd:    "lrmf_k_coupling_fwd",
	kCouplingInv:    "lrmf_k_coupling_inv",
	kCouplingBwd:    "lrmf_k_coupling_bwd",
	kGemm:           "lrmf_k_gemm",
	kODEFwd:         "lrmf_k_ode_fwd",
	kODEVJP:         "lrmf_k_ode_vjp",
	kODEGsum:        "lrmf_k_ode_gsum",
	kODERK4:         "lrmf_k_ode_rk4",
	kODERK4Bwd:      "lrmf_k_ode_rk4_bwd",
	kODEDopri5:      "lrmf_k_ode_dopri5",
	kODEDopri5Bwd:   "lrmf_k_ode_dopri5_bwd",
}

// Launch shapes of the kernel contract (csrc/cuda/lrmf_kernels.h).
const (
	blockR    = 256   // R(units): grid-stride loops over units
	maxGridR  = 65535 // R's grid cap
	blockC    = 256   // C(outputs): one block per output
	blockS    = 1024  // S: one block (deterministic reductions)
	tileGemm  = 16    // G: (16, 16) blocks over C
	maxGridYZ = 65535 // CUDA's limit on gridDim.y
	blockO    = 128   // O(n, np): one thread per row, 8·np bytes of shared memory
)
