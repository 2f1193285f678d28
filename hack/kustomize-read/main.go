// Command kustomize-read reads units the way kustomize-controller does: each file becomes the only
// resource of a generated kustomization.yaml, built with kustomize's own API (sigs.k8s.io/kustomize/api
// krusty, the version kustomize-controller v1.9.6 builds with). For every file named on stdin (one path
// per line) it prints one JSON line: whether the build succeeded, its error, and the objects it produced
// (apiVersion, kind, namespace, name). The Rust differential test compares these with the controller's
// own reading of the same bytes.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
}

type result struct {
	File    string   `json:"file"`
	OK      bool     `json:"ok"`
	Error   string   `json:"error,omitempty"`
	Objects []object `json:"objects"`
}

func read(path string) result {
	out := result{File: path, Objects: []object{}}
	data, err := os.ReadFile(path)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	fs := filesys.MakeFsInMemory()
	if err := fs.WriteFile("/app/unit.yaml", data); err != nil {
		out.Error = err.Error()
		return out
	}
	// What kustomize-controller generates when an artifact has no kustomization.yaml.
	kustomization := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- unit.yaml\n"
	if err := fs.WriteFile("/app/kustomization.yaml", []byte(kustomization)); err != nil {
		out.Error = err.Error()
		return out
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/app")
	if err != nil {
		out.Error = err.Error()
		return out
	}
	for _, r := range resources.Resources() {
		out.Objects = append(out.Objects, object{
			APIVersion: r.GetApiVersion(),
			Kind:       r.GetKind(),
			Namespace:  r.GetNamespace(),
			Name:       r.GetName(),
		})
	}
	out.OK = true
	return out
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		if err := enc.Encode(read(in.Text())); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
