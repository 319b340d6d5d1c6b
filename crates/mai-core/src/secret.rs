//! Secrets as they may be shown. OpenRouter keys are never logged, stored outside the
//! keychain/env, or sent to a UI (ARCHITECTURE.md, invariant 6); where a key must be
//! recognisable (logs, the keys view, a rotation record), [`mask_key`] is what is shown.

/// Masks an API key for logs and UIs: `sk-or-v1-…abcd`. Never shows more than the
/// public prefix and the last four characters.
pub fn mask_key(key: &str) -> String {
    let key = key.trim();
    let prefix = if key.starts_with("sk-or-v1-") {
        "sk-or-v1-"
    } else {
        ""
    };
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if key.chars().count() <= prefix.len() + 8 {
        return format!("{prefix}…");
    }
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keys() {
        let k = format!("sk-or-v1-{}", "ab".repeat(32));
        assert_eq!(mask_key(&k), "sk-or-v1-…abab");
        assert_eq!(mask_key("short"), "…");
    }

    #[test]
    fn shows_at_most_the_public_prefix_and_four_characters() {
        let k = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789wxyz";
        let m = mask_key(k);
        assert_eq!(m, "sk-or-v1-…wxyz");
        assert_eq!(mask_key("  other-secret-token-1234  "), "…1234");
        assert_eq!(mask_key("sk-or-v1-12345678"), "sk-or-v1-…");
    }
}
