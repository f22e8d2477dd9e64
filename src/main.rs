//! The `socialmapper` command.
fn main() {}
