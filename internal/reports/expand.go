package reports

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Payload formats recognized by their first bytes.
const (
	formatUnknown = ""
	formatGzip    = "gzip"
	formatZip     = "zip"
	formatXML     = "xml"
	formatJSON    = "json"
)

// limitError is a limit hit surfacing as a read error in a decoder; the
// decoder keeps what it read before and the caller counts the limit.
type limitError struct {
	limit string
	msg   string
}

func (e *limitError) Error() string { return e.msg }

// asLimit returns the limit behind err, if any.
func asLimit(err error) (*limitError, bool) {
	var le *limitError
	if errors.As(err, &le) {
		return le, true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &limitError{limit: LimitTime, msg: "time limit reached"}, true
	}
	return nil, false
}

// sniff decides the format from the first bytes, whatever the declared
// type or file name say: reporters mislabel their attachments.
func sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return formatGzip
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return formatZip
	}
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	head = bytes.TrimLeft(head, " \t\r\n")
	switch {
	case bytes.HasPrefix(head, []byte("<")):
		return formatXML
	case bytes.HasPrefix(head, []byte("{")):
		return formatJSON
	}
	return formatUnknown
}

// sniffWindow is how far sniff looks past leading white space.
const sniffWindow = 512

// expander unpacks one report payload layer by layer, within the limits.
type expander struct {
	ctx    context.Context
	limits Limits
	layers []string // what was unpacked, outermost first ("gzip", "zip:report.xml")
}

// open returns the innermost payload and its format. An error is a limit
// hit (*limitError) or a broken container; formatUnknown with a nil error
// means the payload is not a report, and the reader may then be nil.
func (e *expander) open(payload []byte) (io.Reader, string, error) {
	br := bufio.NewReaderSize(bytes.NewReader(payload), 32<<10)
	return e.openLayer(br, payload, 0)
}

// openLayer looks at the first bytes of r. whole is r's content when it is
// already in memory (the outermost layer), so a zip needs no second copy.
func (e *expander) openLayer(r *bufio.Reader, whole []byte, depth int) (io.Reader, string, error) {
	head, _ := r.Peek(sniffWindow)
	format := sniff(head)
	switch format {
	case formatGzip, formatZip:
		if depth >= e.limits.MaxNesting {
			return nil, format, &limitError{LimitNesting, fmt.Sprintf("%s inside %d compression layers exceeds the nesting limit of %d", format, depth, e.limits.MaxNesting)}
		}
	default:
		return r, format, nil
	}
	if format == formatGzip {
		g, err := newGzipMembers(r)
		if err != nil {
			return nil, format, fmt.Errorf("gzip: %w", err)
		}
		e.layers = append(e.layers, formatGzip)
		inner := e.bounded(g)
		return e.openLayer(bufio.NewReaderSize(inner, 32<<10), nil, depth+1)
	}
	if whole == nil {
		// A zip inside another layer: it needs random access, so it is
		// read into memory, within the compressed-bytes limit.
		var err error
		whole, err = readAtMost(r, e.limits.MaxCompressedBytes, LimitCompressedBytes, "inner zip")
		if err != nil {
			return nil, format, err
		}
	}
	entry, name, err := e.openZip(whole)
	if err != nil || entry == nil {
		return nil, formatUnknown, err
	}
	e.layers = append(e.layers, "zip:"+name)
	inner := e.bounded(entry)
	return e.openLayer(bufio.NewReaderSize(inner, 32<<10), nil, depth+1)
}

// openZip opens the first .xml or .json entry. The number of entries is
// taken from the central directory before any entry is opened. A zip with
// no such entry is not a report: (nil, "", nil).
func (e *expander) openZip(data []byte) (io.Reader, string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, "", fmt.Errorf("zip: %w", err)
	}
	var first *zip.File
	for _, f := range zr.File {
		if isReportFileName(f.Name) {
			first = f
			break
		}
	}
	if first == nil {
		return nil, "", nil
	}
	if len(zr.File) > e.limits.MaxZipEntries {
		return nil, "", &limitError{LimitZipEntries, fmt.Sprintf("zip has %d entries, more than the limit of %d", len(zr.File), e.limits.MaxZipEntries)}
	}
	if first.UncompressedSize64 > uint64(e.limits.MaxDecompressedBytes) {
		// The declared size is only a hint (it can lie either way), but
		// when it is already over the limit there is no point starting.
		return nil, "", &limitError{LimitDecompressedBytes, fmt.Sprintf("zip entry %q declares %d bytes, more than the decompressed limit of %d", first.Name, first.UncompressedSize64, e.limits.MaxDecompressedBytes)}
	}
	rc, err := first.Open()
	if err != nil {
		return nil, "", fmt.Errorf("zip entry %q: %w", first.Name, err)
	}
	return rc, path.Base(first.Name), nil
}

// isReportFileName: only these entries of a zip are read.
func isReportFileName(name string) bool {
	n := strings.ToLower(name)
	for _, ext := range []string{".xml", ".json", ".xml.gz", ".json.gz"} {
		if strings.HasSuffix(n, ext) {
			return true
		}
	}
	return false
}

// bounded caps a decompressor's output at the decompressed-bytes limit and
// stops it when the time is up.
func (e *expander) bounded(r io.Reader) io.Reader {
	return &boundedReader{r: r, ctx: e.ctx, left: e.limits.MaxDecompressedBytes, limit: e.limits.MaxDecompressedBytes}
}

type boundedReader struct {
	r     io.Reader
	ctx   context.Context
	left  int64
	limit int64
	err   error
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if err := b.ctx.Err(); err != nil {
		b.err = err
		return 0, err
	}
	if b.left <= 0 {
		// One byte more tells a payload of exactly the limit from a
		// longer one.
		var one [1]byte
		if n, _ := io.ReadFull(b.r, one[:]); n == 0 {
			b.err = io.EOF
			return 0, io.EOF
		}
		b.err = &limitError{LimitDecompressedBytes, fmt.Sprintf("decompressed payload exceeds the limit of %d bytes", b.limit)}
		return 0, b.err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil {
		b.err = err
	}
	return n, err
}

// ctxReader stops reading when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readAtMost reads r whole when it has at most max bytes.
func readAtMost(r io.Reader, max int64, limit, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return data, err
	}
	if int64(len(data)) > max {
		return nil, &limitError{limit, fmt.Sprintf("%s exceeds the limit of %d bytes", what, max)}
	}
	return data, nil
}

// gzipMembers reads the members of a gzip stream one after the other and
// stops quietly at bytes that are not another member: some reporters append
// garbage after the member.
type gzipMembers struct {
	br *bufio.Reader
	z  *gzip.Reader
}

func newGzipMembers(br *bufio.Reader) (*gzipMembers, error) {
	z, err := gzip.NewReader(br)
	if err != nil {
		return nil, err
	}
	z.Multistream(false)
	return &gzipMembers{br: br, z: z}, nil
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.z.Read(p)
		if err != io.EOF {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
		next, _ := g.br.Peek(2)
		if !bytes.Equal(next, []byte{0x1f, 0x8b}) {
			return 0, io.EOF // end of stream, or trailing bytes
		}
		if err := g.z.Reset(g.br); err != nil {
			return 0, fmt.Errorf("gzip member: %w", err)
		}
		g.z.Multistream(false)
	}
}
