//! What the user sees while signing in, and opening the browser.
//!
//! Everything goes to stderr: stdout carries data (`--export` lines, `credential_process` JSON),
//! so `eval "$(stsbridge sso login --export)"` still shows the code to type. The user code and the
//! verification URL are shown (they are meant to be: the code only pairs this request with the
//! browser session); the device code, tokens and the client secret never are.
//!
//! The browser is opened only where one can be: `$BROWSER` when set; otherwise `open` on macOS,
//! the URL handler on Windows, and `xdg-open` on Linux only with a graphical session (`DISPLAY` or
//! `WAYLAND_DISPLAY`). `--no-browser`, a headless machine or a test (whose environment has none
//! of these) only prints — the AWS CLI's `--no-browser` behaviour.

use std::process::{Command, Stdio};

use super::client::DeviceAuthorization;

/// What the user sees during a sign-in.
pub trait Prompter: Send + Sync {
    /// A progress or warning line.
    fn note(&self, message: &str);
    /// The service is waiting for the user: show the code (and open the browser).
    fn device_code(&self, device: &DeviceAuthorization);
}

/// The terminal: lines on stderr, and the browser when one is available.
pub struct Terminal {
    pub browser: Option<Browser>,
}

impl Prompter for Terminal {
    fn note(&self, message: &str) {
        eprintln!("stsbridge: {message}");
    }

    fn device_code(&self, device: &DeviceAuthorization) {
        eprintln!();
        eprintln!(
            "To sign in, open {} and enter the code {}",
            device.verification_uri, device.user_code
        );
        if let Some(complete) = &device.verification_uri_complete {
            eprintln!("(or open {complete}, which has the code filled in)");
        }
        let url = device
            .verification_uri_complete
            .as_deref()
            .unwrap_or(&device.verification_uri);
        if let Some(browser) = &self.browser {
            match browser.open(url) {
                Ok(()) => eprintln!("A browser window was opened for you."),
                Err(e) => eprintln!("(could not open a browser: {e})"),
            }
        }
        eprintln!("Waiting for the sign-in to be approved…");
        eprintln!();
    }
}

/// A way to open a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Browser {
    program: String,
    args: Vec<String>,
}

impl Browser {
    /// The browser this environment offers, if any. `vars` is the environment (a lookup, so tests
    /// need not change the process's own).
    pub fn detect(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(b) = set("BROWSER") {
            // `BROWSER` may list several commands separated by ':'; the first is used.
            let first = b.split(':').next().unwrap_or_default().trim().to_string();
            let mut words = first.split_whitespace().map(str::to_string);
            let program = words.next()?;
            return Some(Self {
                program,
                args: words.collect(),
            });
        }
        let simple = |p: &str, args: &[&str]| {
            Some(Self {
                program: p.to_string(),
                args: args.iter().map(|a| a.to_string()).collect(),
            })
        };
        if cfg!(target_os = "macos") {
            simple("open", &[])
        } else if cfg!(windows) {
            simple("rundll32", &["url.dll,FileProtocolHandler"])
        } else if set("DISPLAY").is_some() || set("WAYLAND_DISPLAY").is_some() {
            simple("xdg-open", &[])
        } else {
            None
        }
    }

    /// Starts the browser on `url` without waiting for it (a `%s` in the arguments is replaced
    /// by the URL, as `$BROWSER` allows; otherwise the URL is the last argument).
    pub fn open(&self, url: &str) -> std::io::Result<()> {
        let mut args: Vec<String> = self.args.iter().map(|a| a.replace("%s", url)).collect();
        if !self.args.iter().any(|a| a.contains("%s")) {
            args.push(url.to_string());
        }
        let mut child = Command::new(&self.program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // Reap it in the background, so a long-lived browser process leaves no zombie behind.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn browser_takes_the_first_command_and_its_arguments() {
        let b = Browser::detect(env(&[("BROWSER", "firefox --new-tab %s:lynx")])).unwrap();
        assert_eq!(b.program, "firefox");
        assert_eq!(b.args, vec!["--new-tab", "%s"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn without_a_graphical_session_there_is_no_browser_on_linux() {
        assert_eq!(Browser::detect(env(&[])), None);
        assert_eq!(Browser::detect(env(&[("DISPLAY", " ")])), None);
        assert_eq!(
            Browser::detect(env(&[("WAYLAND_DISPLAY", "wayland-0")]))
                .unwrap()
                .program,
            "xdg-open"
        );
    }
}
