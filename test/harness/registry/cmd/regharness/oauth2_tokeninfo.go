package main

// Google's registries (Artifact Registry, gcr.io) take the user `oauth2accesstoken` with an OAuth2
// access token as its password at their token endpoint, and ask Google whether the token is valid
// and whose it is. With --oauth2-tokeninfo URL the issuer does the same: it accepts that user when
// GET URL?access_token=PASSWORD answers 200 (the token is live: the user gets the admin role), and
// answers 403 DENIED, as Artifact Registry does for an identity without permission, when URL
// answers 403. Anything else (an unknown or expired token) is a wrong password.

import (
	"net/http"
	"net/url"
	"time"
)

// oauth2User is the user name Google's registries take with an access token as the password.
const oauth2User = "oauth2accesstoken"

type tokenVerdict int

const (
	verdictRefused tokenVerdict = iota // unknown or expired: 401
	verdictValid                       // live and allowed
	verdictDenied                      // live, but its identity may not use the registry: 403
)

// checkAccessToken asks tokeninfo about an access token.
func checkAccessToken(tokeninfo, token string) tokenVerdict {
	u, err := url.Parse(tokeninfo)
	if err != nil || token == "" {
		return verdictRefused
	}
	q := u.Query()
	q.Set("access_token", token)
	u.RawQuery = q.Encode()
	client := http.Client{Timeout: 5 * time.Second}
	res, err := client.Get(u.String())
	if err != nil {
		return verdictRefused
	}
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return verdictValid
	case http.StatusForbidden:
		return verdictDenied
	default:
		return verdictRefused
	}
}

// writeDenied answers as Artifact Registry's token endpoint does for an identity without permission.
func writeDenied(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"Permission \"artifactregistry.repositories.downloadArtifacts\" denied on resource (or it may not exist)."}]}` + "\n"))
}
