package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The issuer takes oauth2accesstoken only with a token the tokeninfo endpoint vouches for.
func TestOAuth2Tokeninfo(t *testing.T) {
	info := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("access_token") {
		case "live":
			w.WriteHeader(http.StatusOK)
		case "denied":
			w.WriteHeader(http.StatusForbidden)
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer info.Close()
	pki, err := newTokenPKI()
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{pki: pki, passwords: map[string]string{}, roles: map[string]userRole{oauth2User: roleAdmin},
		refreshTokens: map[string]string{}, tokeninfo: info.URL}
	for _, c := range []struct {
		user, token string
		want        int
	}{
		{oauth2User, "live", http.StatusOK},
		{oauth2User, "denied", http.StatusForbidden},
		{oauth2User, "expired", http.StatusUnauthorized},
		{"admin", "live", http.StatusUnauthorized},
	} {
		req := httptest.NewRequest(http.MethodGet, "/token?service=harness-registry&scope=repository:a:push", nil)
		req.SetBasicAuth(c.user, c.token)
		rec := httptest.NewRecorder()
		ts.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s:%s: status %d, want %d", c.user, c.token, rec.Code, c.want)
		}
	}
	// Without --oauth2-tokeninfo the user does not exist.
	ts.tokeninfo = ""
	req := httptest.NewRequest(http.MethodGet, "/token", nil)
	req.SetBasicAuth(oauth2User, "live")
	rec := httptest.NewRecorder()
	ts.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("without tokeninfo: status %d, want 401", rec.Code)
	}
}
