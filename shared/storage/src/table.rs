//! The table definition, written once in `infra/table.json` and read by the embedded adapter, the
//! test harness's CreateTable and checked against `template.yaml`.

use serde::Deserialize;
use std::sync::OnceLock;

pub const TABLE_JSON: &str = include_str!("../../../infra/table.json");

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableDef {
    pub table_name: String,
    pub partition_key: String,
    pub sort_key: String,
    pub indexes: Vec<IndexDef>,
    pub ttl_attribute: String,
    pub max_item_bytes: usize,
    pub max_transaction_items: usize,
    pub stream: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexDef {
    pub name: String,
    pub partition_key: String,
    pub sort_key: String,
}

pub fn table() -> &'static TableDef {
    static DEF: OnceLock<TableDef> = OnceLock::new();
    DEF.get_or_init(|| serde_json::from_str(TABLE_JSON).expect("infra/table.json is valid"))
}
