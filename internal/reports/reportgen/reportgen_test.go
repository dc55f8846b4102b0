package reportgen

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

// The bombs must be what they claim: valid archives of exactly the size
// asked for (checked at 8 MiB, where the repeated blocks are already in
// use), and about 1 MiB for a GiB.
func TestBombsExpandToTheirSize(t *testing.T) {
	const size = 8<<20 + 123
	gz, err := gzip.NewReader(bytes.NewReader(GzipBomb(size)))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, gz); err != nil || n != size {
		t.Fatalf("gzip bomb: %d bytes, %v; want %d", n, err, size)
	}
	zb := ZipBomb(size)
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, rc); err != nil || n != size {
		t.Fatalf("zip bomb: %d bytes, %v; want %d", n, err, size)
	}
	for name, b := range map[string][]byte{"gzip": GzipBomb(1 << 30), "zip": ZipBomb(1 << 30)} {
		if len(b) > 2<<20 {
			t.Errorf("%s bomb of 1 GiB is %d bytes, want about 1 MiB", name, len(b))
		}
	}
}
