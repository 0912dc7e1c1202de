// Command kubeharness runs a real Kubernetes control plane on 127.0.0.1 for image-clone's tests:
// an embedded etcd, kube-apiserver and kube-controller-manager as child processes (upstream main
// packages built from k8s.io/kubernetes), RBAC on, ServiceAccount tokens via TokenRequest.
//
// It prints "READY <path of kube.json>" on stdout once the API server is ready and the controllers
// have done their first work, then runs until SIGINT, SIGTERM or EOF on stdin, and cleans up.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// defaultControllers is what image-clone's tests need: namespaces that really go away, default
// ServiceAccounts, filled-in aggregated ClusterRoles, and every workload controller so that a patched
// Deployment really gets a new ReplicaSet.
const defaultControllers = "serviceaccount,namespace,garbagecollector,clusterrole-aggregation,root-ca-cert-publisher," +
	"deployment,replicaset,statefulset,daemonset,job,cronjob,replicationcontroller"

// kubeVersion is stamped into the binaries by the build (ldflags) and reported in kube.json.
const kubeVersion = "v1.36.3"

// Env is what the harness tells its caller, written as kube.json.
type Env struct {
	Kubeconfig string `json:"kubeconfig"`
	Server     string `json:"server"`
	CAFile     string `json:"caFile"`
	K8sVersion string `json:"k8sVersion"`
	// AuditLog has one JSON line per API request (metadata level).
	AuditLog string            `json:"auditLog"`
	Logs     map[string]string `json:"logs"`
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("kubeharness: ")
	dir := flag.String("dir", "", "working folder (default: a new temp folder, removed on exit)")
	binDir := flag.String("bin", "", "folder holding kube-apiserver and kube-controller-manager (default: next to this binary)")
	controllers := flag.String("controllers", defaultControllers, "controllers for kube-controller-manager; empty runs none")
	keep := flag.Bool("keep", false, "keep the working folder on exit")
	flag.Parse()

	if err := run(*dir, *binDir, *controllers, *keep); err != nil {
		log.Fatalf("%v", err)
	}
}

func run(dir, binDir, controllers string, keep bool) error {
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kubeharness-"); err != nil {
			return err
		}
	} else if err = os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	if binDir == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		binDir = filepath.Dir(self)
	}

	ctx, stop := stopContext()
	defer stop()

	pki, err := makePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return fmt.Errorf("making PKI: %w", err)
	}
	etcd, etcdURL, err := startEtcd(filepath.Join(dir, "etcd"))
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	defer etcd.Close()

	var children []*child
	defer func() { stopChildren(children, 10*time.Second) }()

	api, server, err := startAPIServer(ctx, binDir, dir, pki, etcdURL)
	if err != nil {
		return err
	}
	children = append(children, api)

	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, pki); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	client, err := newClient(kubeconfig)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 120*time.Second, api, "namespace default", client.defaultNamespaceExists); err != nil {
		return err
	}

	logs := map[string]string{"apiserver": api.logPath}
	if controllers != "" {
		kcm, err := startControllerManager(binDir, dir, kubeconfig, pki, controllers)
		if err != nil {
			return err
		}
		children = append(children, kcm)
		logs["controllerManager"] = kcm.logPath
		// The first signs that the controllers work: default ServiceAccounts and aggregated roles.
		if strings.Contains(","+controllers+",", ",serviceaccount,") {
			if err := waitFor(ctx, 120*time.Second, kcm, "ServiceAccount default/default", client.defaultServiceAccountExists); err != nil {
				return err
			}
		}
		if strings.Contains(","+controllers+",", ",clusterrole-aggregation,") {
			if err := waitFor(ctx, 120*time.Second, kcm, "aggregated ClusterRole edit", client.editRoleAggregated); err != nil {
				return err
			}
		}
	}

	envPath := filepath.Join(dir, "kube.json")
	env := Env{Kubeconfig: kubeconfig, Server: server, CAFile: pki.caCert, K8sVersion: kubeVersion, AuditLog: filepath.Join(dir, "audit.log"), Logs: logs}
	if err := writeJSONAtomic(envPath, env); err != nil {
		return err
	}
	fmt.Printf("READY %s\n", envPath)

	// Run until told to stop, or until a child dies (then tests would fail in confusing ways).
	select {
	case <-ctx.Done():
		log.Printf("stopping")
		return nil
	case c := <-firstExit(children):
		return fmt.Errorf("%s exited unexpectedly: %v (log: %s)", c.name, c.err, c.logPath)
	}
}

// stopContext is cancelled on SIGINT, SIGTERM or EOF on stdin: the parent closing our stdin (or
// dying) must never leave an API server behind.
func stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx, cancel
}

func waitFor(ctx context.Context, timeout time.Duration, c *child, what string, ready func(context.Context) bool) error {
	deadline := time.Now().Add(timeout)
	for !ready(ctx) {
		select {
		case <-ctx.Done():
			return errors.New("stopped while starting")
		case <-c.done:
			return fmt.Errorf("%s exited while waiting for %s: %v (log: %s)", c.name, what, c.err, c.logPath)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s (log: %s)", timeout, what, c.logPath)
		}
	}
	return nil
}

func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
