//go:build cuda

package main

// With -tags cuda the command links the GPU backend: --backend cuda
// (float32 only). Such a binary needs an NVIDIA GPU and driver to start.
import _ "github.com/lrmf-go/lrmf/native/cuda"
