package main

import (
	"errors"
	"strings"

	"go.opentelemetry.io/collector/confmap"

	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"
)

// checkReceiverConfig builds the smtp receiver's Config from a device the way
// the collector will (the factory's defaults, then the device's fields
// decoded by the receiver's own Unmarshal) and reports what the receiver's
// Validate refuses, at the line of the field. So the converter accepts what
// the collector accepts, and the two cannot drift apart.
//
// Left out: values given as ${...} references (unknown until the collector
// expands them; a check that mentions one is skipped), fields already
// reported as malformed, and the files the config names (certificates,
// credentials), which live on the collector's machine, not here.
func checkReceiverConfig(el *errorList, d *device) {
	raw := receiverMap(d)
	unknown := uncheckedPaths(d)
	cfg := smtpreceiver.NewFactory().CreateDefaultConfig().(*smtpreceiver.Config)
	if err := confmap.NewFromStringMap(raw).Unmarshal(cfg); err != nil {
		reportReceiverErrors(el, d, unknown, decodeMessages(err))
		return
	}
	reportReceiverErrors(el, d, unknown, validateMessages(cfg.Validate()))
}

// receiverMap is the receiver block of a device as the collector will read
// it, without the references.
func receiverMap(d *device) map[string]any {
	m := map[string]any{"name": d.name, "status": d.status}
	if d.idSet {
		m["id"] = d.id
	}
	if d.hasDesc {
		m["description"] = d.description
	}
	if d.tags != nil {
		m["tags"] = anyList(d.tags)
	}
	addFields(m, d.props)
	return m
}

func addFields(m map[string]any, fields []field) {
	for _, f := range fields {
		if f.val.isRef() {
			continue
		}
		switch f.spec.kind {
		case kindMapping:
			sub := map[string]any{}
			addFields(sub, f.nested)
			m[f.spec.name] = sub
		case kindInt:
			m[f.spec.name] = f.val.i
		case kindNumber:
			m[f.spec.name] = f.val.f
		case kindBool:
			m[f.spec.name] = f.val.b
		case kindStringList:
			m[f.spec.name] = anyList(f.val.l)
		default:
			m[f.spec.name] = f.val.s
		}
	}
}

func anyList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

// uncheckedPaths are the properties whose value the receiver's checks do not
// see: references, and values given but already refused by the parser.
func uncheckedPaths(d *device) []string {
	valid := map[string]bool{}
	var walk func(prefix string, fields []field)
	walk = func(prefix string, fields []field) {
		for _, f := range fields {
			if !f.val.isRef() {
				valid[prefix+f.spec.name] = true
			}
			walk(prefix+f.spec.name+".", f.nested)
		}
	}
	walk("", d.props)
	var out []string
	for p := range d.given {
		if !valid[p] {
			out = append(out, p)
		}
	}
	return out
}

// validateMessages lists the messages of Validate's joined errors, without
// the file errors.
func validateMessages(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *smtpreceiver.FileError
		if errors.As(err, &fe) {
			return
		}
		out = append(out, err.Error())
	}
	walk(err)
	return out
}

// decodeMessages lists the lines of a decoding error without the decoder's
// own framing.
func decodeMessages(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(line, "'' "))
		if line == "" || strings.HasPrefix(line, "decoding failed") {
			continue
		}
		out = append(out, line)
	}
	return out
}

// reportReceiverErrors adds the receiver's messages ("field: what is wrong")
// to the device's errors, at the line of the field.
func reportReceiverErrors(el *errorList, d *device, unknown []string, msgs []string) {
next:
	for _, msg := range msgs {
		for _, u := range unknown {
			if strings.Contains(msg, u) {
				continue next
			}
		}
		field, _, _ := strings.Cut(msg, ": ")
		if strings.ContainsAny(field, " ") {
			field = ""
		}
		path, _, _ := strings.Cut(field, "[")
		line := d.fieldLine(path)
		switch {
		case identityFields[path]:
			el.addAt(line, "%s: %s", d.label(), msg)
		default:
			el.addAt(line, "%s: properties.%s", d.label(), msg)
		}
	}
}

// fieldLine is the line of a property ("port", "tls.cert_name"); for one
// not given, the line of the block it belongs in.
func (d *device) fieldLine(path string) int {
	line := d.line
	if d.propsNode != nil {
		line = d.propsNode.Line
	}
	fields := d.props
	for part := range strings.SplitSeq(path, ".") {
		found := false
		for _, f := range fields {
			if f.spec.name == part {
				line, fields, found = f.val.line, f.nested, true
				break
			}
		}
		if !found {
			break
		}
	}
	return line
}
