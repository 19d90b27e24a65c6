package iapps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// decodeConfig decodes a configuration strictly: unknown fields and wrong types are errors naming the field.
func decodeConfig(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field == "":
			return &ValidationError{Field: "config", Reason: "must be a JSON object, not " + typeErr.Value}
		case errors.As(err, &typeErr):
			return &ValidationError{Field: typeErr.Field, Reason: "has the wrong type (" + typeErr.Value + ")"}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.TrimPrefix(err.Error(), "json: unknown field ")
			if field == `""` {
				return &ValidationError{Field: "config", Reason: "has a setting with an empty name"}
			}
			return &ValidationError{Field: strings.Trim(field, `"`), Reason: "is not a known setting"}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return &ValidationError{Field: "config", Reason: "is malformed JSON"}
		}
		return &ValidationError{Field: "config", Reason: "is not a JSON object (" + err.Error() + ")"}
	}
	if dec.More() {
		return &ValidationError{Field: "config", Reason: "has data after the JSON object"}
	}
	return nil
}

// drivePath is a UCloud path: /<numeric drive id>[/<name>...].
var drivePath = regexp.MustCompile(`^/[0-9]+(/[^/]+)*$`)

// MaxPathLength bounds a UCloud path.
const MaxPathLength = 1024

// checkUCloudPath accepts only absolute UCloud paths on a drive, without . or .. parts or control characters.
func checkUCloudPath(field, p string) error {
	switch {
	case p == "":
		return &ValidationError{Field: field, Reason: "is required"}
	case len(p) > MaxPathLength:
		return &ValidationError{Field: field, Reason: fmt.Sprintf("is longer than %d characters", MaxPathLength)}
	case !utf8.ValidString(p) || strings.IndexFunc(p, unicode.IsControl) >= 0:
		return &ValidationError{Field: field, Reason: "contains control characters"}
	case !drivePath.MatchString(p):
		return &ValidationError{Field: field, Reason: fmt.Sprintf("%q is not a UCloud path like /123/Home/Sync", p)}
	}
	for _, part := range strings.Split(p, "/") {
		if part == "." || part == ".." {
			return &ValidationError{Field: field, Reason: "must not contain . or .. parts"}
		}
	}
	return nil
}
