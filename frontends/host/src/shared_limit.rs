//! Per-key rate limits shared by several gateways (`--redis`): each key's
//! GCRA state lives in Redis, so a limit holds across every instance
//! behind a load balancer, not per instance.
//!
//! The math stays the core's ([`ratelimit::check`]); Redis only stores the
//! state, as the 128-bit word the in-process bucket keeps
//! ([`GcraState::to_bits`], in decimal), and swaps it atomically. An
//! admission is one script call: this gateway computes the decision on the
//! state it last saw for the key, and the script stores the new state only
//! if Redis still holds that one; otherwise it returns the current state
//! and the decision is made again (a second round trip, only when another
//! gateway admitted a request of the same key meanwhile). Concurrent
//! admissions thus decide exactly as if made one after another, as on one
//! machine. A denial reads the state first, so its headers are exact.
//! Admissions of one key on this gateway take turns (a lock per stripe of
//! key ids, held across the round trip), so they never race each other in
//! Redis: only another gateway's admission can make a swap fail, and the
//! gateway that lost then has the next turn (see [`SWAP`]). Losing races
//! is no Redis failure; after [`MAX_SWAPS`] losses the one admission
//! follows the failure policy, and Redis is not taken for unreachable.
//!
//! Time is each gateway's own clock (Unix ms): gateways whose clocks
//! differ by `d` can let a key's burst through up to `d` early. Each key's
//! state expires from Redis once its bucket is full again.
//!
//! Redis unreachable: the admission follows `--redis-failure`. `open`
//! (the default) decides on this gateway's own bucket, so each instance
//! enforces the limit alone until Redis is back; `closed` refuses with a
//! 503 in the route's dialect. Either way one line is logged when Redis
//! goes away and one when it is back, and while it is away it is tried at
//! most once a second, so admissions do not each wait for a timeout.

use crate::failure_policy::FailurePolicy;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arouter_core::exchange::{Admission, Rejection};
use arouter_core::ratelimit::{self, Decision, GcraState, Quota};

use crate::keys::PendingLimit;

/// Compare-and-swap of one key's state (`KEYS[1]`): `ARGV[1]` the state
/// expected (`"0"` for a full bucket, which is also what an absent key
/// means), `ARGV[2]` the new one, `ARGV[3]` its lifetime in ms. Returns
/// `""` when stored, else the state Redis holds.
///
/// Turns (`KEYS[2]`): a gateway whose swap fails claims the next one for
/// `ARGV[5]` ms (`ARGV[4]` is its id), and while that claim stands only it
/// may swap. Without it, the gateway that had just won would win again and
/// again: its next swap reaches Redis before the loser has even read the
/// answer that tells it to try again.
const SWAP: &str = r#"
local current = redis.call('GET', KEYS[1]) or '0'
local turn = redis.call('GET', KEYS[2])
if turn and turn ~= ARGV[4] then
  return current
end
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  if turn then redis.call('DEL', KEYS[2]) end
  return ''
end
if not turn then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5]) end
return current
"#;

/// The state of `KEYS[1]` (for a refusal's headers), giving up this
/// gateway's turn (`KEYS[2]`, `ARGV[1]` its id) if it held one.
const READ: &str = r#"
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return redis.call('GET', KEYS[1]) or '0'
"#;

/// Swaps tried before the admission follows the failure policy (each
/// retry means another gateway won a race for the same key, or has the
/// turn).
const MAX_SWAPS: usize = 32;
/// How long a gateway's claim of the next turn stands (it is used within a
/// round trip; this only bounds the wait when its holder died).
const TURN_MS: u64 = 20;
/// The pause before trying again while another gateway has the turn.
const TURN_WAIT: Duration = Duration::from_millis(1);
/// Admissions of keys in the same stripe (key id modulo this) take turns.
const STRIPES: usize = 64;
/// How long a connect, read or write to Redis may take.
const IO_TIMEOUT: Duration = Duration::from_millis(500);
/// While Redis is away it is tried again at most this often.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Why Redis could not decide.
#[derive(Debug)]
pub enum LimiterError {
    Redis(redis::RedisError),
    /// The script answered something else than it returns.
    Reply(String),
    /// Other gateways kept winning the swap.
    Contended,
    /// Redis failed recently; not tried again yet.
    Resting,
}

impl std::fmt::Display for LimiterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimiterError::Redis(err) => write!(f, "{err}"),
            LimiterError::Reply(reply) => write!(f, "unexpected reply from the script: {reply:?}"),
            LimiterError::Contended => f.write_str("the key's state kept changing under us"),
            LimiterError::Resting => f.write_str("Redis failed less than a second ago"),
        }
    }
}

impl From<redis::RedisError> for LimiterError {
    fn from(err: redis::RedisError) -> Self {
        LimiterError::Redis(err)
    }
}

/// The shared limiter: a Redis client, its idle connections, and the last
/// state this gateway saw of each key.
pub struct RedisLimiter {
    client: redis::Client,
    idle: Mutex<Vec<redis::Connection>>,
    script: redis::Script,
    read: redis::Script,
    /// This process, in the turns it claims.
    id: String,
    seen: Mutex<HashMap<i64, u128>>,
    /// Held across a key's admission, so this gateway's admissions of one
    /// key never race each other in Redis.
    stripes: Vec<Mutex<()>>,
    policy: FailurePolicy,
    /// Unix ms of the last failure, 0 while Redis answers.
    failed_at: AtomicU64,
    /// Admissions decided by the failure policy (Redis unreachable).
    by_policy: AtomicU64,
    since: Mutex<Option<Instant>>,
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RedisLimiter {
    /// A limiter on the Redis at `url` (`redis://host:port[/db]`); nothing
    /// is connected yet.
    pub fn new(url: &str, policy: FailurePolicy) -> Result<RedisLimiter, redis::RedisError> {
        Ok(RedisLimiter {
            client: redis::Client::open(url)?,
            idle: Mutex::new(Vec::new()),
            script: redis::Script::new(SWAP),
            read: redis::Script::new(READ),
            id: instance_id(),
            seen: Mutex::new(HashMap::new()),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            policy,
            failed_at: AtomicU64::new(0),
            by_policy: AtomicU64::new(0),
            since: Mutex::new(None),
            started: Instant::now(),
        })
    }

    /// Whether the last call to Redis worked (for metrics; `/readyz` pings).
    pub fn up(&self) -> bool {
        self.failed_at.load(Ordering::Relaxed) == 0
    }

    /// Admissions decided by the failure policy so far, for want of Redis
    /// (or because other gateways kept winning one key's swaps).
    pub fn decided_by_policy(&self) -> u64 {
        self.by_policy.load(Ordering::Relaxed)
    }

    /// Whether Redis answers a `PING` now (for `/readyz` and start-up).
    pub fn ping(&self) -> Result<(), LimiterError> {
        let mut conn = self.connection()?;
        redis::cmd("PING").query::<String>(&mut conn)?;
        lock(&self.idle).push(conn);
        Ok(())
    }

    /// Decides a pending admission: on Redis, or as the failure policy
    /// says when Redis cannot. Blocking: call it off the serving threads.
    pub fn decide(&self, pending: PendingLimit, now_unix_ms: u64) -> Admission {
        let Some(quota) = pending.quota() else {
            return pending.finish(None);
        };
        let stripe = usize::try_from(pending.key_id.rem_euclid(STRIPES as i64)).unwrap_or(0);
        let turn = self.stripes.get(stripe).map(lock);
        let checked = self.check(pending.key_id, &quota, now_unix_ms);
        drop(turn);
        match checked {
            Ok(decision) => {
                self.recovered();
                pending.finish(Some(decision))
            }
            Err(err) => {
                if matches!(err, LimiterError::Contended) {
                    // Redis answers: other gateways kept winning the key.
                    log::debug!("rate limits: key {}: {err}", pending.key_id);
                } else {
                    self.failed(&err);
                }
                self.by_policy.fetch_add(1, Ordering::Relaxed);
                match self.policy {
                    FailurePolicy::Open => pending.check_locally(now_unix_ms),
                    FailurePolicy::Closed => Admission::Rejected {
                        reason: Rejection::LimiterUnavailable,
                        headers: Vec::new(),
                    },
                }
            }
        }
    }

    fn check(&self, key_id: i64, quota: &Quota, now_ms: u64) -> Result<Decision, LimiterError> {
        let elapsed = self.elapsed_ms();
        let failed_at = self.failed_at.load(Ordering::Relaxed);
        if failed_at != 0 && elapsed < failed_at + RETRY_EVERY.as_millis() as u64 {
            return Err(LimiterError::Resting);
        }
        let key = format!("arouter:ratelimit:{key_id}");
        let turn = format!("arouter:ratelimit:{key_id}:turn");
        let mut conn = self.connection()?;
        let mut seen = lock(&self.seen).get(&key_id).copied().unwrap_or(0);
        let mut read = false;
        for _ in 0..MAX_SWAPS {
            let mut state = GcraState::from_bits(seen);
            let decision = ratelimit::check(quota, &mut state, now_ms, 1);
            if !decision.allowed && !read {
                // Decided on what this gateway last saw: read the state
                // as it is, so the refusal's headers are exact.
                let current: String = self
                    .read
                    .key(&key)
                    .key(&turn)
                    .arg(&self.id)
                    .invoke(&mut conn)?;
                seen = parse_state(&current)?;
                read = true;
                continue;
            }
            if !decision.allowed {
                lock(&self.idle).push(conn);
                return Ok(decision);
            }
            let after = state.to_bits();
            // Kept until the bucket is full again, and a little longer.
            let ttl = state
                .tat_ms
                .saturating_sub(now_ms)
                .saturating_add(1_000)
                .max(1_000);
            let reply: String = self
                .script
                .key(&key)
                .key(&turn)
                .arg(seen.to_string())
                .arg(after.to_string())
                .arg(ttl)
                .arg(&self.id)
                .arg(TURN_MS)
                .invoke(&mut conn)?;
            if reply.is_empty() {
                lock(&self.seen).insert(key_id, after);
                lock(&self.idle).push(conn);
                return Ok(decision);
            }
            let current = parse_state(&reply)?;
            if current == seen {
                // Unchanged, so refused for another gateway's turn.
                std::thread::sleep(TURN_WAIT);
            }
            seen = current;
            lock(&self.seen).insert(key_id, seen);
        }
        lock(&self.idle).push(conn);
        Err(LimiterError::Contended)
    }

    fn connection(&self) -> Result<redis::Connection, LimiterError> {
        if let Some(conn) = lock(&self.idle).pop() {
            return Ok(conn);
        }
        let conn = self.client.get_connection_with_timeout(IO_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn failed(&self, err: &LimiterError) {
        if matches!(err, LimiterError::Resting) {
            return;
        }
        self.failed_at.store(self.elapsed_ms(), Ordering::Relaxed);
        // A connection that failed may be half-used: start afresh.
        lock(&self.idle).clear();
        let mut since = lock(&self.since);
        if since.is_none() {
            *since = Some(Instant::now());
            let what = match self.policy {
                FailurePolicy::Open => "each gateway enforces rate limits alone until it is back",
                FailurePolicy::Closed => "rate-limited keys are refused (503) until it is back",
            };
            log::error!("rate limits: Redis is unreachable ({err}); {what}");
        }
    }

    fn recovered(&self) {
        self.failed_at.store(0, Ordering::Relaxed);
        if let Some(since) = lock(&self.since).take() {
            log::warn!(
                "rate limits: Redis is back after {:.1} s; limits are shared again",
                since.elapsed().as_secs_f64()
            );
        }
    }
}

/// The limiter for `--redis URL`: a URL Redis cannot take is refused at
/// start; a Redis that does not answer yet is only logged (admissions
/// follow the failure policy until it does).
pub fn start(url: &str, policy: FailurePolicy) -> Result<RedisLimiter, redis::RedisError> {
    let limiter = RedisLimiter::new(url, policy)?;
    match limiter.ping() {
        Ok(()) => log::info!("rate limits: shared through Redis"),
        Err(err) => limiter.failed(&err),
    }
    Ok(limiter)
}

/// A random id for this process's turns.
fn instance_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        // Unique enough among the gateways of one Redis: the process id
        // and the start time.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return format!("{}-{nanos}", std::process::id());
    }
    crate::store::hex(&bytes)
}

fn parse_state(text: &str) -> Result<u128, LimiterError> {
    text.parse::<u128>()
        .map_err(|_| LimiterError::Reply(text.chars().take(64).collect()))
}

#[cfg(test)]
mod tests {
    use super::parse_state;

    #[test]
    fn states_are_decimal_words() {
        assert_eq!(parse_state("0").unwrap(), 0);
        let bits = arouter_core::ratelimit::GcraState {
            tat_ms: 1_700_000_000_123,
            tat_frac: 7,
        }
        .to_bits();
        assert_eq!(parse_state(&bits.to_string()).unwrap(), bits);
        assert!(parse_state("OK").is_err());
    }
}
