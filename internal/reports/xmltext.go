package reports

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
)

// xmlEncodingDecl finds the encoding of an XML declaration.
var xmlEncodingDecl = regexp.MustCompile(`^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']`)

// utf8XML returns r as UTF-8: a non-UTF-8 encoding declared in the XML
// declaration is converted here (the decoder's CharsetReader then passes
// the text through), and what is still not valid UTF-8, or not allowed in
// XML, is replaced by U+FFFD and counted.
func utf8XML(r io.Reader) (*salvager, error) {
	br := bufio.NewReaderSize(r, 4096)
	head, _ := br.Peek(1024)
	var src io.Reader = br
	if m := xmlEncodingDecl.FindSubmatch(trimBOM(head)); m != nil {
		label := strings.ToLower(string(m[1]))
		if label != "utf-8" && label != "utf8" && label != "us-ascii" && label != "ascii" {
			cr, err := charset.NewReaderLabel(label, br)
			if err != nil {
				return nil, fmt.Errorf("XML encoding %q: %w", label, err)
			}
			src = cr
		}
	}
	return &salvager{r: src}, nil
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		return b[3:]
	}
	return b
}

// passThroughCharset is the decoder's CharsetReader: utf8XML has already
// converted the text.
func passThroughCharset(_ string, input io.Reader) (io.Reader, error) { return input, nil }

// salvager copies UTF-8 text, replacing invalid sequences and characters
// XML forbids with U+FFFD so that one bad byte does not lose a report.
type salvager struct {
	r        io.Reader
	pending  []byte // raw bytes not yet converted (an incomplete rune)
	out      []byte // converted bytes not yet returned
	err      error
	replaced int
}

func (s *salvager) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		var chunk [16 << 10]byte
		n, err := s.r.Read(chunk[:])
		s.pending = append(s.pending, chunk[:n]...)
		if err != nil {
			s.err = err
		}
		s.convert(s.err != nil)
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// convert moves complete runes from pending to out; at the end of input an
// incomplete rune is replaced as well.
func (s *salvager) convert(atEnd bool) {
	in := s.pending
	i := 0
	for i < len(in) {
		if in[i] < utf8.RuneSelf {
			if c := in[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				s.out = append(s.out, "\uFFFD"...)
				s.replaced++
			} else {
				s.out = append(s.out, c)
			}
			i++
			continue
		}
		if !atEnd && !utf8.FullRune(in[i:]) {
			break
		}
		r, size := utf8.DecodeRune(in[i:])
		if r == utf8.RuneError && size <= 1 || r == 0xFFFE || r == 0xFFFF {
			s.out = append(s.out, "\uFFFD"...)
			s.replaced++
		} else {
			s.out = append(s.out, in[i:i+size]...)
		}
		i += size
	}
	s.pending = append(s.pending[:0], in[i:]...)
}
