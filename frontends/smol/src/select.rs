//! Which runtime serves: `--runtime glommio|smol`, or by default glommio
//! where io_uring is usable (Linux), else smol. One log line says which
//! and why.

use std::sync::Arc;

use arouter_host::cli::RuntimeChoice;
use arouter_host::driver::{listeners, thread_count, Shared};
use arouter_host::Config;

/// The chosen runtime and its listening sockets: one per serving thread
/// (`SO_REUSEPORT`), or on smol off Linux one they all share.
pub struct Listening {
    runtime: Runtime,
    listeners: Vec<std::net::TcpListener>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Smol,
    #[cfg(target_os = "linux")]
    Glommio,
}

/// The runtime to use, logged with the reason; `Err` when glommio was
/// asked for and cannot run here (with what to change).
pub fn choose(choice: RuntimeChoice) -> Result<Runtime, String> {
    match choice {
        RuntimeChoice::Smol => {
            log::info!("runtime: smol (--runtime smol)");
            Ok(Runtime::Smol)
        }
        #[cfg(target_os = "linux")]
        RuntimeChoice::Glommio => match arouter_glommio::usable() {
            Ok(()) => {
                log::info!("runtime: glommio (--runtime glommio)");
                Ok(Runtime::Glommio)
            }
            Err(why) => Err(format!("--runtime glommio cannot run here: {why}")),
        },
        #[cfg(not(target_os = "linux"))]
        RuntimeChoice::Glommio => Err("--runtime glommio needs Linux (io_uring)".into()),
        #[cfg(target_os = "linux")]
        RuntimeChoice::Auto => match arouter_glommio::usable() {
            Ok(()) => {
                log::info!("runtime: glommio (io_uring is usable)");
                Ok(Runtime::Glommio)
            }
            Err(why) => {
                log::info!("runtime: smol, because glommio cannot run here: {why}");
                Ok(Runtime::Smol)
            }
        },
        #[cfg(not(target_os = "linux"))]
        RuntimeChoice::Auto => {
            log::info!("runtime: smol (glommio needs Linux)");
            Ok(Runtime::Smol)
        }
    }
}

impl Listening {
    pub fn bind(runtime: Runtime, config: &Config) -> Result<Listening, String> {
        let listeners = listeners(&config.listen, thread_count(config))
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        Ok(Listening { runtime, listeners })
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listeners
            .first()
            .ok_or_else(|| std::io::Error::other("no listener"))?
            .local_addr()
    }

    /// Serves until shutdown.
    pub fn serve(self, shared: Arc<Shared>) -> Result<(), String> {
        match self.runtime {
            Runtime::Smol => crate::server::run(self.listeners, shared)
                .map_err(|e| format!("server failed: {e}")),
            #[cfg(target_os = "linux")]
            Runtime::Glommio => {
                arouter_glommio::run(self.listeners, shared).map_err(|e| e.to_string())
            }
        }
    }
}
