"""imagegate: a self-hostable text-to-image API gateway (Ideogram V4 task API compatible)."""

__version__ = "0.1.0"
