package main

// "regharness serve": three distribution v3 registries and a token issuer on
// loopback (or on --listen-ip), described by DIR/registries.json.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// Registered through init(): the auth methods and the storage driver
	// that the registry configurations below refer to by name.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

const serveSynopsis = "regharness serve [--dir DIR] [--keep] [--trace-requests FILE] [--ignore-stdin] [--listen-ip IP] [--token-ttl DURATION] [--oauth2-tokeninfo URL]"

func cmdServe(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", serveSynopsis, stderr)
	dir := fs.String("dir", "", "working directory for storage, PKI and registries.json (default: a new temporary directory)")
	keep := fs.Bool("keep", false, "keep DIR on exit")
	trace := fs.String("trace-requests", "", "append one JSON line per request received by any registry or the issuer to `FILE`")
	ignoreStdin := fs.Bool("ignore-stdin", false, "do not stop when stdin reaches EOF (stop only on SIGINT/SIGTERM)")
	listenIP := fs.String("listen-ip", "127.0.0.1", "the local `IP` every registry and the issuer listen on (the test node's bridge address, so that pods reach them too)")
	tokenTTLFlag := fs.Duration("token-ttl", tokenTTL, "how long the registries accept an issued token (a short one proves a client renews)")
	tokeninfo := fs.String("oauth2-tokeninfo", "", "also accept user oauth2accesstoken with an OAuth2 access token that `URL`?access_token=TOKEN vouches for (200 valid, 403 denied), as Google's registries do")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}

	// Catch signals before READY: a parent may send SIGTERM as soon as it
	// has read the line.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	h, err := startHarness(harnessOptions{Dir: *dir, TraceFile: *trace, ListenIP: *listenIP, TokenTTL: *tokenTTLFlag, Tokeninfo: *tokeninfo})
	if err != nil {
		fmt.Fprintf(stderr, "regharness serve: %v\n", err)
		return exitDifferent
	}
	// The one line on stdout that the parent waits for. os.Stdout is
	// unbuffered, so nothing needs flushing.
	if _, err := fmt.Fprintf(stdout, "READY %s\n", h.infoPath); err != nil {
		fmt.Fprintf(stderr, "regharness serve: %v\n", err)
		h.Close(!*keep)
		return exitDifferent
	}

	if !*ignoreStdin && stdinWatchable(stdin) {
		// The parent keeps our stdin open; EOF means it has gone away.
		go func() {
			_, _ = io.Copy(io.Discard, stdin)
			stop()
		}()
	}
	<-ctx.Done()

	if err := h.Close(!*keep); err != nil {
		fmt.Fprintf(stderr, "regharness serve: shutdown: %v\n", err)
	}
	return exitOK
}

// stdinWatchable reports whether EOF on stdin is a meaningful "parent died"
// signal. Started from a shell with </dev/null (or with fd 0 closed), stdin
// is at EOF from the start and watching it would stop the harness at once.
func stdinWatchable(stdin io.Reader) bool {
	f, ok := stdin.(*os.File)
	if !ok {
		return stdin != nil
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	if devnull, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, devnull) {
		return false
	}
	return true
}

type harnessOptions struct {
	Dir       string        // created if missing; "" means a new temporary directory
	TraceFile string        // "" disables request tracing
	ListenIP  string        // "" means 127.0.0.1
	TokenTTL  time.Duration // 0 means tokenTTL
	Tokeninfo string        // "" means no oauth2accesstoken user (oauth2_tokeninfo.go)
}

// harness is a running set of registries plus the token issuer.
type harness struct {
	dir      string
	infoPath string
	listenIP string
	info     registriesFile

	servers  []*http.Server
	apps     []*handlers.App
	children []child     // registries in processes of their own (matrix.go)
	closers  []io.Closer // log and trace files, closed after the servers
}

// Registry names, also used as storage subdirectories and log file names.
const (
	regSource      = "source"
	regBackup      = "backup"
	regBackupBasic = "backup-basic"
	issuerName     = "issuer" // as it appears in the request trace
)

func startHarness(opts harnessOptions) (h *harness, err error) {
	// distribution's configuration parser applies REGISTRY_* overrides and
	// otel reads OTEL_*; we build configuration structs directly (no env
	// overrides) and never initialise otel, but keep any SDK that might be
	// reached from the handlers switched off as well.
	_ = os.Setenv("OTEL_SDK_DISABLED", "true")
	_ = os.Setenv("OTEL_TRACES_EXPORTER", "none")

	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "regharness-"); err != nil {
			return nil, err
		}
	} else if err = os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	listenIP := opts.ListenIP
	if listenIP == "" {
		listenIP = "127.0.0.1"
	}
	h = &harness{dir: dir, infoPath: filepath.Join(dir, "registries.json"), listenIP: listenIP}
	// A restart on the folder of an earlier run (kept with --keep) serves the
	// same storage on the same addresses with the same passwords, so that a
	// test can stop a registry, garbage-collect its storage, and start it again
	// under the references its workloads already use.
	var prev registriesFile
	if data, err := os.ReadFile(h.infoPath); err == nil {
		if err := json.Unmarshal(data, &prev); err != nil {
			return nil, fmt.Errorf("%s: %w", h.infoPath, err)
		}
	}
	listenAddr := func(name string) string {
		if info, ok := prev.Registries[name]; ok && info.Host != "" {
			return info.Host
		}
		return net.JoinHostPort(listenIP, "0")
	}
	defer func() {
		if err != nil {
			h.Close(opts.Dir == "") // remove only a directory we invented
			h = nil
		}
	}()

	var tr *tracer
	if opts.TraceFile != "" {
		f, err := os.OpenFile(opts.TraceFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return h, fmt.Errorf("trace file: %w", err)
		}
		h.closers = append(h.closers, f)
		tr = &tracer{w: f}
	}

	// Users: the same two accounts exist on the token issuer and in the
	// htpasswd file.
	adminPass, readerPass := randomHex(12), randomHex(12)
	if info, ok := prev.Registries[regBackupBasic]; ok && info.Password != "" && info.Reader != nil {
		adminPass, readerPass = info.Password, info.Reader.Password
	}

	// Token issuer.
	pki, err := newTokenPKI()
	if err != nil {
		return h, err
	}
	caPath := filepath.Join(dir, "pki", "token-ca.pem")
	if err := writeFile(caPath, pki.caPEM); err != nil {
		return h, err
	}
	issuer := &tokenServer{
		pki:           pki,
		passwords:     map[string]string{"admin": adminPass, "reader": readerPass},
		roles:         map[string]userRole{"admin": roleAdmin, "reader": roleReader},
		refreshTokens: map[string]string{},
		ttl:           opts.TokenTTL,
		tokeninfo:     opts.Tokeninfo,
	}
	if opts.Tokeninfo != "" {
		issuer.roles[oauth2User] = roleAdmin
	}
	issuerListen := net.JoinHostPort(h.listenIP, "0")
	if u, err := url.Parse(prev.TokenServer); err == nil && u.Host != "" {
		issuerListen = u.Host
	}
	issuerAddr, err := h.serveOn(issuerListen, issuerName, tr.wrap(issuerName, issuer))
	if err != nil {
		return h, err
	}
	realm := "http://" + issuerAddr + "/token"

	// htpasswd for backup-basic. MinCost because basic auth re-hashes the
	// password on every request, and the default cost makes that slow.
	var htpasswd strings.Builder
	for _, u := range []credentials{{"admin", adminPass}, {"reader", readerPass}} {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.MinCost)
		if err != nil {
			return h, err
		}
		fmt.Fprintf(&htpasswd, "%s:%s\n", u.Username, hash)
	}
	htpasswdPath := filepath.Join(dir, "auth", "htpasswd")
	if err := writeFile(htpasswdPath, []byte(htpasswd.String())); err != nil {
		return h, err
	}

	reader := &credentials{Username: "reader", Password: readerPass}
	regs := []struct {
		name string
		auth configuration.Auth
		info registryInfo
	}{
		{regSource, nil, registryInfo{Auth: "none"}},
		{regBackup, configuration.Auth{"token": configuration.Parameters{
			"realm":          realm,
			"service":        tokenService,
			"issuer":         tokenIssuer,
			"rootcertbundle": caPath,
		}}, registryInfo{Auth: "token", Username: "admin", Password: adminPass, Realm: realm, Service: tokenService, Reader: reader}},
		{regBackupBasic, configuration.Auth{"htpasswd": configuration.Parameters{
			"realm": "harness-basic",
			"path":  htpasswdPath,
		}}, registryInfo{Auth: "basic", Username: "admin", Password: adminPass, Reader: reader}},
	}

	installLogRouter()
	h.info = registriesFile{Registries: map[string]registryInfo{}, TokenServer: realm}
	for _, reg := range regs {
		ln, err := net.Listen("tcp", listenAddr(reg.name))
		if err != nil {
			return h, err
		}
		logFile, err := os.OpenFile(filepath.Join(dir, reg.name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			ln.Close()
			return h, err
		}
		h.closers = append(h.closers, logFile)
		logs.route(reg.name, logFile)

		cfg := registryConfig(filepath.Join(dir, reg.name), ln.Addr().String(), reg.auth)
		app, err := newApp(instanceContext(context.Background(), reg.name), cfg)
		if err != nil {
			ln.Close()
			return h, fmt.Errorf("registry %s: %w", reg.name, err)
		}
		h.apps = append(h.apps, app)
		h.serveListener(reg.name, ln, tr.wrap(reg.name, app))

		info := reg.info
		info.Host = ln.Addr().String()
		h.info.Registries[reg.name] = info
	}

	if err := h.startMatrix(tr, listenAddr, realm, caPath, adminPass, reader); err != nil {
		return h, err
	}

	data, err := json.MarshalIndent(h.info, "", "  ")
	if err != nil {
		return h, err
	}
	if err := writeFile(h.infoPath, append(data, '\n')); err != nil {
		return h, err
	}
	return h, nil
}

// registryConfig builds the configuration in code rather than through
// configuration.Parse, which would apply REGISTRY_* environment overrides
// from whatever environment the harness was started in.
func registryConfig(root, addr string, auth configuration.Auth) *configuration.Configuration {
	cfg := &configuration.Configuration{
		Version: configuration.MajorMinorVersion(0, 1),
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": root},
			"delete":     configuration.Parameters{"enabled": true},
			// No background walk of the upload directories.
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
		Auth: auth,
	}
	cfg.Log.Level = "warn"
	cfg.Log.AccessLog.Disabled = true
	cfg.HTTP.Addr = addr
	cfg.HTTP.Secret = randomHex(32)
	// Defaults that configuration.Parse would otherwise fill in.
	cfg.Catalog.MaxEntries = 1000
	cfg.Tags.MaxTags = 1000
	return cfg
}

// newApp wraps handlers.NewApp, which panics on a bad configuration.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// instanceContext tags ctx with the registry name under the key that
// distribution's loggers read ("instance.id", a plain string key in its
// internal dcontext package), so that the log router can send each
// registry's messages to its own file.
func instanceContext(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, "instance.id", name) //nolint:staticcheck // key type dictated by distribution
}

// serveOn listens on addr (an ephemeral port when it ends in :0) and serves handler there.
func (h *harness) serveOn(addr, name string, handler http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	h.serveListener(name, ln, handler)
	return ln.Addr().String(), nil
}

func (h *harness) serveListener(name string, ln net.Listener, handler http.Handler) {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return instanceContext(context.Background(), name) },
	}
	h.servers = append(h.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "regharness serve: %s: %v\n", name, err)
		}
	}()
}

// Close stops the servers, closes files and optionally removes the directory.
func (h *harness) Close(removeDir bool) error {
	// Let in-flight requests finish briefly, then cut whatever is left.
	// Shutdown alone can wait 5 s for connections a client dialled but never
	// used (net/http only treats those as idle after 5 s).
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range h.servers {
		wg.Go(func() {
			if s.Shutdown(ctx) != nil {
				_ = s.Close()
			}
		})
	}
	wg.Wait()
	childCtx, cancelChildren := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelChildren()
	h.stopChildren(childCtx)
	var errs []error
	for _, a := range h.apps {
		_ = a.Shutdown()
	}
	for _, c := range h.closers {
		_ = c.Close()
	}
	if removeDir && h.dir != "" {
		if err := os.RemoveAll(h.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeFile writes data atomically: a temporary file in the same directory,
// then a rename, so a reader never sees a partial file.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ---- request tracing ----

// tracer appends one JSON line per request to a file.
type tracer struct {
	mu sync.Mutex
	w  io.Writer
}

type traceRecord struct {
	Registry string `json:"registry"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	Status   int    `json:"status"`
}

// wrap returns handler unchanged when tracing is off (nil tracer).
func (t *tracer) wrap(name string, handler http.Handler) http.Handler {
	if t == nil {
		return handler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		sw.record = func(status int) {
			t.write(traceRecord{Registry: name, Method: r.Method, Path: r.URL.Path, Status: status})
		}
		handler.ServeHTTP(sw, r)
		if !sw.written {
			// The handler wrote nothing; net/http will send a bare 200.
			sw.written = true
			sw.record(http.StatusOK)
		}
	})
}

func (t *tracer) write(rec traceRecord) {
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = t.w.Write(append(b, '\n'))
}

// statusWriter records the status of a response. The record is written when
// the status is first known, before any byte reaches the client, so a client
// that has seen the response can rely on the trace line being in the file.
type statusWriter struct {
	http.ResponseWriter
	record  func(status int)
	written bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.written {
		w.written = true
		w.record(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ---- log routing ----

// distribution logs through logrus' global logger. logRouter, installed as a
// logrus hook with the normal output discarded, writes each entry to the log
// file of the registry that produced it (DIR/<name>.log), so that stdout stays
// reserved for the READY line and stderr is not flooded with the warnings
// distribution emits for every 401 challenge.
type logRouter struct {
	mu        sync.Mutex
	files     map[string]io.Writer
	formatter logrus.Formatter
}

var (
	logs        = &logRouter{files: map[string]io.Writer{}, formatter: &logrus.TextFormatter{TimestampFormat: time.RFC3339Nano, DisableColors: true}}
	installOnce sync.Once
)

func installLogRouter() {
	installOnce.Do(func() {
		logrus.SetLevel(logrus.WarnLevel)
		logrus.SetOutput(io.Discard)
		logrus.AddHook(logs)
	})
}

func (l *logRouter) route(name string, w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.files[name] = w
}

func (l *logRouter) Levels() []logrus.Level { return logrus.AllLevels }

func (l *logRouter) Fire(e *logrus.Entry) error {
	name, _ := e.Data["instance.id"].(string)
	b, err := l.formatter.Format(e)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.files[name]
	if !ok {
		// Package-level logging in distribution carries no registry name.
		// (Per-request errors are not mirrored to stderr: distribution logs
		// every 404 and 401 answer at error level.)
		w = os.Stderr
	}
	_, err = w.Write(b)
	return err
}
