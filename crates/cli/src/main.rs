//! The `metal-marlin` binary.
fn main() {}
