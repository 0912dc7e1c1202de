package main

// A small Docker registry token issuer (https://distribution.github.io/distribution/spec/auth/token/).
//
// Tokens are ES256 JWTs. The header carries x5c = [signing cert, CA cert];
// the registries trust the CA through their rootcertbundle, so distribution
// verifies the chain and then the signature with the leaf's key.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	tokenIssuer  = "harness-issuer"
	tokenService = "harness-registry"
	tokenTTL     = 15 * time.Minute
)

// tokenPKI is a self-signed CA plus a token signing certificate issued by it.
type tokenPKI struct {
	caPEM  []byte // written to disk as the registries' rootcertbundle
	signer jose.Signer
}

func newTokenPKI() (*tokenPKI, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "regharness token CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: tokenIssuer},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}

	x5c := []string{base64.StdEncoding.EncodeToString(leafDER), base64.StdEncoding.EncodeToString(caDER)}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("x5c", x5c))
	if err != nil {
		return nil, err
	}
	return &tokenPKI{
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		signer: signer,
	}, nil
}

// userRole decides what a user may do.
type userRole int

const (
	roleAnonymous userRole = iota // nothing at all
	roleReader                    // pull on every repository
	roleAdmin                     // every action on every repository, plus the catalog
)

// tokenServer serves /token.
type tokenServer struct {
	pki       *tokenPKI
	passwords map[string]string   // user -> password
	roles     map[string]userRole // user -> role

	mu            sync.Mutex
	refreshTokens map[string]string // OAuth2 refresh token -> user

	ttl time.Duration // how long a registry accepts a token; 0 means tokenTTL

	tokeninfo string // where oauth2accesstoken's access tokens are checked; "" refuses that user
}

// registryLeeway is the clock skew distribution accepts on a token's exp: it takes a token until
// 60 s after its exp. A short lifetime is signed with exp that much earlier, so that the registry
// itself refuses the token once the lifetime is over.
const registryLeeway = 60 * time.Second

// resourceActions is one entry of the JWT "access" claim.
type resourceActions struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// tokenClaims is the JWT claim set that distribution's token access
// controller expects.
type tokenClaims struct {
	Issuer    string             `json:"iss"`
	Subject   string             `json:"sub"`
	Audience  string             `json:"aud"`
	Expiry    int64              `json:"exp"`
	NotBefore int64              `json:"nbf"`
	IssuedAt  int64              `json:"iat"`
	ID        string             `json:"jti"`
	Access    []*resourceActions `json:"access"`
}

type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		ts.serveGet(w, r)
	case http.MethodPost:
		ts.servePost(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		tokenError(w, http.StatusMethodNotAllowed, "unsupported", "method not allowed")
	}
}

// serveGet implements the classic Docker token request: optional Basic
// credentials, service and repeated scope parameters.
func (ts *tokenServer) serveGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	user := ""
	if u, p, ok := r.BasicAuth(); ok {
		if ts.deniedAccessToken(w, u, p) {
			return
		}
		if !ts.checkPassword(u, p) {
			w.Header().Set("WWW-Authenticate", `Basic realm="harness-token"`)
			tokenError(w, http.StatusUnauthorized, "unauthorized", "invalid username or password")
			return
		}
		user = u
	}
	refresh := ""
	if user != "" && q.Get("offline_token") == "true" {
		refresh = ts.newRefreshToken(user)
	}
	ts.issue(w, user, q.Get("service"), q["scope"], refresh)
}

// servePost implements the OAuth2 form used by containerd and by docker with
// identity tokens: grant_type=password or grant_type=refresh_token.
func (ts *tokenServer) servePost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	f := r.PostForm
	var user string
	switch f.Get("grant_type") {
	case "password":
		user = f.Get("username")
		if ts.deniedAccessToken(w, user, f.Get("password")) {
			return
		}
		if !ts.checkPassword(user, f.Get("password")) {
			tokenError(w, http.StatusUnauthorized, "invalid_grant", "invalid username or password")
			return
		}
	case "refresh_token":
		ts.mu.Lock()
		u, ok := ts.refreshTokens[f.Get("refresh_token")]
		ts.mu.Unlock()
		if !ok {
			tokenError(w, http.StatusUnauthorized, "invalid_grant", "unknown refresh token")
			return
		}
		user = u
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be password or refresh_token")
		return
	}
	refresh := ""
	switch {
	case f.Get("grant_type") == "refresh_token":
		refresh = f.Get("refresh_token") // echo it back so the client keeps using it
	case f.Get("access_type") == "offline":
		refresh = ts.newRefreshToken(user)
	}
	ts.issue(w, user, f.Get("service"), f["scope"], refresh)
}

func (ts *tokenServer) checkPassword(user, pass string) bool {
	if user == oauth2User && ts.tokeninfo != "" {
		return checkAccessToken(ts.tokeninfo, pass) == verdictValid
	}
	want, ok := ts.passwords[user]
	return ok && pass == want
}

// deniedAccessToken answers 403 (and returns true) for a live access token whose identity may not
// use the registry.
func (ts *tokenServer) deniedAccessToken(w http.ResponseWriter, user, pass string) bool {
	if user != oauth2User || ts.tokeninfo == "" || checkAccessToken(ts.tokeninfo, pass) != verdictDenied {
		return false
	}
	writeDenied(w)
	return true
}

func (ts *tokenServer) newRefreshToken(user string) string {
	t := randomHex(24)
	ts.mu.Lock()
	ts.refreshTokens[t] = user
	ts.mu.Unlock()
	return t
}

// issue signs a token for user (empty = anonymous) that grants the requested
// scopes filtered by the user's role.
func (ts *tokenServer) issue(w http.ResponseWriter, user, service string, scopes []string, refresh string) {
	if service == "" {
		service = tokenService
	}
	now := time.Now()
	ttl, expiry := tokenTTL, now.Add(tokenTTL)
	if ts.ttl > 0 && ts.ttl < tokenTTL {
		ttl, expiry = ts.ttl, now.Add(ts.ttl-registryLeeway)
	}
	claims := tokenClaims{
		Issuer:    tokenIssuer,
		Subject:   user,
		Audience:  service,
		Expiry:    expiry.Unix(),
		NotBefore: now.Add(-10 * time.Second).Unix(),
		IssuedAt:  now.Unix(),
		ID:        randomHex(16),
		Access:    grant(ts.roles[user], scopes),
	}
	tok, err := jwt.Signed(ts.pki.signer).Claims(claims).Serialize()
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(tokenResponse{
		Token:        tok,
		AccessToken:  tok,
		ExpiresIn:    int(ttl / time.Second),
		IssuedAt:     now.UTC().Format(time.RFC3339),
		RefreshToken: refresh,
	})
}

// grant parses scope parameters ("type[(class)]:name:action,action", several
// of them possibly space-separated in one parameter) and returns the access
// list: for each resource, the requested actions that role allows. Resources
// with nothing granted are left out, so an anonymous user gets an empty list
// and the registry answers 401 insufficient_scope.
func grant(role userRole, scopes []string) []*resourceActions {
	access := []*resourceActions{} // marshal as [] rather than null
	byResource := map[string]*resourceActions{}
	for _, param := range scopes {
		for _, scope := range strings.Fields(param) {
			typ, rest, ok1 := strings.Cut(scope, ":")
			i := strings.LastIndex(rest, ":")
			if !ok1 || i < 0 {
				continue // malformed scope: grant nothing for it
			}
			name, actions := rest[:i], strings.Split(rest[i+1:], ",")
			if j := strings.Index(typ, "("); j >= 0 { // "repository(plugin)" -> "repository"
				typ = typ[:j]
			}
			for _, a := range actions {
				if a == "" || !allowed(role, typ, a) {
					continue
				}
				key := typ + ":" + name
				ra := byResource[key]
				if ra == nil {
					ra = &resourceActions{Type: typ, Name: name}
					byResource[key] = ra
					access = append(access, ra)
				}
				if !slices.Contains(ra.Actions, a) {
					ra.Actions = append(ra.Actions, a)
				}
			}
		}
	}
	return access
}

func allowed(role userRole, typ, action string) bool {
	switch role {
	case roleAdmin:
		return typ == "repository" || typ == "registry"
	case roleReader:
		return typ == "repository" && action == "pull"
	default:
		return false
	}
}

// tokenError writes an OAuth2-style JSON error.
func tokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": msg})
}

func randomHex(nbytes int) string {
	b := make([]byte, nbytes)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never happens on Linux
	}
	return hex.EncodeToString(b)
}
