//! Compiles etcd's vendored `.proto` files with protox, a pure-Rust protobuf
//! compiler, so building Hangar never needs a system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["etcd/api/etcdserverpb/rpc.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    // compile_fds cannot know which files it was built from.
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
