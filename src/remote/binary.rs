//! Which binary a job runs: the one the user has (`remote.binary` may name another), sent
//! as an input file. It must run on the job image (Ubuntu 22.04, glibc 2.35) and on older
//! hosts: a Linux x86-64 ELF that needs no glibc newer than 2.35 — or none at all.

use anyhow::{Context, Result};
use object::Endian;
use object::read::elf::{ElfFile64, FileHeader};
use std::path::{Path, PathBuf};

/// The newest glibc symbol version the job image provides.
pub const IMAGE_GLIBC: (u32, u32) = (2, 35);

/// What the ELF of a binary says about where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portability {
    pub x86_64_linux: bool,
    /// The dynamic loader it asks for; `None` for a static binary.
    pub interpreter: Option<String>,
    /// The newest `GLIBC_x.y` symbol version it needs.
    pub newest_glibc: Option<(u32, u32)>,
    /// Whether it was built with the CUDA backend (`--features cuda`), read from the
    /// marker every build carries.
    pub cuda: bool,
}

/// Names the compute backends built in. Kept in the binary (`#[used]`) so that
/// `train --remote` can tell whether a binary it is about to send to a GPU
/// configuration can use the GPU; written to end with `;` so it can be read back.
#[used]
static BACKENDS: &[u8] = if cfg!(feature = "cuda") {
    b"\x7fplastinka-backends=cpu,cuda;"
} else {
    b"\x7fplastinka-backends=cpu;"
};

/// Whether `bytes` carry a backends marker naming cuda. The marker's prefix is written
/// reversed here, so the search itself does not plant a copy of it in the binary.
fn has_cuda(bytes: &[u8]) -> bool {
    let prefix: Vec<u8> = b"=sdnekcab-aknitsalp\x7f".iter().rev().copied().collect();
    let mut rest = bytes;
    while let Some(at) = find(rest, &prefix) {
        let tail = &rest[at + prefix.len()..];
        let end = tail.iter().take(64).position(|&b| b == b';');
        if let Some(end) = end
            && tail[..end]
                .split(|&b| b == b',')
                .any(|name| name == b"cuda")
        {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Portability {
    /// Why the job image could not run it, if it could not.
    pub fn problem(&self) -> Option<String> {
        if !self.x86_64_linux {
            return Some("it is not a Linux x86-64 binary (the job image is)".into());
        }
        match self.newest_glibc {
            Some(v) if v > IMAGE_GLIBC => Some(format!(
                "it needs glibc {}.{} and the job image has {}.{} (it was built on a newer system)",
                v.0, v.1, IMAGE_GLIBC.0, IMAGE_GLIBC.1
            )),
            _ => None,
        }
    }
}

/// Reads a binary's ELF header, interpreter and glibc symbol versions.
pub fn portability(bytes: &[u8]) -> Result<Portability> {
    let Ok(elf) = ElfFile64::<object::Endianness>::parse(bytes) else {
        return Ok(Portability {
            x86_64_linux: false,
            interpreter: None,
            newest_glibc: None,
            cuda: false,
        });
    };
    let header = elf.elf_header();
    let endian = elf.endian();
    let x86_64_linux = header.e_machine(endian) == object::elf::EM_X86_64;
    let interpreter = elf
        .elf_program_headers()
        .iter()
        .find(|p| object::read::elf::ProgramHeader::p_type(*p, endian) == object::elf::PT_INTERP)
        .and_then(|p| object::read::elf::ProgramHeader::data(p, endian, bytes).ok())
        .map(|d| {
            String::from_utf8_lossy(d)
                .trim_end_matches('\0')
                .to_string()
        });
    let mut newest: Option<(u32, u32)> = None;
    // Version names live in the dynamic string table; GLIBC_x.y needs are what matter.
    for section in elf.elf_section_table().iter() {
        if object::read::elf::SectionHeader::sh_type(section, endian)
            != object::elf::SHT_GNU_VERNEED
        {
            continue;
        }
        let strings = elf
            .elf_section_table()
            .strings(
                endian,
                bytes,
                object::SectionIndex(
                    object::read::elf::SectionHeader::sh_link(section, endian) as usize
                ),
            )
            .ok();
        if let (Ok(Some((mut needs, _))), Some(strings)) = (
            object::read::elf::SectionHeader::gnu_verneed(section, endian, bytes),
            strings,
        ) {
            while let Ok(Some((_, mut aux))) = needs.next() {
                while let Ok(Some(entry)) = aux.next() {
                    if let Ok(name) = entry.name(endian, strings)
                        && let Some(v) = glibc_version(name)
                    {
                        newest = newest.max(Some(v));
                    }
                }
            }
        }
    }
    let _ = endian.is_little_endian();
    Ok(Portability {
        x86_64_linux,
        interpreter,
        newest_glibc: newest,
        cuda: has_cuda(bytes),
    })
}

fn glibc_version(name: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(name).ok()?.strip_prefix("GLIBC_")?;
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// The binary to send and its bytes: `configured` (remote.binary) or the running one,
/// refused with the reason and what to build when the job image could not run it, or
/// when `gpu` (a GPU configuration) and it was built without CUDA.
pub fn to_send(configured: Option<&Path>, gpu: Option<&str>) -> Result<(PathBuf, Vec<u8>)> {
    let path = match configured {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().context("cannot find the running binary")?,
    };
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let portability = portability(&bytes)?;
    if let Some(problem) = portability.problem() {
        return Err(crate::error::InputError::new(format!(
            "{} cannot run on a DataSphere job: {problem}. Build the Linux x86-64 binary on a system with glibc ≤ 2.35 (`cargo build --release` on Ubuntu 22.04 or Debian 12, whose build needs at most 2.34), and name it in remote.binary",
            path.display()
        ))
        .into());
    }
    if let Some(instance_type) = gpu
        && !portability.cuda
    {
        return Err(crate::error::InputError::new(format!(
            "remote.instance_type {instance_type} is a GPU configuration and {} was built without CUDA, so the job would train on its CPU: build with `cargo build --release --features cuda` and name that binary in remote.binary, or choose a CPU configuration ({})",
            path.display(),
            crate::config::CPU_INSTANCE_TYPES.join(", ")
        ))
        .into());
    }
    Ok((path, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_versions_are_read_and_compared() {
        assert_eq!(glibc_version(b"GLIBC_2.34"), Some((2, 34)));
        assert_eq!(glibc_version(b"GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(glibc_version(b"GCC_3.0"), None);
        let newer = Portability {
            x86_64_linux: true,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            newest_glibc: Some((2, 36)),
            cuda: false,
        };
        assert!(newer.problem().unwrap().contains("glibc 2.36"));
        assert!(portability(b"#!/bin/sh\n").unwrap().problem().is_some());
    }

    #[test]
    fn the_backends_marker_is_read_back() {
        assert!(has_cuda(b"..\x7fplastinka-backends=cpu,cuda;.."));
        assert!(!has_cuda(b"..\x7fplastinka-backends=cpu;..cuda;"));
        // A marker cut short, or a name that only starts like it, is not cuda.
        assert!(!has_cuda(b"..\x7fplastinka-backends=cpu,cud"));
        assert!(!has_cuda(b"\x7fplastinka-backends=cpu,cudax;"));
        assert_eq!(has_cuda(BACKENDS), cfg!(feature = "cuda"));
    }
}
