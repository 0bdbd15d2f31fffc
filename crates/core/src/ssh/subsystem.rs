//! Subsystem channels (`sftp`) over an open [`Connection`]: the same login, no second prompt.

use russh::ChannelMsg;

use super::{Connection, SshError};

/// A byte stream to a server subsystem (read/write both ways; dropping it closes the channel).
pub type SubsystemStream = russh::ChannelStream<russh::client::Msg>;

impl Connection {
    /// Opens a session channel and starts the server's subsystem `name` (e.g. `sftp`) on it.
    ///
    /// # Errors
    /// [`SshError::ChannelRefused`] when the server refuses the channel or has no such subsystem
    /// (sshd without `Subsystem sftp …`), [`SshError::Closed`] when the connection is gone.
    pub async fn open_subsystem(&self, name: &str) -> Result<SubsystemStream, SshError> {
        let mut channel = self
            .inner
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.channel_error(&format!("the {name} subsystem channel"), e))?;
        channel
            .request_subsystem(true, name)
            .await
            .map_err(|e| self.channel_error(&format!("the {name} subsystem"), e))?;
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) | Some(ChannelMsg::Close) | None => {
                    return Err(SshError::ChannelRefused {
                        what: format!("the {name} subsystem"),
                        message: format!(
                            "{} does not offer it (sshd_config needs a `Subsystem {name} …` line)",
                            self.inner.destination
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(channel.into_stream())
    }
}
