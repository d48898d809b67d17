//! A stick's radio and SIM: `monitoring/status`, `device/signal` and `net/current-plmn` read
//! into its status (the SIM's operator profile from the IMSI, else from the network when not
//! roaming) and reported to the hub in the device protocol's terms.
//!
//! Must never: fail over a call the firmware refuses (its fields stay unknown; only silence
//! is an error).

use smshub_protocol::device::Status;

use super::Connection;
use crate::transport::hilink::calls::{Radio, signal_level};
use crate::transport::hilink::client::ClientError;
use crate::transport::radio::device as radio;

impl Connection<'_> {
    /// Reads the radio again and reports it (the periodic refresh).
    pub(super) async fn refresh_and_report(&mut self) -> Result<(), ClientError> {
        self.refresh().await?;
        self.link
            .report_status(&self.device_id, self.session_no, self.radio_status());
        Ok(())
    }

    /// Reads radio state, signal and network; a call the firmware refuses leaves its fields
    /// unknown, silence is an error.
    pub(super) async fn refresh(&mut self) -> Result<(), ClientError> {
        let radio = self.calls.radio().await?;
        let profile = radio
            .home_operator(self.imsi.as_deref(), &self.operators)
            .cloned();
        let Radio {
            monitoring,
            signal,
            plmn,
        } = radio;
        let imsi_code = self
            .imsi
            .as_ref()
            .map(|it| it.chars().take(5).collect::<String>());
        self.publish(|it| {
            it.network.signal_dbm = signal.rssi;
            it.network.signal_percent = monitoring.signal_percent();
            it.network.network_type = monitoring.network_type.map(str::to_string);
            it.network.registered = monitoring.registered();
            it.network.roaming = monitoring.roaming;
            it.network.operator = plmn.name();
            it.sim.pin_state = monitoring.sim_state().map(str::to_string);
            it.sim.mcc_mnc = profile.as_ref().map(|p| p.mcc_mnc.clone()).or(imsi_code);
            it.sim.operator = profile.as_ref().map(|p| p.name.clone());
            it.sim.profile = profile;
        });
        Ok(())
    }

    /// The radio status; the signal bars come from the percentage when the stick gives no dBm.
    pub(super) fn radio_status(&self) -> Status {
        let snapshot = self.status.borrow();
        let network = &snapshot.network;
        let signal_level = signal_level(network.signal_dbm, network.signal_percent);
        radio::radio_status(&snapshot, signal_level)
    }
}
