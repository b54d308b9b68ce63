//! The links function as Lambda runs it: API Gateway HTTP API events, DynamoDB on moto.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_its_family_and_nothing_else() {
    linkcrm_lambda::testing::check_family_function(env!("CARGO_BIN_EXE_links"), linkcrm_api::catalogue::Family::Links)
        .await;
}
