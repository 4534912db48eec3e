//! `arouter-conformance`: the replay upstream server.
//!
//! Plays OpenAI, Anthropic and Gemini from recorded transcripts
//! (`conformance/transcripts`: the recorded ones copied from the source set,
//! plus synthetic ones in `openai_compat/`), with fault injection and a request log,
//! so gateway tests never touch the network. See `README.md`.
//!
//! In-process use from a test:
//! ```no_run
//! use arouter_conformance::{spawn, Fault, FaultRule, ReplayConfig};
//! let replay = spawn(ReplayConfig::default());
//! let base = replay.url(); // http://127.0.0.1:PORT
//! replay.push_fault(FaultRule::once(Fault::status(429)).model("gpt-4o-mini"));
//! // ... point the gateway at `base`, run the request ...
//! let log = replay.requests();
//! # let _ = (base, log);
//! ```

mod conn;
pub mod fault;
pub mod http;
pub mod log;
pub mod matching;
mod paced;
mod server;
pub mod transcript;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smol::Async;

pub use fault::{Fault, FaultMatch, FaultRule};
pub use log::RequestRecord;
pub use transcript::{ResponseBody, Transcript};

use server::State;

/// Default pause between two streamed events.
pub const DEFAULT_CHUNK_DELAY: Duration = Duration::from_millis(2);

/// The repository's transcripts (`conformance/transcripts`): recorded
/// provider exchanges under `openai/`, `anthropic/`, `gemini/` and
/// `openai_responses/`, synthetic compatible-server quirks under
/// `openai_compat/`. Everything a test replays lives in the repository.
pub fn transcripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("transcripts")
}

/// The default transcript dirs: the repository's own.
pub fn default_transcript_dirs() -> Vec<PathBuf> {
    vec![transcripts_dir()]
}

/// Load every transcript under `dirs` (recursively), in dir order, each dir
/// sorted by name.
pub fn load_transcripts(dirs: &[PathBuf]) -> io::Result<Vec<Transcript>> {
    let mut all = Vec::new();
    for d in dirs {
        let loaded = transcript::load_dir(d)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", d.display())))?;
        all.extend(loaded);
    }
    Ok(all)
}

/// Configuration of a replay server.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub transcript_dirs: Vec<PathBuf>,
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// Pause between two streamed events (SSE events, raw pieces).
    pub chunk_delay: Duration,
    /// Log every request to stderr (misses are always logged).
    pub verbose: bool,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            transcript_dirs: default_transcript_dirs(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            chunk_delay: DEFAULT_CHUNK_DELAY,
            verbose: false,
        }
    }
}

impl ReplayConfig {
    pub fn chunk_delay_ms(mut self, ms: u64) -> Self {
        self.chunk_delay = Duration::from_millis(ms);
        self
    }
    pub fn transcript_dirs(mut self, dirs: Vec<PathBuf>) -> Self {
        self.transcript_dirs = dirs;
        self
    }
}

/// A running replay server. Stops (closing every connection) on drop.
pub struct ReplayHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<smol::channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Start a replay server on its own thread. Panics if the transcripts
/// cannot be loaded or the address cannot be bound (test infrastructure:
/// use [`try_spawn`] to handle that).
pub fn spawn(config: ReplayConfig) -> ReplayHandle {
    try_spawn(config).unwrap_or_else(|e| panic!("arouter-replay: cannot start: {e}"))
}

/// Start a replay server on its own thread.
pub fn try_spawn(config: ReplayConfig) -> io::Result<ReplayHandle> {
    let transcripts = load_transcripts(&config.transcript_dirs)?;
    let listener = TcpListener::bind(config.listen)?;
    let addr = listener.local_addr()?;
    let listener = Async::new(listener)?;
    let state = Arc::new(State::new(transcripts, config.chunk_delay, config.verbose));
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let st = state.clone();
    let thread = std::thread::Builder::new()
        .name(format!("arouter-replay-{}", addr.port()))
        .spawn(move || run(listener, st, stop_rx))?;
    Ok(ReplayHandle {
        addr,
        state,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

fn run(listener: Async<TcpListener>, state: Arc<State>, stop: smol::channel::Receiver<()>) {
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
        let accept = async {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        ex.spawn(server::serve_conn(stream, state.clone())).detach();
                    }
                    Err(e) => {
                        eprintln!("replay: accept failed: {e}");
                        smol::Timer::after(Duration::from_millis(10)).await;
                    }
                }
            }
        };
        let stopped = async {
            let _ = stop.recv().await;
        };
        smol::future::or(accept, stopped).await;
    }));
    // Dropping the executor drops every connection task (and socket).
    drop(ex);
}

impl ReplayHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queue a fault rule.
    pub fn push_fault(&self, rule: FaultRule) {
        self.state.push_fault(rule);
    }

    /// Remove every queued fault rule.
    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// The queued fault rules (with their remaining `times`).
    pub fn faults(&self) -> Vec<FaultRule> {
        self.state.fault_rules()
    }

    /// Every request received so far (control requests excluded), in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests()
    }

    /// Clear the request log.
    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// Names of the loaded transcripts.
    pub fn transcript_names(&self) -> Vec<String> {
        self.state
            .transcripts
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    /// The loaded transcripts.
    pub fn transcripts(&self) -> &[Transcript] {
        &self.state.transcripts
    }

    /// A loaded transcript by name (e.g. `openai/chat_nonstream_user_id.json`).
    pub fn transcript(&self, name: &str) -> Option<&Transcript> {
        self.state.transcripts.iter().find(|t| t.name == name)
    }

    /// Milliseconds since the server started (the clock of the request log).
    pub fn now_ms(&self) -> u64 {
        self.state.now_ms()
    }

    /// Poll the request log until `pred` holds or `timeout` passes; returns
    /// the last log seen either way.
    pub fn wait_for_requests(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[RequestRecord]) -> bool,
    ) -> Vec<RequestRecord> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.requests();
            if pred(&log) || Instant::now() >= deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ReplayHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
