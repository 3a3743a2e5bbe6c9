//! hello-rust: built with cargo and the SDK's Rust (Debian's rustc, the target's libstd-rust-dev); no crates.

fn main() {
    let version = option_env!("VCOMP_RUSTC_VERSION").unwrap_or("unknown rustc");
    println!("hello-rust: Rust on {} ({})", std::env::consts::ARCH, version);
}
