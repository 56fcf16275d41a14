//! Content digests: the one way files, fingerprints and model weights are hashed.

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256, as recorded for every uploaded file and every model's weights.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
