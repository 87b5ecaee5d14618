"""Benchmarks, the ShapesDrag scene generator and the project's small trained model."""
