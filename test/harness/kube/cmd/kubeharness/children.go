package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// child is a control-plane process. Its output goes to a log file so that stdout stays reserved
// for the READY line.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func startChild(name, bin string, args []string, logPath string) (*child, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s binary missing (%v): build the harness first (npm run harness:build)", name, err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the harness is killed outright, the kernel kills the children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

func startAPIServer(ctx context.Context, binDir, dir string, pki *PKI, etcdURL string) (*child, string, error) {
	// A port picked by listening on :0 can be taken by someone else before the API server binds it:
	// retry with a new port when the child dies early.
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return nil, "", err
		}
		server := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
		// Every request is recorded (metadata only), so tests can prove what a run did or did not do.
		policy := filepath.Join(dir, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
			return nil, "", err
		}
		args := []string{
			"--audit-policy-file=" + policy,
			"--audit-log-path=" + filepath.Join(dir, "audit.log"),
			"--audit-log-mode=blocking",
			"--audit-log-format=json",
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			// Without these two, the API server looks for a default route and tries to publish a
			// loopback address in the kubernetes Endpoints; both fail on an isolated machine.
			"--advertise-address=127.0.0.1",
			"--endpoint-reconciler-type=none",
			"--tls-cert-file=" + pki.servingCert,
			"--tls-private-key-file=" + pki.servingKey,
			"--client-ca-file=" + pki.caCert,
			"--authorization-mode=Node,RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pki.saKey,
			"--service-account-signing-key-file=" + pki.saKey,
			"--service-cluster-ip-range=10.0.0.0/24",
			"--allow-privileged=true",
			// For the test node (logs, exec): reach kubelet by its InternalIP (a Hostname address would
			// need a DNS lookup, which leaves the machine) and authenticate with the admin certificate.
			"--kubelet-preferred-address-types=InternalIP",
			"--kubelet-client-certificate=" + pki.adminCert,
			"--kubelet-client-key=" + pki.adminKey,
			"--profiling=false",
			"--v=1",
		}
		api, err := startChild("kube-apiserver", filepath.Join(binDir, "kube-apiserver"), args,
			filepath.Join(dir, "kube-apiserver.log"))
		if err != nil {
			return nil, "", err
		}
		err = waitFor(ctx, 120*time.Second, api, "kube-apiserver /readyz", func(context.Context) bool {
			return apiReady(server, pki)
		})
		if err == nil {
			return api, server, nil
		}
		stopChildren([]*child{api}, 5*time.Second)
		if attempt == 3 {
			return nil, "", err
		}
	}
}

// auditPolicy records who did what to which object, without request or response bodies.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

func startControllerManager(binDir, dir, kubeconfig string, pki *PKI, controllers string) (*child, error) {
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--secure-port=0", // no serving endpoint of its own, so it needs no authn/authz setup
		"--use-service-account-credentials=false",
		"--root-ca-file=" + pki.caCert,
		"--controllers=" + controllers,
		"--v=1",
	}
	return startChild("kube-controller-manager", filepath.Join(binDir, "kube-controller-manager"), args,
		filepath.Join(dir, "kube-controller-manager.log"))
}

// stopChildren stops the children in reverse order of start: SIGTERM, then SIGKILL after grace.
func stopChildren(children []*child, grace time.Duration) {
	for i := len(children) - 1; i >= 0; i-- {
		c := children[i]
		select {
		case <-c.done:
			continue
		default:
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

// firstExit reports the first child that exits.
func firstExit(children []*child) <-chan *child {
	out := make(chan *child, len(children))
	for _, c := range children {
		go func() { <-c.done; out <- c }()
	}
	return out
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
