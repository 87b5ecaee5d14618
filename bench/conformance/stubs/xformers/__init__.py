"""Stand-in for xformers, which the official code imports but which has no CPU build: ``ops`` maps its attention
to PyTorch's (same math: softmax(q k^T / sqrt(d) + bias) v)."""
