//! Generates the DataSphere gRPC client (and the server side, which the tests' fake
//! DataSphere implements) from the vendored `.proto` files in `proto/`, with a vendored
//! protoc: no protoc on the build machine, and the code always matches the protos.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from here.
    unsafe { std::env::set_var("PROTOC", protoc) };
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &[
                std::path::PathBuf::from(
                    "proto/yandex/cloud/datasphere/v2/jobs/project_job_service.proto",
                ),
                std::path::PathBuf::from("proto/yandex/cloud/operation/operation_service.proto"),
            ],
            &[
                std::path::PathBuf::from("proto"),
                protoc_bin_vendored::include_path()?,
            ],
        )?;
    Ok(())
}
