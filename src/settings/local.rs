//! `stsbridge rotate|check --settings local.settings.json`: a Core Tools settings file's `Values`
//! put into the process environment.

/// Reads a `local.settings.json` and puts its `Values` into this process's environment, as
/// Core Tools does for `func start`. Exporting (rather than merging into a map) matters because
/// libraries read some settings from the environment themselves (`SSL_CERT_FILE`, `AWS_*`).
/// Call it before any thread starts.
pub fn export_local_settings(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Some(values) = doc.get("Values").and_then(|v| v.as_object()) else {
        anyhow::bail!("{} has no \"Values\" object", path.display());
    };
    let mut pairs = Vec::with_capacity(values.len());
    for (k, v) in values {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        // `set_var` panics on these, with the value in the message; the value may be a secret.
        if k.is_empty() || k.contains(['=', '\0']) {
            anyhow::bail!(
                "{}: Values has a setting named {k:?}, which cannot be an environment variable (empty, or holding '=' or NUL)",
                path.display()
            );
        }
        // A file handed over must not vouch for the host it sends the storage token to
        // (issue #27, F3): that trust comes from the operator's own environment.
        if k == super::storage::TRUST_SETTING {
            anyhow::bail!(
                "{}: Values sets {k}, which is honoured only from the environment, never from a --settings file: a settings file cannot vouch for the host it sends the storage token to. Remove it from the file (and export it yourself if you trust that host)",
                path.display()
            );
        }
        if v.contains('\0') {
            anyhow::bail!(
                "{}: the value of {k} holds a NUL character, which an environment variable cannot hold",
                path.display()
            );
        }
        pairs.push((k, v));
    }
    // Only once every entry is valid: a file that is refused changes nothing.
    for (k, v) in pairs {
        std::env::set_var(k, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #27, F3: the host trust for the storage token never comes from a file handed over;
    /// the file is refused whole, before anything is exported.
    #[test]
    fn a_settings_file_cannot_trust_a_storage_host() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("local.settings.json");
        std::fs::write(
            &file,
            r#"{"Values": {"StsbridgeLocalTestMarker": "x",
                "AzureWebJobsStorage__blobServiceUri": "https://collector.example.com",
                "RotationLeaseStorageHost": "collector.example.com"}}"#,
        )
        .unwrap();
        let e = format!("{:#}", export_local_settings(&file).unwrap_err());
        assert!(
            e.contains("RotationLeaseStorageHost") && e.contains("environment"),
            "{e}"
        );
        assert!(std::env::var_os("StsbridgeLocalTestMarker").is_none());
    }
}
