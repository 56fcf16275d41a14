//! The one format stored records are stamped with: UTC, RFC 3339, whole seconds.

pub fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
