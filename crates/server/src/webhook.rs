//! Webhook calls over HTTP(S) (ureq, rustls with ring and the Mozilla roots): what the
//! dispatcher ([`steward_core::dispatch`]) posts signed events with. No redirects are followed
//! (a redirect could lead a call somewhere its endpoint was not registered for), a call takes
//! at most 10 seconds, and answers are read only for their status.

use std::time::Duration;

use steward_core::dispatch::WebhookClient;

/// Posts webhook calls.
pub struct HttpWebhooks {
    agent: ureq::Agent,
}

impl Default for HttpWebhooks {
    fn default() -> HttpWebhooks {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent("steward-webhooks")
            .build();
        HttpWebhooks {
            agent: config.into(),
        }
    }
}

impl WebhookClient for HttpWebhooks {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &str) -> Result<u16, String> {
        let mut request = self.agent.post(url);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        match request.send(body) {
            Ok(answer) => Ok(answer.status().as_u16()),
            // The error names the host or the failure, never the body.
            Err(ureq::Error::Timeout(_)) => Err("the endpoint did not answer in time".into()),
            Err(ureq::Error::ConnectionFailed | ureq::Error::HostNotFound) => {
                Err("the endpoint could not be reached".into())
            }
            Err(_) => Err("the call failed".into()),
        }
    }
}
