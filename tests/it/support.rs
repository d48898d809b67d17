//! Test helpers: a real hub on port 0 with its own database file, an HTTP client, and raw
//! WebSocket phones that speak device protocol v1 frame by frame.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use smshub::app::{App, Config};
use smshub::auth;
use smshub::store::Store;
use smshub::transport::attached::Modems;
use smshub::transport::link::DeviceLink;
use smshub_protocol::device::{
    Battery, Capabilities, DeviceFrame, HeldJob, Hello, HubFrame, JobIds, SimStatus, Status,
};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(10);

tokio::task_local! {
    /// Set while a test runs on PostgreSQL: each hub it spawns gets a fresh database there
    /// rather than a SQLite file.
    static ON_POSTGRES: ();
}

/// Runs `test` with each hub it spawns on a fresh PostgreSQL database ([`crate::pg`]);
/// skipped where PostgreSQL is not installed, outside CI.
pub async fn on_postgres(test: impl std::future::Future<Output = ()>) {
    if !crate::pg::available() {
        return;
    }
    ON_POSTGRES.scope((), test).await
}

/// Runs each named `async fn` of the module as two tests, `sqlite::NAME` (hubs on a SQLite
/// file each) and `postgres::NAME` (hubs on a fresh PostgreSQL database each).
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name().await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                $crate::support::on_postgres(super::$name()).await
            })*
        }
    };
}

/// A hub running in this process.
pub struct TestHub {
    pub base: String,
    pub api_key: String,
    pub config: Config,
    pub store: Store,
    /// What transports get of the hub (to attach a driver from a test).
    pub link: DeviceLink,
    /// The modems attached to the hub.
    pub modems: Arc<Modems>,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: Arc<tempfile::TempDir>,
}

impl TestHub {
    pub async fn spawn() -> TestHub {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestHub {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let db_url = match ON_POSTGRES.try_with(|_| crate::pg::fresh_database()) {
            Ok(Some(url)) => url,
            _ => format!("sqlite://{}", dir.path().join("hub.db").display()),
        };
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), db_url);
        configure(&mut config);
        Self::start(config, dir, None).await
    }

    async fn start(
        config: Config,
        dir: Arc<tempfile::TempDir>,
        api_key: Option<String>,
    ) -> TestHub {
        let app = App::build(config).await.expect("hub builds");
        let addr = app.addr();
        let api_key = match api_key {
            Some(it) => it,
            None => {
                auth::create_api_key(app.store(), "tests")
                    .await
                    .expect("api key")
                    .secret
            }
        };
        let (config, store, link, modems) = (
            app.config().clone(),
            app.store().clone(),
            app.link(),
            app.modems(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        TestHub {
            base: format!("http://{addr}"),
            api_key,
            config,
            store,
            link,
            modems,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Stops this hub gracefully and starts a new one on the same database.
    pub async fn restart(self) -> TestHub {
        self.restart_with(|_, _| {}).await
    }

    /// Stops this hub gracefully and starts a new one on the same database, with its
    /// configuration changed by `configure` (given the hub's API key).
    pub async fn restart_with(mut self, configure: impl FnOnce(&mut Config, &str)) -> TestHub {
        let config = self.config.clone();
        let dir = self._dir.clone();
        let key = self.api_key.clone();
        self.shutdown().await;
        let mut config = config;
        config.listen = "127.0.0.1:0".parse().unwrap();
        configure(&mut config, &key);
        TestHub::start(config, dir, Some(key)).await
    }

    /// Asks the hub to stop and waits until it has.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("hub task")
                .expect("hub shuts down cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with the API key; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .header("X-API-Key", &self.api_key)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST JSON with the API key; returns status and JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("X-API-Key", &self.api_key)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends one SMS and returns its id.
    pub async fn send_sms(&self, body: Value) -> String {
        let (status, body) = self.post("/api/send-sms", body).await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Registers a device; returns (id, token).
    pub async fn add_device(&self, name: &str) -> (String, String) {
        let (status, body) = self.post("/api/devices", json!({ "name": name })).await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["token"].as_str().unwrap().to_string(),
        )
    }

    /// Registers a device and connects a raw phone that has said hello and sent `status`.
    pub async fn phone(
        &self,
        name: &str,
        battery: u8,
        charging: bool,
        dbm: i32,
        max_in_flight: u32,
    ) -> RawPhone {
        let (id, token) = self.add_device(name).await;
        let mut phone = RawPhone::connect(&self.base, &id, &token)
            .await
            .expect("phone connects");
        phone.hello(max_in_flight, None).await;
        phone.status(battery, charging, dbm).await;
        phone
    }

    /// Waits until `GET /api/sms/{id}` shows `state`.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (_, body) = self.get(&format!("/api/sms/{id}")).await;
            if body["state"] == state {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {id} never reached {state}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The number of messages stored.
    pub async fn message_count(&self) -> u64 {
        let (_, body) = self.get("/api/sms?limit=1").await;
        body["total"].as_u64().expect("total")
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A phone driven frame by frame by the test.
pub struct RawPhone {
    pub id: String,
    ws: Ws,
}

impl RawPhone {
    /// Opens the device socket with the token as a bearer header.
    pub async fn connect(
        base: &str,
        id: &str,
        token: &str,
    ) -> Result<RawPhone, tokio_tungstenite::tungstenite::Error> {
        let url = format!("{}/ws/device/{id}", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(RawPhone {
            id: id.to_string(),
            ws,
        })
    }

    /// Sends `hello` and checks the `welcome`.
    pub async fn hello(&mut self, max_in_flight: u32, jobs: Option<Vec<HeldJob>>) {
        let capabilities = Capabilities {
            max_in_flight,
            ..Capabilities::default()
        };
        self.hello_with(capabilities, jobs).await;
    }

    /// Sends `hello` with these capabilities and checks the `welcome`.
    pub async fn hello_with(&mut self, capabilities: Capabilities, jobs: Option<Vec<HeldJob>>) {
        self.send(&DeviceFrame::Hello(Hello {
            protocol: vec![1],
            app_version: Some("test/1".into()),
            device: Default::default(),
            sims: Vec::new(),
            capabilities,
            jobs,
        }))
        .await;
        match self.recv().await {
            HubFrame::Welcome(welcome) => assert_eq!(welcome.device_id, self.id),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn status(&mut self, battery: u8, charging: bool, dbm: i32) {
        self.send(&DeviceFrame::Status(Status {
            battery: Some(Battery {
                level: battery,
                charging,
            }),
            sims: vec![SimStatus {
                slot: 0,
                signal_dbm: Some(dbm),
                registered: true,
                ..Default::default()
            }],
            connection: Some("wifi".into()),
        }))
        .await;
    }

    pub async fn send(&mut self, frame: &DeviceFrame) {
        self.ws
            .send(Message::text(frame.to_json()))
            .await
            .expect("phone sends");
    }

    /// Sends a WebSocket ping (not a protocol frame).
    pub async fn ping(&mut self) {
        self.ws
            .send(Message::Ping(Vec::new().into()))
            .await
            .expect("phone pings");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_string()))
            .await
            .expect("phone sends");
    }

    /// Sends a binary WebSocket frame (not allowed by the protocol).
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .expect("phone sends");
    }

    /// The next hub text frame, heartbeats included; panics after [`PATIENCE`].
    pub async fn recv_any(&mut self) -> HubFrame {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a frame from the hub in time")
                .expect("the socket is open")
                .expect("a valid WebSocket message");
            if let Message::Text(text) = message {
                return HubFrame::parse(&text).expect("hub frames parse");
            }
        }
    }

    /// The next hub frame (heartbeats skipped); panics after [`PATIENCE`].
    pub async fn recv(&mut self) -> HubFrame {
        self.try_recv(PATIENCE).await.expect("a frame from the hub")
    }

    /// The next hub frame within `wait`, or `None` (heartbeats skipped; closes are `None`).
    pub async fn try_recv(&mut self, wait: Duration) -> Option<HubFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match message {
                Message::Text(text) => {
                    let frame = HubFrame::parse(&text).expect("hub frames parse");
                    if !matches!(frame, HubFrame::Heartbeat(_)) {
                        return Some(frame);
                    }
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Waits for the socket to be closed and returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|it| u16::from(it.code)),
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    /// Waits for a `send` offer and returns its job id.
    pub async fn expect_offer(&mut self) -> smshub_protocol::device::SendJob {
        match self.recv().await {
            HubFrame::Send(job) => job,
            other => panic!("expected a send offer, got {other:?}"),
        }
    }

    /// Accepts a job and checks the hub commits it.
    pub async fn accept(&mut self, id: &str) {
        self.send(&DeviceFrame::Accepted(JobIds {
            ids: vec![id.to_string()],
        }))
        .await;
        match self.recv().await {
            HubFrame::Commit(JobIds { ids }) => assert_eq!(ids, vec![id.to_string()]),
            other => panic!("expected commit, got {other:?}"),
        }
    }

    /// Drops the connection without a close frame.
    pub fn drop_connection(self) {
        drop(self);
    }
}

/// Polls `check` until it returns `Some`, or fails after [`PATIENCE`].
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(it) = check().await {
            return it;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Creates an API key named `name` in the database at `db` with `smshub keys create`, as an
/// operator would before starting the hub as a process, and returns it.
pub fn cli_api_key(db: &str, name: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_smshub"))
        .args(["keys", "create", "--name", name, "--database-url", db])
        .output()
        .expect("smshub keys create runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .last()
        .expect("the key")
        .to_string()
}

/// A loopback port nothing listens on right now, for a hub run as a process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Waits until the hub process `child` answers `200` at `url` (its health probe), for at most
/// 30 s; panics naming `what` and the process's state if it does not.
pub async fn wait_until_up(url: &str, child: &mut std::process::Child, what: &str) {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while http
        .get(url)
        .send()
        .await
        .map(|it| it.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {:?}",
            child.try_wait()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
