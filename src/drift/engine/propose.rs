//! Propose: the episode's fix unit in ConfigHub, and its `resolved` label when the drift ends. A fix unit
//! is claimed in the record store before it is written, so two instances (a leader hand-over) never write
//! two for one episode.

use serde_json::Value;

use super::*;

impl DriftEngine {
    /// The repository's ConfigHub client and space, from the connections the source reconciler shares
    /// (same credentials, access tokens and resolved spaces).
    pub(super) async fn confighub_for(
        &self,
        repo: &Repo,
    ) -> Result<(confighub::Client, confighub::Space), String> {
        let connected = self
            .source
            .connections
            .connect(&self.client, &repo.chr)
            .await
            .map_err(|e| format!("{}: {}", e.reason, e.message))?;
        Ok((connected.client, connected.space))
    }

    /// Writes (or updates) the episode's fix unit: the origin unit with the live values merged in.
    pub(super) async fn write_fix_unit(&self, repo: &Repo, record: &DriftRecord, compared: &Value) {
        let result = self.try_write_fix_unit(repo, record, compared).await;
        match result {
            Ok(Some(slug)) => {
                let (id, fix) = (record.id.clone(), slug.clone());
                let _ = self.store(move |s| s.set_fix_unit(&id, &fix)).await;
                self.handles.metrics.fix_unit("written");
                tracing::info!(id = %record.id, fix_unit = %slug, "drift: fix unit written");
            }
            Ok(None) => {
                self.handles.metrics.fix_unit("skipped");
                tracing::debug!(id = %record.id, episode = record.episode,
                    "drift: the fix unit is being written by another instance, or the episode ended");
            }
            Err((outcome, err)) => {
                if outcome == "refused" {
                    self.fix_unit_refused
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert((record.id.clone(), record.episode));
                }
                self.handles.metrics.fix_unit(outcome);
                tracing::warn!(id = %record.id, error = %err, "drift: no fix unit written");
            }
        }
    }

    /// Builds the fix unit, claims it in the record store (so no other instance writes one for the same
    /// episode, and every instance uses the slug claimed first), and writes it. `None`: not ours to write.
    pub(super) async fn try_write_fix_unit(
        &self,
        repo: &Repo,
        record: &DriftRecord,
        compared: &Value,
    ) -> Result<Option<String>, (&'static str, String)> {
        let failed = |e: String| ("failed", e);
        let origin_slug = record
            .unit_slug
            .clone()
            .ok_or(("refused", "no origin unit".to_string()))?;
        let (client, space) = self.confighub_for(repo).await.map_err(failed)?;
        let filter = confighub::Where::new()
            .eq("Slug", &origin_slug)
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let origin = client
            .list_units(&space.space_id, Some(&filter), &[])
            .await
            .map_err(|e| failed(e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| failed(format!("origin unit '{origin_slug}' not found")))?;
        let data = match client
            .download_unit_data(&space.space_id, &origin.unit_id, None)
            .await
        {
            Ok(confighub::DataDownload::Data { bytes, .. }) => {
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Ok(confighub::DataDownload::NotModified) => {
                return Err(failed("unexpected 304".into()));
            }
            Err(e) => return Err(failed(e.to_string())),
        };
        let key = ObjectKey::new(&record.kind, &record.namespace, &record.name);
        let yaml = fix_unit::fix_unit_yaml_from(&data, &key, &record.items, Some(compared))
            .map_err(|e| ("refused", e.to_string()))?;

        let proposed = match &record.fix_unit {
            Some(existing) => existing.clone(),
            None => fix_unit::fix_unit_slug(
                &origin_slug,
                &record.kind,
                &format!("{}-{}", record.name, record.episode),
            ),
        };
        let (id, episode) = (record.id.clone(), record.episode);
        let slug = match self
            .store(move |s| s.claim_fix_unit(&id, episode, &proposed))
            .await
        {
            Ok(Claim::Granted(slug)) => slug,
            Ok(Claim::HeldElsewhere | Claim::Ended) => return Ok(None),
            Err(e) => return Err(failed(e.to_string())),
        };
        let written = self
            .upload_fix_unit(repo, &client, &space, record, &origin_slug, &slug, yaml)
            .await;
        if written.is_err() {
            // Let the next check (here or on another instance) try again at once, not after the lease.
            let (id, episode) = (record.id.clone(), record.episode);
            let _ = self.store(move |s| s.release_fix_unit(&id, episode)).await;
        }
        written.map(|()| Some(slug)).map_err(failed)
    }

    /// Creates (or finds) the fix space and the unit `slug`, and uploads `yaml` as its next revision.
    #[allow(clippy::too_many_arguments)]
    async fn upload_fix_unit(
        &self,
        repo: &Repo,
        client: &confighub::Client,
        space: &confighub::Space,
        record: &DriftRecord,
        origin_slug: &str,
        slug: &str,
        yaml: String,
    ) -> Result<(), String> {
        let key = ObjectKey::new(&record.kind, &record.namespace, &record.name);
        let fix_space = client
            .create_space(
                &SpaceCreate {
                    slug: fix_space_slug(&repo.chr, &space.slug),
                    ..Default::default()
                },
                true,
            )
            .await
            .map_err(|e| e.to_string())?;
        let labels = fix_unit::fix_unit_labels(
            origin_slug,
            &space.slug,
            record.revision.as_deref().unwrap_or_default(),
            &record.id,
        );
        let description = fix_unit::change_description(&key, &record.items);
        let unit = client
            .create_unit(
                &fix_space.space_id,
                &UnitCreate {
                    slug: slug.to_string(),
                    toolchain_type: "Kubernetes/YAML".into(),
                    labels: labels.into_iter().collect(),
                    ..Default::default()
                },
                true,
            )
            .await
            .map_err(|e| e.to_string())?;
        client
            .upload_unit_data(
                &fix_space.space_id,
                &unit.unit_id,
                yaml.into_bytes(),
                None,
                Some(&description),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    pub(super) async fn label_fix_unit_resolved(&self, repo: &Repo, slug: &str) {
        let Ok((client, space)) = self.confighub_for(repo).await else {
            return;
        };
        let Ok(Some(fix_space)) = client
            .find_space_by_slug(&fix_space_slug(&repo.chr, &space.slug))
            .await
        else {
            return;
        };
        let Ok(filter) = confighub::Where::new().eq("Slug", slug).build() else {
            return;
        };
        let Ok(units) = client
            .list_units(&fix_space.space_id, Some(&filter), &[])
            .await
        else {
            return;
        };
        for unit in units {
            let patch = UnitPatch {
                labels: Some(
                    [(
                        crate::wire::LABEL_FIX_STATUS.to_string(),
                        Some("resolved".to_string()),
                    )]
                    .into_iter()
                    .collect(),
                ),
                ..Default::default()
            };
            if let Err(err) = client
                .patch_unit(&fix_space.space_id, &unit.unit_id, &patch)
                .await
            {
                tracing::warn!(fix_unit = %slug, error = %err, "drift: cannot label the fix unit resolved");
            }
        }
    }
}

fn fix_space_slug(chr: &ConfigHubRepository, space_slug: &str) -> String {
    chr.spec
        .drift
        .as_ref()
        .and_then(|d| d.fix_space.clone())
        .unwrap_or_else(|| format!("{space_slug}-drift-fixes"))
}
