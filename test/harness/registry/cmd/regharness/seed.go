package main

// "regharness seed" and "regharness seed-fleet": push deterministic random
// images with go-containerregistry, independently of the project's client.
//
// Each layer is a tar holding one file of random bytes drawn from ChaCha8
// keyed by (seed, platform, layer index). Layers are never held in memory:
// a first pass streams the bytes through the hashes to learn digest, diffID
// and size (a manifest needs them before any upload), and the upload
// regenerates the same bytes on the fly.

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const seedSynopsis = "regharness seed --ref HOST/REPO:TAG [--platforms linux/amd64,linux/arm64] [--layers 3] [--layer-size BYTES] [--seed N] [--format docker|oci] [--shared-layers K] [--shared-seed S] [--username U --password P] [--gzip-level L] [--jobs J] [--insecure]"

const seedFleetSynopsis = "regharness seed-fleet --registry HOST [--prefix fleet] [--images 30] [--group-size 5] [--platforms linux/amd64,linux/arm64] [--layers 3] [--layer-size BYTES] [--shared-layers 1] [--seed N] [--format docker|oci|mixed] [--parallel 2] [--username U --password P] [--gzip-level L] [--jobs J] [--insecure]"

// fixedTime is used for every timestamp in generated images so that the same
// seed always gives the same digests.
var fixedTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// seedFlags are the image-shape and connection flags shared by seed and seed-fleet.
type seedFlags struct {
	platforms, format, username, password string
	layers, sharedLayers, gzipLevel, jobs int
	layerSize                             sizeFlag
	seed                                  int64
	insecure                              bool
}

func (f *seedFlags) register(fs *flag.FlagSet, seedHelp, formats, defaultPlatforms string, defaultShared int) {
	fs.StringVar(&f.platforms, "platforms", defaultPlatforms, "comma-separated OS/ARCH[/VARIANT]; more than one pushes an index")
	fs.IntVar(&f.layers, "layers", 3, "layers per image")
	f.layerSize = 1 << 20
	fs.Var(&f.layerSize, "layer-size", "`BYTES` of random data per layer (suffixes KiB, MiB, GiB allowed)")
	fs.Int64Var(&f.seed, "seed", 0, seedHelp)
	fs.StringVar(&f.format, "format", "docker", formats)
	fs.IntVar(&f.sharedLayers, "shared-layers", defaultShared, "the first K layers of every image come from the shared seed")
	fs.StringVar(&f.username, "username", "", "registry user (default: from $"+registriesEnv+" by host, else anonymous)")
	fs.StringVar(&f.password, "password", "", "registry password")
	fs.IntVar(&f.gzipLevel, "gzip-level", gzip.NoCompression, "gzip level for layers: 0 = stored blocks (fastest; random data does not compress anyway), 1 = BestSpeed ... 9")
	fs.IntVar(&f.jobs, "jobs", 4, "concurrent blob uploads per image")
	fs.BoolVar(&f.insecure, "insecure", false, "use plain HTTP even for non-loopback hosts (loopback and private addresses use HTTP anyway)")
}

// options turns the shared flags into seedOptions (without Ref and SharedSeed).
func (f *seedFlags) options(host string) (seedOptions, error) {
	plats, err := parsePlatforms(f.platforms)
	if err != nil {
		return seedOptions{}, err
	}
	switch {
	case f.layers < 0:
		return seedOptions{}, fmt.Errorf("--layers must be >= 0")
	case f.sharedLayers < 0 || f.sharedLayers > f.layers:
		return seedOptions{}, fmt.Errorf("--shared-layers must be between 0 and --layers (%d)", f.layers)
	case f.gzipLevel < gzip.NoCompression || f.gzipLevel > gzip.BestCompression:
		return seedOptions{}, fmt.Errorf("--gzip-level must be between 0 and 9")
	}
	auth, err := authFor(host, f.username, f.password)
	if err != nil {
		return seedOptions{}, err
	}
	return seedOptions{
		Platforms:    plats,
		Layers:       f.layers,
		LayerSize:    int64(f.layerSize),
		Seed:         f.seed,
		Format:       f.format,
		SharedLayers: f.sharedLayers,
		GzipLevel:    f.gzipLevel,
		Auth:         auth,
		Insecure:     f.insecure,
		Jobs:         max(f.jobs, 1),
	}, nil
}

// authFor returns explicit credentials, else those registries.json lists for
// host, else anonymous.
func authFor(host, user, pass string) (authn.Authenticator, error) {
	if user != "" || pass != "" {
		return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}), nil
	}
	c, ok, err := credentialsForHost(host)
	if err != nil {
		return nil, err
	}
	if ok {
		return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password}), nil
	}
	return authn.Anonymous, nil
}

func cmdSeed(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("seed", seedSynopsis, stderr)
	var f seedFlags
	f.register(fs, "seed for the non-shared layers; the same seeds give the same digests",
		"manifest format: docker (schema2, manifest list) or oci (OCI manifest, OCI index)", "linux/amd64", 0)
	ref := fs.String("ref", "", "destination HOST/REPO:TAG (required)")
	sharedSeed := fs.Int64("shared-seed", 0, "seed for the shared layers; images with the same shared seed share them")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *ref == "" {
		fmt.Fprintln(stderr, "seed: --ref is required")
		fs.Usage()
		return exitUsage
	}
	if f.format != "docker" && f.format != "oci" {
		fmt.Fprintln(stderr, "seed: --format must be docker or oci")
		return exitUsage
	}
	r, err := name.ParseReference(*ref)
	if err != nil {
		fmt.Fprintf(stderr, "seed: --ref: %v\n", err)
		return exitUsage
	}
	opts, err := f.options(r.Context().RegistryStr())
	if err != nil {
		fmt.Fprintf(stderr, "seed: %v\n", err)
		return exitUsage
	}
	opts.Ref, opts.SharedSeed = *ref, *sharedSeed

	res, err := seedImage(context.Background(), opts, newLayerCache())
	if err != nil {
		fmt.Fprintf(stderr, "seed: %v\n", err)
		return exitUsage
	}
	if err := writeJSONLine(stdout, res); err != nil {
		fmt.Fprintf(stderr, "seed: %v\n", err)
		return exitDifferent
	}
	return exitOK
}

func cmdSeedFleet(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("seed-fleet", seedFleetSynopsis, stderr)
	var f seedFlags
	f.register(fs, "fleet seed; per-image and per-group seeds are derived from it",
		"docker, oci, or mixed (odd-numbered images docker, even-numbered oci)", "linux/amd64,linux/arm64", 1)
	registry := fs.String("registry", "", "destination registry HOST:PORT (required)")
	prefix := fs.String("prefix", "fleet", "repository prefix: images go to HOST/PREFIX/app-I:v1, I = 1..N")
	images := fs.Int("images", 30, "number of images")
	groupSize := fs.Int("group-size", 5, "images per group; a group shares its base (--shared-layers) layers")
	parallel := fs.Int("parallel", 2, "images pushed concurrently")
	anchorTags := fs.Bool("anchor-tags", false, "also tag each image (and each platform manifest of an index) ic-<algorithm>-<hex>, and seal the image ic-whole-<algorithm>-<hex>, as image-clone holds its copies")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *registry == "" {
		fmt.Fprintln(stderr, "seed-fleet: --registry is required")
		fs.Usage()
		return exitUsage
	}
	if f.format != "docker" && f.format != "oci" && f.format != "mixed" {
		fmt.Fprintln(stderr, "seed-fleet: --format must be docker, oci or mixed")
		return exitUsage
	}
	if *images < 0 || *groupSize < 1 || *parallel < 1 {
		fmt.Fprintln(stderr, "seed-fleet: --images must be >= 0, --group-size and --parallel >= 1")
		return exitUsage
	}
	base, err := f.options(*registry)
	if err != nil {
		fmt.Fprintf(stderr, "seed-fleet: %v\n", err)
		return exitUsage
	}

	var (
		cache    = newLayerCache()
		outMu    sync.Mutex
		errOnce  sync.Once
		firstErr error
		next     = make(chan int)
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range *parallel {
		wg.Go(func() {
			for i := range next {
				opts := base
				opts.AnchorTag = *anchorTags
				opts.Ref = fmt.Sprintf("%s/%s/app-%d:v1", *registry, *prefix, i+1)
				// Seeds are hashed from the fleet seed so that groups and
				// images never collide with each other.
				opts.SharedSeed = mixSeed(f.seed, "fleet-base", int64(i / *groupSize))
				opts.Seed = mixSeed(f.seed, "fleet-image", int64(i))
				if f.format == "mixed" {
					opts.Format = []string{"docker", "oci"}[i%2]
				}
				res, err := seedImage(ctx, opts, cache)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("%s: %w", opts.Ref, err); cancel() })
					continue
				}
				outMu.Lock()
				_ = writeJSONLine(stdout, res)
				outMu.Unlock()
			}
		})
	}
	for i := 0; i < *images && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintf(stderr, "seed-fleet: %v\n", firstErr)
		return exitUsage
	}
	return exitOK
}

type seedOptions struct {
	Ref          string
	Platforms    []v1.Platform
	Layers       int
	LayerSize    int64
	Seed         int64
	Format       string // "docker" or "oci"
	SharedLayers int
	SharedSeed   int64
	GzipLevel    int
	Auth         authn.Authenticator
	Insecure     bool
	Jobs         int
	// AnchorTag also tags the pushed manifest ic-<algorithm>-<hex>, and each platform manifest of
	// an index by its own, as image-clone holds each copy.
	AnchorTag bool
}

type seedResult struct {
	Ref       string      `json:"ref"`
	Digest    string      `json:"digest"`
	MediaType string      `json:"mediaType"`
	Children  []seedChild `json:"children"`
	Blobs     []seedBlob  `json:"blobs"`
	Bytes     int64       `json:"bytes"`
}

type seedChild struct {
	Digest   string `json:"digest"`
	Platform string `json:"platform"`
}

type seedBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// seedImage builds the image (or index) described by opts and pushes it.
func seedImage(ctx context.Context, opts seedOptions, cache *layerCache) (*seedResult, error) {
	var nameOpts []name.Option
	if opts.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.ParseReference(opts.Ref, nameOpts...)
	if err != nil {
		return nil, err
	}
	if len(opts.Platforms) == 0 {
		return nil, fmt.Errorf("no platform")
	}
	oci := opts.Format == "oci"

	// Describe every layer, then hash them all (in parallel, skipping
	// layers already hashed for another image of a fleet).
	specs := make([][]layerSpec, len(opts.Platforms))
	var all []layerSpec
	for p := range opts.Platforms {
		for j := 0; j < opts.Layers; j++ {
			s := layerSpec{size: opts.LayerSize, name: fmt.Sprintf("layer-%d.bin", j), level: opts.GzipLevel, oci: oci}
			if j < opts.SharedLayers {
				s.key = layerKey("shared", opts.SharedSeed, int64(j))
			} else {
				// Per platform the own layers differ: the platform index is part of the key.
				s.key = layerKey("own", opts.Seed, int64(p), int64(j))
			}
			specs[p] = append(specs[p], s)
			all = append(all, s)
		}
	}
	layers, err := cache.layers(ctx, all)
	if err != nil {
		return nil, err
	}

	res := &seedResult{Ref: opts.Ref, Children: []seedChild{}, Blobs: []seedBlob{}}
	seen := map[v1.Hash]bool{}
	addBlob := func(d v1.Hash, size int64) {
		if !seen[d] {
			seen[d] = true
			res.Blobs = append(res.Blobs, seedBlob{Digest: d.String(), Size: size})
			res.Bytes += size
		}
	}

	images := make([]v1.Image, len(opts.Platforms))
	for p, plat := range opts.Platforms {
		ls := make([]v1.Layer, len(specs[p]))
		for j, s := range specs[p] {
			ls[j] = layers[s]
		}
		img, err := buildImage(plat, ls, oci, opts)
		if err != nil {
			return nil, err
		}
		images[p] = img
		m, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		addBlob(m.Config.Digest, m.Config.Size)
		for _, l := range m.Layers {
			addBlob(l.Digest, l.Size)
		}
	}

	remoteOpts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(opts.Auth),
		remote.WithJobs(opts.Jobs),
		remote.WithUserAgent("regharness"),
	}

	if len(images) == 1 {
		img := images[0]
		if err := remote.Write(ref, img, remoteOpts...); err != nil {
			return nil, err
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		if err := anchor(ref, d, img, opts, remoteOpts, true); err != nil {
			return nil, err
		}
		mt, err := img.MediaType()
		if err != nil {
			return nil, err
		}
		res.Digest, res.MediaType = d.String(), string(mt)
		return res, nil
	}

	idxType := types.DockerManifestList
	if oci {
		idxType = types.OCIImageIndex
	}
	adds := make([]mutate.IndexAddendum, len(images))
	for p, img := range images {
		plat := opts.Platforms[p]
		adds[p] = mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plat}}
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, idxType), adds...)
	if err := remote.WriteIndex(ref, idx, remoteOpts...); err != nil {
		return nil, err
	}
	d, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	// image-clone holds each platform manifest by an anchor of its own too, the index's last.
	for _, img := range images {
		cd, err := img.Digest()
		if err != nil {
			return nil, err
		}
		if err := anchor(ref, cd, img, opts, remoteOpts, false); err != nil {
			return nil, err
		}
	}
	if err := anchor(ref, d, idx, opts, remoteOpts, true); err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	res.Digest, res.MediaType = d.String(), string(idxType)
	for _, c := range im.Manifests {
		res.Children = append(res.Children, seedChild{Digest: c.Digest.String(), Platform: platformString(*c.Platform)})
	}
	return res, nil
}

// buildImage assembles one image: a config whose os/architecture/variant
// match plat (validate.Index compares them with the index descriptor) and
// the given layers, with Docker or OCI media types throughout.
func buildImage(plat v1.Platform, layers []v1.Layer, oci bool, opts seedOptions) (v1.Image, error) {
	base := empty.Image // Docker schema2 manifest and config types
	if oci {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	cfg := &v1.ConfigFile{
		Architecture: plat.Architecture,
		OS:           plat.OS,
		Variant:      plat.Variant,
		Created:      v1.Time{Time: fixedTime},
		Config: v1.Config{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"/bin/true"},
			Labels: map[string]string{
				"org.image-clone.harness.seed":        fmt.Sprint(opts.Seed),
				"org.image-clone.harness.shared-seed": fmt.Sprint(opts.SharedSeed),
				"org.image-clone.harness.platform":    platformString(plat),
			},
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(base, cfg)
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, len(layers))
	for j, l := range layers {
		adds[j] = mutate.Addendum{Layer: l, History: v1.History{
			Created:   v1.Time{Time: fixedTime},
			CreatedBy: fmt.Sprintf("regharness seed layer %d", j),
		}}
	}
	return mutate.Append(img, adds...)
}

// parsePlatforms parses "os/arch[/variant],...".
func parsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("invalid platform %q (want OS/ARCH[/VARIANT])", item)
		}
		p := v1.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platform given")
	}
	return out, nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// layerKey derives a ChaCha8 key from a domain label and numbers.
func layerKey(domain string, parts ...int64) [32]byte {
	h := sha256.New()
	h.Write([]byte("regharness/layer/v1/" + domain))
	for _, p := range parts {
		_ = binary.Write(h, binary.BigEndian, p)
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// mixSeed derives a new int64 seed from a seed, a label and an index.
func mixSeed(seed int64, label string, i int64) int64 {
	k := layerKey(label, seed, i)
	return int64(binary.BigEndian.Uint64(k[:8]) >> 1) // keep it non-negative for readability
}

// ---- generated layers ----

// layerSpec fully determines a layer's bytes. It is comparable and used as a
// cache key.
type layerSpec struct {
	key   [32]byte // ChaCha8 key for the file content
	size  int64    // bytes of random data in the file
	name  string   // file name inside the tar
	level int      // gzip level
	oci   bool     // media type only; does not change the bytes
}

// writeTar writes the uncompressed layer: a tar with one regular file.
func (s layerSpec) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     s.name,
		Mode:     0o644,
		Size:     s.size,
		ModTime:  fixedTime,
	}); err != nil {
		return err
	}
	rng := rand.NewChaCha8(s.key)
	buf := make([]byte, 256<<10)
	for rem := s.size; rem > 0; {
		n := int(min(rem, int64(len(buf))))
		_, _ = rng.Read(buf[:n]) // ChaCha8.Read always fills buf and never fails
		if _, err := tw.Write(buf[:n]); err != nil {
			return err
		}
		rem -= int64(n)
	}
	return tw.Close()
}

// writeCompressed writes the layer blob: the tar, gzipped at s.level.
func (s layerSpec) writeCompressed(w io.Writer) error {
	gz, err := gzip.NewWriterLevel(w, s.level)
	if err != nil {
		return err
	}
	if err := s.writeTar(gz); err != nil {
		return err
	}
	return gz.Close()
}

// genLayer is a v1.Layer whose bytes are regenerated from its spec on each read.
type genLayer struct {
	spec   layerSpec
	digest v1.Hash // sha256 of the gzip blob
	diffID v1.Hash // sha256 of the tar
	size   int64   // size of the gzip blob
}

var _ v1.Layer = (*genLayer)(nil)

// newGenLayer streams the layer once through both hashes.
func newGenLayer(s layerSpec) (*genLayer, error) {
	diffH := sha256.New()
	blob := &hashCounter{h: sha256.New()}
	gz, err := gzip.NewWriterLevel(blob, s.level)
	if err != nil {
		return nil, err
	}
	if err := s.writeTar(io.MultiWriter(diffH, gz)); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return &genLayer{
		spec:   s,
		digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", blob.h.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", diffH.Sum(nil))},
		size:   blob.n,
	}, nil
}

func (l *genLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *genLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *genLayer) Size() (int64, error)     { return l.size, nil }

func (l *genLayer) MediaType() (types.MediaType, error) {
	if l.spec.oci {
		return types.OCILayer, nil
	}
	return types.DockerLayer, nil
}

func (l *genLayer) Compressed() (io.ReadCloser, error) { return pipeFrom(l.spec.writeCompressed), nil }
func (l *genLayer) Uncompressed() (io.ReadCloser, error) {
	return pipeFrom(l.spec.writeTar), nil
}

// pipeFrom runs write in a goroutine and returns the read end of a pipe. If
// the reader is closed early, the writer fails on its next write and exits.
func pipeFrom(write func(io.Writer) error) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	return pr
}

type hashCounter struct {
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// layerCache hashes each distinct layer once per process, so that images of
// a fleet sharing base layers do not hash them again.
type layerCache struct {
	mu sync.Mutex
	m  map[layerSpec]*cachedLayer
}

type cachedLayer struct {
	once  sync.Once
	layer *genLayer
	err   error
}

func newLayerCache() *layerCache { return &layerCache{m: map[layerSpec]*cachedLayer{}} }

// layers returns the hashed layer for every spec, hashing missing ones on up
// to GOMAXPROCS goroutines.
func (c *layerCache) layers(ctx context.Context, specs []layerSpec) (map[layerSpec]v1.Layer, error) {
	work := make(chan layerSpec)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(specs), 1)) {
		wg.Go(func() {
			for s := range work {
				c.get(s)
			}
		})
	}
	for _, s := range specs {
		if ctx.Err() != nil {
			break
		}
		work <- s
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[layerSpec]v1.Layer, len(specs))
	for _, s := range specs {
		l, err := c.get(s) // all done by now: returns at once
		if err != nil {
			return nil, err
		}
		out[s] = l
	}
	return out, nil
}

func (c *layerCache) get(s layerSpec) (*genLayer, error) {
	c.mu.Lock()
	e := c.m[s]
	if e == nil {
		e = &cachedLayer{}
		c.m[s] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.layer, e.err = newGenLayer(s) })
	return e.layer, e.err
}

// anchor tags the pushed manifest with image-clone's anchor tag when asked, and the image's own
// manifest (not a platform manifest under it) with its seal, ic-whole-<algorithm>-<hex>, last.
func anchor(ref name.Reference, d v1.Hash, t remote.Taggable, opts seedOptions, remoteOpts []remote.Option, seal bool) error {
	if !opts.AnchorTag {
		return nil
	}
	if err := remote.Tag(ref.Context().Tag("ic-"+d.Algorithm+"-"+d.Hex), t, remoteOpts...); err != nil {
		return err
	}
	if !seal {
		return nil
	}
	return remote.Tag(ref.Context().Tag("ic-whole-"+d.Algorithm+"-"+d.Hex), t, remoteOpts...)
}
