package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI holds the paths of the certificates and keys the control plane uses. Everything is ECDSA
// P-256, made fresh for each run, valid for two days.
type PKI struct {
	caCert, caKey           string
	servingCert, servingKey string
	adminCert, adminKey     string
	saKey                   string
}

func makePKI(dir string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &PKI{
		caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"),
		servingCert: filepath.Join(dir, "serving.crt"), servingKey: filepath.Join(dir, "serving.key"),
		adminCert: filepath.Join(dir, "admin.crt"), adminKey: filepath.Join(dir, "admin.key"),
		saKey: filepath.Join(dir, "sa.key"),
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "kubeharness-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caKey, caDER, err := issue(caTmpl, nil, nil)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)

	// Node's TLS checks SANs, so the IP SAN is what lets clients connect to https://127.0.0.1:PORT.
	servingTmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	servingKey, servingDER, err := issue(servingTmpl, ca, caKey)
	if err != nil {
		return nil, err
	}
	// system:masters bypasses RBAC: this identity is the harness's cluster admin.
	adminTmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: "harness-admin", Organization: []string{"system:masters"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	adminKey, adminDER, err := issue(adminTmpl, ca, caKey)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}

	for _, f := range []struct {
		path string
		der  []byte
		kind string
	}{
		{p.caCert, caDER, "CERTIFICATE"},
		{p.servingCert, servingDER, "CERTIFICATE"},
		{p.adminCert, adminDER, "CERTIFICATE"},
		{p.caKey, mustKeyDER(caKey), "EC PRIVATE KEY"},
		{p.servingKey, mustKeyDER(servingKey), "EC PRIVATE KEY"},
		{p.adminKey, mustKeyDER(adminKey), "EC PRIVATE KEY"},
		{p.saKey, mustKeyDER(saKey), "EC PRIVATE KEY"},
	} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der}), 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// issue makes a key and a certificate for tmpl, signed by parent (self-signed when parent is nil).
func issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	return key, der, err
}

func mustKeyDER(k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err) // only fails for keys on unsupported curves, never for P-256
	}
	return der
}
