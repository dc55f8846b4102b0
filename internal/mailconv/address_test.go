package mailconv

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// simpleAddressList is a shortcut past net/mail: wherever it accepts a
// list, net/mail must accept it too and give the same names and addresses.
func TestSimpleAddressListMatchesNetMail(t *testing.T) {
	accepted := []string{
		"a@example.org",
		"Alice Example <alice@example.org>",
		"Alice Example<alice@example.org>",
		"<alice@example.org>",
		`"Doe, John" <j@example.org>, b@example.org`,
		`"" <j@example.org>`,
		"J. R. Doe <j.r.doe@mail.example.org>",
		"a@example.org , b@example.org",
		"ops+alerts@example.org",
		"x?!#$%&'*+-/^_`{|}~=@example.org",
	}
	refused := []string{
		"=?UTF-8?Q?J=C3=B6rg?= <j@example.org>",
		"root@host (Cron Daemon)",
		"undisclosed-recipients:;",
		"a@example.org; b@example.org",
		"a@example.org,",
		",a@example.org",
		"a@example.org,,b@example.org",
		"Alice  Example <a@example.org>",
		"a..b@example.org",
		".a@example.org",
		"a@example.org.",
		"a @example.org",
		"< a@example.org>",
		"a@[192.0.2.1]",
		`"a\"b" <a@example.org>`,
		"Jörg <j@example.org>",
		"Alice\t<a@example.org>",
		"MAILER-DAEMON",
		"",
	}
	for _, raw := range accepted {
		got, ok := simpleAddressList(raw)
		require.True(t, ok, raw)
		assert.Equal(t, netMailList(t, raw), got, raw)
	}
	for _, raw := range refused {
		_, ok := simpleAddressList(raw)
		assert.False(t, ok, raw)
	}

	// Lists put together from pieces that are valid, invalid or almost
	// valid in many ways.
	pieces := []string{
		"a", "b.c", "x@example.org", "a.@b", "@", "<", ">", `"`, " ", "  ", ",", ".", "..",
		"Doe", `"Doe, J"`, "<a@b>", "(c)", "=?", "?=", `\`, ":", ";", "[", "]", "é", "\t", "=",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	compared := 0
	for range 100000 {
		var b strings.Builder
		for n := 1 + rng.IntN(7); n > 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		raw := strings.TrimSpace(b.String())
		got, ok := simpleAddressList(raw)
		if !ok {
			continue
		}
		compared++
		list, err := addressParser.ParseList(raw)
		require.NoError(t, err, "%q accepted by the shortcut, refused by net/mail", raw)
		want := make([]addr, 0, len(list))
		for _, a := range list {
			want = append(want, addr{name: a.Name, address: a.Address})
		}
		require.Equal(t, want, got, raw)
	}
	assert.Greater(t, compared, 1000, "the generator must reach the shortcut")
}

func netMailList(t *testing.T, raw string) []addr {
	t.Helper()
	list, err := addressParser.ParseList(raw)
	require.NoError(t, err, raw)
	out := make([]addr, 0, len(list))
	for _, a := range list {
		out = append(out, addr{name: a.Name, address: a.Address})
	}
	return out
}
