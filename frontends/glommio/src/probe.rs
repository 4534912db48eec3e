//! Can glommio run here? io_uring may be off (the `kernel.io_uring_disabled`
//! sysctl, a seccomp filter such as Docker's default one, an old kernel),
//! and the locked-memory limit of containers is often too low for its
//! rings. Each reason says what to change.

use std::fmt;
use std::io;

use glommio::LocalExecutorBuilder;

/// glommio refuses to start below this `RLIMIT_MEMLOCK` (its own check).
const MIN_MEMLOCK: u64 = 512 * 1024;
/// What the rings and registered buffers of a few executors lock.
const WANT_MEMLOCK: u64 = 64 * 1024 * 1024;

#[derive(Debug)]
pub enum Unusable {
    /// `kernel.io_uring_disabled` is 2 (or 1 and we are not allowed).
    DisabledBySysctl(String),
    /// `io_uring_setup` failed: EPERM is a seccomp filter or policy,
    /// ENOSYS a kernel without io_uring.
    SetupRefused(io::Error),
    /// `RLIMIT_MEMLOCK` is below what glommio needs and cannot be raised.
    Memlock { soft: u64, hard: u64 },
    /// glommio itself would not start an executor.
    Glommio(String),
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::DisabledBySysctl(value) => write!(
                f,
                "io_uring is disabled (sysctl kernel.io_uring_disabled = {value}); set it to 0 to use glommio"
            ),
            Unusable::SetupRefused(e) if e.raw_os_error() == Some(libc::ENOSYS) => write!(
                f,
                "this kernel has no io_uring ({e}); glommio needs Linux 5.8 or later"
            ),
            Unusable::SetupRefused(e) => write!(
                f,
                "io_uring_setup was refused ({e}): a seccomp filter (e.g. a container's default profile) \
                 blocks io_uring; allow io_uring_setup, io_uring_enter and io_uring_register to use glommio"
            ),
            Unusable::Memlock { soft, hard } => write!(
                f,
                "the locked-memory limit (RLIMIT_MEMLOCK) is {soft} bytes (hard limit {hard}), below the \
                 {MIN_MEMLOCK} glommio needs; raise it (ulimit -l, docker run --ulimit memlock=-1)"
            ),
            Unusable::Glommio(e) => write!(f, "glommio would not start: {e}"),
        }
    }
}

/// Ok when glommio can serve here; raises the soft `RLIMIT_MEMLOCK` toward
/// the hard limit first when it is low.
pub fn usable() -> Result<(), Unusable> {
    if let Ok(value) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        if value.trim() == "2" {
            return Err(Unusable::DisabledBySysctl(value.trim().to_string()));
        }
    }
    probe_setup().map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) if sysctl_restricted() => Unusable::DisabledBySysctl("1".into()),
        _ => Unusable::SetupRefused(e),
    })?;
    raise_memlock()?;
    // The last word is glommio's: start and stop one executor.
    LocalExecutorBuilder::default()
        .io_memory(super::IO_MEMORY)
        .spawn(|| async {})
        .and_then(|executor| executor.join())
        .map_err(|e| Unusable::Glommio(e.to_string()))
}

fn sysctl_restricted() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|v| v.trim() == "1")
}

/// Creates and closes a small io_uring.
fn probe_setup() -> io::Result<()> {
    // `struct io_uring_params` is 120 bytes; all zero asks for defaults.
    let mut params = [0u32; 30];
    // SAFETY: io_uring_setup writes at most sizeof(io_uring_params) bytes
    // into `params`, which is that large.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned to us and is closed once.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

fn raise_memlock() -> Result<(), Unusable> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return Ok(()); // cannot tell; glommio will say
    }
    if limit.rlim_cur >= WANT_MEMLOCK {
        return Ok(());
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max.min(WANT_MEMLOCK),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we pass; raising the soft limit up
    // to the hard one needs no privilege.
    let ok = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } == 0;
    let soft = if ok { raised.rlim_cur } else { limit.rlim_cur };
    if soft < MIN_MEMLOCK {
        return Err(Unusable::Memlock {
            soft,
            hard: limit.rlim_max,
        });
    }
    Ok(())
}

/// The CPUs this process may run on (its affinity mask), in order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // fills at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}
