//! Trusted time (MHLW guideline, ch. 17): every audit entry takes this node's
//! clock, so the server checks every minute that the clock can be trusted.
//!
//! Two questions, each answered by a small probe and judged by pure functions:
//! - Is the system clock synchronised? The kernel's NTP state (`adjtimex`:
//!   `TIME_ERROR` / `STA_UNSYNC`, and the estimated error against the allowed
//!   skew); where the kernel says no or cannot be read, the time daemon's word
//!   if one runs (`timedatectl show -p NTPSynchronized --value`, then `chronyc
//!   -n tracking`). `[time] sync_command` replaces both with one command whose
//!   output is read the same way (`yes`/`no`, or chrony's `Leap status`).
//! - Do the nodes agree? Each check reads the database server's clock between
//!   two readings of its own (the midpoint cancels the round trip), stores its
//!   offset in `node_clocks`, and compares it with the database server and with
//!   the offsets the other nodes stored recently. On SQLite the database reads
//!   the same clock, so one node always agrees with itself.
//!
//! A change of state is logged (a warning when the clock cannot be trusted),
//! shown on the operator console, and recorded on the audit trail
//! ([`crate::records::audit::action::TIME_SYNC`], detail = [`ClockState::as_str`])
//! — once per change, not every minute. A server that starts synchronised says
//! nothing.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::records::audit::{Audit, AuditEvent, action};
use crate::store::Store;

/// What the checks found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    /// Synchronised, and every node within the allowed skew.
    Synchronised,
    /// The kernel (or the time daemon) says the clock is not synchronised.
    Unsynchronised,
    /// This node and the database server or another node differ by more
    /// than the allowed skew (the largest difference, in milliseconds).
    NodesDisagree { skew_ms: u64 },
    /// Nothing could tell (not yet checked, or no source answered).
    Unknown,
}

impl ClockState {
    /// The fixed word the log, the audit entry and the checkpoints carry:
    /// `synchronised`, `unsynchronised`, `nodes_disagree:1.8s`, `unknown`.
    pub fn as_str(&self) -> Cow<'static, str> {
        match self {
            Self::Synchronised => "synchronised".into(),
            Self::Unsynchronised => "unsynchronised".into(),
            Self::NodesDisagree { skew_ms } => {
                format!("nodes_disagree:{}", seconds(*skew_ms)).into()
            }
            Self::Unknown => "unknown".into(),
        }
    }

    /// Whether audit times taken now can be trusted.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Self::Synchronised)
    }

    /// The same state, whatever the size of a disagreement: a skew moving
    /// from 1.8 s to 1.9 s is no new event.
    fn same_kind(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// `1834` → `1.8s`.
fn seconds(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
}

/// What one source says about the system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncReading {
    Synchronised,
    Unsynchronised,
    Unknown,
}

/// The settings of the check (`[time]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimePolicy {
    /// How often `serve` checks (default 60 s).
    pub check_every: Duration,
    /// The largest difference allowed between nodes, and the largest
    /// estimated error of the kernel clock (default 1 s).
    pub max_skew: Duration,
    /// A command that says whether the clock is synchronised, replacing the
    /// kernel and the daemons (program and arguments; no shell).
    pub sync_command: Option<Vec<String>>,
}

impl Default for TimePolicy {
    fn default() -> Self {
        Self {
            check_every: Duration::from_secs(60),
            max_skew: Duration::from_secs(1),
            sync_command: None,
        }
    }
}

/// `TIME_ERROR` from `adjtimex`: the clock is not synchronised.
const TIME_ERROR: i32 = 5;
/// `STA_UNSYNC` in the kernel's status word.
const STA_UNSYNC: i32 = 0x0040;

/// The kernel's answer to a read-only `adjtimex`: its return value, status
/// word and estimated error (µs). Unsynchronised when it says so, or when the
/// error it estimates exceeds the allowed skew.
pub fn kernel_verdict(
    state: i32,
    status: i32,
    esterror_us: i64,
    max_skew: Duration,
) -> SyncReading {
    let max_us = i64::try_from(max_skew.as_micros()).unwrap_or(i64::MAX);
    if state == TIME_ERROR || status & STA_UNSYNC != 0 || esterror_us > max_us {
        SyncReading::Unsynchronised
    } else {
        SyncReading::Synchronised
    }
}

/// A time daemon's answer: `timedatectl show -p NTPSynchronized [--value]`
/// (`yes`/`no`) or `chronyc tracking` (`Leap status : Normal` or `Not
/// synchronised`). Anything else tells nothing.
pub fn daemon_verdict(output: &str) -> SyncReading {
    for line in output.lines() {
        let line = line.trim();
        let value = match line.split_once(['=', ':']) {
            Some((key, value))
                if key.trim() == "NTPSynchronized" || key.trim() == "Leap status" =>
            {
                value.trim()
            }
            Some(_) => continue,
            None => line,
        };
        match value {
            "yes" | "Normal" | "Insert second" | "Delete second" => {
                return SyncReading::Synchronised;
            }
            "no" | "Not synchronised" => return SyncReading::Unsynchronised,
            _ => {}
        }
    }
    SyncReading::Unknown
}

/// The state from the host's reading and the largest skew to the database
/// server and the other nodes (`None`: not measured). Unsynchronised first:
/// a clock that is not synchronised explains a disagreement.
pub fn judge(host: SyncReading, skew_ms: Option<u64>, max_skew: Duration) -> ClockState {
    let max_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
    match (host, skew_ms) {
        (SyncReading::Unsynchronised, _) => ClockState::Unsynchronised,
        (_, Some(skew_ms)) if skew_ms > max_ms => ClockState::NodesDisagree { skew_ms },
        (SyncReading::Synchronised, _) => ClockState::Synchronised,
        (SyncReading::Unknown, _) => ClockState::Unknown,
    }
}

/// This node's offset to the database server from one exchange: the node's
/// clock before and after, the server's in between. Returns the offset and
/// its uncertainty (half the round trip), both in ms.
pub fn offset_of(before_ms: i64, database_ms: i64, after_ms: i64) -> (i64, i64) {
    let mid = before_ms + (after_ms - before_ms) / 2;
    (mid - database_ms, (after_ms - before_ms).max(0) / 2)
}

/// The largest difference between this node and the database server (offset
/// 0) or another node's offset, less the measuring uncertainty.
pub fn largest_skew(own_offset: i64, uncertainty: i64, others: &[i64]) -> u64 {
    std::iter::once(0)
        .chain(others.iter().copied())
        .map(|o| {
            own_offset
                .abs_diff(o)
                .saturating_sub(uncertainty.unsigned_abs())
        })
        .max()
        .unwrap_or(0)
}

/// Reads the kernel's NTP state (read-only `adjtimex`).
#[cfg(target_os = "linux")]
fn kernel_reading(max_skew: Duration) -> SyncReading {
    let mut timex = rtime_clock::adjtime::Timex::new();
    match rtime_clock::adjtime::adjtimex(&mut timex) {
        Ok(state) => kernel_verdict(state, timex.0.status, timex.0.esterror, max_skew),
        Err(e) => {
            tracing::debug!(error = %e, "the kernel's clock state cannot be read");
            SyncReading::Unknown
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn kernel_reading(_max_skew: Duration) -> SyncReading {
    SyncReading::Unknown
}

/// Runs `program args…` (no shell, 5 s at most) and reads its answer; a
/// missing program, a failure or an unclear answer tells nothing.
async fn command_reading(command: &[String]) -> SyncReading {
    let Some((program, args)) = command.split_first() else {
        return SyncReading::Unknown;
    };
    let run = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(Ok(out)) if out.status.success() => {
            daemon_verdict(&String::from_utf8_lossy(&out.stdout))
        }
        _ => SyncReading::Unknown,
    }
}

/// What the host says: the configured command alone, else the kernel, asking
/// the daemons when the kernel does not say yes.
async fn host_reading(policy: &TimePolicy) -> SyncReading {
    if let Some(command) = &policy.sync_command {
        return command_reading(command).await;
    }
    let kernel = kernel_reading(policy.max_skew);
    if kernel == SyncReading::Synchronised {
        return kernel;
    }
    let daemons: [&[&str]; 2] = [
        &["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
        &["chronyc", "-n", "tracking"],
    ];
    for daemon in daemons {
        let command: Vec<String> = daemon.iter().map(|s| s.to_string()).collect();
        let reading = command_reading(&command).await;
        if reading != SyncReading::Unknown {
            return reading;
        }
    }
    kernel
}

/// The check of one node, and the state it last found.
pub struct TimeSync {
    store: Arc<dyn Store>,
    audit: Audit,
    policy: TimePolicy,
    /// This process's name in `node_clocks`.
    node: String,
    /// The state of the last check (`None` before the first).
    current: RwLock<Option<ClockState>>,
    /// The state the audit trail last recorded (a failed write is retried
    /// at the next check).
    recorded: tokio::sync::Mutex<Option<ClockState>>,
}

impl TimeSync {
    pub fn new(store: Arc<dyn Store>, audit: Audit, policy: TimePolicy) -> Self {
        Self {
            store,
            audit,
            policy,
            node: format!("{:016x}", rand::random::<u64>()),
            current: RwLock::new(None),
            recorded: tokio::sync::Mutex::new(None),
        }
    }

    pub fn policy(&self) -> &TimePolicy {
        &self.policy
    }

    /// The state of the last check; `Unknown` before the first.
    pub fn state(&self) -> ClockState {
        self.checked().unwrap_or(ClockState::Unknown)
    }

    /// The state of the last check, if one ran (the console shows nothing
    /// before it).
    pub fn checked(&self) -> Option<ClockState> {
        self.current.read().map(|c| *c).unwrap_or(None)
    }

    /// The largest skew to the database server and the nodes seen within
    /// three check periods; `None` when the database cannot be asked.
    async fn skew(&self) -> Option<u64> {
        let window = i64::try_from(self.policy.check_every.as_millis().saturating_mul(3))
            .unwrap_or(i64::MAX)
            .max(10_000);
        let before = crate::clock::now_millis();
        let database = self.store.database_now_millis().await;
        let after = crate::clock::now_millis();
        let database = match database {
            Ok(ms) => ms,
            Err(e) => {
                tracing::warn!(error = %e, "reading the database server's clock failed");
                return None;
            }
        };
        let (offset, uncertainty) = offset_of(before, database, after);
        match self
            .store
            .report_node_clock(&self.node, offset, database, database - window)
            .await
        {
            Ok(others) => Some(largest_skew(offset, uncertainty, &others)),
            Err(e) => {
                tracing::warn!(error = %e, "comparing the nodes' clocks failed");
                Some(largest_skew(offset, uncertainty, &[]))
            }
        }
    }

    /// One check: measures, keeps the state, and on a change of state logs it
    /// and records it on the audit trail. Returns the state found.
    pub async fn check(&self) -> ClockState {
        let host = host_reading(&self.policy).await;
        let skew = self.skew().await;
        let state = judge(host, skew, self.policy.max_skew);
        if let Ok(mut current) = self.current.write() {
            *current = Some(state);
        }
        let mut recorded = self.recorded.lock().await;
        let changed = match *recorded {
            None => !state.is_trusted(),
            Some(before) => !before.same_kind(&state),
        };
        if !changed {
            if recorded.is_none() {
                *recorded = Some(state);
            }
            return state;
        }
        let word = state.as_str();
        if state.is_trusted() {
            tracing::info!(node = %self.node, state = %word, "the system clock is trusted again");
        } else {
            tracing::warn!(
                node = %self.node,
                state = %word,
                "the system clock cannot be trusted: audit times may be wrong"
            );
        }
        let entry = AuditEvent::system(action::TIME_SYNC)
            .item(self.node.clone())
            .detail(word.into_owned());
        match self.audit.record(entry).await {
            Ok(()) => *recorded = Some(state),
            Err(e) => tracing::warn!(error = %e, "recording the clock state failed"),
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_kernel_unsynchronised_flag_or_a_large_error_means_unsynchronised() {
        assert_eq!(
            kernel_verdict(0, 0x2001, 2_000, SECOND),
            SyncReading::Synchronised
        );
        assert_eq!(
            kernel_verdict(5, 0x40, 16_000_000, SECOND),
            SyncReading::Unsynchronised
        );
        assert_eq!(
            kernel_verdict(0, 0x40, 0, SECOND),
            SyncReading::Unsynchronised
        );
        assert_eq!(kernel_verdict(5, 0, 0, SECOND), SyncReading::Unsynchronised);
        assert_eq!(
            kernel_verdict(0, 0, 1_500_000, SECOND),
            SyncReading::Unsynchronised
        );
    }

    #[test]
    fn the_daemons_answers_are_read() {
        assert_eq!(daemon_verdict("yes\n"), SyncReading::Synchronised);
        assert_eq!(
            daemon_verdict("NTPSynchronized=no\n"),
            SyncReading::Unsynchronised
        );
        let chrony = "Reference ID    : A9FE A97B (169.254.169.123)\n\
                      Stratum         : 4\nLeap status     : Normal\n";
        assert_eq!(daemon_verdict(chrony), SyncReading::Synchronised);
        let lost = "Reference ID    : 00000000 ()\nLeap status     : Not synchronised\n";
        assert_eq!(daemon_verdict(lost), SyncReading::Unsynchronised);
        assert_eq!(daemon_verdict(""), SyncReading::Unknown);
        assert_eq!(
            daemon_verdict("Failed to connect to bus"),
            SyncReading::Unknown
        );
    }

    #[test]
    fn nodes_more_than_the_skew_apart_disagree() {
        let (offset, uncertainty) = offset_of(10_000, 8_190, 10_020);
        assert_eq!((offset, uncertainty), (1_820, 10));
        let skew = largest_skew(offset, uncertainty, &[]);
        assert_eq!(skew, 1_810);
        let state = judge(SyncReading::Synchronised, Some(skew), SECOND);
        assert_eq!(state, ClockState::NodesDisagree { skew_ms: 1_810 });
        assert_eq!(state.as_str(), "nodes_disagree:1.8s");
        // Another node 1.5 s behind the server, this one on time.
        assert_eq!(largest_skew(3, 2, &[-1_500, 40]), 1_501);
        assert_eq!(
            judge(SyncReading::Synchronised, Some(400), SECOND),
            ClockState::Synchronised
        );
        assert_eq!(
            judge(SyncReading::Unsynchronised, Some(5_000), SECOND).as_str(),
            "unsynchronised"
        );
        assert_eq!(
            judge(SyncReading::Unknown, Some(0), SECOND).as_str(),
            "unknown"
        );
        assert_eq!(
            judge(SyncReading::Synchronised, None, SECOND).as_str(),
            "synchronised"
        );
    }

    #[test]
    fn a_changing_skew_is_the_same_state() {
        let a = ClockState::NodesDisagree { skew_ms: 1_800 };
        let b = ClockState::NodesDisagree { skew_ms: 1_900 };
        assert!(a.same_kind(&b));
        assert!(!a.same_kind(&ClockState::Unsynchronised));
        assert!(!a.is_trusted());
    }
}
