//! CreateTable from `infra/table.json`, for tests and local setups (production tables come
//! from the CloudFormation template, which is checked against the same file).

use super::error::classify;
use super::DynamoStore;
use crate::{table, Result, StoreError};
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use std::time::{Duration, Instant};

const ACTIVE_WAIT: Duration = Duration::from_secs(300);

fn built(e: BuildError) -> StoreError {
    StoreError::Internal(format!("request build: {e}"))
}

fn key(attr: &str, kind: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder().attribute_name(attr).key_type(kind).build().map_err(built)
}

impl DynamoStore {
    /// Creates the table as `infra/table.json` defines it (on-demand billing, every index
    /// projecting all attributes, a NEW_AND_OLD_IMAGES stream) and turns TTL on. Waits until it
    /// is active. Does nothing that is already done, so it is safe to call on every start.
    pub async fn create_table(&self) -> Result<()> {
        let def = table::table();
        let mut attrs = vec![def.partition_key.as_str(), def.sort_key.as_str()];
        let mut indexes = Vec::new();
        for ix in &def.indexes {
            for a in [ix.partition_key.as_str(), ix.sort_key.as_str()] {
                if !attrs.contains(&a) {
                    attrs.push(a);
                }
            }
            indexes.push(
                GlobalSecondaryIndex::builder()
                    .index_name(&ix.name)
                    .key_schema(key(&ix.partition_key, KeyType::Hash)?)
                    .key_schema(key(&ix.sort_key, KeyType::Range)?)
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .map_err(built)?,
            );
        }
        let definitions = attrs
            .into_iter()
            .map(|a| {
                AttributeDefinition::builder()
                    .attribute_name(a)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(built)
            })
            .collect::<Result<Vec<_>>>()?;
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::from(def.stream.as_str()))
            .build()
            .map_err(built)?;

        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .set_attribute_definitions(Some(definitions))
            .key_schema(key(&def.partition_key, KeyType::Hash)?)
            .key_schema(key(&def.sort_key, KeyType::Range)?)
            .set_global_secondary_indexes(Some(indexes))
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(stream)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(classify(e, 0)),
        }
        self.wait_active().await?;

        let ttl =
            self.client.describe_time_to_live().table_name(&self.table).send().await.map_err(|e| classify(e, 0))?;
        let status = ttl.time_to_live_description().and_then(|d| d.time_to_live_status());
        if !matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)) {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(&def.ttl_attribute)
                .build()
                .map_err(built)?;
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| classify(e, 0))?;
        }
        Ok(())
    }

    /// UpdateTimeToLive and the first writes need the table and its indexes ACTIVE.
    async fn wait_active(&self) -> Result<()> {
        let deadline = Instant::now() + ACTIVE_WAIT;
        loop {
            let out = self.client.describe_table().table_name(&self.table).send().await.map_err(|e| classify(e, 0))?;
            if let Some(t) = out.table() {
                let indexes_active =
                    t.global_secondary_indexes().iter().all(|i| i.index_status() == Some(&IndexStatus::Active));
                if t.table_status() == Some(&TableStatus::Active) && indexes_active {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(StoreError::Unavailable(format!("table {} is not active", self.table)));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
