//! Server figures (written next).
fn main() {}
