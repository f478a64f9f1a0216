//! The soak's schedule: what each "hour" injects, drawn from a seeded `StdRng` before the run
//! starts (the same seed gives the same schedule, printed with its total outage time), and how
//! each fault is put into the test bed and taken out again.
//!
//! Two sorts of faults. **Short** ones last one hour (about a second and a half of wall time):
//! Key Vault 503 / 429 / a dropped connection / latency, STS throttling or refusal, IAM slow or
//! denied, storage down or slow, ARM refusing or hanging, an instance SIGKILLed mid-rotation, the
//! `serve-credentials` endpoint SIGKILLed (and restarted). **Outages** last 20–90 s of wall time,
//! longer than a set lives (60 s), so the published set can really expire: STS refusing every
//! `GetSessionToken`, Key Vault answering 503 to everything, or storage down; the hour's timer
//! trigger is repeated every 10 s meanwhile, as the host's timer keeps firing.

use std::ops::RangeInclusive;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use testbed::{Fault, Rule, TestBed};

use super::self_test::Defect;
use super::INSTANCES;

/// The chance that an hour is an outage.
pub const OUTAGE_CHANCE: f64 = 0.05;
/// The chance that an hour that is not an outage has a short fault.
pub const FAULT_CHANCE: f64 = 0.4;
/// The chance that an hour has a burst of forced triggers after its timer trigger.
pub const BURST_CHANCE: f64 = 0.3;
/// The chance that an hour asks an instance to rotate the IAM key.
pub const KEY_ROTATION_CHANCE: f64 = 0.03;
/// How long an outage lasts, in seconds of wall time.
pub const OUTAGE_SECS: RangeInclusive<u64> = 20..=90;
/// While an outage lasts, its hour's timer trigger is repeated this often.
pub const OUTAGE_TRIGGER_EVERY: Duration = Duration::from_secs(10);

/// The faults, by kind (what the report counts, and what a fault can excuse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Vault5xx,
    Vault429,
    VaultDropped,
    VaultLatency,
    StsThrottled,
    StsRefused,
    IamSlow,
    IamDenied,
    StorageDown,
    StorageSlow,
    ArmRefusing,
    ArmHanging,
    Kill,
    EndpointKill,
    StsOutage,
    VaultOutage,
    StorageOutage,
    KeyRotation,
}

/// The short faults, one of which an hour may have.
pub const SHORT: [Kind; 14] = [
    Kind::Vault5xx,
    Kind::Vault429,
    Kind::VaultDropped,
    Kind::VaultLatency,
    Kind::StsThrottled,
    Kind::StsRefused,
    Kind::IamSlow,
    Kind::IamDenied,
    Kind::StorageDown,
    Kind::StorageSlow,
    Kind::ArmRefusing,
    Kind::ArmHanging,
    Kind::Kill,
    Kind::EndpointKill,
];

/// The outages.
pub const OUTAGES: [Kind; 3] = [Kind::StsOutage, Kind::VaultOutage, Kind::StorageOutage];

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Vault5xx => "Key Vault 503 (1-3 requests)",
            Kind::Vault429 => "Key Vault 429 (1-2 requests)",
            Kind::VaultDropped => "Key Vault dropped connection",
            Kind::VaultLatency => "Key Vault latency 200-800 ms",
            Kind::StsThrottled => "STS throttling (1-3 GetSessionToken)",
            Kind::StsRefused => "STS refusal (AccessDenied)",
            Kind::IamSlow => "IAM slow (ListAccessKeys 2-5 s)",
            Kind::IamDenied => "IAM denied (ListAccessKeys)",
            Kind::StorageDown => "storage down (relay closes)",
            Kind::StorageSlow => "storage latency 200-800 ms",
            Kind::ArmRefusing => "ARM refusing (AuthorizationFailed)",
            Kind::ArmHanging => "ARM hanging (never answers)",
            Kind::Kill => "SIGKILL mid-rotation + restart",
            Kind::EndpointKill => "serve-credentials SIGKILLed, restarted 0.5-3 s later",
            Kind::StsOutage => "STS outage 20-90 s (every GetSessionToken 503)",
            Kind::VaultOutage => "Key Vault outage 20-90 s (every request 503)",
            Kind::StorageOutage => "storage outage 20-90 s (relay closes)",
            Kind::KeyRotation => "IAM key rotation requested",
        }
    }

    /// Whether the fault keeps every rotation from publishing while it lasts, so the published
    /// set may expire: it explains a reader that found only an expired set.
    pub fn starves(self) -> bool {
        matches!(self, Kind::StsOutage | Kind::VaultOutage)
    }

    /// Whether the fault can make Key Vault fail a consumer's own read of the bundle.
    pub fn fails_vault_reads(self) -> bool {
        matches!(
            self,
            Kind::Vault5xx | Kind::Vault429 | Kind::VaultDropped | Kind::VaultOutage
        )
    }

    /// Whether the fault stops the credentials endpoint (its connections refused or cut).
    pub fn stops_endpoint(self) -> bool {
        self == Kind::EndpointKill
    }

    /// Whether storage (the lease) is down: a burst mints once per instance, uncoordinated.
    pub fn storage_down(self) -> bool {
        matches!(self, Kind::StorageDown | Kind::StorageOutage)
    }
}

/// One hour's fault, with the values drawn for it.
#[derive(Clone, Debug, PartialEq)]
pub enum Injected {
    Vault5xx(u32),
    Vault429(u32),
    VaultDropped {
        commit: bool,
        op: &'static str,
    },
    VaultLatency(Duration),
    StsThrottled(u32),
    StsRefused,
    IamSlow(Duration),
    IamDenied,
    StorageDown,
    StorageSlow(Duration),
    ArmRefusing,
    ArmHanging,
    /// An instance (never instance 0) SIGKILLed this long into a forced rotation held at STS.
    Kill {
        victim: usize,
        after: Duration,
    },
    /// The endpoint SIGKILLed and started again this long after.
    EndpointKill {
        down: Duration,
    },
    StsOutage(Duration),
    VaultOutage(Duration),
    StorageOutage(Duration),
}

impl Injected {
    pub fn kind(&self) -> Kind {
        match self {
            Injected::Vault5xx(_) => Kind::Vault5xx,
            Injected::Vault429(_) => Kind::Vault429,
            Injected::VaultDropped { .. } => Kind::VaultDropped,
            Injected::VaultLatency(_) => Kind::VaultLatency,
            Injected::StsThrottled(_) => Kind::StsThrottled,
            Injected::StsRefused => Kind::StsRefused,
            Injected::IamSlow(_) => Kind::IamSlow,
            Injected::IamDenied => Kind::IamDenied,
            Injected::StorageDown => Kind::StorageDown,
            Injected::StorageSlow(_) => Kind::StorageSlow,
            Injected::ArmRefusing => Kind::ArmRefusing,
            Injected::ArmHanging => Kind::ArmHanging,
            Injected::Kill { .. } => Kind::Kill,
            Injected::EndpointKill { .. } => Kind::EndpointKill,
            Injected::StsOutage(_) => Kind::StsOutage,
            Injected::VaultOutage(_) => Kind::VaultOutage,
            Injected::StorageOutage(_) => Kind::StorageOutage,
        }
    }

    /// How long an outage lasts; `None` for a short fault.
    pub fn outage(&self) -> Option<Duration> {
        match self {
            Injected::StsOutage(d) | Injected::VaultOutage(d) | Injected::StorageOutage(d) => {
                Some(*d)
            }
            _ => None,
        }
    }

    /// What the report and the violations name: the kind, and an outage's length.
    pub fn label(&self) -> String {
        match self.outage() {
            Some(d) => format!("{}: {} s", self.kind().label(), d.as_secs()),
            None => self.kind().label().to_string(),
        }
    }
}

/// One hour: its fault, its timer trigger's instance, and what follows the trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub hour: u32,
    pub fault: Option<Injected>,
    /// Whether the fault is declared, so that the reader failures it explains are excused.
    /// Only the self-test injects a fault without declaring it.
    pub declared: bool,
    /// The instance the hour's `TimerRotate` goes to.
    pub target: usize,
    /// Instances sent a forced `HttpRotate` at once after the timer trigger.
    pub burst: Option<Vec<usize>>,
    /// An instance asked to rotate the IAM key (`?rotateSourceKey=true`).
    pub key_rotation: Option<usize>,
    /// A deliberate defect (the self-test only).
    pub defect: Option<Defect>,
    /// A pause once the hour is over, the timer triggered every 2 s meanwhile (the self-test
    /// only: it lets an injection's consequences settle before the next one).
    pub pause: Duration,
}

impl Step {
    /// An hour with only its timer trigger.
    pub fn quiet(hour: u32, target: usize) -> Self {
        Self {
            hour,
            fault: None,
            declared: true,
            target,
            burst: None,
            key_rotation: None,
            defect: None,
            pause: Duration::ZERO,
        }
    }
}

/// The whole run's schedule for a seed.
pub fn schedule(seed: u64, hours: u32) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    (1..=hours)
        .map(|hour| {
            let fault = if rng.random_bool(OUTAGE_CHANCE) {
                let length = Duration::from_secs(rng.random_range(OUTAGE_SECS));
                Some(match OUTAGES[rng.random_range(0..OUTAGES.len())] {
                    Kind::StsOutage => Injected::StsOutage(length),
                    Kind::VaultOutage => Injected::VaultOutage(length),
                    _ => Injected::StorageOutage(length),
                })
            } else if rng.random_bool(FAULT_CHANCE) {
                Some(draw_short(
                    SHORT[rng.random_range(0..SHORT.len())],
                    &mut rng,
                ))
            } else {
                None
            };
            let target = rng.random_range(0..INSTANCES);
            let burst = rng.random_bool(BURST_CHANCE).then(|| {
                let mut order: Vec<usize> = (0..INSTANCES).collect();
                order.shuffle(&mut rng);
                order.truncate(rng.random_range(2..=INSTANCES));
                order
            });
            let key_rotation = rng
                .random_bool(KEY_ROTATION_CHANCE)
                .then(|| rng.random_range(0..INSTANCES));
            Step {
                fault,
                burst,
                key_rotation,
                ..Step::quiet(hour, target)
            }
        })
        .collect()
}

fn draw_short(kind: Kind, rng: &mut StdRng) -> Injected {
    let ms = |rng: &mut StdRng, range: RangeInclusive<u64>| {
        Duration::from_millis(rng.random_range(range))
    };
    match kind {
        Kind::Vault5xx => Injected::Vault5xx(rng.random_range(1..=3)),
        Kind::Vault429 => Injected::Vault429(rng.random_range(1..=2)),
        Kind::VaultDropped => Injected::VaultDropped {
            commit: rng.random_bool(0.5),
            op: ["get", "set"][rng.random_range(0..2)],
        },
        Kind::VaultLatency => Injected::VaultLatency(ms(rng, 200..=800)),
        Kind::StsThrottled => Injected::StsThrottled(rng.random_range(1..=3)),
        Kind::StsRefused => Injected::StsRefused,
        Kind::IamSlow => Injected::IamSlow(ms(rng, 2000..=5000)),
        Kind::IamDenied => Injected::IamDenied,
        Kind::StorageDown => Injected::StorageDown,
        Kind::StorageSlow => Injected::StorageSlow(ms(rng, 200..=800)),
        Kind::ArmRefusing => Injected::ArmRefusing,
        Kind::ArmHanging => Injected::ArmHanging,
        // Never instance 0: it lives the whole run, so its RSS at the start and the end
        // measures growth (the others' end figures are of restarted processes).
        Kind::Kill => Injected::Kill {
            victim: rng.random_range(1..INSTANCES),
            after: ms(rng, 200..=1200),
        },
        Kind::EndpointKill => Injected::EndpointKill {
            down: ms(rng, 500..=3000),
        },
        Kind::StsOutage | Kind::VaultOutage | Kind::StorageOutage | Kind::KeyRotation => {
            unreachable!("not a short fault: {kind:?}")
        }
    }
}

/// Puts a fault into the test bed (not `Kill` and `EndpointKill`: the run does those itself).
pub fn install(bed: &TestBed, fault: &Injected) {
    let unavailable = || Fault::error(503, "ServiceUnavailable", "The service is unavailable.");
    let storage = bed.storage.as_ref().expect("storage");
    match fault {
        Injected::Vault5xx(n) => bed.vault.faults.add(Rule::any(unavailable()).times(*n)),
        Injected::Vault429(n) => bed
            .vault
            .faults
            .add(Rule::any(Fault::throttled(1)).times(*n)),
        Injected::VaultDropped { commit, op } => {
            let fault = if *commit {
                Fault::CommitThenDrop
            } else {
                Fault::Drop
            };
            bed.vault.faults.add(Rule::on(op, fault).times(1));
        }
        Injected::VaultLatency(d) => bed.vault.faults.set_latency(*d),
        Injected::StsThrottled(n) => bed.sts.faults.add(
            Rule::on(
                "GetSessionToken",
                Fault::error(400, "Throttling", "Rate exceeded"),
            )
            .times(*n),
        ),
        Injected::StsRefused => bed.sts.faults.add(
            Rule::on(
                "GetSessionToken",
                Fault::error(
                    403,
                    "AccessDenied",
                    "User is not authorized to perform: sts:GetSessionToken",
                ),
            )
            .times(1),
        ),
        Injected::IamSlow(d) => bed
            .sts
            .faults
            .add(Rule::on("ListAccessKeys", Fault::Delay(*d))),
        Injected::IamDenied => bed.sts.faults.add(Rule::on(
            "ListAccessKeys",
            Fault::error(
                403,
                "AccessDenied",
                "not authorized to perform iam:ListAccessKeys",
            ),
        )),
        Injected::StorageDown | Injected::StorageOutage(_) => storage.set_down(true),
        Injected::StorageSlow(d) => storage.set_latency(*d),
        Injected::ArmRefusing => bed
            .arm
            .faults
            .add(Rule::any(testbed::arm::authorization_failed(
                "soak-consumer",
            ))),
        Injected::ArmHanging => bed
            .arm
            .faults
            .add(Rule::any(Fault::Delay(Duration::from_secs(600)))),
        Injected::StsOutage(_) => bed.sts.faults.add(Rule::on(
            "GetSessionToken",
            Fault::error(503, "ServiceUnavailable", "Service unavailable"),
        )),
        Injected::VaultOutage(_) => bed.vault.faults.add(Rule::any(unavailable())),
        Injected::Kill { .. } | Injected::EndpointKill { .. } => {}
    }
}

/// Takes every fault out of the test bed.
pub fn clear(bed: &TestBed) {
    bed.vault.faults.clear();
    bed.vault.faults.set_latency(Duration::ZERO);
    bed.sts.faults.clear();
    bed.sts.faults.set_latency(Duration::ZERO);
    bed.arm.faults.clear();
    let storage = bed.storage.as_ref().expect("storage");
    storage.set_down(false);
    storage.set_latency(Duration::ZERO);
}

/// The schedule's outages: how many of each kind, and their total length.
pub fn outages(steps: &[Step]) -> (Vec<(Kind, u32)>, Duration) {
    let mut by_kind: Vec<(Kind, u32)> = OUTAGES.iter().map(|k| (*k, 0)).collect();
    let mut total = Duration::ZERO;
    for f in steps.iter().filter_map(|s| s.fault.as_ref()) {
        if let Some(d) = f.outage() {
            total += d;
            if let Some(entry) = by_kind.iter_mut().find(|(k, _)| *k == f.kind()) {
                entry.1 += 1;
            }
        }
    }
    (by_kind, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_outages_outlive_a_set() {
        let a = schedule(21, 200);
        assert_eq!(a, schedule(21, 200));
        assert_ne!(a, schedule(22, 200));
        let lengths: Vec<Duration> = a
            .iter()
            .filter_map(|s| s.fault.as_ref()?.outage())
            .collect();
        assert!(!lengths.is_empty(), "200 hours hold outages");
        assert!(lengths.iter().all(|d| OUTAGE_SECS.contains(&d.as_secs())));
        // Outages reach past a 60 s set's expiry in the default run.
        assert!(lengths.iter().any(|d| d.as_secs() > 65), "{lengths:?}");
        assert!(a
            .iter()
            .all(|s| s.declared && s.defect.is_none() && s.pause.is_zero()));
        assert!(a
            .iter()
            .filter_map(|s| s.burst.as_ref())
            .all(|b| (2..=INSTANCES).contains(&b.len())));
    }

    #[test]
    fn only_outages_of_sts_or_key_vault_starve_the_rotation() {
        let starving: Vec<Kind> = SHORT
            .iter()
            .chain(&OUTAGES)
            .copied()
            .filter(|k| k.starves())
            .collect();
        assert_eq!(starving, [Kind::StsOutage, Kind::VaultOutage]);
        assert!(!Kind::StorageOutage.starves() && !Kind::StorageOutage.fails_vault_reads());
        assert!(!Kind::VaultLatency.fails_vault_reads());
    }
}
