//! The fleet table and container actions. Row assembly itself is pure and lives in
//! [`crate::refresh`]; this module keeps the last good tracker answers across refreshes
//! and console restarts.

use std::collections::HashMap;

use futures::{Stream, StreamExt};

use super::{Ops, OpsError};
use crate::docker::{self, ContainerInfo, ContainerRole, DockerError};
use crate::refresh::{self, FleetRow, TrackerSnapshot};

/// Cache meta key of a client's last good tracker snapshot.
pub(crate) fn last_good_key(client_id: &str) -> String {
    format!("last_good:{client_id}")
}

impl Ops {
    /// The fleet table. Remembers every good tracker answer (in memory and in the cache)
    /// so the next refresh can show the age of the last good data.
    pub async fn refresh(&self) -> Vec<FleetRow> {
        // Offboarded clients have no containers or tracker left to ask.
        let fleet = self.fleet.without_offboarded();
        let mut trackers = HashMap::new();
        for c in &fleet.clients {
            trackers.insert(
                c.id.clone(),
                self.tracker(&c.id).await.map_err(|e| e.to_string()),
            );
        }
        {
            let mut lg = self.last_good.write().await;
            for c in &fleet.clients {
                if !lg.contains_key(&c.id) {
                    // First look at this client since start: an old cache may remember
                    // markup changes the fleet file (now their only owner) lacks.
                    if let Ok(Some(w)) = self
                        .cache
                        .legacy_markup_conflict(&c.id, &c.terms.markup)
                        .await
                    {
                        tracing::warn!("{w}");
                    }
                    if let Ok(Some(j)) = self.cache.get_meta(&last_good_key(&c.id)).await {
                        if let Ok(s) = serde_json::from_str::<TrackerSnapshot>(&j) {
                            lg.insert(c.id.clone(), s);
                        }
                    }
                }
            }
        }
        let last_good = self.last_good.read().await.clone();
        let ((mut rows, fresh), nbp) = tokio::join!(
            refresh::refresh_all(refresh::RefreshInput {
                fleet: &fleet,
                trackers: &trackers,
                last_good: &last_good,
                docker: self.docker_enabled,
                today: self.today(),
            }),
            self.alert_nbp()
        );
        // Persist last-good snapshots so a console restarted while a host is down still
        // shows that host's last numbers with their age.
        let mut lg = self.last_good.write().await;
        for (id, snap) in fresh {
            if let Ok(j) = serde_json::to_string(&snap) {
                let _ = self.cache.set_meta(&last_good_key(&id), &j).await;
            }
            lg.insert(id, snap);
        }
        // Every refresh is an alert evaluation (the debounce counts refreshes).
        let latest = lg.clone();
        drop(lg);
        match self.evaluate_alerts(&rows, &latest, nbp).await {
            Ok((memory, _)) => crate::alerts::attach(&mut rows, &memory),
            Err(e) => tracing::warn!("alerts could not be evaluated: {e}"),
        }
        rows
    }

    pub async fn restart(&self, id: &str, role: ContainerRole) -> Result<ContainerInfo, OpsError> {
        let c = self.client(id)?;
        let host = self.fleet.host(&c.host).expect("validated at parse");
        let d = docker::connect(host).await?;
        if host.mode == crate::fleet::HostMode::Swarm {
            // `docker service update --force`: Swarm replaces the task (stop-first).
            let svc = swarm_service(&d, host, &c.id, role).await?;
            crate::swarm::force_update(&d, &host.name, &svc.name).await?;
            crate::swarm::wait_converged(&d, &host.name, &svc.name, crate::swarm::CONVERGE_WITHIN)
                .await?;
            return Ok(swarm_service(&d, host, &c.id, role).await?);
        }
        Ok(docker::restart(&d, &host.name, &c.id, role, 10).await?)
    }

    pub async fn logs(
        &self,
        id: &str,
        role: ContainerRole,
        tail: u32,
        follow: bool,
    ) -> Result<impl Stream<Item = Result<String, DockerError>> + use<>, OpsError> {
        let c = self.client(id)?;
        let host = self.fleet.host(&c.host).expect("validated at parse");
        let d = docker::connect(host).await?;
        if host.mode == crate::fleet::HostMode::Swarm {
            let svc = swarm_service(&d, host, &c.id, role).await?;
            return Ok(crate::swarm::logs(&d, &host.name, &svc.name, tail, follow).boxed());
        }
        Ok(docker::logs(&d, &host.name, &c.id, role, tail, follow)
            .await?
            .boxed())
    }
}

/// The client's service of `role` on a swarm host (found by its labels).
async fn swarm_service(
    d: &bollard::Docker,
    host: &crate::fleet::Host,
    client: &str,
    role: ContainerRole,
) -> Result<ContainerInfo, DockerError> {
    crate::swarm::list_client_services(d, &host.name)
        .await?
        .into_iter()
        .find(|s| s.client == client && s.role == role)
        .ok_or_else(|| DockerError::NotFound {
            host: host.name.clone(),
            client: client.to_string(),
            role,
        })
}
