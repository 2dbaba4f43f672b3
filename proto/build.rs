//! Compiles `hangar/v1/*.proto` with protox, a pure-Rust protobuf compiler,
//! so building Hangar never needs a system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "hangar/v1/config.proto",
        "hangar/v1/dataplane.proto",
        "hangar/v1/admin.proto",
    ];
    let fds = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    // compile_fds cannot know which files it was built from.
    println!("cargo:rerun-if-changed=hangar");
    Ok(())
}
