package fn_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ucloud-im/knative-im/shared/fn"
)

// timeoutServer serves, with short timeouts, an ordinary route that reads its body (/echo), one that
// takes longer than the write timeout (/slow), and a declared long-lived one (/stream) that reads a
// trickled body and streams its answer, each for longer than the timeouts.
func timeoutServer(t *testing.T) string {
	t.Helper()
	routes := http.NewServeMux()
	routes.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "read %d bytes", len(b))
	})
	routes.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1500 * time.Millisecond)
		fmt.Fprint(w, "too late")
	})
	routes.Handle("POST /stream", fn.LongLived(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc := http.NewResponseController(w)
		for i := range 6 {
			fmt.Fprintf(w, "tick %d after %d bytes\n", i, len(b))
			if err := rc.Flush(); err != nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	})))
	s := &fn.Server{Name: "timeouts", Routes: routes, Config: fn.Config{
		ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, IdleTimeout: 500 * time.Millisecond, ShutdownTimeout: time.Second,
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// trickle writes msg one byte every 100 ms and reports how many bytes were written before the server
// closed the connection (all of them when it never did), and then everything the server answered.
func trickle(t *testing.T, addr, head, body string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c) // returns when the server closes the connection
		closed <- string(b)
	}()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	msg := body
	for i := range len(msg) {
		select {
		case answer := <-closed:
			return i, answer
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			return i, <-closed
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return len(msg), <-closed
}

func TestSlowClientsAreCutOff(t *testing.T) {
	addr := timeoutServer(t)
	headers := "X-Padding: " + strings.Repeat("a", 60) + "\r\n\r\n"
	body := strings.Repeat("b", 60)
	for _, tc := range []struct {
		name, head, trickled string
	}{
		// The attacker's request: headers that never end, sent a byte at a time (6 s if allowed).
		{"headers trickled", "POST /echo HTTP/1.1\r\nHost: x\r\n", headers},
		// Complete headers, then a body of 60 bytes sent a byte at a time.
		{"body trickled", fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body)), body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent, answer := trickle(t, addr, tc.head, tc.trickled)
			if sent == len(tc.trickled) {
				t.Fatalf("the server waited for all %d trickled bytes; answer %q", sent, answer)
			}
			if strings.Contains(answer, "read 60 bytes") {
				t.Fatalf("the trickled request was served: %q", answer)
			}
		})
	}
}

func TestHandlerPastTheWriteTimeoutGetsNoAnswerThrough(t *testing.T) {
	addr := timeoutServer(t)
	resp, err := http.Get("http://" + addr + "/slow")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("an answer came through after the write timeout: %d %q", resp.StatusCode, b)
	}
}

func TestIdleConnectionIsClosed(t *testing.T) {
	addr := timeoutServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// A keep-alive connection left idle: the server closes it (well before this client's 10 s).
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = r.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept an idle connection open")
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("want the server to close the idle connection, got %v", err)
	}
}

func TestLongLivedRouteOutlivesTheTimeouts(t *testing.T) {
	addr := timeoutServer(t)
	body := strings.Repeat("b", 15) // 1.5 s of trickling: three times the read timeout
	sent, answer := trickle(t, addr, fmt.Sprintf("POST /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", len(body)), body)
	if sent != len(body) {
		t.Fatalf("the long-lived route was cut off after %d of %d bytes: %q", sent, len(body), answer)
	}
	// Six ticks 250 ms apart: the answer too takes three times the write timeout.
	if !strings.HasPrefix(answer, "HTTP/1.1 200") || !strings.Contains(answer, "tick 5 after 15 bytes") {
		t.Fatalf("the long-lived route's answer did not arrive whole: %q", answer)
	}
}

// A long-lived request that follows its context ends when the server begins to shut down, so the drain
// completes (an ordinary request's context is left alone: it is let finish).
func TestLongLivedStreamEndsWhenShutdownBegins(t *testing.T) {
	routes := http.NewServeMux()
	routes.Handle("GET /follow", fn.LongLived(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "following")
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
		fmt.Fprintln(w, "server shutting down")
	})))
	s := &fn.Server{Name: "streams", Routes: routes, Config: fn.Config{ShutdownTimeout: 5 * time.Second}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/follow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != "following\n" {
		t.Fatalf("stream did not start: %q, %v", line, err)
	}
	cancel() // SIGTERM, as far as Serve is concerned
	if err := <-done; err != nil {
		t.Fatalf("the drain waited for the stream: %v", err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "server shutting down\n" {
		t.Fatalf("the stream ended with %q", rest)
	}
}
