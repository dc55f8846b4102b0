package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// kind is the type a device field must have.
type kind int

const (
	kindInt kind = iota
	kindString
	kindBool
	kindStringList
	kindTLS
	kindMap // a nested block with its own fieldSpec.sub
)

func (k kind) String() string {
	switch k {
	case kindInt:
		return "a whole number"
	case kindString:
		return "a string"
	case kindBool:
		return "true or false"
	case kindStringList:
		return "a list of strings"
	case kindTLS:
		return "a mapping (status, cert_name, key_name)"
	case kindMap:
		return "a mapping"
	}
	return "?"
}

// fieldSpec describes one key of the device's properties (or of its tls
// block). Fields are written to the collector config in this order.
type fieldSpec struct {
	name string
	kind kind
	// extension marks a receiver option the product's device does not have;
	// the converter accepts and passes it through.
	extension bool
	// sub are the keys of a kindMap block.
	sub []fieldSpec
}

// propertySpecs are the keys of properties: the device schema first, then
// the receiver's extensions (receiver/smtpreceiver/config.go).
var propertySpecs = []fieldSpec{
	{name: "address", kind: kindString},
	{name: "port", kind: kindInt},
	{name: "username", kind: kindString},
	{name: "password", kind: kindString},
	{name: "timeout", kind: kindInt},
	{name: "reuse", kind: kindBool},
	{name: "workers", kind: kindInt},
	{name: "buffer_size", kind: kindInt},
	{name: "stats_frequency", kind: kindInt},
	{name: "tls", kind: kindTLS},

	{name: "max_message_bytes", kind: kindInt, extension: true},
	{name: "max_recipients", kind: kindInt, extension: true},
	{name: "max_line_length", kind: kindInt, extension: true},
	{name: "data_timeout", kind: kindInt, extension: true},
	{name: "max_connections", kind: kindInt, extension: true},
	{name: "max_connections_per_client", kind: kindInt, extension: true},
	{name: "max_auth_failures", kind: kindInt, extension: true},
	{name: "trusted_networks", kind: kindStringList, extension: true},
	{name: "domain", kind: kindString, extension: true},
	{name: "service_root", kind: kindString, extension: true},
	{name: "require_tls", kind: kindBool, extension: true},
	{name: "credentials_file", kind: kindString, extension: true},
	{name: "socket_receive_buffer", kind: kindInt, extension: true},
	{name: "body_format", kind: kindString, extension: true},
	{name: "html_to_text", kind: kindBool, extension: true},
	{name: "max_body_bytes", kind: kindInt, extension: true},
	{name: "max_header_bytes", kind: kindInt, extension: true},
	{name: "max_mime_depth", kind: kindInt, extension: true},
	{name: "max_mime_parts", kind: kindInt, extension: true},
	{name: "include_attachment_content", kind: kindBool, extension: true},
	{name: "max_attachment_content_bytes", kind: kindInt, extension: true},
	{name: "sender_auth", kind: kindMap, extension: true, sub: senderAuthSpecs},
}

// senderAuthSpecs are the keys of properties.sender_auth.
var senderAuthSpecs = []fieldSpec{
	{name: "enabled", kind: kindBool},
	{name: "checks", kind: kindStringList},
	{name: "timeout", kind: kindInt},
	{name: "max_dkim_signatures", kind: kindInt},
	{name: "dmarc_discovery", kind: kindString},
	{name: "skip_trusted_networks", kind: kindBool},
	{name: "skip_authenticated", kind: kindBool},
	{name: "authserv_id", kind: kindString},
	{name: "trust_upstream", kind: kindStringList},
	{name: "dns", kind: kindMap, sub: []fieldSpec{
		{name: "server", kind: kindString},
		{name: "timeout", kind: kindInt},
		{name: "cache_entries", kind: kindInt},
	}},
}

// tlsSpecs are the keys of properties.tls.
var tlsSpecs = []fieldSpec{
	{name: "status", kind: kindBool},
	{name: "cert_name", kind: kindString},
	{name: "key_name", kind: kindString},

	{name: "implicit", kind: kindBool, extension: true},
	{name: "min_version", kind: kindString, extension: true},
	{name: "reload_interval", kind: kindInt, extension: true},
	{name: "client_ca_file", kind: kindString, extension: true},
}

// deviceKeys are the top-level keys of a device.
var deviceKeys = []string{"id", "name", "description", "type", "tags", "pipelines", "status", "properties"}

// value is a checked scalar of a device file.
type value struct {
	line int
	// ref holds a whole-value collector reference such as ${env:X}; it is
	// passed through unchecked and the other fields are zero.
	ref string
	i   int64
	s   string
	b   bool
	l   []string
}

func (v value) isRef() bool { return v.ref != "" }

// field is one property of a device, checked against its spec.
type field struct {
	spec fieldSpec
	val  value
	tls  []field // for kindTLS and kindMap
}

// pipelineRef is one entry of a device's pipelines.
type pipelineRef struct {
	name string
	line int
}

// device is one entry of the device file.
type device struct {
	index int // 1-based position in the file
	line  int

	id          int64
	idSet       bool
	name        string
	description string
	hasDesc     bool
	typ         string
	tags        []string
	pipelines   []pipelineRef
	status      bool
	statusLine  int

	// properties in spec order.
	props     []field
	propsLine int
}

// prop returns the property with the given name.
func (d *device) prop(name string) (field, bool) {
	for _, f := range d.props {
		if f.spec.name == name {
			return f, true
		}
	}
	return field{}, false
}

// label names the device in messages.
func (d *device) label() string {
	var parts []string
	if d.name != "" {
		parts = append(parts, strconv.Quote(d.name))
	} else {
		parts = append(parts, fmt.Sprintf("#%d", d.index))
	}
	if d.idSet {
		parts = append(parts, fmt.Sprintf("(id %d)", d.id))
	}
	return "device " + strings.Join(parts, " ")
}

// lineError is an error at a line of the device file.
type lineError struct {
	line, col int
	msg       string
}

// errorList collects the problems of a device file.
type errorList struct {
	file string
	errs []lineError
}

func (l *errorList) add(n *yaml.Node, format string, args ...any) {
	e := lineError{msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.line, e.col = n.Line, n.Column
	}
	l.errs = append(l.errs, e)
}

func (l *errorList) addAt(line int, format string, args ...any) {
	l.errs = append(l.errs, lineError{line: line, msg: fmt.Sprintf(format, args...)})
}

func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		if l.errs[i].line != l.errs[j].line {
			return l.errs[i].line < l.errs[j].line
		}
		return l.errs[i].col < l.errs[j].col
	})
	errs := make([]error, 0, len(l.errs))
	for _, e := range l.errs {
		switch {
		case e.line > 0 && e.col > 0:
			errs = append(errs, fmt.Errorf("%s:%d:%d: %s", l.file, e.line, e.col, e.msg))
		case e.line > 0:
			errs = append(errs, fmt.Errorf("%s:%d: %s", l.file, e.line, e.msg))
		default:
			errs = append(errs, fmt.Errorf("%s: %s", l.file, e.msg))
		}
	}
	return errors.Join(errs...)
}

// parseDevices reads a device file: a YAML list of devices in the product's
// schema. file names the input in messages.
func parseDevices(data []byte, file string) ([]*device, error) {
	el := &errorList{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the file is empty; expected a list of devices (- id: 1 ...)", file)
		}
		return nil, fmt.Errorf("%s: malformed YAML: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%s:%d: more than one YAML document (---); put all devices in one list", file, extra.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: malformed YAML: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.AliasNode {
		root = root.Alias
	}
	if root.Kind != yaml.SequenceNode {
		el.add(root, "expected a list of devices (- id: 1 ...), got %s", describe(root))
		return nil, el.err()
	}
	if len(root.Content) == 0 {
		el.add(root, "the list of devices is empty")
		return nil, el.err()
	}
	devices := make([]*device, 0, len(root.Content))
	for i, n := range root.Content {
		if d := parseDevice(el, i+1, n); d != nil {
			devices = append(devices, d)
		}
	}
	checkDuplicates(el, devices)
	return devices, el.err()
}

func parseDevice(el *errorList, index int, n *yaml.Node) *device {
	n = resolveAlias(n)
	d := &device{index: index, line: n.Line, status: true}
	if n.Kind != yaml.MappingNode {
		el.add(n, "device #%d: expected a mapping (id, name, type, properties, ...), got %s", index, describe(n))
		return nil
	}
	// Identity first, so that later messages can name the device.
	keys := map[string]*yaml.Node{}
	keyNodes := map[string]*yaml.Node{}
	var unknown []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if _, dup := keys[k.Value]; dup {
			el.add(k, "device #%d: field %s appears twice", index, k.Value)
			continue
		}
		if !contains(deviceKeys, k.Value) {
			unknown = append(unknown, k)
			continue
		}
		keys[k.Value] = v
		keyNodes[k.Value] = k
	}
	if v, ok := keys["name"]; ok && !isNull(v) {
		if s, ok := scalarString(el, fmt.Sprintf("device #%d: name", index), v); ok {
			d.name = s
			if strings.TrimSpace(s) == "" {
				el.add(v, "device #%d: name must not be empty", index)
			}
		}
	}
	if v, ok := keys["id"]; ok && !isNull(v) {
		if val, ok := checkScalar(el, d.label()+": id", v, kindInt, false); ok {
			d.id, d.idSet = val.i, true
		}
	}
	label := d.label()
	for _, k := range unknown {
		el.add(k, "%s: unknown field %q; a device has %s", label, k.Value, strings.Join(deviceKeys, ", "))
	}
	if v, ok := keys["type"]; ok && !isNull(v) {
		if s, ok := scalarString(el, label+": type", v); ok {
			d.typ = strings.TrimSpace(s)
		}
	}
	if d.name == "" && !hasNonNull(keys, "name") {
		el.add(n, "%s: name is required", label)
	}
	if !d.idSet && !hasNonNull(keys, "id") {
		el.add(n, "%s: id is required", label)
	}
	if d.typ == "" && !hasNonNull(keys, "type") {
		el.add(n, "%s: type is required (type: smtp)", label)
	}
	if d.typ != "smtp" {
		// Other device types are skipped; their properties are not ours to check.
		return d
	}
	if v, ok := keys["description"]; ok && !isNull(v) {
		if s, ok := scalarString(el, label+": description", v); ok {
			d.description, d.hasDesc = s, true
		}
	}
	if v, ok := keys["tags"]; ok && !isNull(v) {
		if val, ok := checkList(el, label+": tags", v); ok {
			d.tags = val.l
		}
	}
	if v, ok := keys["status"]; ok && !isNull(v) {
		if val, ok := checkScalar(el, label+": status", v, kindBool, false); ok {
			if val.isRef() {
				el.add(v, "%s: status must be true or false, not a reference (%s)", label, val.ref)
			} else {
				d.status, d.statusLine = val.b, v.Line
			}
		}
	}
	if v, ok := keys["pipelines"]; ok && !isNull(v) {
		if v.Kind != yaml.SequenceNode {
			el.add(v, "%s: pipelines: expected a list of pipeline names, got %s", label, describe(v))
		} else {
			for _, p := range v.Content {
				p = resolveAlias(p)
				if p.Kind != yaml.ScalarNode || p.Tag != "!!str" || strings.TrimSpace(p.Value) == "" {
					el.add(p, "%s: pipelines: expected a pipeline name, got %s", label, describe(p))
					continue
				}
				d.pipelines = append(d.pipelines, pipelineRef{name: strings.TrimSpace(p.Value), line: p.Line})
			}
		}
	}
	v, ok := keys["properties"]
	if !ok || isNull(v) {
		el.add(n, "%s: properties is required (at least properties.port)", label)
		return d
	}
	if v.Kind != yaml.MappingNode {
		el.add(v, "%s: properties: expected a mapping (address, port, ...), got %s", label, describe(v))
		return d
	}
	d.propsLine = v.Line
	var present map[string]bool
	d.props, present = parseFields(el, label, "properties", v, propertySpecs)
	port, ok := d.prop("port")
	if !ok && !present["port"] {
		el.add(v, "%s: properties.port is required (the TCP port to listen on, e.g. port: 2525)", label)
	} else if !port.val.isRef() && (port.val.i < 0 || port.val.i > 65535) {
		el.addAt(port.val.line, "%s: properties.port must be between 1 and 65535, got %d", label, port.val.i)
	}
	if tls, ok := d.prop("tls"); ok {
		var status, hasCert, hasKey bool
		for _, f := range tls.tls {
			switch f.spec.name {
			case "status":
				status = f.val.b || f.val.isRef()
			case "cert_name":
				hasCert = true
			case "key_name":
				hasKey = true
			}
		}
		if status && !hasCert {
			el.addAt(tls.val.line, "%s: properties.tls.cert_name is required when tls.status is true (e.g. cert_name: smtp.crt)", label)
		}
		if status && !hasKey {
			el.addAt(tls.val.line, "%s: properties.tls.key_name is required when tls.status is true (e.g. key_name: smtp.key)", label)
		}
	}
	return d
}

// parseFields checks a mapping against specs and returns its fields in spec
// order.
// present holds the keys given with a value, valid or not.
func parseFields(el *errorList, label, path string, n *yaml.Node, specs []fieldSpec) ([]field, map[string]bool) {
	got := map[string]field{}
	present := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		name := path + "." + k.Value
		spec, ok := findSpec(specs, k.Value)
		if !ok {
			el.add(k, "%s: unknown field %s; known fields: %s", label, name, specNames(specs))
			continue
		}
		if _, dup := got[k.Value]; dup {
			el.add(k, "%s: field %s appears twice", label, name)
			continue
		}
		if isNull(v) {
			continue // "key:" with no value means unset
		}
		present[k.Value] = true
		f := field{spec: spec}
		switch spec.kind {
		case kindTLS, kindMap:
			if v.Kind != yaml.MappingNode {
				el.add(v, "%s: %s: expected %s, got %s", label, name, spec.kind, describe(v))
				continue
			}
			f.val.line = v.Line
			sub := tlsSpecs
			if spec.kind == kindMap {
				sub = spec.sub
			}
			f.tls, _ = parseFields(el, label, name, v, sub)
		case kindStringList:
			val, ok := checkList(el, label+": "+name, v)
			if !ok {
				continue
			}
			f.val = val
		default:
			val, ok := checkScalar(el, label+": "+name, v, spec.kind, true)
			if !ok {
				continue
			}
			f.val = val
		}
		got[k.Value] = f
	}
	var out []field
	for _, s := range specs {
		if f, ok := got[s.name]; ok {
			out = append(out, f)
		}
	}
	return out, present
}

// refPattern matches a value that is one collector reference, e.g.
// ${env:SMTP_PASSWORD}, which the collector expands itself.
var refPattern = regexp.MustCompile(`^\$\{[^${}]+\}$`)

// checkScalar checks a scalar node against a kind. what names the field.
func checkScalar(el *errorList, what string, n *yaml.Node, k kind, allowRef bool) (value, bool) {
	v := value{line: n.Line}
	if n.Kind != yaml.ScalarNode {
		el.add(n, "%s: expected %s, got %s", what, k, describe(n))
		return v, false
	}
	if n.Tag == "!!str" && refPattern.MatchString(strings.TrimSpace(n.Value)) {
		if allowRef {
			v.ref = strings.TrimSpace(n.Value)
			return v, true
		}
	}
	switch k {
	case kindInt:
		switch n.Tag {
		case "!!int":
			if err := n.Decode(&v.i); err != nil {
				el.add(n, "%s: %s is not a usable whole number", what, n.Value)
				return v, false
			}
			return v, true
		case "!!float":
			f, err := strconv.ParseFloat(n.Value, 64)
			if err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				v.i = int64(f)
				return v, true
			}
			el.add(n, "%s: expected %s, got %s", what, k, n.Value)
			return v, false
		case "!!str":
			if _, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64); err == nil {
				el.add(n, "%s: expected %s, got the string %q; remove the quotes", what, k, n.Value)
			} else {
				el.add(n, "%s: expected %s, got the string %q", what, k, n.Value)
			}
			return v, false
		}
	case kindBool:
		switch n.Tag {
		case "!!bool":
			if err := n.Decode(&v.b); err != nil {
				el.add(n, "%s: expected %s, got %s", what, k, n.Value)
				return v, false
			}
			return v, true
		case "!!str":
			el.add(n, "%s: expected %s, got the string %q; write true or false without quotes", what, k, n.Value)
			return v, false
		}
	case kindString:
		s, ok := scalarString(el, what, n)
		v.s = s
		return v, ok
	}
	el.add(n, "%s: expected %s, got %s", what, k, describe(n))
	return v, false
}

// scalarString accepts any scalar as a string: a password of digits is
// still a password.
func scalarString(el *errorList, what string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		el.add(n, "%s: expected a string, got %s", what, describe(n))
		return "", false
	}
	if n.Tag == "!!binary" {
		el.add(n, "%s: expected a string, got binary data", what)
		return "", false
	}
	return n.Value, true
}

func checkList(el *errorList, what string, n *yaml.Node) (value, bool) {
	v := value{line: n.Line}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && refPattern.MatchString(strings.TrimSpace(n.Value)) {
		v.ref = strings.TrimSpace(n.Value)
		return v, true
	}
	if n.Kind != yaml.SequenceNode {
		el.add(n, "%s: expected a list of strings, got %s", what, describe(n))
		return v, false
	}
	ok := true
	for _, c := range n.Content {
		c = resolveAlias(c)
		if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
			el.add(c, "%s: expected a string, got %s", what, describe(c))
			ok = false
			continue
		}
		v.l = append(v.l, c.Value)
	}
	if v.l == nil {
		v.l = []string{}
	}
	return v, ok
}

// checkDuplicates reports devices sharing an id, a name, a component name or
// a listening port.
func checkDuplicates(el *errorList, devices []*device) {
	ids := map[int64]*device{}
	names := map[string]*device{}
	for _, d := range devices {
		if d.idSet {
			if o, dup := ids[d.id]; dup {
				el.addAt(d.line, "%s: duplicate id %d (also used by %s at line %d); ids must be unique", d.label(), d.id, o.label(), o.line)
			} else {
				ids[d.id] = d
			}
		}
		if d.name != "" {
			if o, dup := names[d.name]; dup {
				el.addAt(d.line, "%s: duplicate name %q (also used by %s at line %d); names must be unique", d.label(), d.name, o.label(), o.line)
			} else {
				names[d.name] = d
			}
		}
	}
	// Component names and ports matter only for devices that will run.
	compNames := map[string]*device{}
	type listener struct {
		d    *device
		addr string
		port int64
	}
	var listeners []listener
	for _, d := range devices {
		if d.typ != "smtp" || !d.status || d.name == "" {
			continue
		}
		cn := componentName(d.name)
		if o, dup := compNames[cn]; dup && o.name != d.name {
			el.addAt(d.line, "%s: name %q and the name %q of %s (line %d) both become the component name %q; rename one", d.label(), d.name, o.name, o.label(), o.line, cn)
		} else if !dup {
			compNames[cn] = d
		}
		port, ok := d.prop("port")
		if !ok || port.val.isRef() || port.val.i == 0 {
			continue
		}
		addr := "0.0.0.0"
		if a, ok := d.prop("address"); ok {
			if a.val.isRef() {
				continue
			}
			addr = strings.Trim(strings.TrimSpace(a.val.s), "[]")
		}
		for _, o := range listeners {
			if o.port == port.val.i && (o.addr == addr || isWildcard(o.addr) || isWildcard(addr)) {
				el.addAt(port.val.line, "%s: port %d is already used by %s (line %d) on %s; give each device its own port", d.label(), port.val.i, o.d.label(), o.d.line, o.addr)
				break
			}
		}
		listeners = append(listeners, listener{d: d, addr: addr, port: port.val.i})
	}
}

func isWildcard(addr string) bool {
	switch addr {
	case "", "0.0.0.0", "::", "0:0:0:0:0:0:0:0":
		return true
	}
	return false
}

// componentNamePattern is the collector's rule for the name part of a
// component ID (go.opentelemetry.io/collector/component).
var componentNameBad = regexp.MustCompile(`[\pZ\pC\pS]`)

// componentName turns a device or pipeline name into a valid component name.
func componentName(s string) string {
	s = componentNameBad.ReplaceAllString(strings.TrimSpace(s), "_")
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}

func findSpec(specs []fieldSpec, name string) (fieldSpec, bool) {
	for _, s := range specs {
		if s.name == name {
			return s, true
		}
	}
	return fieldSpec{}, false
}

func specNames(specs []fieldSpec) string {
	var names []string
	for _, s := range specs {
		if !s.extension {
			names = append(names, s.name)
		}
	}
	return strings.Join(names, ", ") + " (and the receiver's extensions, see docs/devices.md)"
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func hasNonNull(m map[string]*yaml.Node, k string) bool {
	v, ok := m[k]
	return ok && !isNull(v)
}

// describe names what a node is, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int":
			return "the number " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return n.Value
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
