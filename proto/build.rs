//! Compiles proto/qmec.proto and proto/qmec_policy.proto with protox (pure Rust, no system protoc) and
//! writes the encoded file descriptor set that gRPC reflection serves.

use prost::Message as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["qmec.proto", "qmec_policy.proto"], ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("qmec_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
