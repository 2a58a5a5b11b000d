package main

import (
	"fmt"
	"io"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/lrmf-go/lrmf/lrmf"
	"github.com/lrmf-go/lrmf/lrmf/plot"
)

// alignPanels are the figures lrmf align writes for 2-D data.
var alignPanels = []plot.Panel{plot.PanelScatter, plot.PanelLRMF, plot.PanelDisplacement}

// writeAlignFigures writes scatter, lrmf and displacement .png/.svg into
// dir for the alignment res of a to b when on is set and the data are 2-D
// (otherwise it does nothing), and names the files on stdout. src is the
// data's description from loadData; a built-in pair's name titles the
// panels.
func writeAlignFigures(on bool, dir, src string, a, b *mat.Dense, res *lrmf.Result, stdout io.Writer) error {
	if !on {
		return nil
	}
	if _, d := a.Dims(); d != 2 {
		return nil
	}
	title, _ := strings.CutPrefix(src, "builtin:")
	if title == src {
		title = ""
	}
	paths, err := plot.WriteResult(dir, "", title, a, b, res, alignPanels...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", strings.Join(paths, ", "))
	return nil
}
