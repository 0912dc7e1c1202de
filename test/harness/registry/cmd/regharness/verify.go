package main

// "regharness verify": is DST a byte-identical copy of SRC, with every blob
// present in the destination repository itself?
//
// This talks the distribution API directly (GET manifests as raw bytes, HEAD
// blobs) rather than through remote.Image, so that what is compared is
// exactly what a registry serves, and blob existence is checked in the
// destination repository (distribution scopes blobs per repository).

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const verifySynopsis = "regharness verify --src HOST/REPO(:TAG|@DIGEST) --dst HOST/REPO(:TAG|@DIGEST) [--full] [--src-username U --src-password P] [--dst-username U --dst-password P] [--insecure]"

// manifestAccept lists the four manifest types the harness deals in.
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex),
	string(types.DockerManifestList),
	string(types.OCIManifestSchema1),
	string(types.DockerManifestSchema2),
}, ", ")

// maxDifferences caps the list so a wholly wrong copy gives a readable answer.
const maxDifferences = 50

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", verifySynopsis, stderr)
	src := fs.String("src", "", "source image reference (required)")
	dst := fs.String("dst", "", "destination image reference (required)")
	full := fs.Bool("full", false, "also download every destination blob and check its digest and size")
	srcUser := fs.String("src-username", "", "source user (default: from $"+registriesEnv+" by host, else anonymous)")
	srcPass := fs.String("src-password", "", "source password")
	dstUser := fs.String("dst-username", "", "destination user (default: from $"+registriesEnv+" by host, else anonymous)")
	dstPass := fs.String("dst-password", "", "destination password")
	insecure := fs.Bool("insecure", false, "use plain HTTP even for non-loopback hosts")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *src == "" || *dst == "" {
		fmt.Fprintln(stderr, "verify: --src and --dst are required")
		fs.Usage()
		return exitUsage
	}

	ctx := context.Background()
	srcC, srcRef, err := newRegClient(ctx, *src, *srcUser, *srcPass, *insecure)
	if err != nil {
		fmt.Fprintf(stderr, "verify: source: %v\n", err)
		return exitUsage
	}
	dstC, dstRef, err := newRegClient(ctx, *dst, *dstUser, *dstPass, *insecure)
	if err != nil {
		fmt.Fprintf(stderr, "verify: destination: %v\n", err)
		return exitUsage
	}

	res, err := verifyCopy(ctx, srcC, srcRef, dstC, dstRef, *full)
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return exitUsage
	}
	_ = writeJSONLine(stdout, res)
	if !res.Identical {
		return exitDifferent
	}
	return exitOK
}

type verifyResult struct {
	Identical   bool     `json:"identical"`
	Manifests   int      `json:"manifests,omitempty"`
	Blobs       int      `json:"blobs,omitempty"`
	Differences []string `json:"differences,omitempty"`
}

// regClient speaks the distribution API for one repository.
type regClient struct {
	base   string // scheme://host/v2/<repo>
	client *http.Client
}

// newRegClient parses ref and sets up an authenticated transport for its
// repository (pull scope). It returns the tag or digest part of ref.
func newRegClient(ctx context.Context, ref, user, pass string, insecure bool) (*regClient, string, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, "", err
	}
	repo := r.Context()
	auth, err := authFor(repo.RegistryStr(), user, pass)
	if err != nil {
		return nil, "", err
	}
	// NewWithContext pings /v2/ and handles the Basic or Bearer challenge,
	// fetching tokens from the realm as needed.
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, remote.DefaultTransport, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, "", err
	}
	return &regClient{
		base:   fmt.Sprintf("%s://%s/v2/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr()),
		client: &http.Client{Transport: rt},
	}, r.Identifier(), nil
}

var errNotFound = errors.New("not found")

// manifest GETs a manifest by tag or digest and returns its raw bytes and
// Content-Type. A 404 gives errNotFound.
func (c *regClient) manifest(ctx context.Context, ref string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/manifests/"+ref, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, "", err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, resp.Header.Get("Content-Type"), nil
	case http.StatusNotFound:
		return nil, "", errNotFound
	default:
		return nil, "", fmt.Errorf("GET %s: %s: %s", req.URL, resp.Status, strings.TrimSpace(string(body)))
	}
}

// blobSize HEADs a blob and returns its Content-Length, or errNotFound.
func (c *regClient) blobSize(ctx context.Context, d v1.Hash) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.base+"/blobs/"+d.String(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.ContentLength, nil
	case http.StatusNotFound:
		return 0, errNotFound
	default:
		return 0, fmt.Errorf("HEAD %s: %s", req.URL, resp.Status)
	}
}

// blobHash downloads a blob and returns its sha256 and length.
func (c *regClient) blobHash(ctx context.Context, d v1.Hash) (string, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/blobs/"+d.String(), nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return "", 0, errNotFound
	default:
		return "", 0, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil)), n, nil
}

// manifestDoc holds the fields of an image manifest or index that matter here.
type manifestDoc struct {
	MediaType string          `json:"mediaType"`
	Manifests []v1.Descriptor `json:"manifests"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
}

func isIndex(mediaType string, doc *manifestDoc) bool {
	switch types.MediaType(mediaType) {
	case types.OCIImageIndex, types.DockerManifestList:
		return true
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		return false
	}
	return doc.Config == nil && doc.Manifests != nil
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// verifier walks the destination tree and collects differences.
type verifier struct {
	dst         *regClient
	full        bool
	manifests   int
	blobs       map[string]bool // blobs already checked
	differences []string
}

func (v *verifier) differ(format string, a ...any) {
	if len(v.differences) < maxDifferences {
		v.differences = append(v.differences, fmt.Sprintf(format, a...))
	}
}

// verifyCopy compares the two top-level manifests byte for byte, then checks
// that everything they reference exists in the destination repository.
// Errors are reserved for failures to talk to a registry; a missing or
// different destination object is a difference.
func verifyCopy(ctx context.Context, src *regClient, srcRef string, dst *regClient, dstRef string, full bool) (*verifyResult, error) {
	sBody, sType, err := src.manifest(ctx, srcRef)
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("source manifest %s/manifests/%s not found", src.base, srcRef)
	} else if err != nil {
		return nil, err
	}
	v := &verifier{dst: dst, full: full, blobs: map[string]bool{}}

	dBody, dType, err := dst.manifest(ctx, dstRef)
	if errors.Is(err, errNotFound) {
		v.differ("destination manifest %s not found", dstRef)
		return v.result(), nil
	} else if err != nil {
		return nil, err
	}

	sDigest, dDigest := digestOf(sBody), digestOf(dBody)
	if sType != dType {
		v.differ("media type: source %s, destination %s", sType, dType)
	}
	if sDigest != dDigest {
		v.differ("manifest digest: source %s, destination %s", sDigest, dDigest)
		v.explainIndexDifference(sBody, dBody)
		return v.result(), nil
	}
	if err := v.walk(ctx, dBody, dType, dstRef); err != nil {
		return nil, err
	}
	return v.result(), nil
}

func (v *verifier) result() *verifyResult {
	if len(v.differences) > 0 {
		return &verifyResult{Identical: false, Differences: v.differences}
	}
	return &verifyResult{Identical: true, Manifests: v.manifests, Blobs: len(v.blobs)}
}

// explainIndexDifference adds per-child detail when two indexes differ.
func (v *verifier) explainIndexDifference(sBody, dBody []byte) {
	var s, d manifestDoc
	if json.Unmarshal(sBody, &s) != nil || json.Unmarshal(dBody, &d) != nil || s.Manifests == nil || d.Manifests == nil {
		return
	}
	if len(s.Manifests) != len(d.Manifests) {
		v.differ("index children: source has %d, destination %d", len(s.Manifests), len(d.Manifests))
	}
	for i := range min(len(s.Manifests), len(d.Manifests)) {
		if s.Manifests[i].Digest != d.Manifests[i].Digest {
			v.differ("index child %d (%s): source %s, destination %s", i, describePlatform(s.Manifests[i].Platform), s.Manifests[i].Digest, d.Manifests[i].Digest)
		}
	}
}

func describePlatform(p *v1.Platform) string {
	if p == nil {
		return "no platform"
	}
	return platformString(*p)
}

// walk checks one destination manifest (already known to be the right bytes)
// and everything below it.
func (v *verifier) walk(ctx context.Context, body []byte, mediaType, what string) error {
	v.manifests++
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		v.differ("%s: manifest is not valid JSON: %v", what, err)
		return nil
	}
	if isIndex(mediaType, &doc) {
		for _, child := range doc.Manifests {
			label := fmt.Sprintf("child %s (%s)", child.Digest, describePlatform(child.Platform))
			cBody, cType, err := v.dst.manifest(ctx, child.Digest.String())
			if errors.Is(err, errNotFound) {
				v.differ("%s: manifest missing in destination", label)
				continue
			} else if err != nil {
				return err
			}
			if got := digestOf(cBody); got != child.Digest.String() {
				v.differ("%s: destination serves content with digest %s", label, got)
				continue
			}
			if int64(len(cBody)) != child.Size {
				v.differ("%s: size %d, index says %d", label, len(cBody), child.Size)
			}
			if child.MediaType != "" && cType != string(child.MediaType) {
				v.differ("%s: media type %s, index says %s", label, cType, child.MediaType)
			}
			if err := v.walk(ctx, cBody, cType, label); err != nil {
				return err
			}
		}
		return nil
	}

	var blobs []v1.Descriptor
	if doc.Config != nil {
		blobs = append(blobs, *doc.Config)
	}
	blobs = append(blobs, doc.Layers...)
	for _, b := range blobs {
		if err := v.checkBlob(ctx, b, what); err != nil {
			return err
		}
	}
	return nil
}

func (v *verifier) checkBlob(ctx context.Context, b v1.Descriptor, what string) error {
	key := b.Digest.String()
	if v.blobs[key] {
		return nil
	}
	v.blobs[key] = true
	size, err := v.dst.blobSize(ctx, b.Digest)
	if errors.Is(err, errNotFound) {
		v.differ("%s: blob %s missing in destination repository", what, key)
		return nil
	} else if err != nil {
		return err
	}
	if size != b.Size {
		v.differ("%s: blob %s has size %d in destination, manifest says %d", what, key, size, b.Size)
	}
	if !v.full {
		return nil
	}
	got, n, err := v.dst.blobHash(ctx, b.Digest)
	if errors.Is(err, errNotFound) {
		v.differ("%s: blob %s missing in destination repository (GET)", what, key)
		return nil
	} else if err != nil {
		return err
	}
	if got != key || n != b.Size {
		v.differ("%s: blob %s downloads as %s (%d bytes, manifest says %d)", what, key, got, n, b.Size)
	}
	return nil
}
