//! The loop that keeps a serial modem or a HiLink stick attached: open and serve one session,
//! publish how it ended, wait, try again, until the device is detached. The transport says how
//! to open and serve a session and how long to wait after failures ([`Driver`]); [`run`] does
//! the rest the same way for both.
//!
//! While it waits between sessions, the device answers every request with
//! [`ModemError::NotReady`] and goes when asked to stop.
//!
//! Must never: talk to a device itself, or know which transport it drives.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::operators::Operators;
use super::status::{Control, ModemError, ModemState, ModemStatus};
use crate::transport::link::DeviceLink;

/// What the task of an attached modem or stick gets besides its address and settings: the
/// hub, the operator table, where it publishes its status and where requests reach it.
pub struct Attachment {
    pub link: DeviceLink,
    pub operators: Arc<Operators>,
    pub status: watch::Sender<ModemStatus>,
    pub control: mpsc::Receiver<Control>,
}

/// Why a session ended.
#[derive(Debug)]
pub enum Ended {
    /// Detached on request, or the hub is stopping.
    Stopped,
    /// Another session of the same device took over, or the device was removed.
    Replaced,
    /// The device failed or could not be set up; try again later. `was_online`: the session
    /// had come online, so the count of failures in a row starts over.
    Failed { error: String, was_online: bool },
    /// Trying again could do harm (a stick locks its account after a few refused logins): the
    /// device stays down, showing `error` and `advice`, refusing requests with `refusal`, until
    /// it is detached.
    GaveUp {
        error: String,
        advice: &'static str,
        refusal: &'static str,
    },
}

/// One transport's part of the loop.
pub trait Driver {
    /// Opens and serves one session until it ends; `status` is published to the hub,
    /// `control` brings the API's requests.
    fn session<'a>(
        &'a mut self,
        status: &'a watch::Sender<ModemStatus>,
        control: &'a mut mpsc::Receiver<Control>,
    ) -> impl Future<Output = Ended> + Send + 'a;

    /// How long to wait before the next attempt after `failures` failed ones in a row
    /// (1-based).
    fn wait(&self, failures: u32) -> Duration;

    /// Logs how a session ended, in the transport's words; `failures` counts the failed
    /// attempts in a row, this one included.
    fn log(&self, ended: &Ended, failures: u32);
}

/// Keeps `driver`'s device attached until it is detached: sets `Connecting`, serves a
/// session; on `Stopped`/`Replaced` sets `Disconnected` and returns; on a failure sets `Error`
/// with the error and waits `driver.wait(failures)`, refusing requests meanwhile, then tries
/// again.
pub async fn run(
    mut driver: impl Driver,
    status: watch::Sender<ModemStatus>,
    mut control: mpsc::Receiver<Control>,
) {
    let mut failures: u32 = 0;
    loop {
        status.send_modify(|it| it.state = ModemState::Connecting);
        let ended = driver.session(&status, &mut control).await;
        match &ended {
            Ended::Stopped | Ended::Replaced => {
                status.send_modify(|it| {
                    it.state = ModemState::Disconnected;
                    it.network.registered = false;
                });
                driver.log(&ended, failures);
                return;
            }
            Ended::GaveUp {
                error,
                advice,
                refusal,
            } => {
                driver.log(&ended, failures);
                status.send_modify(|it| {
                    it.state = ModemState::Error;
                    it.last_error = Some(format!("{error}; {advice}"));
                    it.network.registered = false;
                });
                refuse_until_stopped(&mut control, refusal).await;
                status.send_modify(|it| it.state = ModemState::Disconnected);
                return;
            }
            Ended::Failed { error, was_online } => {
                failures = if *was_online { 1 } else { failures + 1 };
                driver.log(&ended, failures);
                status.send_modify(|it| {
                    it.state = ModemState::Error;
                    it.last_error = Some(error.clone());
                    it.network.registered = false;
                });
            }
        }
        if !wait_refusing(&mut control, driver.wait(failures)).await {
            status.send_modify(|it| it.state = ModemState::Disconnected);
            return;
        }
    }
}

/// Waits `wait`, refusing requests meanwhile; false when asked to stop.
async fn wait_refusing(control: &mut mpsc::Receiver<Control>, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return true,
            request = control.recv() => match request {
                None | Some(Control::Stop) => return false,
                Some(other) => other.refuse(ModemError::NotReady("reconnecting".to_string())),
            },
        }
    }
}

/// Refuses every request with `refusal` until asked to stop.
async fn refuse_until_stopped(control: &mut mpsc::Receiver<Control>, refusal: &str) {
    while let Some(request) = control.recv().await {
        if matches!(request, Control::Stop) {
            break;
        }
        request.refuse(ModemError::NotReady(refusal.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use tokio::sync::oneshot;

    use super::*;

    /// A driver whose sessions end as scripted (then stop), recording the waits asked for.
    struct Scripted {
        endings: VecDeque<Ended>,
        waits: Arc<Mutex<Vec<u32>>>,
        /// The states published when each session began.
        seen: Arc<Mutex<Vec<ModemState>>>,
    }

    impl Driver for Scripted {
        async fn session(
            &mut self,
            status: &watch::Sender<ModemStatus>,
            _control: &mut mpsc::Receiver<Control>,
        ) -> Ended {
            self.seen.lock().expect("lock").push(status.borrow().state);
            self.endings.pop_front().unwrap_or(Ended::Stopped)
        }

        fn wait(&self, failures: u32) -> Duration {
            self.waits.lock().expect("lock").push(failures);
            Duration::from_secs(u64::from(failures))
        }

        fn log(&self, _ended: &Ended, _failures: u32) {}
    }

    fn failed(was_online: bool) -> Ended {
        Ended::Failed {
            error: "gone".to_string(),
            was_online,
        }
    }

    struct Started {
        waits: Arc<Mutex<Vec<u32>>>,
        seen: Arc<Mutex<Vec<ModemState>>>,
        status: watch::Receiver<ModemStatus>,
        control: mpsc::Sender<Control>,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(endings: Vec<Ended>) -> Started {
        let waits = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let driver = Scripted {
            endings: endings.into(),
            waits: waits.clone(),
            seen: seen.clone(),
        };
        let (status_tx, status) = watch::channel(ModemStatus::new("/dev/test"));
        let (control, control_rx) = mpsc::channel(4);
        let task = tokio::spawn(run(driver, status_tx, control_rx));
        Started {
            waits,
            seen,
            status,
            control,
            task,
        }
    }

    async fn ask_balance(control: &mpsc::Sender<Control>) -> ModemError {
        let (reply, answer) = oneshot::channel();
        control
            .send(Control::Balance(reply))
            .await
            .expect("the loop listens");
        answer
            .await
            .expect("answered")
            .expect_err("refused while down")
    }

    #[tokio::test(start_paused = true)]
    async fn failures_in_a_row_count_up_and_start_over_after_a_session_online() {
        let started = start(vec![
            failed(false),
            failed(false),
            failed(true),
            failed(false),
            Ended::Replaced,
        ]);
        started.task.await.expect("the loop ends");
        assert_eq!(*started.waits.lock().expect("lock"), vec![1, 2, 1, 2]);
        assert_eq!(
            *started.seen.lock().expect("lock"),
            vec![ModemState::Connecting; 5],
            "each session starts from Connecting"
        );
        let status = started.status.borrow();
        assert_eq!(status.state, ModemState::Disconnected);
        assert_eq!(status.last_error.as_deref(), Some("gone"));
    }

    #[tokio::test(start_paused = true)]
    async fn while_waiting_requests_are_refused_and_stop_ends_the_loop() {
        let mut started = start(vec![failed(false)]);
        started
            .status
            .wait_for(|it| it.state == ModemState::Error)
            .await
            .expect("status");
        assert!(matches!(
            ask_balance(&started.control).await,
            ModemError::NotReady(reason) if reason == "reconnecting"
        ));
        started.control.send(Control::Stop).await.expect("sent");
        started.task.await.expect("the loop ends");
        assert_eq!(started.status.borrow().state, ModemState::Disconnected);
        assert_eq!(
            started.seen.lock().expect("lock").len(),
            1,
            "no second session"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_device_that_gave_up_refuses_requests_until_stopped() {
        let mut started = start(vec![Ended::GaveUp {
            error: "login refused".to_string(),
            advice: "not retrying",
            refusal: "the stick refused the login",
        }]);
        started
            .status
            .wait_for(|it| it.state == ModemState::Error)
            .await
            .expect("status");
        assert_eq!(
            started.status.borrow().last_error.as_deref(),
            Some("login refused; not retrying")
        );
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(matches!(
            ask_balance(&started.control).await,
            ModemError::NotReady(reason) if reason == "the stick refused the login"
        ));
        started.control.send(Control::Stop).await.expect("sent");
        started.task.await.expect("the loop ends");
        assert_eq!(started.status.borrow().state, ModemState::Disconnected);
        assert!(started.waits.lock().expect("lock").is_empty());
        assert_eq!(started.seen.lock().expect("lock").len(), 1);
    }
}
