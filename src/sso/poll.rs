//! Polling `CreateToken` while the user approves the sign-in in a browser: the device
//! authorization grant's client side (RFC 8628 §3.4–3.5), as a pure state machine plus a small
//! driver with an injectable clock.
//!
//! Rules (RFC 8628, and the AWS CLI's `SSOTokenFetcher`, which this mirrors):
//! - wait `interval` seconds between requests (5 when the service gives none);
//! - `authorization_pending`: keep waiting; `slow_down`: add 5 seconds to the interval, for this
//!   and every later request (RFC 8628 §3.5; SSO OIDC's `SlowDownException` carries no interval);
//! - `expired_token`: the code expired before it was approved; `access_denied`: the user refused.
//!   Both end the wait, and so does the code's own lifetime (`expiresIn`) running out locally, in
//!   case the service keeps answering "pending";
//! - like the AWS CLI, the first request goes out at once (a pre-approved client gets its token
//!   without a prompt); the caller shows the code only when that first answer is "pending".

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// RFC 8628 §3.5: how much `slow_down` adds to the interval.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// RFC 8628 §3.2: the interval when the service gives none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// What one `CreateToken` request answered, as far as polling cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<T> {
    Token(T),
    Pending,
    SlowDown,
    Expired,
    Denied,
}

/// Why the wait ended without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ended {
    #[error("the sign-in code expired before it was approved")]
    Expired,
    #[error("the sign-in request was denied")]
    Denied,
}

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<T> {
    Done(T),
    Wait(Duration),
    Stop(Ended),
}

/// The polling state: the interval in force and the code's deadline.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub interval: Duration,
    pub deadline: DateTime<Utc>,
    pub polls: u32,
    pub slow_downs: u32,
}

impl Schedule {
    /// From StartDeviceAuthorization's `interval` and `expiresIn` (seconds), received at `now`.
    pub fn new(interval: Option<i32>, expires_in: i32, now: DateTime<Utc>) -> Self {
        let interval = interval
            .filter(|i| *i > 0)
            .map(|i| Duration::from_secs(i as u64))
            .unwrap_or(DEFAULT_INTERVAL);
        Self {
            interval,
            deadline: now + chrono::Duration::seconds(expires_in.max(0) as i64),
            polls: 0,
            slow_downs: 0,
        }
    }

    /// The next step after `answer`, received at `now`.
    pub fn after<T>(&mut self, answer: Answer<T>, now: DateTime<Utc>) -> Step<T> {
        self.polls += 1;
        match answer {
            Answer::Token(t) => return Step::Done(t),
            Answer::Expired => return Step::Stop(Ended::Expired),
            Answer::Denied => return Step::Stop(Ended::Denied),
            Answer::SlowDown => {
                self.interval += SLOW_DOWN_STEP;
                self.slow_downs += 1;
            }
            Answer::Pending => {}
        }
        let wake = now + chrono::Duration::from_std(self.interval).unwrap_or_default();
        if wake > self.deadline {
            return Step::Stop(Ended::Expired);
        }
        Step::Wait(self.interval)
    }
}

/// The time source and the sleeper, injectable so tests run without waiting.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// How polling ended without a token.
#[derive(Debug)]
pub enum PollError<E> {
    Ended(Ended),
    /// A request failed for another reason (the client, the network): no point in retrying.
    Failed(E),
}

/// Polls until a token, a final answer, or an error. `on_pending` runs once, after the first
/// "pending" answer (show the code, open the browser); `on_slow_down` after each `slow_down`
/// with the new interval.
pub async fn poll<T, E, F, Fut>(
    schedule: &mut Schedule,
    clock: &dyn Clock,
    mut attempt: F,
    on_pending: impl FnOnce(),
    mut on_slow_down: impl FnMut(Duration),
) -> Result<T, PollError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Answer<T>, E>>,
{
    let mut on_pending = Some(on_pending);
    loop {
        let answer = attempt().await.map_err(PollError::Failed)?;
        let slow = matches!(answer, Answer::SlowDown);
        match schedule.after(answer, clock.now()) {
            Step::Done(t) => return Ok(t),
            Step::Stop(e) => return Err(PollError::Ended(e)),
            Step::Wait(d) => {
                if let Some(f) = on_pending.take() {
                    f();
                }
                if slow {
                    on_slow_down(d);
                }
                clock.sleep(d).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// A clock that moves only when slept on, and remembers every sleep.
    struct FakeClock {
        now: Mutex<DateTime<Utc>>,
        slept: Mutex<Vec<Duration>>,
    }

    impl FakeClock {
        fn new() -> Self {
            Self {
                now: Mutex::new(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()),
                slept: Mutex::default(),
            }
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> DateTime<Utc> {
            *self.now.lock().unwrap()
        }
        fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            *self.now.lock().unwrap() += chrono::Duration::from_std(d).unwrap();
            self.slept.lock().unwrap().push(d);
            Box::pin(async {})
        }
    }

    async fn run(
        interval: Option<i32>,
        expires_in: i32,
        answers: Vec<Answer<&'static str>>,
    ) -> (
        Result<&'static str, PollError<()>>,
        Vec<Duration>,
        u32,
        usize,
    ) {
        let clock = FakeClock::new();
        let mut schedule = Schedule::new(interval, expires_in, clock.now());
        let answers = Mutex::new(VecDeque::from(answers));
        let pending_shown = Mutex::new(0u32);
        let slow_downs = Mutex::new(vec![]);
        let out = poll(
            &mut schedule,
            &clock,
            || {
                let next = answers
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(Answer::Pending);
                async move { Ok::<_, ()>(next) }
            },
            || *pending_shown.lock().unwrap() += 1,
            |d| slow_downs.lock().unwrap().push(d),
        )
        .await;
        let slept = clock.slept.lock().unwrap().clone();
        let shown = *pending_shown.lock().unwrap();
        let slow = slow_downs.lock().unwrap().len();
        (out, slept, shown, slow)
    }

    const S1: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn pending_answers_wait_one_interval_each_until_the_token() {
        let (out, slept, shown, _) = run(
            Some(1),
            600,
            vec![Answer::Pending, Answer::Pending, Answer::Token("t")],
        )
        .await;
        assert_eq!(out.unwrap(), "t");
        assert_eq!(slept, vec![S1, S1]);
        assert_eq!(shown, 1, "the code is shown once");
    }

    #[tokio::test]
    async fn a_pre_approved_client_gets_its_token_without_a_prompt() {
        let (out, slept, shown, _) = run(Some(1), 600, vec![Answer::Token("t")]).await;
        assert_eq!(out.unwrap(), "t");
        assert!(slept.is_empty());
        assert_eq!(shown, 0);
    }

    #[tokio::test]
    async fn slow_down_adds_five_seconds_to_every_later_wait() {
        let (out, slept, _, slow) = run(
            Some(1),
            600,
            vec![
                Answer::Pending,
                Answer::SlowDown,
                Answer::Pending,
                Answer::SlowDown,
                Answer::Token("t"),
            ],
        )
        .await;
        assert_eq!(out.unwrap(), "t");
        let secs: Vec<u64> = slept.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![1, 6, 6, 11]);
        assert_eq!(slow, 2);
    }

    #[tokio::test]
    async fn expired_and_denied_end_the_wait() {
        let (out, ..) = run(Some(1), 600, vec![Answer::Pending, Answer::Expired]).await;
        assert!(matches!(out, Err(PollError::Ended(Ended::Expired))));
        let (out, ..) = run(Some(1), 600, vec![Answer::Denied]).await;
        assert!(matches!(out, Err(PollError::Ended(Ended::Denied))));
    }

    #[tokio::test]
    async fn the_codes_own_lifetime_ends_the_wait_if_the_service_never_does() {
        let (out, slept, ..) = run(Some(2), 7, vec![]).await;
        assert!(matches!(out, Err(PollError::Ended(Ended::Expired))));
        assert_eq!(
            slept.len(),
            3,
            "polls at 0, 2, 4, 6 s; 8 s is past the deadline"
        );
    }

    #[tokio::test]
    async fn no_interval_means_five_seconds() {
        let (_, slept, ..) = run(None, 600, vec![Answer::Pending, Answer::Token("t")]).await;
        assert_eq!(slept, vec![DEFAULT_INTERVAL]);
    }

    #[tokio::test]
    async fn an_error_stops_polling_at_once() {
        let clock = FakeClock::new();
        let mut schedule = Schedule::new(Some(1), 600, clock.now());
        let out: Result<(), _> = poll(
            &mut schedule,
            &clock,
            || async { Err::<Answer<()>, _>("invalid_client") },
            || {},
            |_| {},
        )
        .await;
        assert!(matches!(out, Err(PollError::Failed("invalid_client"))));
    }
}
