package main

// End-to-end test of the harness: "serve" runs as a real subprocess (this
// test binary re-executed, see TestMain); seed and verify run in-process
// through run(); go-containerregistry acts as an independent client.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const runMainEnv = "REGHARNESS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	// Re-executed by startServe: behave as the regharness binary.
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// served is a running "regharness serve" subprocess.
type served struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	dir   string
	trace string
	info  registriesFile
	path  string        // registries.json
	done  chan struct{} // closed when the process has exited
	err   error         // exit status, valid after done
}

func startServe(t *testing.T, extraArgs ...string) *served {
	t.Helper()
	base := t.TempDir()
	s := &served{dir: filepath.Join(base, "reg"), trace: filepath.Join(base, "trace.jsonl"), done: make(chan struct{})}
	args := append([]string{"serve", "--dir", s.dir, "--trace-requests", s.trace}, extraArgs...)
	s.cmd = exec.Command(os.Args[0], args...)
	// Hostile REGISTRY_* variables: the harness must not let distribution
	// apply them (it builds its configuration without configuration.Parse).
	s.cmd.Env = append(os.Environ(), runMainEnv+"=1",
		"REGISTRY_STORAGE=inmemory",
		"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/nonexistent/regharness",
		"REGISTRY_AUTH=none",
		"REGISTRY_LOG_LEVEL=debug")
	s.cmd.Stderr = os.Stderr
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.stdin.Close()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
		}
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatal("serve exited before READY")
		}
		path, found := strings.CutPrefix(line, "READY ")
		if !found || !filepath.IsAbs(path) {
			t.Fatalf("first stdout line = %q, want READY <absolute path>", line)
		}
		s.path = path
	case <-time.After(30 * time.Second):
		t.Fatal("serve not ready after 30s")
	}
	go func() { // nothing else may appear on stdout
		for line := range lines {
			t.Errorf("unexpected stdout line from serve: %q", line)
		}
	}()

	data, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &s.info); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *served) host(name string) string { return s.info.Registries[name].Host }

// runCLI runs a subcommand in-process and returns its stdout and exit code.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, nil, &out, &errb)
	if errb.Len() > 0 {
		t.Logf("regharness %s: stderr: %s", args[0], strings.TrimSpace(errb.String()))
	}
	return out.String(), code
}

func mustSeed(t *testing.T, args ...string) seedResult {
	t.Helper()
	out, code := runCLI(t, append([]string{"seed"}, args...)...)
	if code != 0 {
		t.Fatalf("seed %v: exit %d", args, code)
	}
	var res seedResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("seed output %q: %v", out, err)
	}
	return res
}

func runVerify(t *testing.T, args ...string) (verifyResult, int) {
	t.Helper()
	out, code := runCLI(t, append([]string{"verify"}, args...)...)
	var res verifyResult
	if code != exitUsage {
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("verify output %q: %v", out, err)
		}
	}
	return res, code
}

// keychain hands out fixed credentials per registry host.
type keychain map[string]authn.Authenticator

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := k[r.RegistryStr()]; ok {
		return a, nil
	}
	return authn.Anonymous, nil
}

func basicAuth(user, pass string) authn.Authenticator {
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
}

// statusOf extracts the HTTP status from a go-containerregistry error.
func statusOf(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}

func TestHarness(t *testing.T) {
	s := startServe(t)
	src, backup, basic := s.host(regSource), s.host(regBackup), s.host(regBackupBasic)
	bk := s.info.Registries[regBackup]
	bb := s.info.Registries[regBackupBasic]
	admin := basicAuth(bk.Username, bk.Password)
	reader := basicAuth(bk.Reader.Username, bk.Reader.Password)
	kc := keychain{backup: admin, basic: basicAuth(bb.Username, bb.Password)}
	ctx := context.Background()

	t.Run("registries.json", func(t *testing.T) {
		if bk.Auth != "token" || bb.Auth != "basic" || s.info.Registries[regSource].Auth != "none" {
			t.Fatalf("auth kinds: %+v", s.info.Registries)
		}
		if bk.Realm != s.info.TokenServer || bk.Service != tokenService || !strings.HasSuffix(bk.Realm, "/token") {
			t.Fatalf("realm %q service %q tokenServer %q", bk.Realm, bk.Service, s.info.TokenServer)
		}
		for _, r := range s.info.Registries {
			if !strings.HasPrefix(r.Host, "127.0.0.1:") {
				t.Errorf("host %q is not on 127.0.0.1", r.Host)
			}
		}
	})

	var dockerIdx, ociIdx seedResult
	t.Run("seed source", func(t *testing.T) {
		dockerIdx = mustSeed(t, "--ref", src+"/app/docker:v1", "--platforms", "linux/amd64,linux/arm64/v8",
			"--layers", "2", "--layer-size", "64KiB", "--seed", "1", "--format", "docker", "--shared-layers", "1", "--shared-seed", "9")
		ociIdx = mustSeed(t, "--ref", src+"/app/oci:v1", "--platforms", "linux/amd64,linux/arm/v7",
			"--layers", "2", "--layer-size", "64KiB", "--seed", "2", "--format", "oci", "--shared-layers", "1", "--shared-seed", "9")
		single := mustSeed(t, "--ref", src+"/app/single:v1", "--layer-size", "1000", "--seed", "3")
		// Storage went to DIR/<name> despite REGISTRY_STORAGE* in the env.
		if _, err := os.Stat(filepath.Join(s.dir, regSource, "docker", "registry", "v2", "repositories", "app", "docker")); err != nil {
			t.Fatalf("source storage: %v", err)
		}

		if dockerIdx.MediaType != string(types.DockerManifestList) || ociIdx.MediaType != string(types.OCIImageIndex) ||
			single.MediaType != string(types.DockerManifestSchema2) {
			t.Fatalf("media types %s %s %s", dockerIdx.MediaType, ociIdx.MediaType, single.MediaType)
		}
		if len(dockerIdx.Children) != 2 || dockerIdx.Children[1].Platform != "linux/arm64/v8" ||
			len(ociIdx.Children) != 2 || ociIdx.Children[1].Platform != "linux/arm/v7" || len(single.Children) != 0 {
			t.Fatalf("children %+v %+v %+v", dockerIdx.Children, ociIdx.Children, single.Children)
		}
		// 2 configs + 1 shared layer + 2 own layers.
		if len(dockerIdx.Blobs) != 5 {
			t.Fatalf("docker index blobs: %+v", dockerIdx.Blobs)
		}
		var sum int64
		for _, b := range dockerIdx.Blobs {
			sum += b.Size
		}
		if sum != dockerIdx.Bytes {
			t.Fatalf("bytes %d, sum of blobs %d", dockerIdx.Bytes, sum)
		}
		// The shared base layer is the same in both indexes, the own layers are not.
		shared := func(r seedResult) map[string]bool {
			m := map[string]bool{}
			for _, b := range r.Blobs {
				m[b.Digest] = true
			}
			return m
		}
		d, o := shared(dockerIdx), shared(ociIdx)
		common := 0
		for k := range d {
			if o[k] {
				common++
			}
		}
		if common != 1 {
			t.Fatalf("docker and oci indexes share %d blobs, want 1 (the shared base layer)", common)
		}

		// Full validation by go-containerregistry: digests, diffIDs, sizes, and
		// config platform == descriptor platform; media types not mixed.
		for _, tc := range []struct {
			res                  seedResult
			manifestType, layerT types.MediaType
		}{
			{dockerIdx, types.DockerManifestSchema2, types.DockerLayer},
			{ociIdx, types.OCIManifestSchema1, types.OCILayer},
		} {
			ref, _ := name.ParseReference(tc.res.Ref)
			idx, err := remote.Index(ref)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Index(idx); err != nil {
				t.Fatalf("%s: %v", tc.res.Ref, err)
			}
			im, _ := idx.IndexManifest()
			for _, c := range im.Manifests {
				img, _ := idx.Image(c.Digest)
				m, err := img.Manifest()
				if err != nil {
					t.Fatal(err)
				}
				if m.MediaType != tc.manifestType || c.MediaType != tc.manifestType {
					t.Errorf("%s child media type %s / %s", tc.res.Ref, m.MediaType, c.MediaType)
				}
				for _, l := range m.Layers {
					if l.MediaType != tc.layerT {
						t.Errorf("%s layer media type %s", tc.res.Ref, l.MediaType)
					}
				}
			}
		}

		// Deterministic: same flags, same digests.
		again := mustSeed(t, "--ref", src+"/app/docker-again:v1", "--platforms", "linux/amd64,linux/arm64/v8",
			"--layers", "2", "--layer-size", "64KiB", "--seed", "1", "--format", "docker", "--shared-layers", "1", "--shared-seed", "9")
		if again.Digest != dockerIdx.Digest {
			t.Fatalf("same seed gave %s then %s", dockerIdx.Digest, again.Digest)
		}
	})

	smallImage, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("token auth", func(t *testing.T) {
		resp, err := http.Get("http://" + backup + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("Www-Authenticate"), `Bearer realm="`+bk.Realm+`"`) {
			t.Fatalf("anonymous /v2/: %d %q", resp.StatusCode, resp.Header.Get("Www-Authenticate"))
		}

		anonRef, _ := name.ParseReference(backup + "/anon/x:v1")
		if err := remote.Write(anonRef, smallImage, remote.WithAuth(authn.Anonymous)); statusOf(err) != 401 {
			t.Fatalf("anonymous push: want 401, got %v", err)
		}
		readerRef, _ := name.ParseReference(backup + "/reader/x:v1")
		if err := remote.Write(readerRef, smallImage, remote.WithAuth(reader)); statusOf(err) != 401 {
			t.Fatalf("reader push: want 401, got %v", err)
		}
		adminRef, _ := name.ParseReference(backup + "/admin/x:v1")
		if err := remote.Write(adminRef, smallImage, remote.WithAuth(admin)); err != nil {
			t.Fatalf("admin push: %v", err)
		}
		// The seed subcommand through the token challenge, with explicit credentials.
		mustSeed(t, "--ref", backup+"/admin/seeded:v1", "--layer-size", "4KiB", "--username", bk.Username, "--password", bk.Password)
		// ... and refused with the reader's.
		if _, code := runCLI(t, "seed", "--ref", backup+"/admin/seeded:v2", "--layer-size", "4KiB",
			"--username", bk.Reader.Username, "--password", bk.Reader.Password); code == 0 {
			t.Fatal("seed as reader succeeded")
		}
		// The reader can pull, anonymous cannot.
		if _, err := remote.Head(adminRef, remote.WithAuth(reader)); err != nil {
			t.Fatalf("reader pull: %v", err)
		}
		if _, err := remote.Head(adminRef, remote.WithAuth(authn.Anonymous)); statusOf(err) != 401 {
			t.Fatalf("anonymous pull: want 401, got %v", err)
		}
		// Catalog needs registry:catalog:*, which admin gets.
		reg, err := name.NewRegistry(backup)
		if err != nil {
			t.Fatal(err)
		}
		repos, err := remote.Catalog(ctx, reg, remote.WithAuth(admin))
		if err != nil || len(repos) == 0 {
			t.Fatalf("catalog as admin: %v %v", repos, err)
		}
	})

	t.Run("token endpoint", func(t *testing.T) {
		access := func(tok string) []resourceActions {
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("not a JWT: %q", tok)
			}
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Iss    string            `json:"iss"`
				Aud    string            `json:"aud"`
				Access []resourceActions `json:"access"`
			}
			if err := json.Unmarshal(payload, &c); err != nil {
				t.Fatal(err)
			}
			if c.Iss != tokenIssuer || c.Aud != tokenService {
				t.Fatalf("iss %q aud %q", c.Iss, c.Aud)
			}
			return c.Access
		}
		get := func(user, pass string, scopes ...string) (int, tokenResponse) {
			q := url.Values{"service": {tokenService}, "scope": scopes}
			req, _ := http.NewRequest(http.MethodGet, s.info.TokenServer+"?"+q.Encode(), nil)
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var tr tokenResponse
			_ = json.NewDecoder(resp.Body).Decode(&tr)
			return resp.StatusCode, tr
		}

		if code, _ := get("admin", "wrong", "repository:a:pull"); code != 401 {
			t.Fatalf("bad password: %d", code)
		}
		code, tr := get("reader", bk.Reader.Password, "repository:a/b:push,pull")
		if code != 200 || tr.Token == "" || tr.AccessToken != tr.Token || tr.ExpiresIn <= 0 || tr.IssuedAt == "" {
			t.Fatalf("reader token: %d %+v", code, tr)
		}
		if a := access(tr.Token); len(a) != 1 || a[0].Name != "a/b" || strings.Join(a[0].Actions, ",") != "pull" {
			t.Fatalf("reader access: %+v", a)
		}
		_, tr = get("", "", "repository:a/b:pull")
		if a := access(tr.Token); len(a) != 0 {
			t.Fatalf("anonymous access: %+v", a)
		}
		// Two scopes in one parameter, plus the catalog.
		_, tr = get("admin", bk.Password, "repository:a:pull,push repository:b:pull", "registry:catalog:*")
		if a := access(tr.Token); len(a) != 3 || strings.Join(a[0].Actions, ",") != "pull,push" || a[2].Type != "registry" {
			t.Fatalf("admin access: %+v", a)
		}

		// OAuth2 POST: password grant (with a refresh token), then refresh grant.
		post := func(form url.Values) (int, tokenResponse) {
			resp, err := http.PostForm(s.info.TokenServer, form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var tr tokenResponse
			_ = json.NewDecoder(resp.Body).Decode(&tr)
			return resp.StatusCode, tr
		}
		code, tr = post(url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {bk.Password},
			"service": {tokenService}, "scope": {"repository:admin/x:pull"}, "client_id": {"test"}, "access_type": {"offline"}})
		if code != 200 || tr.AccessToken == "" || tr.RefreshToken == "" {
			t.Fatalf("password grant: %d %+v", code, tr)
		}
		code, tr = post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken},
			"service": {tokenService}, "scope": {"repository:admin/x:pull"}, "client_id": {"test"}})
		if code != 200 || len(access(tr.AccessToken)) != 1 {
			t.Fatalf("refresh grant: %d %+v", code, tr)
		}
		// The registry accepts the POST-issued token.
		req, _ := http.NewRequest(http.MethodHead, "http://"+backup+"/v2/admin/x/manifests/v1", nil)
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		req.Header.Set("Accept", manifestAccept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("HEAD with POST-issued token: %d", resp.StatusCode)
		}
		if code, _ := post(url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"nope"}}); code != 401 {
			t.Fatalf("bad password grant: %d", code)
		}
	})

	t.Run("copy and verify", func(t *testing.T) {
		for _, res := range []seedResult{dockerIdx, ociIdx} {
			dst := strings.Replace(res.Ref, src, backup, 1)
			if err := crane.Copy(res.Ref, dst, crane.WithAuthFromKeychain(kc)); err != nil {
				t.Fatal(err)
			}
			got, code := runVerify(t, "--src", res.Ref, "--dst", dst, "--dst-username", bk.Username, "--dst-password", bk.Password)
			if code != 0 || !got.Identical || got.Manifests != 3 || got.Blobs != len(res.Blobs) {
				t.Fatalf("verify %s: exit %d %+v", dst, code, got)
			}
		}
		// Credentials from $REGHARNESS_REGISTRIES, by host; --full re-hashes blobs.
		t.Setenv(registriesEnv, s.path)
		got, code := runVerify(t, "--src", dockerIdx.Ref, "--dst", backup+"/app/docker@"+dockerIdx.Digest, "--full")
		if code != 0 || !got.Identical {
			t.Fatalf("verify --full: exit %d %+v", code, got)
		}
		// Without credentials the destination refuses: a usage/connection error.
		t.Setenv(registriesEnv, "")
		if _, code := runVerify(t, "--src", dockerIdx.Ref, "--dst", backup+"/app/docker:v1"); code != exitUsage {
			t.Fatalf("anonymous verify against token registry: exit %d, want %d", code, exitUsage)
		}
	})

	t.Run("verify finds differences", func(t *testing.T) {
		t.Setenv(registriesEnv, s.path)
		// A different image under the same tag.
		mustSeed(t, "--ref", backup+"/app/docker:v1", "--platforms", "linux/amd64,linux/arm64/v8",
			"--layers", "2", "--layer-size", "64KiB", "--seed", "99", "--format", "docker")
		got, code := runVerify(t, "--src", dockerIdx.Ref, "--dst", backup+"/app/docker:v1")
		if code != 1 || got.Identical || len(got.Differences) == 0 {
			t.Fatalf("changed tag: exit %d %+v", code, got)
		}
		// Missing tag.
		if got, code := runVerify(t, "--src", dockerIdx.Ref, "--dst", backup+"/app/nothing:v1"); code != 1 || got.Identical {
			t.Fatalf("missing tag: exit %d %+v", code, got)
		}
		// Same manifests, but a layer unlinked from the destination
		// repository (it still exists in other repositories).
		layer := ociIdx.Blobs[len(ociIdx.Blobs)-1].Digest
		repo, err := name.NewRepository(backup + "/app/oci")
		if err != nil {
			t.Fatal(err)
		}
		rt, err := transport.NewWithContext(ctx, repo.Registry, admin, http.DefaultTransport, []string{repo.Scope("delete")})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodDelete, "http://"+backup+"/v2/app/oci/blobs/"+layer, nil)
		resp, err := (&http.Client{Transport: rt}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE blob: %d", resp.StatusCode)
		}
		got, code = runVerify(t, "--src", ociIdx.Ref, "--dst", backup+"/app/oci:v1")
		if code != 1 || got.Identical || !strings.Contains(strings.Join(got.Differences, "\n"), layer+" missing in destination repository") {
			t.Fatalf("missing blob: exit %d %+v", code, got)
		}
	})

	t.Run("basic auth", func(t *testing.T) {
		resp, err := http.Get("http://" + basic + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("Www-Authenticate"), "Basic") {
			t.Fatalf("anonymous /v2/: %d %q", resp.StatusCode, resp.Header.Get("Www-Authenticate"))
		}
		ref, _ := name.ParseReference(basic + "/anon/x:v1")
		if err := remote.Write(ref, smallImage, remote.WithAuth(authn.Anonymous)); statusOf(err) != 401 {
			t.Fatalf("anonymous push: want 401, got %v", err)
		}
		if err := remote.Write(ref, smallImage, remote.WithAuth(basicAuth("admin", "wrong"))); statusOf(err) != 401 {
			t.Fatalf("bad password push: want 401, got %v", err)
		}
		dst := basic + "/app/oci:v1"
		if err := crane.Copy(ociIdx.Ref, dst, crane.WithAuthFromKeychain(kc)); err != nil {
			t.Fatal(err)
		}
		got, code := runVerify(t, "--src", ociIdx.Ref, "--dst", dst, "--dst-username", bb.Username, "--dst-password", bb.Password, "--full")
		if code != 0 || !got.Identical {
			t.Fatalf("verify: exit %d %+v", code, got)
		}
	})

	t.Run("seed-fleet", func(t *testing.T) {
		out, code := runCLI(t, "seed-fleet", "--registry", src, "--prefix", "fleet", "--images", "4", "--group-size", "2",
			"--layers", "2", "--layer-size", "8KiB", "--format", "mixed", "--seed", "5")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		base := map[string]string{} // ref -> first layer (the shared one) of the first child
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r seedResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Children) != 2 {
				t.Fatalf("%s: %d children", r.Ref, len(r.Children))
			}
			base[r.Ref] = r.Blobs[1].Digest
		}
		app := func(i int) string { return src + "/fleet/app-" + string(rune('0'+i)) + ":v1" }
		if len(base) != 4 || base[app(1)] != base[app(2)] || base[app(3)] != base[app(4)] || base[app(1)] == base[app(3)] {
			t.Fatalf("base layers: %v", base)
		}
	})

	t.Run("request trace", func(t *testing.T) {
		data, err := os.ReadFile(s.trace)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var rec traceRecord
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("trace line %q: %v", line, err)
			}
			seen[rec.Registry] = true
			seen[rec.Registry+" "+rec.Method] = true
			if rec.Status == 401 {
				seen["401"] = true
			}
		}
		for _, want := range []string{"source PUT", "backup HEAD", "backup-basic PATCH", "issuer GET", "issuer POST", "401"} {
			if !seen[want] {
				t.Errorf("trace has no %q entry", want)
			}
		}
	})

	t.Run("stdin EOF stops serve and removes dir", func(t *testing.T) {
		s.stdin.Close()
		select {
		case <-s.done:
			if s.err != nil {
				t.Fatalf("serve exited with %v", s.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve still running 10s after stdin EOF")
		}
		if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
			t.Fatalf("dir still there: %v", err)
		}
	})
}

func TestServeSIGTERMKeep(t *testing.T) {
	s := startServe(t, "--keep")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
		if s.err != nil {
			t.Fatalf("serve exited with %v", s.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve still running 10s after SIGTERM")
	}
	if _, err := os.Stat(s.path); err != nil {
		t.Fatalf("--keep: %v", err)
	}
}

func TestGrant(t *testing.T) {
	got := grant(roleReader, []string{"repository:a:pull,push", "repository:a:pull", "registry:catalog:*", "repository(plugin):p:pull", "bogus"})
	b, _ := json.Marshal(got)
	want := `[{"type":"repository","name":"a","actions":["pull"]},{"type":"repository","name":"p","actions":["pull"]}]`
	if string(b) != want {
		t.Fatalf("reader grant = %s, want %s", b, want)
	}
	got = grant(roleAdmin, []string{"repository:host:5000/ns/app:push,pull,delete"})
	if len(got) != 1 || got[0].Name != "host:5000/ns/app" || len(got[0].Actions) != 3 {
		t.Fatalf("admin grant = %+v", got)
	}
	if b, _ := json.Marshal(grant(roleAnonymous, []string{"repository:a:pull"})); string(b) != "[]" {
		t.Fatalf("anonymous grant = %s", b)
	}
}

func TestParseHelpers(t *testing.T) {
	for in, want := range map[string]int64{"1000": 1000, "64KiB": 64 << 10, "5MiB": 5 << 20, "1G": 1 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	ps, err := parsePlatforms("linux/amd64, linux/arm64/v8,linux/arm/v7")
	if err != nil || len(ps) != 3 || platformString(ps[1]) != "linux/arm64/v8" || ps[1].Variant != "v8" {
		t.Fatalf("parsePlatforms: %+v %v", ps, err)
	}
	if _, err := parsePlatforms("linux"); err == nil {
		t.Fatal("parsePlatforms accepted \"linux\"")
	}
}
