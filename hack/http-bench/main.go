// Command http-bench compares the controller's artifact server with Go's http.FileServer, which
// Flux's source-controller serves its artifacts with (see hack/bench-serve.sh).
//
//	http-bench fileserver <dir> <addr>
//
// serves <dir> the way source-controller does: http.FileServer(http.Dir(dir)) on a ServeMux, with
// the standard server's defaults.
//
//	http-bench load -url URL -size BYTES [-c 50] [-d 10s] [-warmup 1s]
//
// runs -c clients, each with its own keep-alive connection, requesting URL back to back for -d after
// a -warmup that is not counted. Every response must be 200 with exactly -size body bytes; anything
// else counts as an error. Prints one line: requests, requests/s, p50/p99/max latency and errors.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "fileserver":
		if len(os.Args) != 4 {
			usage()
		}
		mux := http.NewServeMux()
		mux.Handle("/", http.FileServer(http.Dir(os.Args[2])))
		// Listen first, so a port of 0 can be reported (as examples/artifact_serve does).
		listener, err := net.Listen("tcp", os.Args[3])
		if err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stderr, "serving %s on %s\n", os.Args[2], listener.Addr())
		fail(http.Serve(listener, mux))
	case "load":
		load(os.Args[2:])
	default:
		usage()
	}
}

func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "URL to request")
	size := fs.Int64("size", -1, "expected body length in bytes")
	clients := fs.Int("c", 50, "concurrent clients, one connection each")
	duration := fs.Duration("d", 10*time.Second, "measured duration")
	warmup := fs.Duration("warmup", time.Second, "unmeasured time before it")
	_ = fs.Parse(args)
	if *url == "" || *size < 0 {
		usage()
	}

	start := time.Now().Add(*warmup)
	end := start.Add(*duration)
	results := make([]worker, *clients)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			w.run(*url, *size, start, end)
		}(&results[i])
	}
	wg.Wait()

	var all []time.Duration
	errs := 0
	var firstErr error
	for _, w := range results {
		all = append(all, w.latencies...)
		errs += w.errors
		if firstErr == nil {
			firstErr = w.firstErr
		}
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))]) / 1e6
	}
	fmt.Printf("requests=%d rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d\n",
		len(all), float64(len(all))/duration.Seconds(), pct(0.50), pct(0.99), pct(1), errs)
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "first error: %v\n", firstErr)
	}
}

// worker is one client: its own transport, so its own kept-alive connection.
type worker struct {
	latencies []time.Duration
	errors    int
	firstErr  error
}

func (w *worker) run(url string, size int64, start, end time.Time) {
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
	}}
	for {
		t0 := time.Now()
		if t0.After(end) {
			return
		}
		err := fetch(client, url, size)
		if t0.Before(start) {
			continue
		}
		if err != nil {
			w.errors++
			if w.firstErr == nil {
				w.firstErr = err
			}
			continue
		}
		w.latencies = append(w.latencies, time.Since(t0))
	}
}

func fetch(client *http.Client, url string, size int64) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if n != size {
		return errors.New("body length " + fmt.Sprint(n) + ", want " + fmt.Sprint(size))
	}
	return nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: http-bench fileserver <dir> <addr> | http-bench load -url URL -size BYTES [-c N] [-d 10s]")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
