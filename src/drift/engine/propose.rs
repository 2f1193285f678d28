//! Propose: the episode's fix unit in ConfigHub, and its `resolved` label when the drift ends.

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
            Ok(slug) => {
                let (id, fix) = (record.id.clone(), slug.clone());
                let _ = self.store(move |s| s.set_fix_unit(&id, &fix)).await;
                self.handles.metrics.fix_unit("written");
                tracing::info!(id = %record.id, fix_unit = %slug, "drift: fix unit written");
            }
            Err((outcome, err)) => {
                self.handles.metrics.fix_unit(outcome);
                tracing::warn!(id = %record.id, error = %err, "drift: no fix unit written");
            }
        }
    }

    pub(super) async fn try_write_fix_unit(
        &self,
        repo: &Repo,
        record: &DriftRecord,
        compared: &Value,
    ) -> Result<String, (&'static str, String)> {
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

        let fix_space_slug = fix_space_slug(&repo.chr, &space.slug);
        let fix_space = client
            .create_space(
                &SpaceCreate {
                    slug: fix_space_slug,
                    ..Default::default()
                },
                true,
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
        let slug = match &record.fix_unit {
            Some(existing) => existing.clone(),
            None => fix_unit::fix_unit_slug(
                &origin_slug,
                &record.kind,
                &format!("{}-{}", record.name, record.episode),
            ),
        };
        let labels = fix_unit::fix_unit_labels(
            &origin_slug,
            &space.slug,
            record.revision.as_deref().unwrap_or_default(),
            &record.id,
        );
        let description = fix_unit::change_description(&key, &record.items);
        let unit = client
            .create_unit(
                &fix_space.space_id,
                &UnitCreate {
                    slug: slug.clone(),
                    toolchain_type: "Kubernetes/YAML".into(),
                    labels: labels.into_iter().collect(),
                    ..Default::default()
                },
                true,
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
        client
            .upload_unit_data(
                &fix_space.space_id,
                &unit.unit_id,
                yaml.into_bytes(),
                None,
                Some(&description),
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(slug)
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
