package smtpreceiver

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingReader counts the reads that reach the socket's place.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// TestPooledReader: a transfer is read buffer_size bytes at a time through
// a pooled buffer that goes back as soon as it is empty; commands are read
// straight into the caller's buffer, so a connection between commands
// holds no buffer.
func TestPooledReader(t *testing.T) {
	const size = 9000
	body := strings.Repeat("0123456789", 2000) // 20000 bytes
	tests := []struct {
		name      string
		src       string
		bulk      bool
		readSize  int
		wantReads int // reads that reach the source
	}{
		// 25 bytes in reads of 8: four reads and the EOF, none buffered.
		{"a command goes straight to the caller", "EHLO client.example.com\r\n", false, 8, 5},
		// 9000 + 9000 + 2000 and the EOF, handed on in pieces of 4096.
		{"a transfer fills the buffer", body, true, 4096, 4},
		{"a read of buffer_size or more bypasses the buffer", body, true, size, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &countingReader{r: strings.NewReader(tt.src)}
			rd := pooledReader{src: src, pool: newReadBuffers(size)}
			var got bytes.Buffer
			p := make([]byte, tt.readSize)
			for {
				n, err := rd.Read(p, tt.bulk)
				got.Write(p[:n])
				if rd.buffered() == 0 {
					assert.Nil(t, rd.buf, "an empty reader holds no buffer")
				}
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
			}
			assert.Equal(t, tt.src, got.String())
			assert.Equal(t, tt.wantReads, src.reads)
			assert.Nil(t, rd.buf)
		})
	}
}

// What a transfer read beyond its end (a pipelined command) is served to
// the command reads that follow, and the read's error only once the buffer
// is empty.
func TestPooledReaderLeftover(t *testing.T) {
	src := iotest.DataErrReader(strings.NewReader("end of body\r\n.\r\nQUIT\r\n"))
	rd := pooledReader{src: src, pool: newReadBuffers(512)}
	p := make([]byte, 16)
	n, err := rd.Read(p, true)
	require.NoError(t, err)
	assert.Equal(t, "end of body\r\n.\r\n", string(p[:n]))
	require.NotNil(t, rd.buf)

	n, err = rd.Read(p, false)
	assert.Equal(t, "QUIT\r\n", string(p[:n]))
	assert.Equal(t, io.EOF, err, "the error comes with the last buffered bytes")
	assert.Nil(t, rd.buf)
}
