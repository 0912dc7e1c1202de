package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// apiReady asks /readyz with the admin certificate.
func apiReady(server string, pki *PKI) bool {
	caPEM, err := os.ReadFile(pki.caCert)
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(pki.adminCert, pki.adminKey)
	if err != nil {
		return false
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}
	resp, err := hc.Get(server + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func writeKubeconfig(path, server string, pki *PKI) error {
	ca, err := os.ReadFile(pki.caCert)
	if err != nil {
		return err
	}
	cert, err := os.ReadFile(pki.adminCert)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(pki.adminKey)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["harness"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["harness-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["harness"] = &clientcmdapi.Context{Cluster: "harness", AuthInfo: "harness-admin", Namespace: "default"}
	cfg.CurrentContext = "harness"
	return clientcmd.WriteToFile(*cfg, path)
}

type client struct{ cs *kubernetes.Clientset }

func newClient(kubeconfig string) (*client, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &client{cs: cs}, nil
}

func (c *client) defaultNamespaceExists(ctx context.Context) bool {
	_, err := c.cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
	return err == nil
}

func (c *client) defaultServiceAccountExists(ctx context.Context) bool {
	_, err := c.cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
	return err == nil
}

func (c *client) editRoleAggregated(ctx context.Context) bool {
	role, err := c.cs.RbacV1().ClusterRoles().Get(ctx, "edit", metav1.GetOptions{})
	return err == nil && len(role.Rules) > 0
}
