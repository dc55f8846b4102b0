package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"
)

// kind is the type a device field must have.
type kind int

const (
	kindInt kind = iota
	kindNumber
	kindString
	kindBool
	kindStringList
	kindMapping
)

func (k kind) String() string {
	switch k {
	case kindInt:
		return "a whole number"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindBool:
		return "true or false"
	case kindStringList:
		return "a list of strings"
	case kindMapping:
		return "a mapping"
	}
	return "?"
}

// fieldSpec describes one key of the device's properties (or of a block
// inside them, such as tls). Fields are written to the collector config in
// this order.
type fieldSpec struct {
	name string
	kind kind
	// extension marks a receiver option the product's device does not have;
	// the converter accepts and passes it through.
	extension bool
	// nested are the keys of a kindMapping block.
	nested []fieldSpec
}

// The keys of properties are the receiver's own: they are read from its
// Config (the mapstructure tags, in the struct's order), so the converter
// knows every field the receiver has and no other. Only which of them the
// product's device schema has, and which sit at the device's top level,
// is the converter's knowledge.
var (
	// identityFields are receiver fields a device gives beside properties.
	identityFields = map[string]bool{"id": true, "name": true, "description": true, "tags": true, "status": true}
	// deviceSchema are the properties of the product's device; every other
	// receiver field is an extension.
	deviceSchema = map[string]bool{
		"address": true, "port": true, "username": true, "password": true, "timeout": true,
		"reuse": true, "workers": true, "buffer_size": true, "stats_frequency": true,
		"tls": true, "tls.status": true, "tls.cert_name": true, "tls.key_name": true,
	}
	// propertySpecs are the keys of properties.
	propertySpecs = specsOf(reflect.TypeFor[smtpreceiver.Config](), "")
)

// specsOf lists the mapstructure keys of a receiver config struct; prefix is
// the path of the struct itself ("" or "tls.").
func specsOf(t reflect.Type, prefix string) []fieldSpec {
	var specs []fieldSpec
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if key == "" || key == "-" || prefix == "" && identityFields[key] {
			continue
		}
		spec := fieldSpec{name: key, kind: kindOf(prefix+key, f.Type), extension: !deviceSchema[prefix+key]}
		if spec.kind == kindMapping {
			spec.nested = specsOf(derefType(f.Type), prefix+key+".")
		}
		specs = append(specs, spec)
	}
	return specs
}

// kindOf maps the Go type of a receiver field onto what the device file
// must give. A field of a new type stops the converter at start, so it
// cannot be passed through unchecked.
func kindOf(path string, t reflect.Type) kind {
	t = derefType(t)
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kindInt
	case reflect.Float32, reflect.Float64:
		return kindNumber
	case reflect.String:
		return kindString
	case reflect.Bool:
		return kindBool
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return kindStringList
		}
	case reflect.Struct:
		return kindMapping
	}
	panic(fmt.Sprintf("device2otel: receiver field %s has type %s, which the converter has no kind for; add one in kindOf", path, t))
}

func derefType(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		return t.Elem()
	}
	return t
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
	f   float64
	s   string
	b   bool
	l   []string
}

func (v value) isRef() bool { return v.ref != "" }

// field is one property of a device, checked against its spec.
type field struct {
	spec   fieldSpec
	val    value
	nested []field // for kindMapping
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
	propsNode *yaml.Node
	// given holds the paths of the properties given with a value, valid or
	// not ("port", "tls.status").
	given map[string]bool
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
		if !slices.Contains(deviceKeys, k.Value) {
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
	d.propsNode = v
	d.given = map[string]bool{}
	d.props = parseFields(el, label, "properties", "", v, propertySpecs, d.given)
	if port, ok := d.prop("port"); ok && !port.val.isRef() && port.val.i == 0 {
		el.addAt(port.val.line, "%s: properties.port: 0 would listen on a random free port, which no sender can know; set the port the device listens on, e.g. port: 2525", label)
	}
	checkPipelines(el, d)
	checkReceiverConfig(el, d)
	return d
}

// checkPipelines refuses a pipeline listed twice: the collector runs a
// processor at most once in a pipeline and refuses the config.
func checkPipelines(el *errorList, d *device) {
	seen := map[string]pipelineRef{}
	for _, p := range d.pipelines {
		id := processorID(p.name)
		if o, dup := seen[id]; dup {
			el.addAt(p.line, "%s: pipelines: %q (line %d) and %q both become processor %s, and a collector pipeline runs a processor once; list it once", d.label(), o.name, o.line, p.name, id)
			continue
		}
		seen[id] = p
	}
}

// parseFields checks a mapping against specs and returns its fields in spec
// order. prefix is the path of the mapping below properties ("" or "tls.");
// given collects the paths of the keys given with a value, valid or not.
func parseFields(el *errorList, label, path, prefix string, n *yaml.Node, specs []fieldSpec, given map[string]bool) []field {
	got := map[string]field{}
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
		given[prefix+k.Value] = true
		f := field{spec: spec}
		switch spec.kind {
		case kindMapping:
			if v.Kind != yaml.MappingNode {
				el.add(v, "%s: %s: expected a mapping (%s), got %s", label, name, blockKeys(spec.nested), describe(v))
				continue
			}
			f.val.line = v.Line
			f.nested = parseFields(el, label, name, prefix+k.Value+".", v, spec.nested, given)
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
	return out
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
	case kindNumber:
		if n.Tag == "!!int" || n.Tag == "!!float" {
			f, err := strconv.ParseFloat(n.Value, 64)
			if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				v.f = f
				return v, true
			}
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
	if names := schemaNames(specs); names != "" {
		return names + " (and the receiver's extensions, see docs/devices.md)"
	}
	return blockKeys(specs)
}

// blockKeys names the keys of a block for a message: the device schema's,
// or all of them for a block the device does not have.
func blockKeys(specs []fieldSpec) string {
	if names := schemaNames(specs); names != "" {
		return names
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

// schemaNames lists the keys the product's device schema has.
func schemaNames(specs []fieldSpec) string {
	var names []string
	for _, s := range specs {
		if !s.extension {
			names = append(names, s.name)
		}
	}
	return strings.Join(names, ", ")
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
