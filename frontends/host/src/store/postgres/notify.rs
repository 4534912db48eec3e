//! Key changes over LISTEN/NOTIFY (see [`crate::store::listen`]): every
//! statement that changes the keys table runs [`notify`] in its own
//! transaction, and each gateway holds one more connection that listens
//! on the channel and wakes its key-poll thread.

use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, GenericClient};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{backend, PostgresStore, VALID_TIMEOUT};
use crate::store::listen::{KeyChanges, Listener, ListenerThread, OnChange};
use crate::store::StoreError;

/// Tells every gateway listening on this database that the keys table
/// changed (no payload); delivered when the transaction it runs in
/// commits, and not if it rolls back.
pub(crate) const NOTIFY: &str = "NOTIFY arouter_keys";
const LISTEN: &str = "LISTEN arouter_keys";

/// How long one wait for a notification lasts: how soon the thread sees
/// that it was asked to stop.
const WAIT: Duration = Duration::from_millis(100);
/// The first pause before opening a broken connection again; it doubles
/// on each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A connection that heard nothing for this long is asked whether it
/// still answers, so one to a database that vanished without closing it
/// is replaced within seconds rather than after the TCP keepalives.
const CHECK_IDLE: Duration = Duration::from_secs(10);

/// Runs [`NOTIFY`] in the transaction `tx`.
pub(super) fn notify(tx: &mut impl GenericClient) -> Result<(), StoreError> {
    tx.batch_execute(NOTIFY).map_err(backend)
}

impl KeyChanges for PostgresStore {
    fn listen(&self, changed: OnChange) -> Result<Listener, StoreError> {
        let (mut config, tls) = (self.config.clone(), self.tls.clone());
        // Told apart from the store's own connection in pg_stat_activity.
        let name = format!(
            "{}-listen",
            config.get_application_name().unwrap_or("arouter")
        );
        config.application_name(&name);
        let first = open(&config, &tls);
        if let Err(e) = &first {
            log::warn!(
                "cannot listen for key changes, read every --store-poll-ms until it can: {e}"
            );
        }
        Listener::spawn("arouter-key-listen", move |me| {
            let mut run = Run {
                me,
                config,
                tls,
                changed,
            };
            run.run(first.ok());
        })
    }
}

/// A new connection, listening.
fn open(config: &postgres::Config, tls: &MakeRustlsConnect) -> Result<Client, StoreError> {
    let mut client = config.connect(tls.clone()).map_err(backend)?;
    client.batch_execute(LISTEN).map_err(backend)?;
    Ok(client)
}

struct Run {
    me: ListenerThread,
    config: postgres::Config,
    tls: MakeRustlsConnect,
    changed: OnChange,
}

impl Run {
    /// Listens until asked to stop, opening the connection again (after a
    /// pause growing to [`MAX_BACKOFF`]) whenever it breaks. `client` is
    /// the first connection, `None` when it could not be opened (logged).
    fn run(&mut self, mut client: Option<Client>) {
        let mut lost = client.is_none();
        let mut backoff = FIRST_BACKOFF;
        while !self.me.stopping() {
            let mut listening = match client.take() {
                Some(c) => c,
                None => match open(&self.config, &self.tls) {
                    Ok(c) => c,
                    Err(_) => {
                        if !self.me.sleep(backoff) {
                            return;
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            if std::mem::take(&mut lost) {
                log::info!("listening for key changes again");
            }
            backoff = FIRST_BACKOFF;
            // Whatever changed before LISTEN took effect was not heard.
            (self.changed)();
            match self.hear(&mut listening) {
                Ok(()) => return,
                Err(e) => {
                    log::warn!(
                        "lost the connection that hears key changes ({e}); \
                         reading them every --store-poll-ms until it is back"
                    );
                    lost = true;
                }
            }
        }
    }

    /// Calls `changed` once per notification, or once for several that
    /// arrived together (a burst is one read); `Ok` when asked to stop,
    /// the error when the connection broke.
    fn hear(&self, client: &mut Client) -> Result<(), StoreError> {
        let mut quiet_since = Instant::now();
        while !self.me.stopping() {
            let heard = {
                let mut notes = client.notifications();
                let heard = notes.timeout_iter(WAIT).next().map_err(backend)?.is_some();
                if heard {
                    while notes.iter().next().map_err(backend)?.is_some() {}
                }
                heard
            };
            if heard {
                (self.changed)();
                quiet_since = Instant::now();
            } else if client.is_closed() {
                return Err(StoreError::Backend(
                    "the server closed the connection".into(),
                ));
            } else if quiet_since.elapsed() >= CHECK_IDLE {
                client.is_valid(VALID_TIMEOUT).map_err(backend)?;
                quiet_since = Instant::now();
            }
        }
        Ok(())
    }
}
