//go:debug rsa1024min=0

package delivery

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The go:debug line above lets the test make keys under 1024 bits, which
// crypto/rsa refuses since Go 1.24, to see LoadKey refuse them itself.

func pemFile(t *testing.T, mode os.FileMode, blocks ...*pem.Block) string {
	t.Helper()
	var data []byte
	for _, b := range blocks {
		data = append(data, pem.EncodeToMemory(b)...)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

func pkcs8(t *testing.T, key any) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

func rsaOf(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	if bits == 2048 {
		return rsaKey()
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoadKeyReadsTheUsualPEMForms(t *testing.T) {
	cert, _ := testCert()
	certDER := cert.Certificate[0]
	tests := []struct {
		name     string
		blocks   func(t *testing.T) []*pem.Block
		algo     string
		bits     int
		warnings int
	}{
		{"PKCS#1 RSA (openssl genrsa, opendkim-genkey)", func(t *testing.T) []*pem.Block {
			return []*pem.Block{{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey())}}
		}, "rsa", 2048, 0},
		{"PKCS#8 RSA (openssl genpkey)", func(t *testing.T) []*pem.Block {
			return []*pem.Block{pkcs8(t, rsaKey())}
		}, "rsa", 2048, 0},
		{"PKCS#8 Ed25519", func(t *testing.T) []*pem.Block {
			return []*pem.Block{pkcs8(t, edKey())}
		}, "ed25519", 256, 0},
		{"a key after a certificate", func(t *testing.T) []*pem.Block {
			return []*pem.Block{{Type: "CERTIFICATE", Bytes: certDER}, pkcs8(t, edKey())}
		}, "ed25519", 256, 0},
		{"RSA-1024 loads with a warning", func(t *testing.T) []*pem.Block {
			return []*pem.Block{{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaOf(t, 1024))}}
		}, "rsa", 1024, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, info, err := LoadKey(pemFile(t, 0o600, tt.blocks(t)...))
			if err != nil {
				t.Fatal(err)
			}
			if info.Algorithm != tt.algo || info.Bits != tt.bits || len(info.Warnings) != tt.warnings {
				t.Errorf("info = %+v, want %s %d bits with %d warnings", info, tt.algo, tt.bits, tt.warnings)
			}
			switch tt.algo {
			case "rsa":
				if _, ok := key.(*rsa.PrivateKey); !ok {
					t.Errorf("key is %T", key)
				}
			case "ed25519":
				if _, ok := key.(ed25519.PrivateKey); !ok {
					t.Errorf("key is %T", key)
				}
			}
			// The key signs a message that verifies.
			s := Signer{Domain: "example.org", Selector: "t", Key: key}
			if _, err := s.Signature(strings.NewReader("From: a@example.org\r\n\r\nx\r\n")); err != nil {
				t.Errorf("the loaded key cannot sign: %v", err)
			}
		})
	}
}

func TestLoadKeyWarnsAboutAKeyFileEveryoneCanRead(t *testing.T) {
	_, info, err := LoadKey(pemFile(t, 0o644, pkcs8(t, edKey())))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "readable by every user") {
		t.Errorf("warnings %q", info.Warnings)
	}
}

func TestLoadKeyRefusesWhatCannotSign(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		blocks func(t *testing.T) []*pem.Block
		want   string
	}{
		{"an RSA key under 1024 bits", func(t *testing.T) []*pem.Block {
			return []*pem.Block{{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaOf(t, 768))}}
		}, "under 1024 bits"},
		{"an EC key in SEC 1 form", func(t *testing.T) []*pem.Block {
			return []*pem.Block{{Type: "EC PRIVATE KEY", Bytes: ecDER}}
		}, "EC key"},
		{"an EC key in PKCS#8", func(t *testing.T) []*pem.Block {
			return []*pem.Block{pkcs8(t, ec)}
		}, "cannot sign DKIM"},
		{"an encrypted PKCS#8 key", func(t *testing.T) []*pem.Block {
			return []*pem.Block{{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0}}}
		}, "encrypted"},
		{"a legacy encrypted PEM key", func(t *testing.T) []*pem.Block {
			return []*pem.Block{{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}}
		}, "encrypted"},
		{"a public key", func(t *testing.T) []*pem.Block {
			der, _ := x509.MarshalPKIXPublicKey(edKey().Public())
			return []*pem.Block{{Type: "PUBLIC KEY", Bytes: der}}
		}, "no PEM private key"},
		{"a damaged key", func(t *testing.T) []*pem.Block {
			return []*pem.Block{{Type: "PRIVATE KEY", Bytes: []byte("not DER")}}
		}, "PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadKey(pemFile(t, 0o600, tt.blocks(t)...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadKey error = %v, want one about %q", err, tt.want)
			}
		})
	}
	t.Run("a file that is not PEM", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "key.pem")
		os.WriteFile(path, []byte("v=DKIM1; k=rsa; p=MIIB"), 0o600)
		if _, _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), "no PEM private key") {
			t.Errorf("LoadKey error = %v", err)
		}
	})
	t.Run("a missing file", func(t *testing.T) {
		if _, _, err := LoadKey(filepath.Join(t.TempDir(), "nothing.pem")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadKey error = %v, want a not-exist error", err)
		}
	})
}
