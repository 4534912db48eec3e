//! The frontend's clock: the only place monotonic time is read. The core
//! sees it as `Tick`s (milliseconds since the process started serving).

use std::time::{Duration, Instant};

use arouter_core::Tick;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    /// Unix milliseconds at `origin`, read once: the core derives wall
    /// time from ticks for timestamps in translated answers.
    unix_origin_ms: u64,
}

impl Clock {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Clock {
        Clock {
            origin: Instant::now(),
            unix_origin_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }

    pub fn unix_origin_ms(&self) -> u64 {
        self.unix_origin_ms
    }

    pub fn now(&self) -> Tick {
        Tick::from_millis(self.origin.elapsed().as_millis() as u64)
    }

    /// The instant of a tick; a tick beyond what `Instant` can hold (a
    /// timeout configured as practically infinite) is a year away.
    pub fn instant(&self, tick: Tick) -> Instant {
        self.origin
            .checked_add(Duration::from_millis(tick.as_millis()))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600))
    }
}
