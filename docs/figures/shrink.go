//go:build ignore

// Shrink re-encodes a PNG written by lrmf/plot with at most 256 colours, to
// keep the README's figures small:
//
//	go run docs/figures/shrink.go IN.png OUT.png
//
// The palette is 96 evenly spaced colours of the density heat maps' ramp
// (white, yellow, red, black; lrmf/plot's densityPalette) and the 160 most
// frequent other colours of the image; each pixel takes the nearest.
package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"sort"

	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go run docs/figures/shrink.go IN.png OUT.png")
		os.Exit(2)
	}
	if err := shrink(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func shrink(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	var pal color.Palette
	seen := map[color.RGBA]bool{}
	add := func(c color.Color) {
		rgba := color.RGBAModel.Convert(c).(color.RGBA)
		if !seen[rgba] {
			seen[rgba] = true
			pal = append(pal, rgba)
		}
	}
	for _, c := range palette.Reverse(moreland.BlackBody()).Palette(96).Colors() {
		add(c)
	}
	count := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			count[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	type kv struct {
		c color.RGBA
		n int
	}
	var kvs []kv
	for c, n := range count {
		kvs = append(kvs, kv{c, n})
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].n != kvs[j].n {
			return kvs[i].n > kvs[j].n
		}
		ci, cj := kvs[i].c, kvs[j].c
		return uint32(ci.R)<<16|uint32(ci.G)<<8|uint32(ci.B) < uint32(cj.R)<<16|uint32(cj.G)<<8|uint32(cj.B)
	})
	for _, e := range kvs {
		if len(pal) == 256 {
			break
		}
		add(e.c)
	}
	p := image.NewPaletted(b, pal)
	draw.Draw(p, b, img, b.Min, draw.Src)
	o, err := os.Create(out)
	if err != nil {
		return err
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(o, p); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}
