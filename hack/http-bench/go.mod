module github.com/confighub/confighub-source-controller/hack/http-bench

go 1.25.0
