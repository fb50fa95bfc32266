package delivery

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/idna"
)

// Signer signs report mail with DKIM (RFC 6376) for Domain, with the key
// published at Selector._domainkey.Domain.
//
// The signature is relaxed/relaxed (c=), SHA-256, with no body length
// (l=) and no expiry (x=), so that it survives the re-folding and
// whitespace changes relays make and cannot be extended by appended text.
// Its h= is built from the message being signed: every field present
// except trace and signature fields (Received, Return-Path,
// DKIM-Signature, ARC-*, Authentication-Results), each listed once more
// than it occurs, and Reply-To, Cc, Sender, In-Reply-To and References
// listed although absent. That over-signing (RFC 6376 §8.15) means no
// field in h= can be added by anyone without breaking the signature: no
// second From, no second Subject with another Report-ID, no second
// Content-Type, no Reply-To.
type Signer struct {
	Domain, Selector string
	// Key is an *rsa.PrivateKey (rsa-sha256, at least 1024 bits, RFC 8301)
	// or an ed25519.PrivateKey (ed25519-sha256, RFC 8463), as LoadKey
	// returns.
	Key crypto.Signer
}

// unsignedFields are the fields left out of h=: trace fields added on the
// way, and signatures and results that may be added or replaced.
var unsignedFields = map[string]bool{
	"received": true, "return-path": true, "delivered-to": true,
	"dkim-signature": true, "domainkey-signature": true,
	"arc-seal": true, "arc-message-signature": true, "arc-authentication-results": true,
	"authentication-results": true,
}

// absentSigned are fields signed even when absent, so that none can be
// added (RFC 6376 §5.4.1 recommends signing them).
var absentSigned = []string{"Reply-To", "Cc", "Sender", "In-Reply-To", "References"}

// Sign writes to w the message read from r with a DKIM-Signature field
// prepended. When r is an io.ReadSeeker (an *os.File of the composed
// report, say) it is read twice and not held in memory; otherwise it is
// buffered once.
func (s Signer) Sign(w io.Writer, r io.Reader) error {
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err == nil {
			sig, err := Signatures(rs, s)
			if err != nil {
				return err
			}
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return fmt.Errorf("dkim sign: rewind message: %w", err)
			}
			if _, err := io.WriteString(w, sig); err != nil {
				return err
			}
			_, err = io.Copy(w, rs)
			return err
		}
	}
	var buf bytes.Buffer
	sig, err := Signatures(io.TeeReader(r, &buf), s)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, sig); err != nil {
		return err
	}
	_, err = buf.WriteTo(w)
	return err
}

// Signature reads the message from r and returns the DKIM-Signature field
// to prepend to it, name, folded value and final CRLF.
func (s Signer) Signature(r io.Reader) (string, error) {
	return Signatures(r, s)
}

// Signatures reads the message from r once and returns a DKIM-Signature
// field by each signer, to prepend to the message in that order. Signing
// with both an RSA and an Ed25519 key is what RFC 8463 §4 advises while
// verifiers without Ed25519 remain.
func Signatures(r io.Reader, signers ...Signer) (string, error) {
	if len(signers) == 0 {
		return "", errors.New("dkim sign: no signer")
	}
	br := bufio.NewReader(r)
	header, names, err := readHeader(br)
	if err != nil {
		return "", fmt.Errorf("dkim sign: %w", err)
	}
	if !hasField(names, "from") {
		return "", errors.New("dkim sign: the message has no From field")
	}
	keys := headerKeys(names)

	dsigners := make([]*dkim.Signer, 0, len(signers))
	writers := make([]io.Writer, 0, len(signers))
	defer func() {
		for _, d := range dsigners {
			d.Close()
		}
	}()
	for _, s := range signers {
		opts, err := s.options(keys)
		if err != nil {
			return "", err
		}
		d, err := dkim.NewSigner(opts)
		if err != nil {
			return "", fmt.Errorf("dkim sign %s: %w", s.Domain, err)
		}
		dsigners = append(dsigners, d)
		writers = append(writers, d)
	}
	if _, err := io.Copy(io.MultiWriter(writers...), io.MultiReader(bytes.NewReader(header), br)); err != nil {
		return "", fmt.Errorf("dkim sign: %w", err)
	}
	var sigs strings.Builder
	for i, d := range dsigners {
		if err := d.Close(); err != nil {
			return "", fmt.Errorf("dkim sign %s: %w", signers[i].Domain, err)
		}
		sigs.WriteString(d.Signature())
	}
	return sigs.String(), nil
}

func (s Signer) options(keys []string) (*dkim.SignOptions, error) {
	domain := strings.TrimSuffix(s.Domain, ".")
	if !isASCII(domain) {
		a, err := idna.Punycode.ToASCII(domain)
		if err != nil {
			return nil, fmt.Errorf("dkim sign: domain %q: %w", s.Domain, err)
		}
		domain = a
	}
	if _, err := checkDomain(domain); err != nil {
		return nil, fmt.Errorf("dkim sign: domain: %w", err)
	}
	if _, err := checkDomain(s.Selector); err != nil {
		return nil, fmt.Errorf("dkim sign: selector: %w", err)
	}
	if s.Key == nil {
		return nil, fmt.Errorf("dkim sign %s: no key", domain)
	}
	if _, err := keyInfo(s.Key); err != nil {
		return nil, fmt.Errorf("dkim sign %s: %w", domain, err)
	}
	return &dkim.SignOptions{
		Domain:                 domain,
		Selector:               s.Selector,
		Signer:                 s.Key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             keys,
	}, nil
}

// readHeader reads the header block of a message, through the empty line
// that ends it, and returns it as read with the names of its fields in
// order.
func readHeader(br *bufio.Reader) ([]byte, []string, error) {
	var header []byte
	var names []string
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return nil, nil, errors.New("the message ends inside its header")
			}
			return nil, nil, err
		}
		full := errors.Is(err, bufio.ErrBufferFull)
		start := len(header) == 0 || header[len(header)-1] == '\n'
		header = append(header, line...)
		if !start {
			continue // the rest of a line longer than the buffer
		}
		if !full && (string(line) == "\r\n" || string(line) == "\n") {
			return header, names, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // a folded continuation
		}
		name, _, ok := strings.Cut(string(line), ":")
		if !ok {
			return nil, nil, fmt.Errorf("header line without colon: %q", strings.TrimRight(string(line), "\r\n"))
		}
		names = append(names, strings.TrimRight(name, " \t"))
	}
}

// headerKeys returns h= for a message with the given field names: each
// signed name once per occurrence plus once more, then the absent ones.
func headerKeys(names []string) []string {
	count := make(map[string]int)
	var keys, over []string
	for _, n := range names {
		l := strings.ToLower(n)
		if unsignedFields[l] || strings.HasPrefix(l, "arc-") {
			continue
		}
		if count[l] == 0 {
			over = append(over, n)
		}
		count[l]++
		keys = append(keys, n)
	}
	keys = append(keys, over...)
	for _, n := range absentSigned {
		if count[strings.ToLower(n)] == 0 {
			keys = append(keys, n)
		}
	}
	return keys
}

func hasField(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// KeyInfo describes a signing key.
type KeyInfo struct {
	// Algorithm is "rsa" or "ed25519", as in the k= tag of the DNS record.
	Algorithm string
	// Bits is the size of an RSA modulus; 256 for Ed25519.
	Bits int
	// Warnings are reasons to worry that do not stop the key from being
	// used: an RSA key under 2048 bits, which RFC 8301 §3.2 says signers
	// SHOULD NOT use, or over 4096, which verifiers need not accept; a
	// key file anyone can read. Each is a sentence to log.
	Warnings []string
}

// LoadKey reads a DKIM private key from a PEM file: PKCS#1 ("RSA PRIVATE
// KEY"), or PKCS#8 ("PRIVATE KEY") holding an RSA or Ed25519 key, as
// openssl genrsa, openssl genpkey and opendkim-genkey write them. Other
// blocks in the file (certificates, parameters) are skipped. An RSA key
// under 1024 bits is refused (RFC 8301 §3.2: verifiers must not accept
// it); an encrypted key is refused, for there is no one to type a
// passphrase. KeyInfo.Warnings lists what should be logged.
func LoadKey(path string) (crypto.Signer, KeyInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, KeyInfo{}, fmt.Errorf("dkim key: %w", err)
	}
	key, info, err := ParseKey(data)
	if err != nil {
		return nil, KeyInfo{}, fmt.Errorf("dkim key %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o004 != 0 {
		info.Warnings = append(info.Warnings, fmt.Sprintf("%s is readable by every user (mode %v); make it 0600 or 0640", path, fi.Mode().Perm()))
	}
	return key, info, nil
}

// ParseKey is LoadKey on the contents of a PEM file.
func ParseKey(data []byte) (crypto.Signer, KeyInfo, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, KeyInfo{}, errors.New("no PEM private key found (want RSA PRIVATE KEY or PRIVATE KEY)")
		}
		if block.Headers["Proc-Type"] != "" && strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, KeyInfo{}, errors.New("the key is encrypted; store it without a passphrase and protect the file instead")
		}
		var key any
		var err error
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, KeyInfo{}, errors.New("the key is encrypted; store it without a passphrase and protect the file instead")
		case "EC PRIVATE KEY":
			return nil, KeyInfo{}, errors.New("an EC key cannot sign DKIM; use RSA or Ed25519")
		default:
			continue
		}
		if err != nil {
			return nil, KeyInfo{}, fmt.Errorf("%s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, KeyInfo{}, fmt.Errorf("unsupported key type %T", key)
		}
		info, err := keyInfo(signer)
		if err != nil {
			return nil, KeyInfo{}, err
		}
		return signer, info, nil
	}
}

// keyInfo checks that k can sign DKIM and describes it.
func keyInfo(k crypto.Signer) (KeyInfo, error) {
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		info := KeyInfo{Algorithm: "rsa", Bits: pub.N.BitLen()}
		switch {
		case info.Bits < 1024:
			return KeyInfo{}, fmt.Errorf("RSA key of %d bits: verifiers reject keys under 1024 bits (RFC 8301 §3.2); make a 2048-bit key", info.Bits)
		case info.Bits < 2048:
			info.Warnings = append(info.Warnings, fmt.Sprintf("RSA key of %d bits: RFC 8301 §3.2 says signers should use at least 2048", info.Bits))
		case info.Bits > 4096:
			info.Warnings = append(info.Warnings, fmt.Sprintf("RSA key of %d bits: verifiers need only handle up to 4096 (RFC 8301 §3.2), some will fail it", info.Bits))
		}
		return info, nil
	case ed25519.PublicKey:
		return KeyInfo{Algorithm: "ed25519", Bits: 256}, nil
	default:
		return KeyInfo{}, fmt.Errorf("a %T key cannot sign DKIM; use RSA or Ed25519", pub)
	}
}

// DNSRecord returns the DKIM key record (RFC 6376 §3.6.1) to publish as
// TXT at <selector>._domainkey.<domain> for the public key of a signing
// key: "v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>" or "v=DKIM1;
// k=ed25519; p=<raw 32-byte key>" (RFC 8463 §4). An RSA record is longer
// than 255 octets and must be split into several character-strings.
func DNSRecord(pub crypto.PublicKey) (string, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub), nil
	default:
		return "", fmt.Errorf("a %T key cannot sign DKIM", pub)
	}
}
