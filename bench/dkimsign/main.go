// Command dkimsign writes the DKIM-signed 4 KiB message and the DNS
// records of the sender-authentication cases of bench/loadbench.sh.
//
// It makes a fresh key (rsa-2048 or ed25519), signs one message with it,
// checks the signature against the record it prints, and writes the
// message with LF line ends: smtp-source -F sends each line with CRLF,
// which gives back exactly the signed bytes. The dnsmasq line goes to
// -dnsmasq (one quoted TXT chunk of at most 255 bytes each).
package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

func main() {
	algo := flag.String("algo", "rsa", "key algorithm: rsa (2048 bits) or ed25519")
	domain := flag.String("domain", "example.test", "signing domain (d=) and From: domain")
	selector := flag.String("selector", "bench", "selector (s=)")
	size := flag.Int("size", 4096, "approximate message size in bytes")
	msgOut := flag.String("msg", "", "file for the signed message (LF line ends)")
	dnsOut := flag.String("dnsmasq", "", "file for the dnsmasq txt-record line of the key")
	flag.Parse()
	if *msgOut == "" || *dnsOut == "" {
		fmt.Fprintln(os.Stderr, "usage: dkimsign -algo rsa|ed25519 -msg FILE -dnsmasq FILE")
		os.Exit(2)
	}
	if err := run(*algo, *domain, *selector, *size, *msgOut, *dnsOut); err != nil {
		fmt.Fprintln(os.Stderr, "dkimsign:", err)
		os.Exit(1)
	}
}

func run(algo, domain, selector string, size int, msgOut, dnsOut string) error {
	signer, record, err := newKey(algo)
	if err != nil {
		return err
	}
	var signed bytes.Buffer
	opts := &dkim.SignOptions{Domain: domain, Selector: selector, Signer: signer}
	if err := dkim.Sign(&signed, strings.NewReader(message(domain, size)), opts); err != nil {
		return err
	}
	if err := selfCheck(signed.Bytes(), selector+"._domainkey."+domain, record); err != nil {
		return err
	}
	lf := bytes.ReplaceAll(signed.Bytes(), []byte("\r\n"), []byte("\n"))
	if err := os.WriteFile(msgOut, lf, 0o644); err != nil {
		return err
	}
	line := fmt.Sprintf("txt-record=%s._domainkey.%s,%s\n", selector, domain, quotedChunks(record))
	return os.WriteFile(dnsOut, []byte(line), 0o644)
}

// newKey returns a signer and its DKIM key record.
func newKey(algo string) (crypto.Signer, string, error) {
	switch algo {
	case "rsa":
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, "", err
		}
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, "", err
		}
		return key, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case "ed25519":
		pub, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, "", err
		}
		return key, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), nil
	}
	return nil, "", fmt.Errorf("unknown -algo %q: use rsa or ed25519", algo)
}

// message is a plain-text message of about size bytes, lines of 78
// characters, none starting with a dot.
func message(domain string, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <bench@%s>\r\nTo: <foo@example.org>\r\nSubject: sender-auth load test\r\n", domain)
	b.WriteString("Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-Id: <dkimsign@example.test>\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%d%s\r\n", i%10, strings.Repeat("X", 77))
	}
	return b.String()
}

// selfCheck verifies the signature as a receiver would, against record.
func selfCheck(msg []byte, name, record string) error {
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(q string) ([]string, error) {
			if q != name {
				return nil, fmt.Errorf("unexpected lookup of %s", q)
			}
			return []string{record}, nil
		},
	})
	if err != nil {
		return err
	}
	if len(verifs) != 1 || verifs[0].Err != nil {
		return errors.New("the signed message does not verify")
	}
	return nil
}

// quotedChunks splits a TXT value into dnsmasq's quoted strings of at most
// 255 bytes each.
func quotedChunks(s string) string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, `"`+s[:255]+`"`)
		s = s[255:]
	}
	parts = append(parts, `"`+s+`"`)
	return strings.Join(parts, ",")
}
