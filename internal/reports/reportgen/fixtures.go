package reportgen

import (
	"bytes"
	"time"
)

// Fixture is one generated message and what it demonstrates.
type Fixture struct {
	Name    string
	Message []byte
}

// Fixtures are the reports in every delivery form, the other report kinds,
// and the broken reports the decoders must survive. Bombs are not among
// them: see GzipBomb, ZipBomb, NestedGzip, BillionLaughs.
func Fixtures() []Fixture {
	rfc9990 := DefaultAggregate(RFC9990).XML()
	rfc7489 := DefaultAggregate(RFC7489).XML()
	draft := DefaultAggregate(Draft).XML()
	return []Fixture{
		// Delivery forms.
		{"dmarc-zip-attachment", AggregateEmail("agg-rfc9990-0001", "application/zip", "receiver.example.com!example.org!1793491200!1793577599.zip",
			Zip(Entry{"receiver.example.com!example.org!1793491200!1793577599.xml", rfc9990}))},
		{"dmarc-gzip-attachment", AggregateEmail("agg-rfc7489-0001", "application/gzip", "receiver.example.com!example.org!1793491200!1793577599.xml.gz", Gzip(rfc7489))},
		{"dmarc-whole-message-zip", Message("Report Domain: example.org", "whole-zip@receiver.example.com", "",
			Attachment("application/zip", "report.zip", Zip(Entry{"report.xml", rfc7489})))},
		{"dmarc-gzip-trailing-bytes", AggregateEmail("agg-rfc7489-0001", "application/gzip", "report.xml.gz",
			append(Gzip(rfc7489), []byte("\r\n\r\n-- trailing bytes a reporter appended\r\n")...))},
		{"dmarc-gzip-in-gzip", AggregateEmail("agg-rfc9990-0001", "application/gzip", "report.xml.gz", NestedGzip(rfc9990, 2))},
		{"dmarc-octet-stream", AggregateEmail("agg-rfc9990-0001", "application/octet-stream", "report.bin", Zip(Entry{"report.xml", rfc9990}))},
		{"dmarc-text-xml", Message("Report Domain: example.org", "text-xml@receiver.example.com", "",
			Text("Aggregate report attached.\r\n"), Part{ContentType: "text/xml; charset=utf-8", Filename: "report.xml", Body: rfc7489})},
		{"dmarc-draft", AggregateEmail("agg-draft-0001", "application/gzip", "report.xml.gz", Gzip(draft))},
		{"tlsrpt-gzip", Message("Report Domain: example.org Submitter: Example Receiver", "tlsrpt-1@receiver.example.com", "tlsrpt",
			Text("This is an aggregate TLS report from Example Receiver.\r\n"),
			Attachment("application/tlsrpt+gzip", "receiver.example.com!example.org!1793491200!1793577599.json.gz", Gzip(TLSRPT())))},
		{"tlsrpt-json", Message("Report Domain: example.org", "tlsrpt-2@receiver.example.com", "",
			Attachment("application/tlsrpt+json", "report.json", TLSRPT()))},
		{"feedback-arf", Feedback()},
		{"dsn-bounce", DSN()},
		{"dsn-global", GlobalDSN()},

		// Broken reports.
		{"broken-truncated-xml", AggregateEmail("agg-truncated", "application/gzip", "report.xml.gz", Gzip(truncateAt(rfc7489, "<source_ip>198.51.100.23")))},
		{"broken-invalid-utf8", AggregateEmail("agg-utf8", "application/gzip", "report.xml.gz",
			Gzip(bytes.Replace(rfc7489, []byte("<comment>reportgen</comment>"), []byte("<comment>bad \xff\xfe bytes</comment>"), 1)))},
		{"broken-latin1", AggregateEmail("agg-latin1", "application/gzip", "report.xml.gz",
			Gzip(bytes.Replace(bytes.Replace(rfc7489, []byte(`encoding="UTF-8"`), []byte(`encoding="ISO-8859-1"`), 1),
				[]byte("<comment>reportgen</comment>"), []byte("<comment>d\xe9j\xe0 vu</comment>"), 1)))},
		{"broken-uppercase-pass", AggregateEmail("agg-upper", "application/gzip", "report.xml.gz",
			Gzip(bytes.ReplaceAll(rfc7489, []byte("<dkim>pass</dkim>"), []byte("<dkim>Pass</dkim>"))))},
		{"broken-empty-org-name", AggregateEmail("agg-empty-org", "application/gzip", "report.xml.gz", Gzip(with(RFC7489, func(a *Aggregate) { a.OrgName = "" })))},
		{"broken-missing-version", AggregateEmail("agg-no-version", "application/gzip", "report.xml.gz", Gzip(with(RFC9990, func(a *Aggregate) { a.NoVersion = true })))},
		{"broken-report-id-brackets", AggregateEmail("agg-brackets", "application/gzip", "report.xml.gz",
			Gzip(with(RFC7489, func(a *Aggregate) { a.ReportID = "&lt;agg-brackets@receiver.example.com&gt;" })))},
		{"broken-long-span", AggregateEmail("agg-long-span", "application/gzip", "report.xml.gz",
			Gzip(with(RFC7489, func(a *Aggregate) { a.End = a.Begin.Add(72 * time.Hour) })))},
	}
}

func with(schema string, change func(*Aggregate)) []byte {
	a := DefaultAggregate(schema)
	change(&a)
	return a.XML()
}

// truncateAt cuts data just after the first occurrence of marker.
func truncateAt(data []byte, marker string) []byte {
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		return data
	}
	return data[:i+len(marker)]
}
