// Command flux-archive packs a directory exactly as Flux's own storage does
// (github.com/fluxcd/pkg/artifact/storage.Archive), so hack/bench-pack.sh can compare
// confighub-source-controller's `pack` against it on the same files.
//
// Usage: flux-archive <source-dir> <storage-dir>
// Prints the digest, size and path of the archive it wrote.
//
//	flux-archive -untar <archive.tar.gz> <dir>
//
// extracts an archive with Flux's own extractor (github.com/fluxcd/pkg/tar, what kustomize-controller
// uses), to check that our artifacts pass its rules.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/artifact/config"
	"github.com/fluxcd/pkg/artifact/storage"
	"github.com/fluxcd/pkg/tar"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == "-untar" {
		f, err := os.Open(os.Args[2])
		if err != nil {
			fail(err)
		}
		defer f.Close()
		if err := tar.Untar(f, os.Args[3]); err != nil {
			fail(err)
		}
		fmt.Println("extracted:", os.Args[3])
		return
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: flux-archive <source-dir> <storage-dir>")
		os.Exit(2)
	}
	src, base := os.Args[1], os.Args[2]
	st, err := storage.New(&config.Options{
		StoragePath:              base,
		StorageAdvAddress:        "localhost:9090",
		ArtifactRetentionRecords: 2,
		ArtifactDigestAlgo:       "sha256",
	})
	if err != nil {
		fail(err)
	}
	artifact := meta.Artifact{Path: filepath.Join("bench", "default", "units", "latest.tar.gz")}
	if err := st.MkdirAll(artifact); err != nil {
		fail(err)
	}
	if err := st.Archive(&artifact, src, nil); err != nil {
		fail(err)
	}
	fmt.Printf("digest: %s\nsize: %d\npath: %s\n", artifact.Digest, *artifact.Size, st.LocalPath(artifact))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
