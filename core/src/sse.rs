//! Server-sent events: an incremental decoder following the WHATWG
//! event-stream interpretation rules, and the matching encoder.
//!
//! The decoder sits on the streaming hot path of the gateway, so in steady
//! state it allocates nothing per event: dispatched events borrow either the
//! caller's input slice (the common single-line `data:` event that arrives
//! whole) or buffers that are cleared and reused between events. Only a line
//! split across two `feed` calls is copied, into a carry buffer bounded by
//! `max_line_bytes`.
//!
//! Deviations from the browser algorithm, chosen for a gateway:
//! - invalid UTF-8 is an error ([`SseError::InvalidUtf8`]) instead of being
//!   replaced with U+FFFD, because silently rewriting upstream JSON would
//!   corrupt it;
//! - an empty `event:` value is reported as `None` (both mean "message");
//! - an empty `id:` value resets the last event ID, reported as `None`.

/// One dispatched event; borrows the decoder's buffers (no allocation per event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, `None` when absent (the default type "message").
    pub event: Option<&'a str>,
    /// The `data:` lines joined with `\n`.
    pub data: &'a str,
    /// The last event ID, if any was set.
    pub id: Option<&'a str>,
    /// A `retry:` field seen in this event.
    pub retry: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseError {
    /// A line, or an event's accumulated data, exceeded the bound.
    LineTooLong,
    /// The stream was not valid UTF-8.
    InvalidUtf8,
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SseError::LineTooLong => "event-stream line or event data exceeds the limit",
            SseError::InvalidUtf8 => "event-stream is not valid UTF-8",
        })
    }
}

impl std::error::Error for SseError {}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Incremental event-stream decoder. See the module docs.
#[derive(Debug)]
pub struct SseDecoder {
    max_line: usize,
    /// Bytes of a line not yet terminated at the end of the previous feed.
    carry: Vec<u8>,
    /// How many bytes of a leading BOM were seen so far (a BOM may be split
    /// across feeds); meaningless once `bom_done`.
    bom_seen: usize,
    bom_done: bool,
    /// The previous feed ended with CR: an LF starting the next feed belongs
    /// to the same line end.
    after_cr: bool,
    ev: EventBuf,
    /// Reconnection time from the most recent valid `retry:` field.
    reconnect_ms: Option<u64>,
    poison: Option<SseError>,
}

/// Fields of the event being assembled, in owned, reused buffers.
#[derive(Debug, Default)]
struct EventBuf {
    /// `data:` values joined with `\n` (the spec's trailing LF is never stored).
    data: String,
    /// Whether any `data:` line was seen: distinguishes "no data" (nothing is
    /// dispatched) from one empty `data:` line (an event with empty data).
    has_data: bool,
    event: String,
    /// The last event ID; persists across events.
    id: String,
    retry: Option<u64>,
    /// A field line was seen since the last blank line.
    dirty: bool,
}

/// Values of the current event that still live in the caller's input slice.
/// Valid only within one `feed` call; moved into `EventBuf` before it returns.
#[derive(Default)]
struct Borrowed<'b> {
    /// The event's only `data:` value so far (`EventBuf::has_data` is false
    /// while this is set).
    data: Option<&'b str>,
    /// Overrides `EventBuf::event` while set.
    event: Option<&'b str>,
}

/// A field value, either from the input slice (may be borrowed past the line)
/// or from the carry buffer (must be copied).
#[derive(Clone, Copy)]
enum Val<'c, 'b> {
    Input(&'b str),
    Carry(&'c str),
}

impl Val<'_, '_> {
    fn as_str(&self) -> &str {
        match *self {
            Val::Input(s) => s,
            Val::Carry(s) => s,
        }
    }
}

impl SseDecoder {
    /// A decoder rejecting any line, and any event's joined data, longer than
    /// `max_line_bytes` (line terminators not counted).
    pub fn new(max_line_bytes: usize) -> SseDecoder {
        SseDecoder {
            max_line: max_line_bytes,
            carry: Vec::new(),
            bom_seen: 0,
            bom_done: false,
            after_cr: false,
            ev: EventBuf::default(),
            reconnect_ms: None,
            poison: None,
        }
    }

    /// The last event ID set by the stream (for a `Last-Event-ID` header).
    pub fn last_event_id(&self) -> Option<&str> {
        non_empty(&self.ev.id)
    }

    /// The reconnection time from the latest valid `retry:` field.
    pub fn reconnect_ms(&self) -> Option<u64> {
        self.reconnect_ms
    }

    /// Decodes `bytes`, calling `on_event` for each complete event.
    ///
    /// Events completed before an error are still delivered. After an error
    /// the decoder stays failed and returns the same error for every call.
    pub fn feed<F: FnMut(SseEvent<'_>)>(
        &mut self,
        bytes: &[u8],
        mut on_event: F,
    ) -> Result<(), SseError> {
        if let Some(e) = self.poison {
            return Err(e);
        }
        let result = self.feed_inner(bytes, &mut on_event);
        if let Err(e) = result {
            self.poison = Some(e);
        }
        result
    }

    /// End of stream: an unterminated last event is discarded per the spec;
    /// returns whether any partial data was pending (a truncated stream).
    ///
    /// Afterwards the decoder expects a new stream (a BOM may lead again) and
    /// keeps the last event ID, as a reconnecting client would. A failed
    /// decoder reports `true` and stays failed.
    pub fn finish(&mut self) -> bool {
        if self.poison.is_some() {
            return true;
        }
        let pending =
            !self.carry.is_empty() || (!self.bom_done && self.bom_seen > 0) || self.ev.dirty;
        self.carry.clear();
        self.bom_seen = 0;
        self.bom_done = false;
        self.after_cr = false;
        self.ev.reset_event();
        pending
    }

    fn feed_inner<'b>(
        &mut self,
        bytes: &'b [u8],
        on_event: &mut dyn FnMut(SseEvent<'_>),
    ) -> Result<(), SseError> {
        let mut input = bytes;
        if !self.bom_done {
            input = self.skip_bom(input);
        }
        if self.after_cr {
            let Some(&first) = input.first() else {
                return Ok(());
            };
            self.after_cr = false;
            if first == b'\n' {
                input = input.get(1..).unwrap_or_default();
            }
        }

        let mut bor = Borrowed::default();

        if !self.carry.is_empty() {
            let Some(eol) = find_eol(input) else {
                return self.extend_carry(input);
            };
            let (head, rest) = input.split_at(eol);
            self.extend_carry(head)?;
            input = self.after_terminator(rest);
            let line = std::str::from_utf8(&self.carry).map_err(|_| SseError::InvalidUtf8)?;
            let (max, ev) = (self.max_line, &mut self.ev);
            process_line(ev, &mut bor, max, line, None, on_event)?;
            if let Some(ms) = ev.retry {
                self.reconnect_ms = Some(ms);
            }
            self.carry.clear();
        }

        while !input.is_empty() {
            let Some(eol) = find_eol(input) else {
                // Partial line: `carry` is empty here, so this is its start.
                self.extend_carry(input)?;
                break;
            };
            let (head, rest) = input.split_at(eol);
            if head.len() > self.max_line {
                return Err(SseError::LineTooLong);
            }
            let line = std::str::from_utf8(head).map_err(|_| SseError::InvalidUtf8)?;
            input = self.after_terminator(rest);
            process_line(
                &mut self.ev,
                &mut bor,
                self.max_line,
                line,
                Some(line),
                on_event,
            )?;
            if let Some(ms) = self.ev.retry {
                self.reconnect_ms = Some(ms);
            }
        }

        // The input slice dies with this call: keep what the event still needs.
        if let Some(d) = bor.data.take() {
            self.ev.data.clear();
            self.ev.data.push_str(d);
            self.ev.has_data = true;
        }
        if let Some(e) = bor.event.take() {
            self.ev.event.clear();
            self.ev.event.push_str(e);
        }
        Ok(())
    }

    /// Skips a UTF-8 BOM at the very start of the stream, possibly split
    /// across feeds. Returns the input left to decode.
    fn skip_bom<'b>(&mut self, input: &'b [u8]) -> &'b [u8] {
        let mut i = 0;
        while self.bom_seen + i < BOM.len() {
            match (input.get(i), BOM.get(self.bom_seen + i)) {
                (None, _) => {
                    // Input ended inside a possible BOM: wait for more.
                    self.bom_seen += i;
                    return &[];
                }
                (Some(a), Some(b)) if a == b => i += 1,
                _ => {
                    // Not a BOM after all: bytes matched in earlier feeds are
                    // content and start the first line; this feed's are
                    // still in `input`.
                    self.bom_done = true;
                    let earlier = BOM.get(..self.bom_seen).unwrap_or_default();
                    self.carry.extend_from_slice(earlier);
                    return input;
                }
            }
        }
        self.bom_done = true;
        input.get(i..).unwrap_or_default()
    }

    fn extend_carry(&mut self, part: &[u8]) -> Result<(), SseError> {
        if self.carry.len().saturating_add(part.len()) > self.max_line {
            return Err(SseError::LineTooLong);
        }
        self.carry.extend_from_slice(part);
        Ok(())
    }

    /// `rest` starts at a CR or LF; returns what follows the line terminator,
    /// remembering a CR that ends the input so a following LF is skipped.
    fn after_terminator<'b>(&mut self, rest: &'b [u8]) -> &'b [u8] {
        match rest {
            [b'\r', b'\n', tail @ ..] => tail,
            [b'\r'] => {
                self.after_cr = true;
                &[]
            }
            [_, tail @ ..] => tail,
            [] => rest,
        }
    }
}

impl EventBuf {
    fn reset_event(&mut self) {
        self.data.clear();
        self.has_data = false;
        self.event.clear();
        self.retry = None;
        self.dirty = false;
    }
}

fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// Interprets one complete line (terminator removed). `from_input` is the
/// same line when it lies in the caller's slice, so values can be borrowed.
fn process_line<'b>(
    ev: &mut EventBuf,
    bor: &mut Borrowed<'b>,
    max: usize,
    line: &str,
    from_input: Option<&'b str>,
    on_event: &mut dyn FnMut(SseEvent<'_>),
) -> Result<(), SseError> {
    if line.is_empty() {
        dispatch(ev, bor, on_event);
        return Ok(());
    }
    if line.starts_with(':') {
        return Ok(());
    }
    ev.dirty = true;
    let value = match from_input {
        Some(l) => Val::Input(split_field(l).1),
        None => Val::Carry(split_field(line).1),
    };
    let name = split_field(line).0;
    match name {
        "event" => match value {
            Val::Input(v) => bor.event = Some(v),
            Val::Carry(v) => {
                bor.event = None;
                ev.event.clear();
                ev.event.push_str(v);
            }
        },
        "data" => append_data(ev, bor, max, value)?,
        "id" => {
            let v = value.as_str();
            if !v.contains('\0') {
                ev.id.clear();
                ev.id.push_str(v);
            }
        }
        "retry" => {
            if let Some(ms) = parse_retry(value.as_str()) {
                ev.retry = Some(ms);
            }
        }
        _ => {}
    }
    Ok(())
}

fn split_field(line: &str) -> (&str, &str) {
    match line.split_once(':') {
        Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
        None => (line, ""),
    }
}

/// Only ASCII digits are a valid reconnection time; a value beyond `u64` is
/// treated as invalid rather than clamped.
fn parse_retry(v: &str) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.bytes().try_fold(0u64, |acc, b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

fn append_data<'b>(
    ev: &mut EventBuf,
    bor: &mut Borrowed<'b>,
    max: usize,
    value: Val<'_, 'b>,
) -> Result<(), SseError> {
    let v = value.as_str();
    if !ev.has_data && bor.data.is_none() {
        // A single value is never longer than its line, already bounded.
        match value {
            Val::Input(s) => bor.data = Some(s),
            Val::Carry(s) => {
                ev.data.clear();
                ev.data.push_str(s);
                ev.has_data = true;
            }
        }
        return Ok(());
    }
    let held = bor.data.map_or(ev.data.len(), str::len);
    if held.saturating_add(1).saturating_add(v.len()) > max {
        return Err(SseError::LineTooLong);
    }
    if let Some(first) = bor.data.take() {
        ev.data.clear();
        ev.data.push_str(first);
        ev.has_data = true;
    }
    ev.data.push('\n');
    ev.data.push_str(v);
    Ok(())
}

fn dispatch(ev: &mut EventBuf, bor: &mut Borrowed<'_>, on_event: &mut dyn FnMut(SseEvent<'_>)) {
    let data = match bor.data.take() {
        Some(d) => Some(d),
        None if ev.has_data => Some(ev.data.as_str()),
        None => None,
    };
    if let Some(data) = data {
        let event = match bor.event {
            Some(e) => non_empty(e),
            None => non_empty(&ev.event),
        };
        on_event(SseEvent {
            event,
            data,
            id: non_empty(&ev.id),
            retry: ev.retry,
        });
    }
    bor.event = None;
    ev.reset_event();
}

/// The first CR or LF: the end of a line, whichever convention the stream uses.
fn find_eol(hay: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', b'\r', hay)
}

/// Writes one event: optional `event:` line, one `data:` line per line of `data`, blank line.
///
/// `data` is split on LF, CRLF and CR, so decoding yields `data` with its line
/// ends normalized to LF. An empty `event` is omitted (it means "message");
/// CR/LF inside `event` would end the line early and are replaced by spaces.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(name) = event.filter(|e| !e.is_empty()) {
        out.extend_from_slice(b"event: ");
        push_single_line(out, name.as_bytes());
        out.push(b'\n');
    }
    write_data_lines(out, data.as_bytes());
    out.push(b'\n');
}

/// Writes a `: comment` line (keep-alive); newlines in `text` are not allowed and are replaced.
///
/// A blank line follows so that buffering proxies flush it; it cannot
/// dispatch anything because the encoder never leaves an event open.
pub fn write_comment(out: &mut Vec<u8>, text: &str) {
    out.push(b':');
    if !text.is_empty() {
        out.push(b' ');
        push_single_line(out, text.as_bytes());
    }
    out.extend_from_slice(b"\n\n");
}

/// Writes a complete event of one `data:` line: the pass-through path for
/// upstream JSON chunks, which contain no raw newlines.
///
/// Should `data` contain CR or LF anyway it is split into several `data:`
/// lines like [`write_event`] does, so upstream bytes can never inject
/// fields or events of their own.
pub fn write_data_line(out: &mut Vec<u8>, data: &[u8]) {
    if find_eol(data).is_none() {
        out.reserve(data.len() + 8);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\n\n");
    } else {
        write_data_lines(out, data);
        out.push(b'\n');
    }
}

fn write_data_lines(out: &mut Vec<u8>, data: &[u8]) {
    let mut rest = data;
    loop {
        out.extend_from_slice(b"data: ");
        let Some(eol) = find_eol(rest) else {
            out.extend_from_slice(rest);
            out.push(b'\n');
            return;
        };
        let (line, tail) = rest.split_at(eol);
        out.extend_from_slice(line);
        out.push(b'\n');
        rest = match tail {
            [b'\r', b'\n', after @ ..] => after,
            [_, after @ ..] => after,
            [] => tail,
        };
    }
}

fn push_single_line(out: &mut Vec<u8>, text: &[u8]) {
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}
