//! Emulator processes (moto, Azurite) on ports they choose themselves.
//!
//! Each emulator is started on port 0 and says on a line of its output which port it bound. Picking
//! a free port first and passing it on races every other test binding at the same moment — seen
//! under load: a moto that lost its port to another test's STS front, which then answered this
//! bed's `CreateUser` with `InvalidClientTokenId`. The rest of the output is read and dropped, so a
//! chatty emulator never blocks on a full pipe. On Linux the child also gets `PR_SET_PDEATHSIG`,
//! so a test process that is killed outright takes it with it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Which of the child's streams carries the announcement.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Starts `command` (its port argument 0) and waits up to `timeout` for a line containing
/// `marker` followed by `127.0.0.1:<port>`. Returns the child and its port.
pub(crate) async fn spawn_announcing(
    mut command: Command,
    stream: Stream,
    marker: &str,
    what: &str,
    timeout: Duration,
) -> anyhow::Result<(Child, u16)> {
    command.stdin(Stdio::null());
    match stream {
        Stream::Stdout => command.stdout(Stdio::piped()).stderr(Stdio::null()),
        Stream::Stderr => command.stdout(Stdio::null()).stderr(Stdio::piped()),
    };
    die_with_parent(&mut command);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let pipe: Box<dyn Read + Send> = match stream {
        Stream::Stdout => Box::new(child.stdout.take().context("no stdout pipe")?),
        Stream::Stderr => Box::new(child.stderr.take().context("no stderr pipe")?),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        let mut tx = Some(tx);
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if let Some(port) = tx
                .as_ref()
                .and_then(|_| announced_port(&String::from_utf8_lossy(&line), &marker))
            {
                let _ = tx.take().map(|t| t.send(port));
            }
        }
    });
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(port) = rx.try_recv() {
            return Ok((child, port));
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited early with {status}");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{what} did not say which port it listens on within {} s",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The port in a line like `... <marker> http://127.0.0.1:46341`.
fn announced_port(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let after = &rest[rest.find("127.0.0.1:")? + "127.0.0.1:".len()..];
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|p| *p != 0)
}

#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent(_command: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::announced_port;

    #[test]
    fn the_port_is_read_from_what_moto_and_azurite_print() {
        assert_eq!(
            announced_port(" * Running on http://127.0.0.1:46341\n", "Running on"),
            Some(46341)
        );
        assert_eq!(
            announced_port(
                "Azurite Blob service successfully listens on https://127.0.0.1:44153",
                "listens on"
            ),
            Some(44153)
        );
        // Azurite's line before it has bound: port 0 is no answer.
        assert_eq!(
            announced_port(
                "Azurite Blob service is starting on 127.0.0.1:0",
                "listens on"
            ),
            None
        );
        assert_eq!(announced_port("Press CTRL+C to quit", "Running on"), None);
    }
}
