"""The cloud's HTTP side: the API of DESIGN.md, Prometheus metrics, sample pictures."""
