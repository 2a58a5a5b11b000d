package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf/data"
)

func TestDataDigits(t *testing.T) {
	dir := t.TempDir()
	mnistDir, err := data.MNISTDir()
	require.NoError(t, err)
	test, err := data.LoadMNIST(mnistDir, data.MNISTTest)
	require.NoError(t, err)

	// MNIST as it is, with labels: the first 20 test images.
	out := filepath.Join(dir, "m.csv")
	code, stdout, stderr := lrmfRun("data", "mnist", "--split", "test", "--n", "20", "--labels", "--out", out)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "wrote "+out+": MNIST test, 20×784, grey levels in [0, 1], digit in the last column")
	x, err := data.ReadFile(out)
	require.NoError(t, err)
	r, c := x.Dims()
	require.Equal(t, [2]int{20, 785}, [2]int{r, c})
	assert.True(t, mat.Equal(test.Head(20).Matrix(), x.Slice(0, 20, 0, 784)))
	for i := range 20 {
		assert.Equal(t, float64(test.Labels[i]), x.At(i, 784))
	}

	// USPS-style to .npy.
	out = filepath.Join(dir, "u.npy")
	code, stdout, stderr = lrmfRun("data", "usps-style", "--n", "30", "--out", out)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "USPS-style (from MNIST test), 30×256")
	x, err = data.ReadFile(out)
	require.NoError(t, err)
	want, _ := data.USPSStyle(test.Head(30))
	assert.True(t, mat.Equal(want, x))

	// MNIST training images resized to 16×16, with --mnist-dir.
	out = filepath.Join(dir, "m16.csv")
	code, stdout, stderr = lrmfRun("data", "mnist", "--side", "16", "--n", "5", "--mnist-dir", mnistDir, "--out", out)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "MNIST train resized to 16×16, 5×256")
	x, err = data.ReadFile(out)
	require.NoError(t, err)
	train, err := data.LoadMNIST(mnistDir, data.MNISTTrain)
	require.NoError(t, err)
	assert.True(t, mat.Equal(train.Head(5).Resized(16), x))

	code, stdout, _ = lrmfRun("data", "usps-style", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "USPS-style stand-in")
}

func TestDataDigitsErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.csv")
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"mnist"}, 2, "--out FILE is required"},
		{[]string{"mnist", "--out", filepath.Join(dir, "x.npy"), "--labels"}, 2, "--labels is only supported for CSV"},
		{[]string{"usps-style", "--out", out, "--n", "10001"}, 2, "--n = 10001: MNIST's test split has 10000 images"},
		{[]string{"mnist", "--out", out, "--split", "validation"}, 2, `--split "validation"`},
		{[]string{"mnist", "--out", out, "--side", "0"}, 2, "--side = 0"},
		{[]string{"usps-style", "--out", out, "--side", "16"}, 2, "flag provided but not defined: -side"},
		{[]string{"mnist", "--out", out, "--mnist-dir", dir}, 1, filepath.Join(dir, "train-images-idx3-ubyte.gz")},
		{[]string{"mnist", "--n", "3", "--out", filepath.Join(dir, "no", "x.csv")}, 1, filepath.Join(dir, "no", "x.csv")},
	}
	for _, tc := range cases {
		code, _, stderr := lrmfRun(append([]string{"data"}, tc.args...)...)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.msg, "%v", tc.args)
	}
	t.Setenv(data.MNISTDirEnv, dir)
	code, _, stderr := lrmfRun("data", "mnist", "--out", out)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, data.MNISTDirEnv+"="+dir)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing written")
}
