package main

// "regharness attach": push an OCI artifact whose subject is an existing
// manifest, the way clients such as oras and cosign (new bundle format) do,
// with go-containerregistry. On a registry without the referrers API,
// go-containerregistry itself updates the fallback tag sha256-<hex>; with
// --tag the artifact is pushed under a tag instead (cosign's .sig/.att/.sbom
// scheme, where no subject is set).

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const attachSynopsis = "regharness attach --subject HOST/REPO@DIGEST [--artifact-type TYPE] [--seed N] [--tag TAG] [--username U --password P]"

type attachResult struct {
	Ref       string `json:"ref"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

func cmdAttach(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("attach", attachSynopsis, stderr)
	subject := fs.String("subject", "", "the manifest the artifact is about, HOST/REPO@DIGEST (required)")
	artifactType := fs.String("artifact-type", "application/vnd.example.sbom+json", "the artifact's type (its config media type)")
	seed := fs.Int64("seed", 0, "seed of the artifact's one random 512-byte layer")
	tag := fs.String("tag", "", "push under this tag, without a subject (cosign's sha256-<hex>.sig scheme)")
	user := fs.String("username", "", "registry username")
	pass := fs.String("password", "", "registry password")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	sub, err := name.NewDigest(*subject)
	if *subject == "" || err != nil {
		fmt.Fprintf(stderr, "attach: --subject HOST/REPO@DIGEST is required (%v)\n", err)
		return exitUsage
	}
	auth, err := authFor(sub.RegistryStr(), *user, *pass)
	if err != nil {
		fmt.Fprintf(stderr, "attach: %v\n", err)
		return exitUsage
	}
	opts := []remote.Option{remote.WithContext(context.Background()), remote.WithAuth(auth), remote.WithUserAgent("regharness")}

	data := make([]byte, 512)
	_, _ = rand.NewChaCha8(layerKey("attach", *seed)).Read(data)
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), static.NewLayer(data, "application/vnd.example.payload"))
	if err == nil {
		img = mutate.ConfigMediaType(img, types.MediaType(*artifactType))
	}
	if err != nil {
		fmt.Fprintf(stderr, "attach: %v\n", err)
		return exitDifferent
	}
	var ref name.Reference
	if *tag != "" {
		ref = sub.Context().Tag(*tag)
	} else {
		desc, err := remote.Head(sub, opts...)
		if err != nil {
			fmt.Fprintf(stderr, "attach: subject: %v\n", err)
			return exitUsage
		}
		img = mutate.Subject(img, v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}).(v1.Image)
	}
	d, err := img.Digest()
	if err != nil {
		fmt.Fprintf(stderr, "attach: %v\n", err)
		return exitDifferent
	}
	if ref == nil {
		ref = sub.Context().Digest(d.String())
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		fmt.Fprintf(stderr, "attach: %v\n", err)
		return exitUsage
	}
	size, _ := img.Size()
	mt, _ := img.MediaType()
	if err := writeJSONLine(stdout, attachResult{Ref: ref.String(), Digest: d.String(), MediaType: string(mt), Size: size}); err != nil {
		return exitDifferent
	}
	return exitOK
}
