package reports

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/smtpreceiver/smtpreceiver/internal/reports/reportgen"
)

// Two delivery-status parts of one bounce share reporter and id (the
// email's Message-ID) and both number their rows from 0: each row must
// still get its own uid, and the same email must give the same uids again.
func TestRowUIDsAreUniqueAndDeterministic(t *testing.T) {
	status := "Reporting-MTA: dns; mx.example.org\r\n\r\n" +
		"Final-Recipient: rfc822; a@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
	msg := reportgen.Message("Undelivered Mail Returned to Sender", "twice@mx.example.org", "delivery-status",
		reportgen.Text("Your message could not be delivered.\r\n"),
		reportgen.Part{ContentType: "message/delivery-status", Body: []byte(status)},
		reportgen.Part{ContentType: "message/delivery-status", Body: []byte(status)})

	uids := func() []string {
		out := plog.NewLogRecordSlice()
		Extract(context.Background(), msg, testEmail, Options{}, out)
		var got []string
		for i := 0; i < out.Len(); i++ {
			v, ok := out.At(i).Attributes().Get("log.record.uid")
			if !ok {
				t.Fatalf("row %d has no log.record.uid", i)
			}
			got = append(got, v.Str())
		}
		return got
	}
	first := uids()
	if len(first) != 2 {
		t.Fatalf("got %d rows, want one per delivery-status part (2)", len(first))
	}
	if first[0] == first[1] {
		t.Errorf("both rows have uid %s", first[0])
	}
	again := uids()
	for i := range first {
		if again[i] != first[i] {
			t.Errorf("row %d: uid %s, then %s for the same email", i, first[i], again[i])
		}
	}
}
