// Command fakecore runs the fake UCloud/Core for `make run`, or prints a Core token for curl.
//
//	fakecore serve [-dir .run/core] [-addr 127.0.0.1:0]   serve; writes core.pub, refresh-token and url to -dir
//	fakecore token [-dir .run/core] [-ttl 1h]             print a token Core would send, signed with -dir's key
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ucloud-im/knative-im/test/fakecore"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fakecore:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: fakecore serve|token [-dir DIR]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dir := fs.String("dir", ".run/core", "folder holding the key, the refresh token and the URL")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (loopback)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the printed token")
	provider := fs.String("provider", "k8s", "the provider id Core knows the IM as")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	key, err := fakecore.LoadOrCreateKey(*dir)
	if err != nil {
		return err
	}
	switch args[0] {
	case "token":
		tok, err := fakecore.TokenFromDir(*dir, *ttl)
		if err != nil {
			return err
		}
		fmt.Println(tok)
		return nil
	case "serve":
		refresh, _ := os.ReadFile(filepath.Join(*dir, fakecore.RefreshTokenFile))
		logger := log.New(os.Stdout, "fakecore ", log.LstdFlags|log.Lmicroseconds)
		core, err := fakecore.New(fakecore.Options{Key: key, RefreshToken: string(trim(refresh)), Addr: *addr, ProviderID: *provider, Log: logger.Printf})
		if err != nil {
			return err
		}
		defer core.Close()
		if err := core.WriteFiles(*dir); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*dir, "url"), []byte(core.URL()+"\n"), 0o644); err != nil {
			return err
		}
		logger.Printf("listening on %s (public key %s)", core.URL(), filepath.Join(*dir, fakecore.PublicKeyFile))
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
