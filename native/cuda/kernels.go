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

// The constants (kFill, ..., numKernels) and kernelNames are generated
// from csrc/include/lrmf_kernel_list.def into kernels_gen.go by
// go generate ./bindings.

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
