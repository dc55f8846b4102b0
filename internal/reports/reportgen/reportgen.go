// Package reportgen writes test reports from the schemas (RFC 9990's XSD,
// RFC 7489 appendix C, RFC 8460 section 4, RFC 5965, RFC 3464) and wraps
// them in the delivery forms reporters use. Everything it writes uses
// documentation names and addresses (example.org, 192.0.2.0/24, ...); it is
// deterministic so golden records can be compared byte for byte.
//
// It is used by the tests of internal/reports, by cmd/mailreplay's tests and
// by the e2e suite; bombs are written at test time, never committed.
package reportgen

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"time"
)

// DMARC schema variants.
const (
	RFC9990 = "rfc9990"
	RFC7489 = "rfc7489"
	Draft   = "draft"
)

// Row is one <record> of an aggregate report.
type Row struct {
	SourceIP     string
	Count        int
	Disposition  string
	DKIM, SPF    string // policy_evaluated
	HeaderFrom   string
	EnvelopeFrom string
	DKIMDomain   string
	DKIMSelector string
	DKIMResult   string
	SPFDomain    string
	SPFResult    string
	Reason       string // override reason type, "" for none
}

// Aggregate describes one DMARC aggregate report.
type Aggregate struct {
	Schema    string
	OrgName   string
	ReportID  string
	Begin     time.Time
	End       time.Time
	Domain    string
	NoVersion bool
	Rows      []Row
}

// DefaultAggregate is a report with one passing and one failing row.
func DefaultAggregate(schema string) Aggregate {
	begin := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	return Aggregate{
		Schema:   schema,
		OrgName:  "receiver.example.com",
		ReportID: "agg-" + schema + "-0001",
		Begin:    begin,
		End:      begin.Add(24*time.Hour - time.Second),
		Domain:   "example.org",
		Rows: []Row{
			{SourceIP: "192.0.2.10", Count: 12, Disposition: "none", DKIM: "pass", SPF: "pass",
				HeaderFrom: "example.org", EnvelopeFrom: "example.org",
				DKIMDomain: "example.org", DKIMSelector: "s1", DKIMResult: "pass",
				SPFDomain: "example.org", SPFResult: "pass"},
			{SourceIP: "198.51.100.23", Count: 3, Disposition: "reject", DKIM: "fail", SPF: "fail",
				HeaderFrom: "example.org", EnvelopeFrom: "mailer.example.net",
				DKIMDomain: "mailer.example.net", DKIMSelector: "x", DKIMResult: "fail",
				SPFDomain: "mailer.example.net", SPFResult: "softfail", Reason: "local_policy"},
		},
	}
}

// XML writes the report in its schema.
func (a Aggregate) XML() []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	switch a.Schema {
	case RFC9990:
		b.WriteString(`<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">` + "\n")
		if !a.NoVersion {
			b.WriteString("  <version>1.0</version>\n")
		}
	case Draft:
		// The dmarc.org draft schema has no <version> (and names the
		// identifiers <identities>).
		b.WriteString("<feedback>\n")
	default:
		b.WriteString("<feedback>\n")
		if !a.NoVersion {
			b.WriteString("  <version>1.0</version>\n")
		}
	}
	fmt.Fprintf(&b, "  <report_metadata>\n    <org_name>%s</org_name>\n    <email>noreply-dmarc@%s</email>\n", a.OrgName, "receiver.example.com")
	fmt.Fprintf(&b, "    <report_id>%s</report_id>\n    <date_range>\n      <begin>%d</begin>\n      <end>%d</end>\n    </date_range>\n", a.ReportID, a.Begin.Unix(), a.End.Unix())
	if a.Schema == RFC9990 {
		b.WriteString("    <generator>reportgen 1.0</generator>\n")
	}
	b.WriteString("  </report_metadata>\n  <policy_published>\n")
	fmt.Fprintf(&b, "    <domain>%s</domain>\n    <adkim>r</adkim>\n    <aspf>r</aspf>\n    <p>reject</p>\n    <sp>quarantine</sp>\n", a.Domain)
	if a.Schema == RFC9990 {
		b.WriteString("    <np>reject</np>\n    <testing>n</testing>\n    <discovery_method>treewalk</discovery_method>\n")
	} else {
		b.WriteString("    <pct>100</pct>\n")
	}
	b.WriteString("  </policy_published>\n")
	for _, r := range a.Rows {
		b.WriteString(a.rowXML(r))
	}
	b.WriteString("</feedback>\n")
	return []byte(b.String())
}

func (a Aggregate) rowXML(r Row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  <record>\n    <row>\n      <source_ip>%s</source_ip>\n      <count>%d</count>\n", r.SourceIP, r.Count)
	fmt.Fprintf(&b, "      <policy_evaluated>\n        <disposition>%s</disposition>\n        <dkim>%s</dkim>\n        <spf>%s</spf>\n", r.Disposition, r.DKIM, r.SPF)
	if r.Reason != "" {
		fmt.Fprintf(&b, "        <reason>\n          <type>%s</type>\n          <comment>reportgen</comment>\n        </reason>\n", r.Reason)
	}
	b.WriteString("      </policy_evaluated>\n    </row>\n")
	ids := "identifiers"
	if a.Schema == Draft {
		ids = "identities"
	}
	fmt.Fprintf(&b, "    <%s>\n      <header_from>%s</header_from>\n", ids, r.HeaderFrom)
	if a.Schema == RFC9990 {
		fmt.Fprintf(&b, "      <envelope_from>%s</envelope_from>\n", r.EnvelopeFrom)
	}
	fmt.Fprintf(&b, "    </%s>\n    <auth_results>\n", ids)
	fmt.Fprintf(&b, "      <dkim>\n        <domain>%s</domain>\n        <selector>%s</selector>\n        <result>%s</result>\n      </dkim>\n", r.DKIMDomain, r.DKIMSelector, r.DKIMResult)
	fmt.Fprintf(&b, "      <spf>\n        <domain>%s</domain>\n        <scope>mfrom</scope>\n        <result>%s</result>\n      </spf>\n", r.SPFDomain, r.SPFResult)
	b.WriteString("    </auth_results>\n  </record>\n")
	return b.String()
}

// TLSRPT writes an RFC 8460 report with one sts policy (mx-host as a list,
// erratum 6241) and one tlsa policy (mx-host as a string) with failures.
func TLSRPT() []byte {
	return []byte(`{
  "organization-name": "Example Receiver",
  "date-range": {"start-datetime": "2026-11-01T00:00:00Z", "end-datetime": "2026-11-01T23:59:59Z"},
  "contact-info": "tlsrpt@receiver.example.com",
  "report-id": "2026-11-01T00:00:00Z_example.org",
  "policies": [
    {
      "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.example.org", "max_age: 86400"],
                 "policy-domain": "example.org", "mx-host": ["mx1.example.org"]},
      "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 0}
    },
    {
      "policy": {"policy-type": "tlsa", "policy-string": ["3 0 1 1F850A337E6DB9C609C522D136A475638CC43E1ED424F8EEC8513D747D1D085D"],
                 "policy-domain": "example.org", "mx-host": "mx2.example.org"},
      "summary": {"total-successful-session-count": 100, "total-failure-session-count": 3},
      "failure-details": [
        {"result-type": "certificate-expired", "sending-mta-ip": "203.0.113.5", "receiving-mx-hostname": "mx2.example.org",
         "receiving-mx-helo": "mx2.example.org", "receiving-ip": "192.0.2.25", "failed-session-count": 2,
         "additional-information": "https://receiver.example.com/tls", "failure-reason-code": "X509_V_ERR_CERT_HAS_EXPIRED"},
        {"result-type": "starttls-not-supported", "sending-mta-ip": "203.0.113.6", "receiving-ip": "192.0.2.26",
         "failed-session-count": 1}
      ]
    }
  ]
}
`)
}

// ---------------------------------------------------------------- compression

// Gzip compresses data in one member with a fixed header.
func Gzip(data []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(data)
	_ = zw.Close()
	return buf.Bytes()
}

// Zip stores data as the entries named, in order, with a fixed time.
func Zip(entries ...Entry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)})
		_, _ = w.Write(e.Data)
	}
	_ = zw.Close()
	return buf.Bytes()
}

// Entry is one zip entry.
type Entry struct {
	Name string
	Data []byte
}

// ---------------------------------------------------------------- MIME

// Part is one MIME part of a generated message.
type Part struct {
	ContentType string
	Filename    string
	Body        []byte // raw; base64-encoded when Base64
	Base64      bool
}

// Message writes a message with the given headers and parts: one part is
// the whole body, several make a multipart/mixed (or multipart/report when
// reportType is set).
func Message(subject, messageID, reportType string, parts ...Part) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: DMARC Reporter <noreply-dmarc@receiver.example.com>\r\nTo: dmarc@example.org\r\n")
	fmt.Fprintf(&b, "Subject: %s\r\nDate: Mon, 02 Nov 2026 01:02:03 +0000\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n", subject, messageID)
	if len(parts) == 1 {
		writePartHeader(&b, parts[0])
		b.WriteString("\r\n")
		writePartBody(&b, parts[0])
		return b.Bytes()
	}
	ct := "multipart/mixed"
	if reportType != "" {
		ct = fmt.Sprintf("multipart/report; report-type=%s", reportType)
	}
	const boundary = "=_reportgen_boundary"
	fmt.Fprintf(&b, "Content-Type: %s; boundary=\"%s\"\r\n\r\nThis is a multi-part message in MIME format.\r\n", ct, boundary)
	for _, p := range parts {
		fmt.Fprintf(&b, "\r\n--%s\r\n", boundary)
		writePartHeader(&b, p)
		b.WriteString("\r\n")
		writePartBody(&b, p)
	}
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes()
}

func writePartHeader(b *bytes.Buffer, p Part) {
	if p.Filename != "" {
		fmt.Fprintf(b, "Content-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\n", p.ContentType, p.Filename, p.Filename)
	} else {
		fmt.Fprintf(b, "Content-Type: %s\r\n", p.ContentType)
	}
	if p.Base64 {
		b.WriteString("Content-Transfer-Encoding: base64\r\n")
	}
}

func writePartBody(b *bytes.Buffer, p Part) {
	if !p.Base64 {
		b.Write(bytes.ReplaceAll(bytes.ReplaceAll(p.Body, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
		return
	}
	enc := base64.StdEncoding.EncodeToString(p.Body)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
}

// Text is a plain text part.
func Text(s string) Part { return Part{ContentType: "text/plain; charset=utf-8", Body: []byte(s)} }

// Attachment is a base64 attachment.
func Attachment(contentType, filename string, data []byte) Part {
	return Part{ContentType: contentType, Filename: filename, Body: data, Base64: true}
}

// AggregateEmail wraps a payload as a reporter sends it: a text part and
// the attachment.
func AggregateEmail(id, contentType, filename string, payload []byte) []byte {
	return Message("Report Domain: example.org Submitter: receiver.example.com Report-ID: "+id, id+"@receiver.example.com", "",
		Text("This is an aggregate report from receiver.example.com.\r\n"),
		Attachment(contentType, filename, payload))
}

// ---------------------------------------------------------------- ARF, DSN

// Feedback writes an ARF DMARC failure report (RFC 5965, RFC 6591).
func Feedback() []byte {
	report := "Feedback-Type: auth-failure\r\nUser-Agent: reportgen/1.0\r\nVersion: 1\r\n" +
		"Original-Mail-From: <bounces@mailer.example.net>\r\nOriginal-Rcpt-To: <user@receiver.example.com>\r\n" +
		"Arrival-Date: Sun, 01 Nov 2026 10:00:00 +0000\r\nReporting-MTA: dns; mx.receiver.example.com\r\n" +
		"Source-IP: 198.51.100.23\r\nAuthentication-Results: mx.receiver.example.com; dmarc=fail header.from=example.org\r\n" +
		"Auth-Failure: dmarc\r\nDKIM-Domain: mailer.example.net\r\nDKIM-Selector: x\r\nReported-Domain: example.org\r\n"
	original := "From: <ceo@example.org>\r\nTo: <user@receiver.example.com>\r\nSubject: Urgent wire transfer\r\n" +
		"Date: Sun, 01 Nov 2026 09:59:58 +0000\r\nMessage-ID: <spoof-1@mailer.example.net>\r\n"
	return Message("FW: Urgent wire transfer", "arf-1@receiver.example.com", "feedback-report",
		Text("This is an authentication failure report for an email message received from IP 198.51.100.23.\r\n"),
		Part{ContentType: "message/feedback-report", Body: []byte(report)},
		Part{ContentType: "text/rfc822-headers", Body: []byte(original)})
}

// DSN writes a bounce (RFC 3464) with one failed and one delayed recipient.
func DSN() []byte {
	status := "Reporting-MTA: dns; mx.example.org\r\nArrival-Date: Mon, 02 Nov 2026 08:00:00 +0000\r\n\r\n" +
		"Final-Recipient: rfc822; nobody@example.com\r\nOriginal-Recipient: rfc822; nobody@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Remote-MTA: dns; mx.example.com\r\nDiagnostic-Code: smtp; 550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n\r\n" +
		"Final-Recipient: rfc822; slow@example.net\r\nAction: delayed\r\nStatus: 4.4.1\r\n" +
		"Diagnostic-Code: smtp; 421 4.4.1 connection timed out\r\nWill-Retry-Until: Thu, 05 Nov 2026 08:00:00 +0000\r\n"
	returned := "From: <alice@example.org>\r\nTo: <nobody@example.com>, <slow@example.net>\r\nSubject: Minutes\r\nMessage-ID: <minutes-7@example.org>\r\n"
	return bounce("bounce-1@mx.example.org", "delivery-status", "text/rfc822-headers", status, returned)
}

// bounce wraps a delivery status and the returned header as a
// multipart/report of reportType.
func bounce(messageID, reportType, headersType, status, returned string) []byte {
	return Message("Undelivered Mail Returned to Sender", messageID, reportType,
		Text("Your message could not be delivered.\r\n"),
		Part{ContentType: "message/" + reportType, Body: []byte(status)},
		Part{ContentType: headersType, Body: []byte(returned)})
}

// GlobalDSN writes an internationalized bounce (RFC 6533): UTF-8 address
// types and a message/global-headers part.
func GlobalDSN() []byte {
	status := "Reporting-MTA: dns; mx.example.org\r\nArrival-Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n\r\n" +
		"Final-Recipient: utf-8; josé@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Remote-MTA: dns; mx.example.com\r\nDiagnostic-Code: smtp; 550 5.1.1 unknown user\r\n"
	returned := "From: <renée@example.org>\r\nTo: <josé@example.com>\r\nSubject: Résumé\r\nMessage-ID: <cv-1@example.org>\r\n"
	return bounce("bounce-2@mx.example.org", "global-delivery-status", "message/global-headers", status, returned)
}

// ---------------------------------------------------------------- bombs

// Bomb prefixes: a report that opens a row and never closes it, so that
// all that follows is inside one element.
const (
	bombXMLPrefix = "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>bomb.example.com</org_name><report_id>bomb</report_id></report_metadata><record><row><source_ip>"
)

// GzipBomb is one gzip member that expands to a report of size bytes, all
// but the first few white space (about 1 MiB of gzip per GiB).
func GzipBomb(size int64) []byte {
	stream, crc, n := deflateRepeat([]byte(bombXMLPrefix), size)
	var buf bytes.Buffer
	buf.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff})
	buf.Write(stream)
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], crc)
	binary.LittleEndian.PutUint32(trailer[4:], uint32(n))
	buf.Write(trailer[:])
	return buf.Bytes()
}

// ZipBomb is one zip entry report.xml that expands to a report of size
// bytes.
func ZipBomb(size int64) []byte {
	stream, crc, n := deflateRepeat([]byte(bombXMLPrefix), size)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateRaw(&zip.FileHeader{Name: "report.xml", Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(len(stream)), UncompressedSize64: uint64(n)})
	_, _ = w.Write(stream)
	_ = zw.Close()
	return buf.Bytes()
}

// deflateRepeat writes a deflate stream of prefix followed by spaces, size
// bytes in all, without compressing a GiB: once the window holds only
// spaces, the compressed form of each further 1 MiB of spaces is the same
// run of blocks, so it is compressed twice (to check that) and repeated.
func deflateRepeat(prefix []byte, size int64) (stream []byte, crc uint32, n int64) {
	const chunkSize = 1 << 20
	chunk := bytes.Repeat([]byte(" "), chunkSize)
	var out, buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	flush := func(data []byte) []byte {
		buf.Reset()
		_, _ = fw.Write(data)
		_ = fw.Flush()
		crc = crc32.Update(crc, crc32.IEEETable, data)
		n += int64(len(data))
		return bytes.Clone(buf.Bytes())
	}
	out.Write(flush(prefix))
	var repeat []byte
	for n+chunkSize <= size {
		if repeat != nil {
			out.Write(repeat)
			crc = crc32.Update(crc, crc32.IEEETable, chunk)
			n += chunkSize
			continue
		}
		a := flush(chunk)
		out.Write(a)
		if n+chunkSize <= size {
			b := flush(chunk)
			out.Write(b)
			if bytes.Equal(a, b) {
				repeat = b
			}
		}
	}
	buf.Reset()
	_, _ = fw.Write(chunk[:size-n])
	crc = crc32.Update(crc, crc32.IEEETable, chunk[:size-n])
	n = size
	_ = fw.Close()
	out.Write(buf.Bytes())
	return out.Bytes(), crc, n
}

// NestedGzip wraps data in layers gzip members.
func NestedGzip(data []byte, layers int) []byte {
	for i := 0; i < layers; i++ {
		data = Gzip(data)
	}
	return data
}

// BillionLaughs is the classic entity expansion attack.
func BillionLaughs() []byte {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [\n <!ENTITY lol \"lol\">\n")
	prev := "lol"
	for i := 1; i <= 9; i++ {
		name := fmt.Sprintf("lol%d", i)
		fmt.Fprintf(&b, " <!ENTITY %s \"%s\">\n", name, strings.Repeat("&"+prev+";", 10))
		prev = name
	}
	b.WriteString("]>\n<feedback><report_metadata><org_name>&lol9;</org_name></report_metadata></feedback>\n")
	return []byte(b.String())
}

// ExternalEntity references a local file through an external entity.
func ExternalEntity() []byte {
	return []byte("<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n" +
		"<feedback><report_metadata><org_name>&xxe;</org_name><report_id>xxe</report_id></report_metadata></feedback>\n")
}
