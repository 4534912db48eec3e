//! The frontend's clock: the only place monotonic time is read. The core
//! sees it as `Tick`s (milliseconds since the process started serving).

use std::time::{Duration, Instant};

use arouter_core::Tick;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            origin: Instant::now(),
        }
    }

    pub fn now(&self) -> Tick {
        Tick::from_millis(self.origin.elapsed().as_millis() as u64)
    }

    pub fn instant(&self, tick: Tick) -> Instant {
        self.origin + Duration::from_millis(tick.as_millis())
    }
}
