package smtpreceiver // import "github.com/smtpreceiver/smtpreceiver/receiver/smtpreceiver"

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"go.opentelemetry.io/collector/confmap"
)

var _ confmap.Unmarshaler = (*Config)(nil)

// Unmarshal decodes a receiver block. The collector's decoder (mapstructure)
// truncates a fraction given for a whole-number field (port: 3700.5 listens
// on 3700), wraps a number too large for its field round to a negative one,
// and words type errors in Go terms ("expected type 'int', got unconvertible
// type 'string'"). So every value is first checked against the type of its
// field, and what the decoder still refuses is reworded: each error names the
// field and the fix.
func (cfg *Config) Unmarshal(conf *confmap.Conf) error {
	if conf == nil {
		return nil
	}
	if err := checkValues("", conf.ToStringMap(), reflect.TypeFor[Config]()); err != nil {
		return oneError(err)
	}
	if err := conf.Unmarshal(cfg); err != nil {
		return oneError(explainDecodeError(err))
	}
	return nil
}

// oneError puts the messages of a joined error on lines of one plain error:
// the collector's decoder, which wraps what Unmarshal returns, would
// otherwise put a "decoding failed due to the following error(s)" heading
// before them.
func oneError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		lines := make([]string, 0, len(j.Unwrap()))
		for _, e := range j.Unwrap() {
			lines = append(lines, e.Error())
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	return err
}

// checkValues checks each value of raw against the field of t whose
// mapstructure tag is its key; path is the key of raw itself ("" or "tls").
// Unknown keys are left to the decoder.
func checkValues(path string, raw map[string]any, t reflect.Type) error {
	fields := fieldsByKey(t)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, key := range keys {
		f, ok := fields[key]
		v := raw[key]
		if !ok || v == nil {
			continue
		}
		name := key
		if path != "" {
			name = path + "." + key
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if err := checkValue(name, v, ft); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkValue checks one value against the Go type of its field.
func checkValue(name string, v any, t reflect.Type) error {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return checkWholeNumber(name, v, t)
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return typeError(name, "true or false", v, "write true or false without quotes")
		}
	case reflect.String:
		// Any scalar may become a string: a value expanded from
		// ${env:VAR} arrives here already parsed (a password of digits
		// is a number), and the decoder uses its text. The decoder
		// refuses the rest; explainDecodeError words it.
		if isCollection(v) {
			return typeError(name, "a string", v, "")
		}
	case reflect.Slice:
		return checkStringList(name, v)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return typeError(name, "a mapping of its fields", v, "")
		}
		return checkValues(name, m, t)
	}
	return nil
}

// checkWholeNumber refuses fractions, numbers outside the range of the
// field's type and numbers written as strings.
func checkWholeNumber(name string, v any, t reflect.Type) error {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if t.Bits() < 64 {
		lo, hi = -1<<(t.Bits()-1), 1<<(t.Bits()-1)-1
	}
	outOfRange := func(s string) error {
		return fmt.Errorf("%s: %s is out of range; the largest value this field can hold is %d", name, s, hi)
	}
	switch n := v.(type) {
	case int:
		return checkRange(name, int64(n), lo, hi)
	case int8, int16, int32, int64:
		return checkRange(name, reflect.ValueOf(n).Int(), lo, hi)
	case uint, uint8, uint16, uint32, uint64:
		u := reflect.ValueOf(n).Uint()
		if u > uint64(hi) {
			return outOfRange(strconv.FormatUint(u, 10))
		}
	case float32, float64:
		f := reflect.ValueOf(n).Float()
		text := strconv.FormatFloat(f, 'f', -1, 64)
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f):
			return fmt.Errorf("%s: must be a whole number, got %s; fractions are not accepted", name, text)
		case f >= math.Ldexp(1, t.Bits()-1) || f < -math.Ldexp(1, t.Bits()-1):
			return outOfRange(text)
		}
		return checkRange(name, int64(f), lo, hi)
	case string:
		if _, err := strconv.ParseFloat(strings.TrimSpace(n), 64); err == nil {
			return typeError(name, "a whole number", v, "remove the quotes")
		}
		return typeError(name, "a whole number", v, "")
	default:
		return typeError(name, "a whole number", v, "")
	}
	return nil
}

func checkRange(name string, n, lo, hi int64) error {
	if n < lo || n > hi {
		return fmt.Errorf("%s: %d is out of range; the largest value this field can hold is %d", name, n, hi)
	}
	return nil
}

// checkStringList accepts a list of scalars, or one string (the decoder
// splits it at commas).
func checkStringList(name string, v any) error {
	if _, ok := v.(string); ok {
		return nil
	}
	items, ok := v.([]any)
	if !ok {
		return typeError(name, "a list of strings", v, `e.g. ["a", "b"]`)
	}
	var errs []error
	for i, item := range items {
		if item == nil || isCollection(item) {
			errs = append(errs, typeError(fmt.Sprintf("%s[%d]", name, i), "a string", item, ""))
		}
	}
	return errors.Join(errs...)
}

func isCollection(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// typeError says what a field needs, what it got and, when known, the fix.
func typeError(name, want string, got any, fix string) error {
	msg := fmt.Sprintf("%s: expected %s, got %s", name, want, describeValue(got))
	if fix != "" {
		msg += "; " + fix
	}
	return errors.New(msg)
}

// describeValue names a decoded YAML value for a message.
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing (null)"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return "the boolean " + strconv.FormatBool(x)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case float32, float64:
		return "the number " + strconv.FormatFloat(reflect.ValueOf(x).Float(), 'f', -1, 64)
	}
	if rv := reflect.ValueOf(v); rv.CanInt() || rv.CanUint() {
		return fmt.Sprintf("the number %v", v)
	}
	return fmt.Sprintf("%v", v)
}

// fieldsByKey maps the mapstructure keys of a struct to its fields.
func fieldsByKey(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if key != "" && key != "-" {
			out[key] = f
		}
	}
	return out
}

// explainDecodeError rewords what the decoder refused: unknown keys and
// values of a type the field cannot take.
func explainDecodeError(err error) error {
	var leaves []*mapstructure.DecodeError
	collectDecodeErrors(err, &leaves)
	if len(leaves) == 0 {
		return err
	}
	errs := make([]error, 0, len(leaves))
	for _, de := range leaves {
		errs = append(errs, explainOne(de))
	}
	return errors.Join(errs...)
}

// collectDecodeErrors finds the innermost DecodeErrors of an error tree.
func collectDecodeErrors(err error, out *[]*mapstructure.DecodeError) {
	if err == nil {
		return
	}
	if de, ok := err.(*mapstructure.DecodeError); ok {
		before := len(*out)
		collectDecodeErrors(de.Unwrap(), out)
		if len(*out) == before {
			*out = append(*out, de)
		}
		return
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			collectDecodeErrors(e, out)
		}
	case interface{ Unwrap() error }:
		collectDecodeErrors(u.Unwrap(), out)
	}
}

func explainOne(de *mapstructure.DecodeError) error {
	name := de.Name()
	inner := de.Unwrap()
	var ute *mapstructure.UnconvertibleTypeError
	switch {
	case errors.As(inner, &ute):
		want := "a value of type " + ute.Expected.Type().String()
		fix := ""
		if ute.Expected.Kind() == reflect.String {
			want, fix = "a string", "put the value in quotes"
		}
		return typeError(name, want, ute.Value, fix)
	case strings.HasPrefix(inner.Error(), "has invalid keys: "):
		keys := strings.TrimPrefix(inner.Error(), "has invalid keys: ")
		where := name
		if name == "" || name == reflect.TypeFor[Config]().String() {
			where = "the receiver" // the decoder names the root by its Go type
		}
		return fmt.Errorf("unknown field %s in %s; check the spelling against the fields listed in the README (Configuration)", keys, where)
	}
	if name == "" {
		return inner
	}
	return fmt.Errorf("%s: %w", name, inner)
}
