//! What the running kernel is: its release, for features that arrived in a known version and
//! cannot be probed without side effects.

/// `major.minor` of a release string such as `6.18.44-amd64` or `6.1.0-28-cloud-amd64`.
pub fn parse_release(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The running kernel's `major.minor` (`/proc/sys/kernel/osrelease`), if readable.
pub fn release() -> Option<(u32, u32)> {
    parse_release(&std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?)
}

/// Whether the running kernel has tcx links (Linux 6.6), which the tc host path attaches
/// with. An unreadable release counts as having them: the attach then says what is missing.
pub fn has_tcx() -> bool {
    release().is_none_or(|r| r >= (6, 6))
}

#[cfg(test)]
mod tests {
    use super::parse_release;

    #[test]
    fn releases_parse_to_major_and_minor() {
        assert_eq!(parse_release("6.18.44-amd64\n"), Some((6, 18)));
        assert_eq!(parse_release("6.1.0-28-cloud-amd64"), Some((6, 1)));
        assert_eq!(parse_release("6.6"), Some((6, 6)));
        assert_eq!(parse_release("5.15.0+"), Some((5, 15)));
        assert_eq!(parse_release("linux"), None);
        assert_eq!(parse_release(""), None);
        assert!(parse_release("6.5.9").unwrap() < (6, 6));
        assert!(parse_release("6.10.1").unwrap() >= (6, 6));
    }
}
