//! The glommio frontend: one executor per core, each pinned to its CPU and
//! accepting from its own `SO_REUSEPORT` listener (made by
//! `arouter_host::driver::listeners`), so the kernel spreads
//! connections and a connection never leaves its core. Everything that
//! happens on a connection is the host's driver; this crate supplies
//! glommio's sockets, timers and executors, and checks that io_uring is
//! usable before anything is started.
#![cfg(target_os = "linux")]

mod probe;
mod runtime;

use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::Arc;

use arouter_host::driver::{serve_thread, Shared};
use glommio::{LocalExecutorBuilder, Placement};

pub use probe::{usable, Unusable};

/// io_uring buffer memory per executor. The gateway does no direct file
/// I/O, so glommio's default (10 MiB, locked) would be wasted.
const IO_MEMORY: usize = 512 * 1024;

/// Serves until shutdown: one executor per listener, pinned round-robin to
/// the CPUs this process may run on. Returns glommio's own error when an
/// executor cannot start.
pub fn run(listeners: Vec<std::net::TcpListener>, shared: Arc<Shared>) -> Result<(), RunError> {
    let cpus = probe::allowed_cpus();
    let mut executors = Vec::with_capacity(listeners.len());
    for (i, listener) in listeners.into_iter().enumerate() {
        let shared = shared.clone();
        let placement = match cpus.get(i % cpus.len().max(1)) {
            Some(&cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let fd = listener.into_raw_fd();
        let executor = LocalExecutorBuilder::new(placement)
            .name(&format!("arouter-glommio-{i}"))
            .io_memory(IO_MEMORY)
            .spawn(move || async move {
                // SAFETY: `fd` is a bound, listening socket this executor
                // now owns alone (taken out of its std listener above).
                let listener = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
                serve_thread(runtime::Glommio, listener, shared).await;
            })
            .map_err(|source| RunError::Start {
                executor: i,
                source,
            })?;
        executors.push(executor);
    }
    let mut failure = None;
    for (i, executor) in executors.into_iter().enumerate() {
        if let Err(source) = executor.join() {
            failure.get_or_insert(RunError::Failed {
                executor: i,
                source,
            });
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Why the glommio executors stopped serving: one would not start, or
/// one ended with an error (the first, when several did).
#[derive(Debug)]
pub enum RunError {
    Start {
        executor: usize,
        source: glommio::GlommioError<()>,
    },
    Failed {
        executor: usize,
        source: glommio::GlommioError<()>,
    },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Start { executor, source } => {
                write!(f, "glommio executor {executor} did not start: {source}")
            }
            RunError::Failed { executor, source } => {
                write!(f, "glommio executor {executor} failed: {source}")
            }
        }
    }
}

impl std::error::Error for RunError {}
