//! MC-inference benchmark (placeholder).

fn main() {}
