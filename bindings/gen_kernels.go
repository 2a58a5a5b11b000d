//go:build ignore

// gen_kernels writes the Go glue made from the kernel list
// (csrc/include/lrmf_kernel_list.def): bindings/kernels_gen.go (cgo
// directives) and native/cuda/kernels_gen.go (the CUDA kernel table). Run
// it with go generate ./bindings after editing the list or the C calls of
// package bindings.
package main

import (
	"log"
	"os"
	"path/filepath"

	"github.com/lrmf-go/lrmf/bindings/internal/kernellist"
)

func main() {
	files, err := kernellist.Generate("..")
	if err != nil {
		log.Fatal(err)
	}
	for path, src := range files {
		if err := os.WriteFile(filepath.Join("..", path), src, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
