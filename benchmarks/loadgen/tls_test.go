package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// issue makes a certificate for 127.0.0.1, signed by parent (self-signed when parent is nil: a CA).
func issue(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if parent == nil {
		template.IsCA, template.BasicConstraintsValid = true, true
		template.KeyUsage = x509.KeyUsageCertSign
		parent, parentKey = template, key
	} else {
		template.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, der
}

func writePEM(t *testing.T, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDialVerifiesTheBroker: a broker whose certificate the CA signed is reached over TLS; with another CA, or a
// file holding no certificate, the generator refuses.
func TestDialVerifiesTheBroker(t *testing.T) {
	ca, caKey, caDER := issue(t, nil, nil)
	server, serverKey, serverDER := issue(t, ca, caKey)
	listener, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverDER}, PrivateKey: serverKey, Leaf: server}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			go func() { _ = conn.(*tls.Conn).Handshake(); conn.Close() }()
		}
	}()
	port := listener.Addr().(*net.TCPAddr).Port
	_, _, otherDER := issue(t, nil, nil)
	for name, ca := range map[string][]byte{"the CA": caDER, "another CA": otherDER} {
		config, err := tlsConfig(writePEM(t, ca))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := dial(options{host: "127.0.0.1", port: port, tls: config}, 2*time.Second)
		if (err == nil) != (name == "the CA") {
			t.Errorf("%s: dial error %v", name, err)
		}
		if conn != nil {
			conn.Close()
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.crt")
	_ = os.WriteFile(empty, []byte("not a certificate"), 0o644)
	if _, err := tlsConfig(empty); err == nil {
		t.Error("a CA file without a certificate is accepted")
	}
}
