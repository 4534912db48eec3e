//! Time as a value. The core never reads a clock: frontends pass a `Tick`
//! (monotonic milliseconds from an origin of their choosing) and, where wall
//! time matters (rate-limit reset headers), Unix milliseconds.

/// A monotonic instant in milliseconds since an arbitrary, fixed origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tick(pub u64);

impl Tick {
    pub const fn from_millis(ms: u64) -> Tick {
        Tick(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The instant `ms` milliseconds later, saturating at the far future.
    pub const fn after(self, ms: u64) -> Tick {
        Tick(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub const fn since(self, earlier: Tick) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
