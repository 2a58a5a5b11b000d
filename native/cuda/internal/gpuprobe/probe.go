//go:build cuda

// Package gpuprobe checks, before gorgonia.org/cu's package init runs, that
// an NVIDIA driver and at least one CUDA device are present.
//
// gorgonia.org/cu calls cuInit in its init and ends the process with
// os.Exit(1) and a generic message when that fails, so any binary that links
// it — a test binary included — dies before TestMain on a machine without a
// GPU. Go initialises packages in import-path order among those whose
// imports are initialised, and this package's imports (os, strings,
// runtime/debug, runtime/cgo) are a subset of cu's, so when package
// native/cuda imports both, this init always runs first
// ("github.com/lrmf-go/…" sorts before "gorgonia.org/cu"; GODEBUG=inittrace=1
// shows the order). On failure it prints one line to stderr and exits:
//
//   - test binaries (os.Args[0] ends in ".test", an argument starts with
//     "-test.", or the build info names a ".test" main package) print
//     "no CUDA device: skipping the cuda tests (<reason>)" and exit 0;
//   - other binaries print "lrmf was built with -tags cuda and needs an
//     NVIDIA GPU and driver: <reason>" and exit 1.
//
// The probe loads libcuda.so.1 with dlopen and calls cuInit and
// cuDeviceGetCount. The binary itself needs libcuda.so.1 at load time
// (gorgonia.org/cu links -lcuda); without that file the dynamic loader
// stops the process before any Go code runs.
package gpuprobe

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>

typedef int (*lrmf_cuInit_t)(unsigned int);
typedef int (*lrmf_cuDeviceGetCount_t)(int *);
typedef int (*lrmf_cuDriverGetVersion_t)(int *);
typedef int (*lrmf_cuGetErrorName_t)(int, const char **);
typedef int (*lrmf_cuGetErrorString_t)(int, const char **);

// lrmf_probe returns 0 when cuInit succeeds and there is a device; else it
// writes the reason into msg.
static int lrmf_probe(char *msg, int len, int *count, int *version) {
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(msg, len, "cannot load the NVIDIA driver library: %s", e ? e : "libcuda.so.1 not found");
		return -1;
	}
	lrmf_cuInit_t init = (lrmf_cuInit_t)dlsym(h, "cuInit");
	lrmf_cuDeviceGetCount_t getCount = (lrmf_cuDeviceGetCount_t)dlsym(h, "cuDeviceGetCount");
	lrmf_cuDriverGetVersion_t getVersion = (lrmf_cuDriverGetVersion_t)dlsym(h, "cuDriverGetVersion");
	lrmf_cuGetErrorName_t errName = (lrmf_cuGetErrorName_t)dlsym(h, "cuGetErrorName");
	lrmf_cuGetErrorString_t errString = (lrmf_cuGetErrorString_t)dlsym(h, "cuGetErrorString");
	if (!init || !getCount) {
		snprintf(msg, len, "libcuda.so.1 lacks cuInit or cuDeviceGetCount");
		return -1;
	}
	if (getVersion) getVersion(version);
	const char *what = "cuInit";
	int rc = init(0);
	if (rc == 0) {
		what = "cuDeviceGetCount";
		rc = getCount(count);
	}
	if (rc != 0) {
		const char *name = NULL, *str = NULL;
		if (errName) errName(rc, &name);
		if (errString) errString(rc, &str);
		snprintf(msg, len, "%s: %s (%d): %s", what, name ? name : "CUDA error", rc, str ? str : "no description");
		return -1;
	}
	if (*count < 1) {
		snprintf(msg, len, "the driver reports no CUDA device");
		return -1;
	}
	return 0;
}
*/
import "C"

import (
	"os"
	"runtime/debug"
	"strings"
	"unsafe"
)

var (
	devices       int
	driverVersion int
)

// Devices returns the number of CUDA devices cuDeviceGetCount reported.
func Devices() int { return devices }

// DriverVersion returns the CUDA version the driver supports (e.g. 13000
// for 13.0), or 0 when unknown.
func DriverVersion() int { return driverVersion }

func init() {
	var msg [512]C.char
	var count, version C.int
	rc := C.lrmf_probe(&msg[0], C.int(len(msg)), &count, &version)
	devices, driverVersion = int(count), int(version)
	if rc == 0 {
		return
	}
	reason := C.GoString((*C.char)(unsafe.Pointer(&msg[0])))
	if isTestBinary() {
		os.Stderr.WriteString("no CUDA device: skipping the cuda tests (" + reason + ")\n")
		os.Exit(0)
	}
	os.Stderr.WriteString("lrmf was built with -tags cuda and needs an NVIDIA GPU and driver: " + reason + "\n")
	os.Exit(1)
}

// isTestBinary reports whether this process is a `go test` binary. The
// testing package's flags are not registered yet during package init, so
// the name, the arguments and the build info are what there is to look at.
func isTestBinary() bool {
	if strings.HasSuffix(os.Args[0], ".test") {
		return true
	}
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.") || strings.HasPrefix(a, "--test.") {
			return true
		}
	}
	bi, ok := debug.ReadBuildInfo()
	return ok && strings.HasSuffix(bi.Path, ".test")
}
