//! Connection limits and timeouts (issue 13, item 4): silent or idle sockets, floods of one
//! kind of client, slow headers and bodies, and device sockets that never say `hello`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{PATIENCE, RawPhone, TestHub};

fn addr(hub: &TestHub) -> String {
    hub.base.trim_start_matches("http://").to_string()
}

/// Whether the hub closes `stream` within `wait` (what it sends first is returned).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// An API connection that has sent its headers and half its body: busy, holding its place.
async fn busy_api_connection(hub: &TestHub) -> TcpStream {
    let mut stream = TcpStream::connect(addr(hub)).await.unwrap();
    let head = format!(
        "POST /api/send-sms HTTP/1.1\r\nHost: hub\r\nX-API-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"phone",
        hub.api_key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Silent sockets beyond every cap lock out neither `/health` nor a phone; API connections
/// and device connections are counted apart, so a flood of one never locks out the other.
#[tokio::test]
async fn connection_caps_keep_api_and_devices_apart() {
    let hub = TestHub::spawn_with(|config| {
        config.server.max_pending_connections = 4;
        config.server.max_api_connections = 2;
        config.server.max_device_connections = 2;
        config.server.header_timeout = Duration::from_secs(60);
        config.server.body_timeout = Duration::from_secs(60);
    })
    .await;
    let (first_id, first_token) = hub.add_device("first").await;
    let (second_id, second_token) = hub.add_device("second").await;
    let (third_id, third_token) = hub.add_device("third").await;

    // Ten sockets that never send a byte: the oldest are closed to make room.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(TcpStream::connect(addr(&hub)).await.unwrap());
    }
    assert!(
        closed_within(&mut silent[0], PATIENCE).await.is_some(),
        "the oldest silent socket was closed to make room"
    );
    let health = hub.http.get(hub.url("/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let mut first = RawPhone::connect(&hub.base, &first_id, &first_token)
        .await
        .expect("a phone connects past silent sockets");
    first.hello(1, None).await;

    // The API pool full of busy connections: the next API client is told to come back, while
    // a phone still connects.
    let _busy = [
        busy_api_connection(&hub).await,
        busy_api_connection(&hub).await,
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = reqwest::Client::new()
        .get(hub.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert!(refused.headers().get("retry-after").is_some());
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
    let mut second = RawPhone::connect(&hub.base, &second_id, &second_token)
        .await
        .expect("a phone connects while the API is full");
    second.hello(1, None).await;
    drop(_busy);

    // The device pool full: the next phone is refused, the API answers (and readiness says
    // that devices cannot connect).
    tokio::time::sleep(Duration::from_millis(200)).await;
    match RawPhone::connect(&hub.base, &third_id, &third_token).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503)
        }
        Ok(_) => panic!("a third phone connected past a cap of two"),
        Err(other) => panic!("unexpected error {other}"),
    }
    let live = reqwest::Client::new()
        .get(hub.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
    let (_, stats) = hub.get("/api/stats").await;
    assert_eq!(stats["devices"]["online"], 2, "{stats}");
    let ready = reqwest::Client::new()
        .get(hub.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["devices_can_connect"], false, "{ready}");

    // A phone that leaves frees its place.
    drop(first);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(mut third) = RawPhone::connect(&hub.base, &third_id, &third_token).await {
            third.hello(1, None).await;
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the freed place was never given"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Idle keep-alive API connections make room: at the cap, the oldest idle one is closed.
#[tokio::test]
async fn idle_api_connections_make_room_for_new_ones() {
    let hub = TestHub::spawn_with(|config| {
        config.server.max_api_connections = 2;
        config.server.header_timeout = Duration::from_secs(60);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr(&hub)).await.unwrap();
        stream
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: hub\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        idle.push(stream);
    }
    let health = reqwest::Client::new()
        .get(hub.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        closed_within(&mut idle[0], PATIENCE).await.is_some(),
        "the oldest idle connection was closed"
    );
}

/// Half the headers, then nothing: the connection is closed after the header timeout.
#[tokio::test]
async fn slow_headers_are_cut_off() {
    let hub = TestHub::spawn_with(|config| {
        config.server.header_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(addr(&hub)).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: hub\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut stream, Duration::from_secs(5))
            .await
            .is_some(),
        "a request whose headers never end is closed"
    );
    // A keep-alive connection left idle is closed too.
    let mut stream = TcpStream::connect(addr(&hub)).await.unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: hub\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|it| it.starts_with("HTTP/1.1 200")),
        "answered, then closed when idle: {answer:?}"
    );
}

/// A body trickled a byte at a time gets `408 request_timeout` within the body timeout, and
/// nothing is stored.
#[tokio::test]
async fn a_trickled_body_gets_408() {
    let hub = TestHub::spawn_with(|config| {
        config.server.body_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(addr(&hub)).await.unwrap();
    let body = r#"{"phone_number": "+14155552671", "message": "a slow one"}"#;
    let head = format!(
        "POST /api/send-sms HTTP/1.1\r\nHost: hub\r\nX-API-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        hub.api_key,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for byte in body.as_bytes() {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, read.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    trickle.abort();
    let answer = String::from_utf8_lossy(&seen);
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
    assert!(answer.contains("request_timeout"), "answer: {answer:?}");
    assert_eq!(hub.message_count().await, 0);
}

/// A device socket that never says `hello` is closed with 4003 after the hello timeout.
#[tokio::test]
async fn a_silent_websocket_is_closed_without_hello() {
    let hub = TestHub::spawn_with(|config| {
        config.hello_timeout = Duration::from_secs(1);
    })
    .await;
    let (id, token) = hub.add_device("mute").await;
    let mut phone = RawPhone::connect(&hub.base, &id, &token).await.unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(phone.closed().await, Some(4003));
    assert!(started.elapsed() < Duration::from_secs(5));
}
