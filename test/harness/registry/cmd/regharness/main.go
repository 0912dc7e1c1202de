// Command regharness is the registry test harness for image-clone.
//
// It runs real OCI registries (distribution v3, in-process) plus a Docker
// token issuer on loopback ports, seeds them with random images and verifies
// copies, independently of the project's own TypeScript registry client.
//
// Subcommands:
//
//	regharness serve      start the registries and the token issuer, print READY
//	regharness seed       push one random image or index
//	regharness seed-fleet push many random images that share base layers
//	regharness verify     check that a destination holds an identical copy
//
// Run "regharness <subcommand> -h" for the flags of each.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Exit codes shared by all subcommands.
const (
	exitOK        = 0
	exitDifferent = 1 // verify: the copy is not identical; serve/seed: runtime failure
	exitUsage     = 2 // bad flags, unreachable registry, authentication failure
)

const topUsage = `usage: regharness <command> [flags]

commands:
  serve       start registries "source", "backup", "backup-basic", the matrix ("ggcr", "olareg",
              "distribution2") and a token issuer
  seed        push one random image (or multi-platform index) to a registry
  seed-fleet  push many random images that share base layers
  verify      compare a source and a destination image, manifest by manifest and blob by blob
  attach      push an artifact about an image (a referrer with a subject, or a cosign-style tag)
  gc          garbage-collect one registry's storage (distribution's mark and sweep), with it stopped

Run "regharness <command> -h" for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code. It is
// separate from main so that tests can call it in-process.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return cmdServe(args[1:], stdin, stdout, stderr)
	case "seed":
		return cmdSeed(args[1:], stdout, stderr)
	case "seed-fleet":
		return cmdSeedFleet(args[1:], stdout, stderr)
	case "verify":
		return cmdVerify(args[1:], stdout, stderr)
	case "attach":
		return cmdAttach(args[1:], stdout, stderr)
	case "gc":
		return cmdGC(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, topUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "regharness: unknown command %q\n\n%s", args[0], topUsage)
		return exitUsage
	}
}

// newFlagSet returns a flag set that reports errors instead of exiting, with
// a usage text that starts with the given synopsis.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and rejects stray positional arguments. It returns
// (exit code, false) when the caller should stop.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	return 0, true
}

// sizeFlag is an int64 flag that also accepts K/M/G suffixes (KiB, MiB,
// GiB; powers of 1024), e.g. "512KiB", "5MiB", "1G".
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	mult := int64(1)
	upper := strings.ToUpper(t)
	for _, suf := range []struct {
		s string
		m int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(upper, suf.s) {
			mult = suf.m
			t = t[:len(t)-len(suf.s)]
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q (want bytes, optionally with a KiB/MiB/GiB suffix)", v)
	}
	return n * mult, nil
}

// registriesFile is the shape of registries.json written by "serve". The
// field order is the order in which the keys appear in the file.
type registriesFile struct {
	Registries  map[string]registryInfo `json:"registries"`
	TokenServer string                  `json:"tokenServer"`
}

type registryInfo struct {
	Host     string       `json:"host"`
	Auth     string       `json:"auth"` // "none", "token" or "basic"
	Username string       `json:"username,omitempty"`
	Password string       `json:"password,omitempty"`
	Realm    string       `json:"realm,omitempty"`
	Service  string       `json:"service,omitempty"`
	Reader   *credentials `json:"reader,omitempty"`
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// registriesEnv names the environment variable that seed and verify read to
// find credentials when none are given on the command line. It holds either
// the path of a registries.json or the JSON text itself.
const registriesEnv = "REGHARNESS_REGISTRIES"

// credentialsForHost returns the admin credentials that registries.json (via
// $REGHARNESS_REGISTRIES) lists for host, or ok=false when there are none
// (unset variable, unknown host, or a registry without auth).
func credentialsForHost(host string) (c credentials, ok bool, err error) {
	v := strings.TrimSpace(os.Getenv(registriesEnv))
	if v == "" {
		return credentials{}, false, nil
	}
	data := []byte(v)
	if !strings.HasPrefix(v, "{") {
		if data, err = os.ReadFile(v); err != nil {
			return credentials{}, false, fmt.Errorf("$%s: %w", registriesEnv, err)
		}
	}
	var f registriesFile
	if err := json.Unmarshal(data, &f); err != nil {
		return credentials{}, false, fmt.Errorf("$%s: %w", registriesEnv, err)
	}
	want := normalizeHost(host)
	for _, r := range f.Registries {
		if normalizeHost(r.Host) == want && r.Username != "" {
			return credentials{Username: r.Username, Password: r.Password}, true, nil
		}
	}
	return credentials{}, false, nil
}

// normalizeHost treats localhost and 127.0.0.1 as the same host.
func normalizeHost(h string) string {
	h = strings.ToLower(h)
	if rest, found := strings.CutPrefix(h, "localhost:"); found {
		return "127.0.0.1:" + rest
	}
	return h
}

// writeJSONLine writes v as one line of compact JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
