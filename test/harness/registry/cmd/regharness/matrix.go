package main

// The registry matrix: implementations other than the harness's distribution
// v3, so that image-clone's copy and referrer tests run against more than one
// registry's reading of the spec.
//
//	ggcr          go-containerregistry's pkg/registry (in process): referrers API
//	              (computed from the stored manifests), no OCI-Subject header, no auth
//	olareg        github.com/olareg/olareg (in process): referrers API with
//	              OCI-Subject, a stored referrers index per subject, no auth
//	distribution2 Debian's docker-registry package (distribution 2.8, a child
//	              process): no referrers API, token auth from the harness issuer

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/olareg/olareg"
	olaconfig "github.com/olareg/olareg/config"
)

const (
	regGGCR          = "ggcr"
	regOlareg        = "olareg"
	regDistribution2 = "distribution2"
)

// distribution2Binary is Debian's docker-registry; .ci/run installs the package.
const distribution2Binary = "docker-registry"

// listenAddr gives the address of a registry of an earlier run on the same folder (a restart keeps
// them), else 127.0.0.1:0.
func (h *harness) startMatrix(tr *tracer, listenAddr func(name string) string, realm, caPath, adminPass string, reader *credentials) error {
	// go-containerregistry's registry keeps manifests in memory; blobs go to disk.
	blobDir := filepath.Join(h.dir, regGGCR)
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return err
	}
	ggcr := ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.WithBlobHandler(ggcrregistry.NewDiskBlobHandler(blobDir)),
		ggcrregistry.Logger(discardLogger()))
	addr, err := h.serveOn(listenAddr(regGGCR), regGGCR, tr.wrap(regGGCR, ggcr))
	if err != nil {
		return err
	}
	h.info.Registries[regGGCR] = registryInfo{Host: addr, Auth: "none"}

	ola := olareg.New(olaconfig.Config{Storage: olaconfig.ConfigStorage{StoreType: olaconfig.StoreDir, RootDir: filepath.Join(h.dir, regOlareg)}})
	h.closers = append(h.closers, ola)
	if addr, err = h.serveOn(listenAddr(regOlareg), regOlareg, tr.wrap(regOlareg, ola)); err != nil {
		return err
	}
	h.info.Registries[regOlareg] = registryInfo{Host: addr, Auth: "none"}

	if addr, err = h.startDistribution2(listenAddr(regDistribution2), realm, caPath); err != nil {
		return err
	}
	h.info.Registries[regDistribution2] = registryInfo{Host: addr, Auth: "token", Username: "admin", Password: adminPass, Realm: realm, Service: tokenService, Reader: reader}
	return nil
}

// startDistribution2 runs Debian's docker-registry with a generated
// configuration (token auth from the harness issuer), and waits for it to answer.
func (h *harness) startDistribution2(listen, realm, caPath string) (string, error) {
	bin, err := exec.LookPath(distribution2Binary)
	if err != nil {
		return "", fmt.Errorf("registry %s: %s not found on PATH: install Debian's docker-registry package (apt-get install docker-registry)", regDistribution2, distribution2Binary)
	}
	// The child listens itself: find a free port (or take the earlier run's) and hand it over.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	root := filepath.Join(h.dir, regDistribution2)
	config := fmt.Sprintf(`version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %q}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: %q, secret: %q}
auth:
  token: {realm: %q, service: %q, issuer: %q, rootcertbundle: %q}
`, root, addr, randomHex(32), realm, tokenService, tokenIssuer, caPath)
	configPath := filepath.Join(h.dir, regDistribution2+".yml")
	if err := writeFile(configPath, []byte(config)); err != nil {
		return "", err
	}
	logFile, err := os.OpenFile(filepath.Join(h.dir, regDistribution2+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	h.closers = append(h.closers, logFile)
	cmd := exec.Command(bin, "serve", configPath)
	// No REGISTRY_* overrides from the environment; the child dies with us.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "OTEL_SDK_DISABLED=true"}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("registry %s: %w", regDistribution2, err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(done)
	}()
	h.children = append(h.children, child{cmd: cmd, done: done})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return addr, nil
			}
		}
		select {
		case err := <-exited:
			return "", fmt.Errorf("registry %s exited before it answered (%v); see %s.log", regDistribution2, err, regDistribution2)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("registry %s did not answer within 30s; see %s.log", regDistribution2, regDistribution2)
		}
	}
}

// child is a registry running as a process of its own.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
}

// stopChildren sends SIGTERM, and SIGKILL to whatever has not exited when ctx ends.
func (h *harness) stopChildren(ctx context.Context) {
	for _, c := range h.children {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range h.children {
		select {
		case <-c.done:
		case <-ctx.Done():
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
