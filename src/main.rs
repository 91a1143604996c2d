//! The `compactd` command line: argument parsing only; the work lives in the library.

fn main() {}
