package main

// "regharness gc": distribution's own garbage collector (mark and sweep, as
// `registry garbage-collect` runs it) on one registry's storage, for tests
// that check what survives a collection. Run it while that registry is
// stopped: collection during writes is unsafe, as distribution documents.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

const gcSynopsis = "regharness gc --dir DIR --registry NAME [--delete-untagged] [--dry-run]"

func cmdGC(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("gc", gcSynopsis, stderr)
	dir := fs.String("dir", "", "the folder `regharness serve --dir` used")
	name := fs.String("registry", regBackup, "which registry's storage to collect (source, backup, backup-basic)")
	untagged := fs.Bool("delete-untagged", false, "also delete manifests that no tag points at (registry garbage-collect --delete-untagged)")
	dryRun := fs.Bool("dry-run", false, "only print what would be deleted")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	root := filepath.Join(*dir, *name)
	if *dir == "" {
		fmt.Fprintln(stderr, "regharness gc: --dir is required")
		return exitUsage
	}
	if _, err := os.Stat(root); err != nil {
		fmt.Fprintf(stderr, "regharness gc: %v\n", err)
		return exitUsage
	}
	ctx := context.Background()
	driver, err := factory.Create(ctx, "filesystem", map[string]any{"rootdirectory": root})
	if err != nil {
		fmt.Fprintf(stderr, "regharness gc: %v\n", err)
		return exitDifferent
	}
	registry, err := storage.NewRegistry(ctx, driver, storage.EnableDelete)
	if err != nil {
		fmt.Fprintf(stderr, "regharness gc: %v\n", err)
		return exitDifferent
	}
	// MarkAndSweep prints what it marks and deletes on stdout unless quiet.
	if err := storage.MarkAndSweep(ctx, driver, registry, storage.GCOpts{DryRun: *dryRun, RemoveUntagged: *untagged, Quiet: false}); err != nil {
		fmt.Fprintf(stderr, "regharness gc: %v\n", err)
		return exitDifferent
	}
	fmt.Fprintln(stdout, "GC DONE")
	return exitOK
}
