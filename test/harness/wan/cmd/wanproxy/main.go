// wanproxy: Toxiproxy's server (github.com/Shopify/toxiproxy/v2), for the WAN profile of the
// benchmarks (bench/lib/wan.ts): TCP proxies in front of the harness's registries that add latency
// and cap bandwidth, configured through Toxiproxy's HTTP API on --host:--port.
//
// It stops on SIGINT, SIGTERM, or EOF on stdin (the parent died), like regharness serve.
package main

import (
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func main() {
	host := flag.String("host", "127.0.0.1", "the `IP` the API listens on")
	port := flag.String("port", "8474", "the `port` the API listens on")
	watchStdin := flag.Bool("watch-stdin", true, "exit when stdin reaches EOF (the parent went away)")
	flag.Parse()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		os.Exit(0)
	}()
	if *watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
	}

	// Warnings and errors only: the info level logs every proxied connection.
	logger := zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)
	server.Listen(*host, *port)
}
