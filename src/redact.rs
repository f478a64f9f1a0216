//! Redaction of key material in messages that come from outside (AWS's and Azure's error texts):
//! a leaf both cloud adapters use, so that neither imports the other.

/// A service's error message with anything shaped like key material replaced by `[REDACTED]`: some
/// services quote the canonical request or string-to-sign in `SignatureDoesNotMatch` messages,
/// which holds the `x-amz-security-token` header and signatures. A run of 32 or more characters
/// of the base64 alphabet (session tokens, secret keys) or of 64 hex digits (signatures) is
/// redacted; access key ids (20 characters) and ARNs stay readable.
pub fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let hex = run.len() >= 64 && run.chars().all(|c| c.is_ascii_hexdigit());
        if run.len() >= 32 || hex {
            out.push_str("[REDACTED]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in message.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '%') {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn key_material_in_an_aws_message_is_redacted_and_the_rest_kept() {
        let token = "FwoGZXIvYXdzEBYaDH7example+token/with=base64charsAAAAAAAAAAAA";
        let signature = "a".repeat(64);
        let message = format!(
            "The request signature we calculated does not match the signature you provided. The Canonical String for this request should have been 'POST\n/\n\nx-amz-security-token:{token}\n' signature {signature} for AKIAIOSFODNN7EXAMPLE in arn:aws:iam::123456789012:user/minter"
        );
        let scrubbed = scrub(&message);
        assert!(
            !scrubbed.contains(token) && !scrubbed.contains(&signature),
            "{scrubbed}"
        );
        assert!(scrubbed.contains("[REDACTED]"));
        assert!(scrubbed.contains("AKIAIOSFODNN7EXAMPLE"));
        assert!(scrubbed.contains("arn:aws:iam::123456789012:user/minter"));
        assert!(scrubbed.starts_with("The request signature we calculated"));
    }
}
