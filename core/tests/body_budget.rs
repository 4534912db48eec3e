//! The gateway-wide body budget: a body is reserved before it is buffered,
//! refused with a 503 (and `Retry-After`) in the route's dialect when it
//! does not fit, and its reservation is given back exactly on every path.

mod support;

use serde_json::json;
use support::*;

const BUDGET: usize = 10_000;

fn scenario() -> Scenario {
    Scenario::builder()
        .limits(|l| {
            l.max_inflight_body_bytes = BUDGET;
            l.max_body_bytes = 8_000;
        })
        .build()
}

/// A chat body of exactly `len` bytes (padded with JSON whitespace).
fn body_of(len: usize) -> Vec<u8> {
    let mut body = serde_json::to_vec(&chat_body("openai/gpt-4o-mini", false)).unwrap();
    assert!(body.len() <= len);
    body.resize(len, b' ');
    body
}

/// Head and the first `sent` bytes of a `len`-byte body.
fn partial(path: &str, len: usize, sent: usize) -> Vec<u8> {
    let full = post_raw(path, &body_of(len));
    let head = full.len() - len;
    full[..head + sent].to_vec()
}

fn in_use(s: &Scenario) -> u64 {
    s.gateway.body_budget().in_use()
}

fn assert_busy(s: &Scenario, error_type: &str) {
    let r = s.response();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.text().contains(error_type), "{}", r.text());
    assert!(s.closed, "an unread body leaves the connection unusable");
}

#[test]
fn a_body_that_does_not_fit_is_refused_at_its_head_in_the_route_dialect() {
    let mut holder = scenario();
    holder.send(&partial("/v1/chat/completions", 7_000, 100));
    assert_eq!(in_use(&holder), 7_000, "reserved at the head");
    for (path, error_type) in [
        ("/v1/chat/completions", "api_error"),
        ("/v1/messages", "overloaded_error"),
        (
            "/v1beta/models/gemini-2.5-flash:generateContent",
            "UNAVAILABLE",
        ),
    ] {
        let mut late = holder.sibling();
        late.send(&partial(path, 4_000, 0));
        assert_busy(&late, error_type);
        assert!(late.admits.is_empty(), "refused before the key check");
        assert_eq!(in_use(&late), 7_000);
    }
    // One that fits is admitted meanwhile.
    let mut small = holder.sibling();
    small.send(&partial("/v1/chat/completions", 3_000, 10));
    assert_eq!(in_use(&small), 10_000);
    drop(small);
    assert_eq!(
        in_use(&holder),
        7_000,
        "a dropped connection gives its bytes back"
    );
}

#[test]
fn a_chunked_body_reserves_as_it_grows() {
    let mut holder = scenario();
    holder.send(&partial("/v1/chat/completions", 7_000, 0));
    let mut chunked = holder.sibling();
    chunked.send(
        b"POST /v1/messages HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-client-0123456789\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(in_use(&chunked), 7_000);
    chunked.send(&chunk(&[b' '; 1_000]));
    let held = in_use(&chunked) - 7_000;
    assert!((1_000..=2_000).contains(&held), "{held}");
    chunked.send(&chunk(&[b' '; 2_500]));
    assert_busy(&chunked, "overloaded_error");
    assert_eq!(in_use(&chunked), 7_000, "the refused body's bytes are back");
}

#[test]
fn every_ending_gives_the_reservation_back() {
    // Answered by a provider.
    let mut s = scenario();
    s.send(&post_raw("/v1/chat/completions", &body_of(5_000)));
    assert_eq!(in_use(&s), 5_000, "held while the call keeps the request");
    s.upstream(&json_response(200, &completion("gpt-4o-mini", "hi"), &[]));
    assert_eq!(s.response().status, 200);
    assert_eq!(in_use(&s), 0);

    // A provider error.
    let mut s = scenario();
    s.send(&post_raw("/v1/chat/completions", &body_of(5_000)));
    s.upstream(&json_response(
        500,
        &json!({"error": {"message": "x"}}),
        &[],
    ));
    assert_eq!(s.response().status, 500);
    assert_eq!(in_use(&s), 0);

    // Answered by the gateway itself (a bad request).
    let mut s = scenario();
    let mut bad = b"{not json".to_vec();
    bad.resize(5_000, b' ');
    s.send(&post_raw("/v1/chat/completions", &bad));
    assert_eq!(s.response().status, 400);
    assert_eq!(in_use(&s), 0);

    // Refused by the host (a bad key).
    let mut s = scenario();
    s.admit = AdmitScript::Reject(arouter_core::exchange::Rejection::InvalidKey, Vec::new());
    s.send(&post_raw("/v1/chat/completions", &body_of(5_000)));
    assert_eq!(s.response().status, 401);
    assert_eq!(in_use(&s), 0);

    // The client leaves mid-body, and mid-call.
    let mut s = scenario();
    s.send(&partial("/v1/chat/completions", 5_000, 2_000));
    s.client_eof();
    assert_eq!(in_use(&s), 0);
    let mut s = scenario();
    s.send(&post_raw("/v1/chat/completions", &body_of(5_000)));
    assert_eq!(in_use(&s), 5_000);
    s.client_eof();
    assert_eq!(in_use(&s), 0);

    // The client stalls mid-body until the idle timeout.
    let mut s = scenario();
    s.send(&partial("/v1/chat/completions", 5_000, 2_000));
    s.fire_deadline();
    assert_eq!(s.response().status, 408);
    assert_eq!(in_use(&s), 0);

    // The connection is simply dropped (the driver's task ends).
    let mut s = scenario();
    s.send(&post_raw("/v1/chat/completions", &body_of(5_000)));
    let gateway = s.gateway.clone();
    drop(s);
    assert_eq!(gateway.body_budget().in_use(), 0);
}

#[test]
fn keep_alive_requests_each_reserve_and_release() {
    let mut s = scenario();
    for _ in 0..3 {
        s.send(&post_raw("/v1/chat/completions", &body_of(6_000)));
        assert_eq!(in_use(&s), 6_000);
        s.upstream(&json_response(200, &completion("gpt-4o-mini", "hi"), &[]));
        assert_eq!(in_use(&s), 0);
    }
    assert_eq!(s.responses().len(), 3);
}

#[test]
fn a_chunked_body_that_still_fits_is_not_refused_for_its_buffers_doubling() {
    let mut holder = scenario();
    holder.send(&partial("/v1/chat/completions", 7_000, 0));
    let mut chunked = holder.sibling();
    chunked.send(
        b"POST /v1/messages HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-client-0123456789\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    );
    chunked.send(&chunk(&[b' '; 1_000]));
    chunked.send(&chunk(&[b' '; 100]));
    // 2,600 bytes in all, with 3,000 left: it fits, though a doubled
    // buffer (4,000) would not.
    chunked.send(&chunk(&[b' '; 1_500]));
    assert!(
        chunked.responses().is_empty(),
        "{}",
        chunked.response().text()
    );
    let held = in_use(&chunked) - 7_000;
    assert!((2_600..=3_000).contains(&held), "{held}");
}

/// A body larger than the whole budget can never fit: a 503 with
/// `Retry-After` would only make clients retry it for ever.
#[test]
fn a_body_larger_than_the_whole_budget_is_too_large_not_busy() {
    let small_budget = || {
        Scenario::builder()
            .limits(|l| {
                l.max_inflight_body_bytes = 5_000;
                l.max_body_bytes = 8_000;
            })
            .build()
    };
    let mut s = small_budget();
    s.send(&partial("/v1/messages", 6_000, 0));
    let r = s.response();
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(r.json()["error"]["type"], "request_too_large");
    assert_eq!(in_use(&s), 0);

    let mut s = small_budget();
    s.send(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer sk-client-0123456789\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    );
    s.send(&chunk(&[b' '; 4_000]));
    s.send(&chunk(&[b' '; 1_500]));
    let r = s.response();
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(in_use(&s), 0);
}
