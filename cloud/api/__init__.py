"""The cloud's HTTP side: the API of docs/reference.md, Prometheus metrics, sample pictures."""
