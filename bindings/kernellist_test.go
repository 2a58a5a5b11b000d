package bindings

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lrmf-go/lrmf/bindings/internal/kernellist"
)

// TestKernelList checks everything made from or matched against the one
// kernel list, csrc/include/lrmf_kernel_list.def: a kernel added to (or
// removed from) the C sources, the CUDA contract or the list alone fails
// here, as does a generated file that was not regenerated.
func TestKernelList(t *testing.T) {
	const root = ".."
	l, err := kernellist.Read(root)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("generated files up to date", func(t *testing.T) {
		files, err := kernellist.Generate(root)
		if err != nil {
			t.Fatal(err)
		}
		for path, want := range files {
			got, err := os.ReadFile(filepath.Join(root, path))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is stale: run go generate ./bindings", path)
			}
		}
	})

	t.Run("lrmf.h prototypes", func(t *testing.T) {
		hdr, err := kernellist.HeaderKernels(root)
		if err != nil {
			t.Fatal(err)
		}
		sameSet(t, "lrmf.h (lrmf_<name>_##S prototypes)", hdr, "the list's LRMF_CPU_KERNEL entries", l.CPU)
	})

	t.Run("C functions called from Go", func(t *testing.T) {
		calls, err := kernellist.GoCalls(".")
		if err != nil {
			t.Fatal(err)
		}
		inst := map[string]bool{}
		for _, n := range l.CPU {
			for _, s := range kernellist.Suffixes {
				inst["lrmf_"+n+"_"+s] = true
			}
		}
		for fn := range calls {
			if !inst[fn] {
				t.Errorf("package bindings calls C.%s, which is no instance of a LRMF_CPU_KERNEL entry (so it gets no cgo noescape/nocallback)", fn)
			}
		}
	})

	var names []string
	want := map[string]string{}
	for _, k := range l.CUDA {
		names = append(names, k.Name)
		want[k.Name] = k.Params
	}
	for _, file := range []string{"csrc/cuda/lrmf_kernels.h", "csrc/cuda/lrmf_kernels.cu"} {
		t.Run(file, func(t *testing.T) {
			decls, err := kernellist.CUDADecls(root, file)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for n, sig := range decls {
				got = append(got, n)
				if w, ok := want[n]; ok && w != sig {
					t.Errorf("lrmf_k_%s: %s has parameters %q, the list %q (u: int64_t or pointer, f: double, x: not 8 bytes)", n, file, sig, w)
				}
			}
			sameSet(t, file+" (LRMF_K lrmf_k_* kernels)", got, "the list's LRMF_CUDA_KERNEL entries", names)
		})
	}
}

// sameSet reports the names in one of a and b but not the other.
func sameSet(t *testing.T, aName string, a []string, bName string, b []string) {
	t.Helper()
	for _, n := range a {
		if !slices.Contains(b, n) {
			t.Errorf("%s in %s but not in %s", n, aName, bName)
		}
	}
	for _, n := range b {
		if !slices.Contains(a, n) {
			t.Errorf("%s in %s but not in %s", n, bName, aName)
		}
	}
}
