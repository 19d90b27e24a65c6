package fn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// DecodeJSON reads one JSON value from body into v. Malformed JSON, a wrong type, trailing data and an
// empty body are 400; a body over the host's limit is 413. Unknown fields are accepted: Core may send
// fields newer than this IM knows.
func DecodeJSON(body io.Reader, v any) error {
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return tooLarge(tooBig.Limit)
		}
		return Wrap(err, http.StatusBadRequest, "BAD_REQUEST", "The request body could not be read.")
	}
	return DecodeJSONBytes(raw, v)
}

// DecodeJSONBytes is DecodeJSON for a body already read (a CloudEvent's data).
func DecodeJSONBytes(raw []byte, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return Errorf(http.StatusBadRequest, "BAD_REQUEST", "The request body is empty; a JSON object was expected.")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr):
			field := typeErr.Field
			if field == "" {
				field = "the body"
			}
			return Wrap(err, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("Invalid request: %s must be %s, not %s.", field, typeName(typeErr.Type.Kind().String()), typeErr.Value))
		case errors.As(err, &syntaxErr):
			return Wrap(err, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("Invalid request: malformed JSON at byte %d.", syntaxErr.Offset))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return Wrap(err, http.StatusBadRequest, "BAD_REQUEST", "Invalid request: malformed JSON (the body ends too early).")
		}
		return Wrap(err, http.StatusBadRequest, "BAD_REQUEST", "Invalid request: malformed JSON.")
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "BAD_REQUEST", "Invalid request: unexpected data after the JSON body.")
	}
	return nil
}

func typeName(kind string) string {
	switch kind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "a list"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "ptr", "interface":
		return "a value"
	}
	return "a number"
}

// Handle adapts a typed operation to HTTP: the JSON body is decoded into Req, op is called, and its Resp
// is written as JSON with 200; every error is answered in UCloud's shape.
func Handle[Req, Resp any](op func(ctx context.Context, r *http.Request, req Req) (Resp, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := DecodeJSON(r.Body, &req); err != nil {
			WriteError(w, r, err)
			return
		}
		resp, err := op(r.Context(), r, req)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, resp)
	})
}
