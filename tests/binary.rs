//! The binary a DataSphere job runs must run on its image (Ubuntu 22.04, glibc 2.35) and
//! on older hosts: checked on the ELF of the built binary, with the same code
//! `train --remote` uses before it sends one.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn the_built_binary_needs_no_glibc_newer_than_the_job_image() {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_plastinka")).unwrap();
    let found = plastinka::remote::binary::portability(&bytes).unwrap();
    assert!(found.x86_64_linux);
    assert_eq!(found.problem(), None, "{found:?}");
    // Its backends marker says what it was built with.
    assert_eq!(found.cuda, cfg!(feature = "cuda"), "{found:?}");
    // It does need glibc (it is dynamic): the check read its version needs.
    assert!(
        found.newest_glibc.is_some_and(|v| v >= (2, 17)),
        "{found:?}"
    );
}

#[test]
fn a_binary_for_elsewhere_is_refused_with_what_to_build() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("plastinka");
    std::fs::write(&script, "#!/bin/sh\necho not elf\n").unwrap();
    let err = plastinka::remote::binary::to_send(Some(&script), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a Linux x86-64 binary") && err.contains("remote.binary"),
        "{err}"
    );
}
