//! Embedding examples live in `examples/examples/`.
