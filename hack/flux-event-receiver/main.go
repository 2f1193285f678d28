// Command flux-event-receiver stands in for the HTTP endpoint of Flux's notification-controller in the
// end-to-end tests: it decodes every POST with Flux's own event type
// (github.com/fluxcd/pkg/apis/event/v1beta1.Event, what notification-controller decodes) and checks
// what notification-controller needs to route the event to an Alert.
//
// Usage: flux-event-receiver -addr 127.0.0.1:0 -out events.jsonl
//
// It prints "LISTENING <addr>" once ready. Every accepted event is written to -out as one JSON line,
// re-encoded from the decoded Go value (so a field Go did not understand is visibly missing); every
// refused post is written as {"invalid": "<why>", "body": "<raw>"} and answered 400.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1beta1"
)

// alertSourceKinds are the kinds an Alert's spec.eventSources may name (the enum of
// notification-controller's CrossNamespaceObjectReference, api/v1, v1.9): an event about any other
// kind can never match an Alert.
var alertSourceKinds = map[string]bool{
	"Bucket": true, "GitRepository": true, "Kustomization": true, "HelmRelease": true, "HelmChart": true,
	"HelmRepository": true, "ImageRepository": true, "ImagePolicy": true, "ImageUpdateAutomation": true,
	"OCIRepository": true, "ArtifactGenerator": true, "ExternalArtifact": true,
}

// check returns why notification-controller could not route the event, or "" if it can.
func check(e *eventv1.Event) string {
	o := e.InvolvedObject
	switch {
	case o.Kind == "" || o.Name == "" || o.Namespace == "" || o.APIVersion == "":
		return "involvedObject needs kind, name, namespace and apiVersion"
	case !alertSourceKinds[o.Kind]:
		return fmt.Sprintf("kind %q cannot be selected by an Alert", o.Kind)
	case e.Severity != eventv1.EventSeverityInfo && e.Severity != eventv1.EventSeverityError:
		return fmt.Sprintf("severity %q is not info or error", e.Severity)
	case e.Timestamp.IsZero():
		return "timestamp missing"
	case e.Message == "" || len(e.Message) > 39000:
		return fmt.Sprintf("message length %d is not within 1..39000", len(e.Message))
	case e.Reason == "":
		return "reason missing"
	case e.ReportingController == "":
		return "reportingController missing"
	}
	group := o.GroupVersionKind().Group + "/"
	for k := range e.Metadata {
		// notification-controller drops metadata keys outside these prefixes.
		if !strings.HasPrefix(k, group) && !strings.HasPrefix(k, eventv1.Group+"/") {
			return fmt.Sprintf("metadata key %q would be dropped (not prefixed with %q)", k, group)
		}
	}
	return ""
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	out := flag.String("out", "events.jsonl", "file receiving one JSON line per post")
	flag.Parse()

	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	write := func(v any) {
		line, _ := json.Marshal(v)
		mu.Lock()
		defer mu.Unlock()
		f.Write(append(line, '\n'))
	}

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 3<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		refuse := func(why string) {
			write(map[string]string{"invalid": why, "body": string(body)})
			w.WriteHeader(http.StatusBadRequest)
		}
		if r.Method != http.MethodPost {
			refuse("method " + r.Method)
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			refuse("content type " + ct)
			return
		}
		var event eventv1.Event
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&event); err != nil {
			refuse("decoding: " + err.Error())
			return
		}
		if why := check(&event); why != "" {
			refuse(why)
			return
		}
		write(event)
		w.WriteHeader(http.StatusAccepted)
	})

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("LISTENING %s\n", l.Addr())
	if err := http.Serve(l, handler); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
